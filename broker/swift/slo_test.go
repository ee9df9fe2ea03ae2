package swift_test

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

func TestStaticLargeObjects(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	a := alice.account
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p1-segs", nil, "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p2-segs", nil, "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/big", nil, "")
	parts := []string{string(noise(70000, 5)), string(noise(50000, 6)), "tail"}
	paths := []string{"/p1-segs/0", "/p2-segs/1", "/p1-segs/2"}
	var manifest []map[string]any
	sum := md5.New()
	for i, p := range parts {
		e.must(t, alice, http.StatusCreated, "PUT", a+paths[i], nil, p)
		manifest = append(manifest, map[string]any{"path": paths[i], "etag": md5hex([]byte(p)), "size_bytes": len(p)})
		sum.Write([]byte(md5hex([]byte(p))))
	}
	whole := strings.Join(parts, "")
	sloETag := hex.EncodeToString(sum.Sum(nil))
	raw, _ := json.Marshal(manifest)
	resp, _ := e.must(t, alice, http.StatusCreated, "PUT", a+"/big/file?multipart-manifest=put", hdr("Content-Type", "video/mp4", "X-Object-Meta-Kind", "movie"), string(raw))
	if resp.Header.Get("Etag") != `"`+sloETag+`"` {
		t.Fatalf("manifest PUT etag = %q; want %q", resp.Header.Get("Etag"), sloETag)
	}
	resp, body := e.must(t, alice, http.StatusOK, "GET", a+"/big/file", nil, "")
	if body != whole || resp.Header.Get("X-Static-Large-Object") != "True" || resp.Header.Get("Content-Type") != "video/mp4" ||
		resp.Header.Get("Content-Length") != strconv.Itoa(len(whole)) || resp.Header.Get("X-Object-Meta-Kind") != "movie" {
		t.Fatalf("SLO GET = %d bytes, %v", len(body), resp.Header)
	}
	resp, _ = e.must(t, alice, http.StatusOK, "HEAD", a+"/big/file", nil, "")
	if resp.Header.Get("Etag") != `"`+sloETag+`"` || resp.Header.Get("Content-Length") != strconv.Itoa(len(whole)) {
		t.Fatalf("SLO HEAD = %v", resp.Header)
	}
	_, body = e.must(t, alice, http.StatusOK, "GET", a+"/big?format=json", nil, "")
	if !strings.Contains(body, fmt.Sprintf(`"bytes":%d`, len(whole))) || !strings.Contains(body, `"hash":"`+sloETag+`"`) ||
		!strings.Contains(body, `"content_type":"video/mp4"`) {
		t.Fatalf("listing = %s", body)
	}
	ranges := []struct{ spec, want string }{
		{"bytes=69990-70009", whole[69990:70010]},
		{"bytes=-10", whole[len(whole)-10:]},
		{"bytes=119999-", whole[119999:]},
		{"bytes=5-7", whole[5:8]},
	}
	for _, rg := range ranges {
		t.Run(rg.spec, func(t *testing.T) {
			_, body := e.must(t, alice, http.StatusPartialContent, "GET", a+"/big/file", hdr("Range", rg.spec), "")
			if body != rg.want {
				t.Fatalf("range = %q; want %q", body, rg.want)
			}
		})
	}
	e.must(t, alice, http.StatusRequestedRangeNotSatisfiable, "GET", a+"/big/file", hdr("Range", "bytes=500000-"), "")
	_, body = e.must(t, alice, http.StatusOK, "GET", a+"/big/file?multipart-manifest=get", nil, "")
	var stored []map[string]any
	if err := json.Unmarshal([]byte(body), &stored); err != nil || len(stored) != 3 || stored[1]["name"] != "/p2-segs/1" {
		t.Fatalf("stored manifest = %s (%v)", body, err)
	}
	// A copy is the whole object's bytes, a plain object.
	resp, _ = e.must(t, alice, http.StatusCreated, "PUT", a+"/big/copy", hdr("X-Copy-From", "big/file"), "")
	if resp.Header.Get("Etag") != md5hex([]byte(whole)) {
		t.Fatalf("copy etag = %q", resp.Header.Get("Etag"))
	}
	// POST keeps it a large object.
	e.must(t, alice, http.StatusAccepted, "POST", a+"/big/file", hdr("Content-Type", "video/webm"), "")
	resp, _ = e.must(t, alice, http.StatusOK, "HEAD", a+"/big/file", nil, "")
	if resp.Header.Get("X-Static-Large-Object") != "True" || resp.Header.Get("Content-Type") != "video/webm" {
		t.Fatalf("after POST = %v", resp.Header)
	}

	refusals := []struct {
		name, path, body string
		header           http.Header
		want             int
	}{
		{"etag mismatch", "/big/bad?multipart-manifest=put", `[{"path":"/p1-segs/0","etag":"00000000000000000000000000000000"}]`, nil, 400},
		{"size mismatch", "/big/bad?multipart-manifest=put", `[{"path":"/p1-segs/0","size_bytes":1}]`, nil, 400},
		{"missing segment", "/big/bad?multipart-manifest=put", `[{"path":"/p1-segs/none"}]`, nil, 400},
		{"not json", "/big/bad?multipart-manifest=put", `nope`, nil, 400},
		{"manifest etag", "/big/bad?multipart-manifest=put", `[{"path":"/p1-segs/0"}]`, hdr("Etag", "ffffffffffffffffffffffffffffffff"), 422},
		{"reserved content type", "/big/bad", "x", hdr("Content-Type", "text/plain; cloudmux_slo=1:x"), 400},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			e.must(t, alice, tc.want, "PUT", a+tc.path, tc.header, tc.body)
		})
	}

	// A segment changed under the manifest: the GET is cut short.
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p2-segs/1", nil, "changed")
	resp, err := http.DefaultClient.Do(func() *http.Request {
		req, _ := http.NewRequest("GET", e.Server.URL+a+"/big/file", nil)
		req.Header.Set("X-Auth-Token", alice.token)
		return req
	}())
	if err == nil {
		got := make([]byte, len(whole))
		n, rerr := io.ReadFull(resp.Body, got)
		resp.Body.Close()
		if rerr == nil || n == len(whole) {
			t.Fatalf("a GET over a changed segment read %d bytes without error", n)
		}
	}
	_, body = e.must(t, alice, http.StatusOK, "DELETE", a+"/big/file?multipart-manifest=delete", nil, "")
	if !strings.Contains(body, "Number Deleted: 4\n") {
		t.Fatalf("SLO delete = %q", body)
	}
	for _, p := range append(paths, "/big/file") {
		e.must(t, alice, http.StatusNotFound, "HEAD", a+p, nil, "")
	}
}

