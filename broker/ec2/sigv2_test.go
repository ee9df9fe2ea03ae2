package ec2_test

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"
)

// signV2 signs EC2 Query parameters with Signature Version 2 as the
// pre-SigV4 tools did: HMAC over "POST\nhost\npath\n" and the parameters
// sorted by name, RFC 3986-encoded.
func signV2(form url.Values, host, path, secret, method string) {
	form.Set("SignatureVersion", "2")
	form.Set("SignatureMethod", method)
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	enc := func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
	var pairs []string
	for _, k := range keys {
		pairs = append(pairs, enc(k)+"="+enc(form.Get(k)))
	}
	h := map[string]func() hash.Hash{"HmacSHA256": sha256.New, "HmacSHA1": sha1.New}[method]
	m := hmac.New(h, []byte(secret))
	m.Write([]byte("POST\n" + host + "\n" + path + "\n" + strings.Join(pairs, "&")))
	form.Set("Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
}

func TestSignatureVersion2(t *testing.T) {
	te := newTestEnv(t)
	keys := te.keysFor(t, "admin", "admin")
	u, _ := url.Parse(te.Server.URL + "/ec2/")
	cases := []struct {
		name   string
		method string
		secret string
		stamp  time.Time
		code   string
		// expires signs with Expires instead of Timestamp.
		expires bool
	}{
		{"HmacSHA256", "HmacSHA256", keys.SecretKey, time.Now(), "", false},
		{"HmacSHA1", "HmacSHA1", keys.SecretKey, time.Now(), "", false},
		{"wrong secret", "HmacSHA256", "wrong", time.Now(), "AuthFailure", false},
		{"stale timestamp", "HmacSHA256", keys.SecretKey, time.Now().Add(-time.Hour), "RequestExpired", false},
		{"expires in an hour", "HmacSHA256", keys.SecretKey, time.Now().Add(time.Hour), "", true},
		{"expired", "HmacSHA256", keys.SecretKey, time.Now().Add(-time.Minute), "RequestExpired", true},
		// A request valid for years could be replayed for years.
		{"expires in a year", "HmacSHA256", keys.SecretKey, time.Now().Add(365 * 24 * time.Hour), "RequestExpired", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"Action": {"DescribeAvailabilityZones"}, "Version": {"2016-11-15"}, "AWSAccessKeyId": {keys.AccessKey}}
			if tc.expires {
				form.Set("Expires", tc.stamp.UTC().Format(time.RFC3339))
			} else {
				form.Set("Timestamp", tc.stamp.UTC().Format(time.RFC3339))
			}
			signV2(form, u.Host, u.Path, tc.secret, tc.method)
			resp, err := http.Post(u.String(), "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			switch {
			case tc.code == "" && (resp.StatusCode != 200 || !bytes.Contains(raw, []byte("<zoneName>alpha</zoneName>"))):
				t.Fatalf("%d %s", resp.StatusCode, raw)
			case tc.code != "" && !bytes.Contains(raw, []byte("<Code>"+tc.code+"</Code>")):
				t.Fatalf("%d %s; want %s", resp.StatusCode, raw, tc.code)
			}
		})
	}
}
