package swift_test

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"io"
	"math/rand"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

func md5hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}

func noise(n int, seed int64) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

// chunked hides a reader's length, so the client sends it chunked.
type chunked struct{ io.Reader }

func TestObjectPutGet(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	c := alice.account + "/p1-data"
	e.must(t, alice, http.StatusCreated, "PUT", c, nil, "")

	data := noise(3<<20+17, 1)
	sum := md5hex(data)
	resp, _ := e.do(t, alice, "PUT", c+"/dir/blob.bin", hdr("Etag", sum, "X-Object-Meta-Owner", "alice", "Content-Type", "application/x-test"), bytes.NewReader(data))
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Etag") != sum {
		t.Fatalf("PUT = %d etag %q", resp.StatusCode, resp.Header.Get("Etag"))
	}
	resp, body := e.must(t, alice, http.StatusOK, "GET", c+"/dir/blob.bin", nil, "")
	if body != string(data) || resp.Header.Get("Etag") != sum || resp.Header.Get("X-Object-Meta-Owner") != "alice" ||
		resp.Header.Get("Content-Type") != "application/x-test" || resp.Header.Get("Content-Length") != strconv.Itoa(len(data)) {
		t.Fatalf("GET = %d bytes, headers %v", len(body), resp.Header)
	}

	// Chunked, no length; the type guessed from the name.
	resp, _ = e.do(t, alice, "PUT", c+"/chunked.txt", nil, chunked{bytes.NewReader(data[:100000])})
	if resp.StatusCode != http.StatusCreated || resp.Header.Get("Etag") != md5hex(data[:100000]) {
		t.Fatalf("chunked PUT = %d %v", resp.StatusCode, resp.Header)
	}
	resp, _ = e.must(t, alice, http.StatusOK, "HEAD", c+"/chunked.txt", nil, "")
	if resp.Header.Get("Content-Length") != "100000" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("HEAD chunked = %v", resp.Header)
	}

	// A wrong ETag stores nothing: the old object stays.
	resp, body = e.do(t, alice, "PUT", c+"/chunked.txt", hdr("Etag", md5hex([]byte("other"))), strings.NewReader("new bytes"))
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(body, "<h1>Unprocessable Entity</h1>") {
		t.Fatalf("PUT with a wrong ETag = %d %q", resp.StatusCode, body)
	}
	resp, _ = e.must(t, alice, http.StatusOK, "HEAD", c+"/chunked.txt", nil, "")
	if resp.Header.Get("Content-Length") != "100000" {
		t.Fatalf("the object changed after a refused PUT: %v", resp.Header)
	}
	_, body = e.do(t, alice, "PUT", c+"/chunked.txt", hdr("Etag", md5hex([]byte("other"))), chunked{strings.NewReader("new bytes")})
	if !strings.Contains(body, "Unprocessable Entity") {
		t.Fatalf("chunked PUT with a wrong ETag = %q", body)
	}

	// Listing with the object's row.
	_, body = e.must(t, alice, http.StatusOK, "GET", c+"?format=json&prefix=dir/", nil, "")
	if !strings.Contains(body, `"name":"dir/blob.bin"`) || !strings.Contains(body, `"hash":"`+sum+`"`) ||
		!strings.Contains(body, `"bytes":`+strconv.Itoa(len(data))) || !strings.Contains(body, `"content_type":"application/x-test"`) {
		t.Fatalf("json listing = %s", body)
	}
	_, body = e.must(t, alice, http.StatusOK, "GET", c+"?delimiter=/", nil, "")
	if body != "chunked.txt\ndir/\n" {
		t.Fatalf("delimited listing = %q", body)
	}
	_, body = e.must(t, alice, http.StatusOK, "GET", c+"?format=xml&delimiter=/", nil, "")
	if !strings.Contains(body, `<subdir name="dir/"><name>dir/</name></subdir>`) || !strings.Contains(body, "<object><name>chunked.txt</name>") {
		t.Fatalf("xml listing = %s", body)
	}
	resp, _ = e.must(t, alice, http.StatusOK, "GET", c+"?reverse=1", nil, "")
	if resp.Header.Get("X-Container-Object-Count") != "2" ||
		resp.Header.Get("X-Container-Bytes-Used") != strconv.Itoa(len(data)+100000) {
		t.Fatalf("listing headers = %v", resp.Header)
	}

	// POST replaces the metadata; expiry is kept as sent.
	at := time.Now().Add(time.Hour).Unix()
	e.must(t, alice, http.StatusAccepted, "POST", c+"/dir/blob.bin", hdr("X-Object-Meta-Shade", "dark", "X-Delete-At", strconv.FormatInt(at, 10)), "")
	resp, _ = e.must(t, alice, http.StatusOK, "HEAD", c+"/dir/blob.bin", nil, "")
	if resp.Header.Get("X-Object-Meta-Owner") != "" || resp.Header.Get("X-Object-Meta-Shade") != "dark" ||
		resp.Header.Get("X-Delete-At") != strconv.FormatInt(at, 10) || resp.Header.Get("Content-Type") != "application/x-test" {
		t.Fatalf("HEAD after POST = %v", resp.Header)
	}

	refusals := []struct {
		name, method, path string
		header             http.Header
		want               int
		body               string
	}{
		{"delete-at in the past", "PUT", c + "/x", hdr("X-Delete-At", "1000"), 400, "X-Delete-At in past"},
		{"delete-after not a number", "PUT", c + "/x", hdr("X-Delete-After", "soon"), 400, "Non-integer X-Delete-After"},
		{"if-none-match on an existing object", "PUT", c + "/chunked.txt", hdr("If-None-Match", "*"), 412, ""},
		{"missing object GET", "GET", c + "/nope", nil, 404, "<html><h1>Not Found</h1><p>The resource could not be found.</p></html>"},
		{"missing object DELETE", "DELETE", c + "/nope", nil, 404, ""},
		{"missing object POST", "POST", c + "/nope", nil, 404, ""},
		{"missing container PUT", "PUT", alice.account + "/nope/x", nil, 404, ""},
		{"object name too long", "PUT", c + "/" + strings.Repeat("n", 1025), nil, 400, ""},
		{"copy with a body", "PUT", c + "/x", hdr("X-Copy-From", "p1-data/chunked.txt"), 400, "Copy requests require a zero byte body"},
		{"copy from nowhere", "PUT", c + "/x", hdr("X-Copy-From", "justone"), 412, ""},
		{"copy missing source", "PUT", c + "/x", hdr("X-Copy-From", "p1-data/nope"), 404, ""},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			body := ""
			if tc.name == "copy with a body" {
				body = "x"
			}
			_, got := e.must(t, alice, tc.want, tc.method, tc.path, tc.header, body)
			if tc.body != "" && got != tc.body {
				t.Fatalf("body = %q; want %q", got, tc.body)
			}
		})
	}
	e.must(t, alice, http.StatusNotFound, "HEAD", c+"/x", nil, "")
}

