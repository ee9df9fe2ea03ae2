package ec2

import (
	"context"
	"crypto/hmac"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/broker/identity"
)

// CredentialStore is the part of identity.EC2Credentials the API uses:
// find the key pair an access key names, and what it may do now.
type CredentialStore interface {
	Lookup(ctx context.Context, access string) (identity.EC2Credential, error)
	Authorize(ctx context.Context, cred identity.EC2Credential) (identity.Token, error)
}

var _ CredentialStore = (*identity.EC2Credentials)(nil)

// verifier checks a request's signature: Signature Version 4 in the
// Authorization header or a presigned query, or Version 2 query signing.
type verifier struct {
	creds CredentialStore
	now   func() time.Time
}

// authorization holds the parsed parts of a SigV4 signature.
type authorization struct {
	access    string
	scope     scope
	signed    []string
	signature string
	amzDate   string
	presigned bool
	expires   time.Duration
}

// verify authenticates r, whose body (already read) is body and whose
// parameters are form, and returns the caller's token and whether the
// signature covers the body. It does not when the signature is over
// UNSIGNED-PAYLOAD (a presigned URL as the SDKs make them, or a header
// signature that says so): then only the query string is signed, and the
// caller must take no parameter from the body.
func (v *verifier) verify(r *http.Request, body []byte, form url.Values) (identity.Token, bool, *Error) {
	switch {
	case strings.HasPrefix(r.Header.Get("Authorization"), algorithm+" "):
		a, e := parseAuthHeader(r)
		if e != nil {
			return identity.Token{}, false, e
		}
		payload := r.Header.Get("X-Amz-Content-Sha256")
		switch {
		case payload == "":
			payload = sha256Hex(body)
		case payload == unsignedPayload: // signed as such
		case !hmac.Equal([]byte(payload), []byte(sha256Hex(body))):
			return identity.Token{}, false, authFailure("X-Amz-Content-Sha256 does not match the body")
		}
		t, _, e := v.check(r, a, []string{payload})
		return t, payload != unsignedPayload, e
	case r.URL.Query().Get("X-Amz-Algorithm") != "":
		a, e := parsePresigned(r.URL.Query())
		if e != nil {
			return identity.Token{}, false, e
		}
		// The SDKs presign the unsigned payload; AWS's own examples the
		// empty body's hash. Either is accepted; only the second covers
		// the body.
		t, payload, e := v.check(r, a, []string{sha256Hex(body), unsignedPayload})
		return t, payload != unsignedPayload, e
	case form.Get("SignatureVersion") == "2":
		t, e := v.checkV2(r, form)
		return t, true, e
	}
	return identity.Token{}, false, errorf(http.StatusUnauthorized, "MissingAuthenticationToken",
		"The request must be signed (AWS Signature Version 4, in the Authorization header or a presigned query)")
}

// verifyStream authenticates a request whose body is streamed rather than
// read first (an image upload): a header signature must cover
// X-Amz-Content-Sha256, UNSIGNED-PAYLOAD or the body's SHA-256 (returned,
// for the caller to compare once the body has streamed through), or the
// request must be presigned.
func (v *verifier) verifyStream(r *http.Request) (identity.Token, string, *Error) {
	switch {
	case strings.HasPrefix(r.Header.Get("Authorization"), algorithm+" "):
		a, e := parseAuthHeader(r)
		if e != nil {
			return identity.Token{}, "", e
		}
		payload := r.Header.Get("X-Amz-Content-Sha256")
		if payload == "" {
			return identity.Token{}, "", errorf(http.StatusBadRequest, "MissingParameter",
				"an upload needs X-Amz-Content-Sha256: UNSIGNED-PAYLOAD or the SHA-256 of the body, in hex")
		}
		want := ""
		if payload != unsignedPayload {
			if _, err := hex.DecodeString(payload); err != nil || len(payload) != 64 {
				return identity.Token{}, "", invalidParameter("X-Amz-Content-Sha256 must be UNSIGNED-PAYLOAD or 64 hex digits")
			}
			want = strings.ToLower(payload)
		}
		t, _, e := v.check(r, a, []string{payload})
		return t, want, e
	case r.URL.Query().Get("X-Amz-Algorithm") != "":
		a, e := parsePresigned(r.URL.Query())
		if e != nil {
			return identity.Token{}, "", e
		}
		t, _, e := v.check(r, a, []string{unsignedPayload})
		return t, "", e
	}
	return identity.Token{}, "", errorf(http.StatusUnauthorized, "MissingAuthenticationToken",
		"The request must be signed (AWS Signature Version 4, in the Authorization header or a presigned query)")
}

