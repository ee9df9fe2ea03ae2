package swift_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func sign(h func() hash.Hash, key, method string, expires int64, path string) []byte {
	mac := hmac.New(h, []byte(key))
	fmt.Fprintf(mac, "%s\n%d\n%s", method, expires, path)
	return mac.Sum(nil)
}

func TestTempURLs(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	bob := e.login(t, "bob", "beta", "member")
	a := alice.account
	e.must(t, alice, http.StatusCreated, "PUT", a+"/pub", hdr("X-Container-Meta-Temp-URL-Key", "ckey"), "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/pub/dir/report.txt", hdr("X-Object-Meta-Secret", "s", "X-Object-Meta-Public-Tag", "t"), "report")
	e.must(t, alice, http.StatusNoContent, "POST", a, hdr("X-Account-Meta-Temp-URL-Key", "akey"), "")
	obj := a + "/pub/dir/report.txt"
	v1 := obj[strings.Index(obj, "/v1/"):]
	exp := time.Now().Add(time.Hour).Unix()
	past := time.Now().Add(-time.Minute).Unix()
	hexSig := func(h func() hash.Hash, key, method string, expires int64, path string) string {
		return hex.EncodeToString(sign(h, key, method, expires, path))
	}
	url := func(sig string, expires int64, extra string) string {
		return obj + "?temp_url_sig=" + sig + "&temp_url_expires=" + strconv.FormatInt(expires, 10) + extra
	}
	anon := user{}
	cases := []struct {
		name, method, url string
		want              int
	}{
		{"sha1 account key, /v1 path", "GET", url(hexSig(sha1.New, "akey", "GET", exp, v1), exp, ""), 200},
		{"sha256 container key, whole path", "GET", url(hexSig(sha256.New, "ckey", "GET", exp, obj), exp, ""), 200},
		{"sha512 base64", "GET", url("sha512:"+base64.RawURLEncoding.EncodeToString(sign(sha512.New, "akey", "GET", exp, v1)), exp, ""), 200},
		{"HEAD with a GET signature", "HEAD", url(hexSig(sha256.New, "akey", "GET", exp, v1), exp, ""), 200},
		{"ISO 8601 expiry", "GET", obj + "?temp_url_sig=" + hexSig(sha256.New, "akey", "GET", exp, v1) + "&temp_url_expires=" + time.Unix(exp, 0).UTC().Format("2006-01-02T15:04:05Z"), 200},
		{"wrong key", "GET", url(hexSig(sha256.New, "nope", "GET", exp, v1), exp, ""), 401},
		{"expired", "GET", url(hexSig(sha256.New, "akey", "GET", past, v1), past, ""), 401},
		{"other method", "DELETE", url(hexSig(sha256.New, "akey", "GET", exp, v1), exp, ""), 401},
		{"other object", "GET", a + "/pub/other?temp_url_sig=" + hexSig(sha256.New, "akey", "GET", exp, v1) + "&temp_url_expires=" + strconv.FormatInt(exp, 10), 401},
		{"garbage signature", "GET", url("zz", exp, ""), 401},
		{"prefix", "GET", url(hexSig(sha256.New, "akey", "GET", exp, "prefix:"+a[strings.Index(a, "/v1/"):]+"/pub/dir/"), exp, "&temp_url_prefix=dir/"), 200},
		{"prefix not matching", "GET", url(hexSig(sha256.New, "akey", "GET", exp, "prefix:"+a[strings.Index(a, "/v1/"):]+"/pub/x"), exp, "&temp_url_prefix=x"), 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.do(t, anon, tc.method, tc.url, nil, nil)
			if resp.StatusCode != tc.want {
				t.Fatalf("%s = %d %q; want %d", tc.method, resp.StatusCode, body, tc.want)
			}
			if tc.want != 200 {
				return
			}
			if tc.method == "GET" && body != "report" {
				t.Fatalf("body = %q", body)
			}
			if resp.Header.Get("X-Object-Meta-Secret") != "" || resp.Header.Get("X-Object-Meta-Public-Tag") != "t" ||
				resp.Header.Get("Content-Disposition") != `attachment; filename=report.txt` {
				t.Fatalf("headers = %v", resp.Header)
			}
		})
	}
	resp, _ := e.do(t, anon, "GET", url(hexSig(sha256.New, "akey", "GET", exp, v1), exp, "&inline"), nil, nil)
	if resp.Header.Get("Content-Disposition") != "inline" {
		t.Fatalf("inline disposition = %q", resp.Header.Get("Content-Disposition"))
	}

	// A PUT signature uploads that object and nothing else.
	putURL := a + "/pub/upload.bin?temp_url_sig=" + hexSig(sha256.New, "ckey", "PUT", exp, a[strings.Index(a, "/v1/"):]+"/pub/upload.bin") +
		"&temp_url_expires=" + strconv.FormatInt(exp, 10)
	e.must(t, anon, http.StatusCreated, "PUT", putURL, nil, "uploaded")
	_, body := e.must(t, alice, http.StatusOK, "GET", a+"/pub/upload.bin", nil, "")
	if body != "uploaded" {
		t.Fatalf("uploaded = %q", body)
	}
	e.must(t, anon, http.StatusUnauthorized, "PUT", putURL, hdr("X-Copy-From", "pub/dir/report.txt"), "")
	// The container's key is the owner's: a grantee does not see it.
	e.must(t, alice, http.StatusNoContent, "POST", a+"/pub", hdr("X-Container-Read", bob.project+":*"), "")
	resp, _ = e.must(t, bob, http.StatusNoContent, "HEAD", a+"/pub", nil, "")
	if resp.Header.Get("X-Container-Meta-Temp-Url-Key") != "" {
		t.Fatalf("a grantee sees the temp URL key: %v", resp.Header)
	}
	resp, _ = e.must(t, alice, http.StatusNoContent, "HEAD", a+"/pub", nil, "")
	if resp.Header.Get("X-Container-Meta-Temp-Url-Key") != "ckey" {
		t.Fatalf("the owner does not see the temp URL key: %v", resp.Header)
	}
}