func TestRangesAndConditions(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	c := alice.account + "/r"
	e.must(t, alice, http.StatusCreated, "PUT", c, nil, "")
	data := "0123456789abcdefghij"
	resp, _ := e.must(t, alice, http.StatusCreated, "PUT", c+"/o", hdr("Content-Type", "text/plain"), data)
	etag, lastMod := resp.Header.Get("Etag"), resp.Header.Get("Last-Modified")
	past := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
	future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)

	cases := []struct {
		name         string
		header       http.Header
		want         int
		body, crange string
	}{
		{"first bytes", hdr("Range", "bytes=0-3"), 206, "0123", "bytes 0-3/20"},
		{"open end", hdr("Range", "bytes=15-"), 206, "fghij", "bytes 15-19/20"},
		{"suffix", hdr("Range", "bytes=-3"), 206, "hij", "bytes 17-19/20"},
		{"last past the end", hdr("Range", "bytes=18-100"), 206, "ij", "bytes 18-19/20"},
		{"past the end", hdr("Range", "bytes=20-30"), 416, "", "bytes */20"},
		{"malformed range ignored", hdr("Range", "bytes=5-2"), 200, data, ""},
		{"not bytes ignored", hdr("Range", "lines=1-2"), 200, data, ""},
		{"if-match hit", hdr("If-Match", `"`+etag+`"`), 200, data, ""},
		{"if-match miss", hdr("If-Match", `"nope"`), 412, "", ""},
		{"if-match star", hdr("If-Match", "*"), 200, data, ""},
		{"if-none-match hit", hdr("If-None-Match", etag), 304, "", ""},
		{"if-none-match miss", hdr("If-None-Match", `"nope", "other"`), 200, data, ""},
		{"if-modified-since future", hdr("If-Modified-Since", future), 304, "", ""},
		{"if-modified-since last-modified", hdr("If-Modified-Since", lastMod), 304, "", ""},
		{"if-modified-since past", hdr("If-Modified-Since", past), 200, data, ""},
		{"if-unmodified-since past", hdr("If-Unmodified-Since", past), 412, "", ""},
		{"if-unmodified-since future", hdr("If-Unmodified-Since", future), 200, data, ""},
		{"precondition before range", hdr("If-Match", "nope", "Range", "bytes=50-"), 412, "", ""},
		{"not modified before range", hdr("If-None-Match", etag, "Range", "bytes=0-1"), 304, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := e.must(t, alice, tc.want, "GET", c+"/o", tc.header, "")
			if tc.want < 300 && body != tc.body {
				t.Fatalf("body = %q; want %q", body, tc.body)
			}
			if got := resp.Header.Get("Content-Range"); got != tc.crange {
				t.Fatalf("Content-Range = %q; want %q", got, tc.crange)
			}
		})
	}
	// The same conditions on HEAD.
	e.must(t, alice, http.StatusNotModified, "HEAD", c+"/o", hdr("If-None-Match", etag), "")
	e.must(t, alice, http.StatusPreconditionFailed, "HEAD", c+"/o", hdr("If-Match", "nope"), "")

	t.Run("multiple ranges", func(t *testing.T) {
		resp, body := e.must(t, alice, http.StatusPartialContent, "GET", c+"/o", hdr("Range", "bytes=0-1,-2,50-60"), "")
		mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if err != nil || mt != "multipart/byteranges" {
			t.Fatalf("Content-Type = %q", resp.Header.Get("Content-Type"))
		}
		mr := multipart.NewReader(strings.NewReader(body), params["boundary"])
		var parts []string
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(p)
			parts = append(parts, p.Header.Get("Content-Range")+"="+string(b))
		}
		if strings.Join(parts, ";") != "bytes 0-1/20=01;bytes 18-19/20=ij" {
			t.Fatalf("parts = %q", parts)
		}
		e.must(t, alice, http.StatusRequestedRangeNotSatisfiable, "GET", c+"/o", hdr("Range", "bytes=30-31,40-"), "")
	})
}