func parseAuthHeader(r *http.Request) (authorization, *Error) {
	var a authorization
	rest := strings.TrimPrefix(r.Header.Get("Authorization"), algorithm+" ")
	var credential string
	for _, part := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			credential = val
		case "SignedHeaders":
			a.signed = strings.Split(val, ";")
		case "Signature":
			a.signature = val
		}
	}
	if credential == "" || len(a.signed) == 0 || a.signature == "" {
		return a, errorf(http.StatusBadRequest, "IncompleteSignature", "The Authorization header needs Credential, SignedHeaders and Signature")
	}
	a.amzDate = r.Header.Get("X-Amz-Date")
	dateHeader := "x-amz-date"
	if a.amzDate == "" {
		// The Date header may carry the time instead (RFC 1123).
		d, err := http.ParseTime(r.Header.Get("Date"))
		if err != nil {
			return a, missingParameter("X-Amz-Date")
		}
		a.amzDate, dateHeader = d.UTC().Format(amzDateFormat), "date"
	}
	if !contains(a.signed, "host") || !contains(a.signed, dateHeader) {
		return a, errorf(http.StatusBadRequest, "IncompleteSignature", "SignedHeaders must include host and %s", dateHeader)
	}
	return a, a.parseCredential(credential)
}

func parsePresigned(q url.Values) (authorization, *Error) {
	a := authorization{presigned: true, amzDate: q.Get("X-Amz-Date"), signature: q.Get("X-Amz-Signature"),
		signed: strings.Split(q.Get("X-Amz-SignedHeaders"), ";")}
	if q.Get("X-Amz-Algorithm") != algorithm {
		return a, authFailure("X-Amz-Algorithm must be %s", algorithm)
	}
	secs, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || secs < 1 || secs > 7*24*3600 {
		return a, authFailure("X-Amz-Expires must be 1 to 604800 seconds")
	}
	a.expires = time.Duration(secs) * time.Second
	if a.signature == "" || a.amzDate == "" || !contains(a.signed, "host") {
		return a, errorf(http.StatusBadRequest, "IncompleteSignature", "a presigned request needs X-Amz-Date, X-Amz-SignedHeaders (with host) and X-Amz-Signature")
	}
	return a, a.parseCredential(q.Get("X-Amz-Credential"))
}

