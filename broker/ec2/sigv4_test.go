package ec2

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// AWS's Signature Version 4 test suite (aws4_testsuite, as botocore and
// the AWS docs publish it): credentials AKIDEXAMPLE, 2015-08-30T12:36:00Z,
// region us-east-1, service "service", host example.amazonaws.com.
var (
	vectorKeys = Keys{AccessKey: "AKIDEXAMPLE", SecretKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
	vectorTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
)

type vector struct {
	name    string
	method  string
	path    string // as the suite's request line has it, before encoding
	query   string // raw, as sent
	headers map[string]string
	body    string
	// want is the suite's Signature= value.
	want string
}

var vectors = []vector{
	{name: "get-vanilla", method: "GET", path: "/",
		want: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
	{name: "get-vanilla-query-order-key-case", method: "GET", path: "/", query: "Param2=value2&Param1=value1",
		want: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
	{name: "get-vanilla-query-unreserved", method: "GET", path: "/",
		query: "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
		want:  "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
	{name: "get-vanilla-utf8-query", method: "GET", path: "/", query: "%E1%88%B4=bar",
		want: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
	{name: "get-unreserved", method: "GET", path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
		want: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
	{name: "get-utf8", method: "GET", path: "/ሴ",
		want: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
	{name: "get-header-value-trim", method: "GET", path: "/", headers: map[string]string{"My-Header1": " value1", "My-Header2": ` "a   b   c"`},
		want: "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
	{name: "post-vanilla", method: "POST", path: "/",
		want: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
	{name: "post-vanilla-query", method: "POST", path: "/", query: "Param1=value1",
		want: "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11"},
	{name: "post-header-key-sort", method: "POST", path: "/", headers: map[string]string{"My-Header1": "value1"},
		want: "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"},
	{name: "post-header-value-case", method: "POST", path: "/", headers: map[string]string{"My-Header1": "VALUE1"},
		want: "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d"},
	{name: "post-x-www-form-urlencoded", method: "POST", path: "/", body: "Param1=value1",
		headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded"},
		want:    "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
	{name: "post-x-www-form-urlencoded-parameters", method: "POST", path: "/", body: "Param1=value1",
		headers: map[string]string{"Content-Type": "application/x-www-form-urlencoded; charset=utf8"},
		want:    "1a72ec8f64bd914b0e42e42607c7fbce7fb2c7465f63e3092b3b0d39fa77a6fe"},
}

// TestSignatureVectors computes every vector's signature with the code the
// verifier uses (canonical request, string to sign, key derivation).
func TestSignatureVectors(t *testing.T) {
	for _, v := range vectors {
		t.Run(v.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("X-Amz-Date", vectorTime.Format(amzDateFormat))
			signed := []string{"host", "x-amz-date"}
			for k, val := range v.headers {
				h.Set(k, val)
				signed = append(signed, strings.ToLower(k))
			}
			sort.Strings(signed)
			query, err := canonicalQuery(v.query, "")
			if err != nil {
				t.Fatal(err)
			}
			canonical := canonicalRequest(v.method, v.path, query, h, "example.amazonaws.com", signed, sha256Hex([]byte(v.body)))
			sc := scope{date: "20150830", region: "us-east-1", service: "service"}
			if got := signature(vectorKeys.SecretKey, vectorTime.Format(amzDateFormat), sc, canonical); got != v.want {
				t.Fatalf("signature = %s, want %s\ncanonical request:\n%s", got, v.want, canonical)
			}
		})
	}
}

// TestSignMatchesVectors signs real *http.Requests with Sign, which must
// produce the suite's Authorization headers.
func TestSignMatchesVectors(t *testing.T) {
	for _, v := range vectors {
		if v.headers != nil && v.headers["Content-Type"] == "" {
			continue // Sign signs only content-type and x-amz-* beyond host
		}
		if strings.ContainsAny(v.path, "ሴ") {
			continue // a request line carries the path encoded once already
		}
		t.Run(v.name, func(t *testing.T) {
			u := "https://example.amazonaws.com" + v.path
			if v.query != "" {
				u += "?" + v.query
			}
			req, err := http.NewRequest(v.method, u, strings.NewReader(v.body))
			if err != nil {
				t.Fatal(err)
			}
			for k, val := range v.headers {
				req.Header.Set(k, val)
			}
			if err := Sign(req, []byte(v.body), vectorKeys, "us-east-1", "service", vectorTime); err != nil {
				t.Fatal(err)
			}
			got := req.Header.Get("Authorization")
			if !strings.HasSuffix(got, "Signature="+v.want) || !strings.HasPrefix(got, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=") {
				t.Fatalf("Authorization = %s\nwant signature %s", got, v.want)
			}
		})
	}
}

// TestPresignRoundTrip checks a presigned URL against the verifier's
// parser and canonical form: the query it signs is the one it sends.
func TestPresignRoundTrip(t *testing.T) {
	u, _ := url.Parse("http://broker.example:8080/ec2/?Action=DescribeRegions&Version=2016-11-15")
	signed, err := Presign("GET", u, vectorKeys, "RegionOne", "ec2", vectorTime, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a, e := parsePresigned(signed.Query())
	if e != nil {
		t.Fatal(e)
	}
	query, err := canonicalQuery(signed.RawQuery, "X-Amz-Signature")
	if err != nil {
		t.Fatal(err)
	}
	canonical := canonicalRequest("GET", signed.EscapedPath(), query, http.Header{}, signed.Host, a.signed, unsignedPayload)
	if got := signature(vectorKeys.SecretKey, a.amzDate, a.scope, canonical); got != a.signature {
		t.Fatalf("presigned signature %s does not verify (computed %s)", a.signature, got)
	}
	if a.access != "AKIDEXAMPLE" || a.scope.service != "ec2" || a.expires != time.Hour {
		t.Fatalf("parsed %+v", a)
	}
}

func TestMatchValue(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"web", "web", true},
		{"web", "web1", false},
		{"web*", "web-1", true},
		{"*-1", "web-1", true},
		{"w?b", "web", true},
		{"w?b", "wb", false},
		{"*", "", true},
		{"a*b*c", "axxbyyc", true},
		{"a*b*c", "axxbyy", false},
	}
	for _, c := range cases {
		t.Run(c.pattern+"~"+c.s, func(t *testing.T) {
			if got := matchValue(c.pattern, c.s); got != c.want {
				t.Fatalf("matchValue(%q, %q) = %v", c.pattern, c.s, got)
			}
		})
	}
}