func TestCopyAcrossPeers(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	a := alice.account
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p1-src", nil, "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p2-dst", nil, "")
	data := noise(1<<20, 2)
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p1-src/in%20put", hdr("X-Object-Meta-A", "1", "X-Object-Meta-B", "2", "Content-Type", "image/png",
		"X-Delete-After", "3600"), string(data))

	resp, _ := e.must(t, alice, http.StatusCreated, "PUT", a+"/p2-dst/copy1", hdr("X-Copy-From", "/p1-src/in%20put", "X-Object-Meta-B", "3"), "")
	if resp.Header.Get("Etag") != md5hex(data) || resp.Header.Get("X-Copied-From") != "p1-src/in%20put" {
		t.Fatalf("copy response = %v", resp.Header)
	}
	resp, body := e.must(t, alice, http.StatusOK, "GET", a+"/p2-dst/copy1", nil, "")
	if body != string(data) || resp.Header.Get("X-Object-Meta-A") != "1" || resp.Header.Get("X-Object-Meta-B") != "3" ||
		resp.Header.Get("Content-Type") != "image/png" || resp.Header.Get("X-Delete-At") != "" {
		t.Fatalf("copy = %d bytes, %v", len(body), resp.Header)
	}
	// COPY with fresh metadata and a new type.
	e.must(t, alice, http.StatusCreated, "COPY", a+"/p1-src/in%20put", hdr("Destination", "p2-dst/copy2", "X-Fresh-Metadata", "true",
		"X-Object-Meta-C", "4", "Content-Type", "text/plain"), "")
	resp, body = e.must(t, alice, http.StatusOK, "GET", a+"/p2-dst/copy2", nil, "")
	if body != string(data) || resp.Header.Get("X-Object-Meta-A") != "" || resp.Header.Get("X-Object-Meta-C") != "4" ||
		resp.Header.Get("Content-Type") != "text/plain" {
		t.Fatalf("COPY = %d bytes, %v", len(body), resp.Header)
	}
	e.must(t, alice, http.StatusPreconditionFailed, "COPY", a+"/p1-src/in%20put", hdr("Destination", "nocontainer"), "")
	// The containers are on different peers, as their names asked.
	if p1, p2 := e.peerOf(t, alice, "p1-src"), e.peerOf(t, alice, "p2-dst"); p1 != "p1" || p2 != "p2" {
		t.Fatalf("containers on %s and %s; want p1 and p2", p1, p2)
	}
}

func TestQuotas(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	admin := e.login(t, "admin", "admin", "admin")
	a := alice.account
	e.must(t, alice, http.StatusCreated, "PUT", a+"/q", hdr("X-Container-Meta-Quota-Bytes", "10", "X-Container-Meta-Quota-Count", "2"), "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/q/one", nil, "12345")
	_, body := e.must(t, alice, http.StatusRequestEntityTooLarge, "PUT", a+"/q/two", nil, "123456")
	if body != "Upload exceeds quota." {
		t.Fatalf("413 body = %q", body)
	}
	// A chunked body is cut off at the quota.
	resp, _ := e.do(t, alice, "PUT", a+"/q/two", nil, chunked{strings.NewReader("123456")})
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked PUT over quota = %d", resp.StatusCode)
	}
	e.must(t, alice, http.StatusNotFound, "HEAD", a+"/q/two", nil, "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/q/two", nil, "12345")
	e.must(t, alice, http.StatusRequestEntityTooLarge, "PUT", a+"/q/three", nil, "")

	// The account quota is the admin's to set.
	e.must(t, alice, http.StatusForbidden, "POST", a, hdr("X-Account-Meta-Quota-Bytes", "100"), "")
	e.must(t, admin, http.StatusNoContent, "POST", a, hdr("X-Account-Meta-Quota-Bytes", "12"), "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/other", nil, "")
	e.must(t, alice, http.StatusRequestEntityTooLarge, "PUT", a+"/other/x", nil, "123")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/other/x", nil, "12")
	e.must(t, admin, http.StatusNoContent, "POST", a, hdr("X-Remove-Account-Meta-Quota-Bytes", "x"), "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/other/x", nil, "123")
}