// parseCredential reads ACCESS/DATE/REGION/SERVICE/aws4_request. Any
// region name is accepted (a client configured for us-east-1 still
// reaches this cloud); the service must be ec2.
func (a *authorization) parseCredential(c string) *Error {
	parts := strings.Split(c, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" || parts[0] == "" {
		return authFailure("Credential must be ACCESS_KEY/YYYYMMDD/REGION/ec2/aws4_request")
	}
	a.access, a.scope = parts[0], scope{date: parts[1], region: parts[2], service: parts[3]}
	if a.scope.service != "ec2" {
		return authFailure("Credential should be scoped to a valid service: 'ec2', not %q", a.scope.service)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// check verifies the time, then the signature for any of payloads, and
// returns the payload hash the signature is over.
func (v *verifier) check(r *http.Request, a authorization, payloads []string) (identity.Token, string, *Error) {
	at, err := time.Parse(amzDateFormat, a.amzDate)
	if err != nil {
		return identity.Token{}, "", invalidParameter("X-Amz-Date %q is not YYYYMMDDTHHMMSSZ", a.amzDate)
	}
	if a.scope.date != a.amzDate[:8] {
		return identity.Token{}, "", authFailure("Credential should be scoped to the date of X-Amz-Date, %s, not %s", a.amzDate[:8], a.scope.date)
	}
	now := v.now()
	switch {
	case at.After(now.Add(MaxSkew)):
		return identity.Token{}, "", errorf(http.StatusBadRequest, "RequestExpired", "Request date %s is more than 15 minutes in the future", a.amzDate)
	case !a.presigned && at.Before(now.Add(-MaxSkew)):
		return identity.Token{}, "", errorf(http.StatusBadRequest, "RequestExpired", "Request has expired: its date %s is more than 15 minutes old", a.amzDate)
	case a.presigned && now.After(at.Add(a.expires)):
		return identity.Token{}, "", errorf(http.StatusBadRequest, "RequestExpired", "Request has expired: presigned at %s for %s", a.amzDate, a.expires)
	}
	cred, e := v.lookup(r.Context(), a.access)
	if e != nil {
		return identity.Token{}, "", e
	}
	skip := ""
	if a.presigned {
		skip = "X-Amz-Signature"
	}
	query, err := canonicalQuery(r.URL.RawQuery, skip)
	if err != nil {
		return identity.Token{}, "", invalidParameter("the query string: %v", err)
	}
	signed := append([]string(nil), a.signed...)
	for i := range signed {
		signed[i] = strings.ToLower(signed[i])
	}
	matched := ""
	for _, payload := range payloads {
		canonical := canonicalRequest(r.Method, r.URL.EscapedPath(), query, r.Header, r.Host, signed, payload)
		if hmac.Equal([]byte(signature(cred.Secret, a.amzDate, a.scope, canonical)), []byte(a.signature)) {
			matched = payload
			break
		}
	}
	if matched == "" {
		return identity.Token{}, "", authFailure("AWS was not able to validate the provided access credentials: the request signature does not match (check the secret key and the signing method)")
	}
	t, e := v.authorize(r.Context(), cred)
	return t, matched, e
}

func (v *verifier) lookup(ctx context.Context, access string) (identity.EC2Credential, *Error) {
	cred, err := v.creds.Lookup(ctx, access)
	if errors.Is(err, identity.ErrNotFound) {
		return cred, authFailure("AWS was not able to validate the provided access credentials: unknown access key")
	}
	if err != nil {
		return cred, errorf(http.StatusServiceUnavailable, "Unavailable", "the credential store did not answer; retry").hiding(err)
	}
	return cred, nil
}

func (v *verifier) authorize(ctx context.Context, cred identity.EC2Credential) (identity.Token, *Error) {
	t, err := v.creds.Authorize(ctx, cred)
	if errors.Is(err, identity.ErrUnauthorized) {
		return t, authFailure("AWS was not able to validate the provided access credentials: the key's user or project is disabled or holds no role")
	}
	if err != nil {
		return t, errorf(http.StatusServiceUnavailable, "Unavailable", "the identity store did not answer; retry").hiding(err)
	}
	return t, nil
}

// checkV2 verifies Signature Version 2 (HmacSHA256 or HmacSHA1 over
// METHOD\nhost\npath\nsorted-query), still sent by old EC2 tools such as
// euca2ools and econe's clients.
func (v *verifier) checkV2(r *http.Request, form url.Values) (identity.Token, *Error) {
	return v.checkV2At(r, form, []string{r.URL.EscapedPath()})
}

// checkV2At is checkV2 with the paths the signature may have been made
// over, and the host with or without its port: the amazon-ec2 gem
// (econe's) signs the host name alone.
func (v *verifier) checkV2At(r *http.Request, form url.Values, paths []string) (identity.Token, *Error) {
	var mac func() []byte
	method := form.Get("SignatureMethod")
	if method != "HmacSHA256" && method != "HmacSHA1" {
		return identity.Token{}, authFailure("SignatureMethod must be HmacSHA256 or HmacSHA1")
	}
	now := v.now()
	if ts := form.Get("Timestamp"); ts != "" {
		at, err := time.Parse(time.RFC3339, ts)
		if err != nil || at.Before(now.Add(-MaxSkew)) || at.After(now.Add(MaxSkew)) {
			return identity.Token{}, errorf(http.StatusBadRequest, "RequestExpired", "Timestamp %q is missing, malformed or more than 15 minutes off", ts)
		}
	} else {
		exp, err := time.Parse(time.RFC3339, form.Get("Expires"))
		if err != nil || now.After(exp) {
			return identity.Token{}, errorf(http.StatusBadRequest, "RequestExpired", "the request needs a Timestamp, or an Expires in the future")
		}
		// An Expires years ahead would make one captured request
		// replayable for years: bounded as a SigV4 presigned URL is.
		if exp.After(now.Add(MaxV2Expiry + MaxSkew)) {
			return identity.Token{}, errorf(http.StatusBadRequest, "RequestExpired", "Expires %q is more than %d seconds ahead", form.Get("Expires"), int(MaxV2Expiry.Seconds()))
		}
	}
	cred, e := v.lookup(r.Context(), form.Get("AWSAccessKeyId"))
	if e != nil {
		return identity.Token{}, e
	}
	// Version 2 signs one value per name: a name given twice (in the
	// query and the body, say) has a value the signature does not cover.
	keys := make([]string, 0, len(form))
	for k, vals := range form {
		if len(vals) > 1 {
			return identity.Token{}, authFailure("AWS was not able to validate the provided access credentials: parameter %s is given %d times, and a version 2 signature covers one value", k, len(vals))
		}
		if k != "Signature" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	pairs := make([]string, 0, len(keys))
	for _, k := range keys {
		pairs = append(pairs, uriEncode(k, false)+"="+uriEncode(form.Get(k), false))
	}
	hosts := []string{strings.ToLower(r.Host)}
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		hosts = append(hosts, strings.ToLower(h))
	}
	for _, host := range hosts {
		for _, path := range paths {
			if path == "" {
				path = "/"
			}
			sts := r.Method + "\n" + host + "\n" + path + "\n" + strings.Join(pairs, "&")
			if method == "HmacSHA256" {
				mac = func() []byte { return hmacSHA256([]byte(cred.Secret), sts) }
			} else {
				mac = func() []byte { return hmacSHA1([]byte(cred.Secret), sts) }
			}
			want := base64.StdEncoding.EncodeToString(mac())
			if hmac.Equal([]byte(want), []byte(form.Get("Signature"))) {
				return v.authorize(r.Context(), cred)
			}
		}
	}
	return identity.Token{}, authFailure("AWS was not able to validate the provided access credentials: the version 2 signature does not match")
}