func TestDynamicLargeObjects(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	a := alice.account
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p2-segs", nil, "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p1-big", nil, "")
	parts := []string{string(noise(40000, 7)), string(noise(30000, 8)), "end"}
	sum := md5.New()
	for i, p := range parts {
		e.must(t, alice, http.StatusCreated, "PUT", a+"/p2-segs/movie/"+strconv.Itoa(i), nil, p)
		sum.Write([]byte(md5hex([]byte(p))))
	}
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p2-segs/other", nil, "not a segment")
	whole := strings.Join(parts, "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p1-big/movie", hdr("X-Object-Manifest", "p2-segs/movie/", "Content-Type", "video/mp4"), "")
	resp, body := e.must(t, alice, http.StatusOK, "GET", a+"/p1-big/movie", nil, "")
	if body != whole || resp.Header.Get("X-Object-Manifest") != "p2-segs/movie/" || resp.Header.Get("Content-Type") != "video/mp4" ||
		resp.Header.Get("Etag") != `"`+hex.EncodeToString(sum.Sum(nil))+`"` {
		t.Fatalf("DLO GET = %d bytes, %v", len(body), resp.Header)
	}
	resp, _ = e.must(t, alice, http.StatusOK, "HEAD", a+"/p1-big/movie", nil, "")
	if resp.Header.Get("Content-Length") != strconv.Itoa(len(whole)) {
		t.Fatalf("DLO HEAD = %v", resp.Header)
	}
	_, body = e.must(t, alice, http.StatusPartialContent, "GET", a+"/p1-big/movie", hdr("Range", "bytes=39998-40001"), "")
	if body != whole[39998:40002] {
		t.Fatalf("DLO range = %q", body)
	}
	// A new segment under the prefix is part of the object at once.
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p2-segs/movie/3", nil, "!")
	_, body = e.must(t, alice, http.StatusOK, "GET", a+"/p1-big/movie", nil, "")
	if body != whole+"!" {
		t.Fatalf("DLO after a new segment = %d bytes", len(body))
	}
	resp, body = e.must(t, alice, http.StatusOK, "GET", a+"/p1-big/movie?multipart-manifest=get", nil, "")
	if body != "" || resp.Header.Get("X-Object-Manifest") != "p2-segs/movie/" {
		t.Fatalf("DLO manifest = %q %v", body, resp.Header)
	}
	e.must(t, alice, http.StatusBadRequest, "PUT", a+"/p1-big/bad", hdr("X-Object-Manifest", "noslash"), "")
	e.must(t, alice, http.StatusBadRequest, "PUT", a+"/p1-big/bad", hdr("Content-Type", "a/b; cloudmux_dlo=x"), "")

	// A POST changes the manifest, and one without X-Object-Manifest
	// makes the manifest a plain object again; a plain object becomes a
	// DLO by POST (what a real Swift does, each).
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p2-segs/trailer/0", nil, "short")
	e.must(t, alice, http.StatusAccepted, "POST", a+"/p1-big/movie", hdr("X-Object-Manifest", "p2-segs/trailer/", "X-Object-Meta-Cut", "1"), "")
	resp, body = e.must(t, alice, http.StatusOK, "GET", a+"/p1-big/movie", nil, "")
	if body != "short" || resp.Header.Get("X-Object-Manifest") != "p2-segs/trailer/" || resp.Header.Get("Content-Type") != "video/mp4" ||
		resp.Header.Get("X-Object-Meta-Cut") != "1" {
		t.Fatalf("DLO after POST of a new manifest = %q %v", body, resp.Header)
	}
	e.must(t, alice, http.StatusAccepted, "POST", a+"/p1-big/movie", hdr("X-Object-Meta-Cut", "2"), "")
	resp, body = e.must(t, alice, http.StatusOK, "GET", a+"/p1-big/movie", nil, "")
	if body != "" || resp.Header.Get("X-Object-Manifest") != "" || resp.Header.Get("Content-Type") != "video/mp4" {
		t.Fatalf("DLO after POST without a manifest = %q %v", body, resp.Header)
	}
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p1-big/plain", nil, "own bytes")
	e.must(t, alice, http.StatusAccepted, "POST", a+"/p1-big/plain", hdr("X-Object-Manifest", "p2-segs/movie/"), "")
	if _, body = e.must(t, alice, http.StatusOK, "GET", a+"/p1-big/plain", nil, ""); body != whole+"!" {
		t.Fatalf("plain object after POST of a manifest = %d bytes", len(body))
	}
	e.must(t, alice, http.StatusBadRequest, "POST", a+"/p1-big/plain", hdr("X-Object-Manifest", "noslash"), "")
	e.must(t, alice, http.StatusAccepted, "POST", a+"/p1-big/movie", hdr("X-Object-Manifest", "p2-segs/movie/"), "")

	// Deleting the manifest leaves the segments.
	e.must(t, alice, http.StatusNoContent, "DELETE", a+"/p1-big/movie", nil, "")
	e.must(t, alice, http.StatusOK, "HEAD", a+"/p2-segs/movie/0", nil, "")
}
