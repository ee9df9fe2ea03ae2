package ec2

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// AWS Signature Version 4, both sides: Sign (clients: tests, the CLI) and
// the pieces Verify uses. The canonical request follows AWS's
// "Create a signed AWS API request" exactly:
//
//	METHOD \n CanonicalURI \n CanonicalQuery \n CanonicalHeaders \n SignedHeaders \n PayloadHash
//
// and is checked against AWS's published signature test suite.

const (
	algorithm = "AWS4-HMAC-SHA256"
	// amzDateFormat is X-Amz-Date's basic ISO 8601 form.
	amzDateFormat = "20060102T150405Z"
	// unsignedPayload stands for the body in presigned URLs.
	unsignedPayload = "UNSIGNED-PAYLOAD"
	// MaxSkew is how far a request's date may be from the broker's clock.
	MaxSkew = 15 * time.Minute
	// MaxV2Expiry is how far ahead a Signature Version 2 request's
	// Expires may be: SigV4's longest presigned validity (604800 s).
	MaxV2Expiry = 7 * 24 * time.Hour
)

// uriEncode percent-encodes everything but AWS's unreserved characters
// (A-Z a-z 0-9 - _ . ~), and '/' too when keepSlash.
func uriEncode(s string, keepSlash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && keepSlash:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// canonicalURI encodes a path as services other than S3 do: each byte once
// more, so a path that arrived percent-encoded is encoded twice (what
// botocore and the AWS SDKs send).
func canonicalURI(path string) string {
	if path == "" {
		return "/"
	}
	return uriEncode(path, true)
}

// canonicalQuery sorts the pairs of a raw query string by encoded name then
// value, each re-encoded the AWS way; skip names a parameter left out (the
// signature itself, in a presigned URL).
func canonicalQuery(rawQuery, skip string) (string, error) {
	type pair struct{ k, v string }
	var pairs []pair
	for _, part := range strings.Split(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		dk, err := url.QueryUnescape(k)
		if err != nil {
			return "", fmt.Errorf("query parameter %q: %w", k, err)
		}
		dv, err := url.QueryUnescape(v)
		if err != nil {
			return "", fmt.Errorf("query parameter %q: %w", k, err)
		}
		if dk == skip {
			continue
		}
		pairs = append(pairs, pair{uriEncode(dk, false), uriEncode(dv, false)})
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	parts := make([]string, len(pairs))
	for i, p := range pairs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&"), nil
}

// headerValue is a header's canonical value: every value (in order, joined
// by commas), trimmed, inner runs of spaces folded to one.
func headerValue(h http.Header, host, name string) string {
	if name == "host" {
		return host
	}
	vals := h.Values(name)
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(out, ",")
}

// canonicalRequest builds the canonical request of a request over the
// signed headers (lower case, sorted).
func canonicalRequest(method, path, query string, h http.Header, host string, signed []string, payloadHash string) string {
	var b strings.Builder
	b.WriteString(method + "\n" + canonicalURI(path) + "\n" + query + "\n")
	for _, name := range signed {
		b.WriteString(name + ":" + headerValue(h, host, name) + "\n")
	}
	b.WriteString("\n" + strings.Join(signed, ";") + "\n" + payloadHash)
	return b.String()
}

func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func hmacSHA1(key []byte, data string) []byte {
	m := hmac.New(sha1.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// scope is a credential scope: date/region/service/aws4_request.
type scope struct{ date, region, service string }

func (s scope) String() string { return s.date + "/" + s.region + "/" + s.service + "/aws4_request" }

// signature derives the signing key and signs the string to sign.
func signature(secret, amzDate string, sc scope, canonical string) string {
	sts := algorithm + "\n" + amzDate + "\n" + sc.String() + "\n" + sha256Hex([]byte(canonical))
	key := hmacSHA256([]byte("AWS4"+secret), sc.date)
	key = hmacSHA256(key, sc.region)
	key = hmacSHA256(key, sc.service)
	key = hmacSHA256(key, "aws4_request")
	return hex.EncodeToString(hmacSHA256(key, sts))
}

// Keys sign requests.
type Keys struct {
	AccessKey, SecretKey string
}

// Sign signs req (whose body is body) with an Authorization header for
// region and service at time at: it sets X-Amz-Date and signs host,
// x-amz-date and every header already set whose name is content-type or
// starts with x-amz-. An X-Amz-Content-Sha256 already set (a streamed body's
// hash, or UNSIGNED-PAYLOAD) is signed as the payload instead of body's.
func Sign(req *http.Request, body []byte, creds Keys, region, service string, at time.Time) error {
	amzDate := at.UTC().Format(amzDateFormat)
	req.Header.Set("X-Amz-Date", amzDate)
	host := req.Host
	if host == "" {
		host = req.URL.Host
	}
	signed := []string{"host"}
	for name := range req.Header {
		l := strings.ToLower(name)
		if l == "content-type" || strings.HasPrefix(l, "x-amz-") {
			signed = append(signed, l)
		}
	}
	sort.Strings(signed)
	query, err := canonicalQuery(req.URL.RawQuery, "")
	if err != nil {
		return err
	}
	sc := scope{date: amzDate[:8], region: region, service: service}
	payload := req.Header.Get("X-Amz-Content-Sha256") // UNSIGNED-PAYLOAD, or a hash set by the caller
	if payload == "" {
		payload = sha256Hex(body)
	}
	canonical := canonicalRequest(req.Method, req.URL.EscapedPath(), query, req.Header, host, signed, payload)
	sig := signature(creds.SecretKey, amzDate, sc, canonical)
	req.Header.Set("Authorization", fmt.Sprintf("%s Credential=%s/%s, SignedHeaders=%s, Signature=%s",
		algorithm, creds.AccessKey, sc, strings.Join(signed, ";"), sig))
	return nil
}

// Presign returns u with a presigned query (X-Amz-Algorithm ...
// X-Amz-Signature) valid for expires, signing only the host header and an
// unsigned payload, as the AWS SDKs presign.
func Presign(method string, u *url.URL, creds Keys, region, service string, at time.Time, expires time.Duration) (*url.URL, error) {
	amzDate := at.UTC().Format(amzDateFormat)
	sc := scope{date: amzDate[:8], region: region, service: service}
	out := *u
	q := out.Query()
	q.Set("X-Amz-Algorithm", algorithm)
	q.Set("X-Amz-Credential", creds.AccessKey+"/"+sc.String())
	q.Set("X-Amz-Date", amzDate)
	q.Set("X-Amz-Expires", fmt.Sprint(int(expires.Seconds())))
	q.Set("X-Amz-SignedHeaders", "host")
	out.RawQuery = q.Encode()
	query, err := canonicalQuery(out.RawQuery, "")
	if err != nil {
		return nil, err
	}
	canonical := canonicalRequest(method, out.EscapedPath(), query, http.Header{}, out.Host, []string{"host"}, unsignedPayload)
	q.Set("X-Amz-Signature", signature(creds.SecretKey, amzDate, sc, canonical))
	out.RawQuery = q.Encode()
	return &out, nil
}
