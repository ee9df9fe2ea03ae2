package swift_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func TestContainers(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	a := alice.account

	e.must(t, alice, http.StatusCreated, "PUT", a+"/photos", hdr("X-Container-Meta-Color", "blue"), "")
	e.must(t, alice, http.StatusAccepted, "PUT", a+"/photos", hdr("X-Container-Meta-Size", "big"), "")
	resp, _ := e.must(t, alice, http.StatusNoContent, "HEAD", a+"/photos", nil, "")
	if resp.Header.Get("X-Container-Meta-Color") != "blue" || resp.Header.Get("X-Container-Meta-Size") != "big" ||
		resp.Header.Get("X-Container-Object-Count") != "0" || resp.Header.Get("X-Container-Bytes-Used") != "0" {
		t.Fatalf("HEAD container headers = %v", resp.Header)
	}
	e.must(t, alice, http.StatusNoContent, "POST", a+"/photos", hdr("X-Remove-Container-Meta-Color", "x", "X-Container-Meta-Size", ""), "")
	resp, _ = e.must(t, alice, http.StatusNoContent, "HEAD", a+"/photos", nil, "")
	if resp.Header.Get("X-Container-Meta-Color") != "" || resp.Header.Get("X-Container-Meta-Size") != "" {
		t.Fatalf("metadata left after removal: %v", resp.Header)
	}

	e.must(t, alice, http.StatusCreated, "PUT", a+"/photos/cat.jpg", nil, "meow")
	e.must(t, alice, http.StatusConflict, "DELETE", a+"/photos", nil, "")
	resp, _ = e.must(t, alice, http.StatusNoContent, "HEAD", a, nil, "")
	if resp.Header.Get("X-Account-Container-Count") != "1" || resp.Header.Get("X-Account-Object-Count") != "1" ||
		resp.Header.Get("X-Account-Bytes-Used") != "4" {
		t.Fatalf("HEAD account headers = %v", resp.Header)
	}
	e.must(t, alice, http.StatusNoContent, "DELETE", a+"/photos/cat.jpg", nil, "")
	e.must(t, alice, http.StatusNoContent, "DELETE", a+"/photos", nil, "")
	_, body := e.must(t, alice, http.StatusNotFound, "HEAD", a+"/photos", nil, "")
	if body != "" {
		t.Fatalf("HEAD has a body %q", body)
	}
	_, body = e.must(t, alice, http.StatusNotFound, "GET", a+"/photos", nil, "")
	if body != "<html><h1>Not Found</h1><p>The resource could not be found.</p></html>" {
		t.Fatalf("404 body = %q", body)
	}

	refusals := []struct {
		name, method, path string
		header             http.Header
		want               int
		body               string
	}{
		{"name too long", "PUT", a + "/" + strings.Repeat("x", 257), nil, 400, "Container name must be 1 to 256 bytes of UTF-8 without '/' or NUL"},
		{"bad quota", "PUT", a + "/q", hdr("X-Container-Meta-Quota-Bytes", "lots"), 400, `Invalid quota-bytes: "lots" is not a whole number`},
		{"unknown storage policy", "PUT", a + "/q", hdr("X-Storage-Policy", "gold"), 400, "Invalid X-Storage-Policy 'gold'"},
		{"too much metadata", "PUT", a + "/q", hdr("X-Container-Meta-Big", strings.Repeat("v", 257)), 400, ""},
		{"account PUT", "PUT", a, nil, 405, ""},
		{"account DELETE", "DELETE", a, nil, 405, ""},
		{"missing container POST", "POST", a + "/nope", nil, 404, ""},
		{"missing container DELETE", "DELETE", a + "/nope", nil, 404, ""},
		{"not an account", "GET", "/swift/v1/alpha", nil, 404, ""},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, body := e.must(t, alice, tc.want, tc.method, tc.path, tc.header, "")
			if tc.body != "" && body != tc.body {
				t.Fatalf("body = %q; want %q", body, tc.body)
			}
		})
	}
	// Nothing was made by the refused PUTs.
	_, body = e.must(t, alice, http.StatusNoContent, "GET", a, nil, "")
	if body != "" {
		t.Fatalf("account listing after refusals = %q", body)
	}
}

func TestAccountListing(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	a := alice.account
	for _, name := range []string{"a", "b-1", "b-2", "c", "p2-d"} {
		e.must(t, alice, http.StatusCreated, "PUT", a+"/"+name, nil, "")
	}
	e.must(t, alice, http.StatusCreated, "PUT", a+"/p2-d/obj", nil, "12345")
	cases := []struct {
		name, query, want string
	}{
		{"all", "", "a\nb-1\nb-2\nc\np2-d\n"},
		{"prefix", "?prefix=b", "b-1\nb-2\n"},
		{"delimiter", "?delimiter=-", "a\nb-\nc\np2-\n"},
		{"marker", "?marker=b-1", "b-2\nc\np2-d\n"},
		{"end_marker", "?end_marker=c", "a\nb-1\nb-2\n"},
		{"limit", "?limit=2", "a\nb-1\n"},
		{"reverse", "?reverse=true&limit=2", "p2-d\nc\n"},
		{"reverse marker", "?reverse=true&marker=c", "b-2\nb-1\na\n"},
		{"limit zero", "?limit=0", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := http.StatusOK
			if tc.want == "" {
				want = http.StatusNoContent
			}
			_, body := e.must(t, alice, want, "GET", a+tc.query, nil, "")
			if body != tc.want {
				t.Fatalf("listing = %q; want %q", body, tc.want)
			}
		})
	}
	_, body := e.must(t, alice, http.StatusOK, "GET", a+"?format=json&prefix=p2", nil, "")
	var rows []struct {
		Name         string `json:"name"`
		Count, Bytes int64
		LastModified string `json:"last_modified"`
	}
	if err := json.Unmarshal([]byte(body), &rows); err != nil || len(rows) != 1 || rows[0].Name != "p2-d" ||
		rows[0].Count != 1 || rows[0].Bytes != 5 || len(rows[0].LastModified) != len("2006-01-02T15:04:05.000000") {
		t.Fatalf("json listing = %s (%v)", body, err)
	}
	resp, body := e.must(t, alice, http.StatusOK, "GET", a+"?prefix=p2", hdr("Accept", "application/xml"), "")
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/xml") ||
		!strings.Contains(body, `<account name="AUTH_`+alice.project+`"><container><name>p2-d</name><count>1</count><bytes>5</bytes>`) {
		t.Fatalf("xml listing = %s", body)
	}
	for _, q := range []string{"?limit=10001", "?limit=x", "?delimiter=ab"} {
		e.must(t, alice, http.StatusPreconditionFailed, "GET", a+q, nil, "")
	}

	// Account metadata.
	e.must(t, alice, http.StatusNoContent, "POST", a, hdr("X-Account-Meta-Owner", "alice"), "")
	resp, _ = e.must(t, alice, http.StatusNoContent, "HEAD", a, nil, "")
	if resp.Header.Get("X-Account-Meta-Owner") != "alice" || resp.Header.Get("X-Account-Container-Count") != "5" {
		t.Fatalf("account headers = %v", resp.Header)
	}
	e.must(t, alice, http.StatusNoContent, "POST", a, hdr("X-Remove-Account-Meta-Owner", "1"), "")
	resp, _ = e.must(t, alice, http.StatusNoContent, "HEAD", a, nil, "")
	if resp.Header.Get("X-Account-Meta-Owner") != "" {
		t.Fatalf("account metadata not removed: %v", resp.Header)
	}
}

// TestPathListing lists pseudo-directories with ?path=, each answer as a
// real Swift (2025.x, the testcloud's) gave it for the same objects:
// only the names directly inside, directory markers among them, never
// the path's own marker nor rolled-up subdirectories; prefix and
// delimiter ignored; marker, end_marker, limit and reverse applying.
func TestPathListing(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	a := alice.account
	e.must(t, alice, http.StatusCreated, "PUT", a+"/tree", nil, "")
	for _, name := range []string{"a/", "a/b", "a/c/d", "a/e/", "a/e/f", "a/g", "a/h/", "ab", "x"} {
		e.must(t, alice, http.StatusCreated, "PUT", a+"/tree/"+name, nil, "x")
	}
	for _, tc := range []struct{ query, want string }{
		{"path=a", "a/b\na/e/\na/g\na/h/\n"},
		{"path=a/", "a/b\na/e/\na/g\na/h/\n"},
		{"path=", "a/\nab\nx\n"},
		{"path=a&delimiter=/&prefix=zz", "a/b\na/e/\na/g\na/h/\n"},
		{"path=a&marker=a/b", "a/e/\na/g\na/h/\n"},
		{"path=a&limit=1", "a/b\n"},
		{"path=a&limit=1&marker=a/b", "a/e/\n"},
		{"path=a&limit=1&marker=a/e/", "a/g\n"},
		// Reversed, Swift skips a marker whose directory holds more.
		{"path=a&reverse=true", "a/h/\na/g\na/b\n"},
		{"path=a&reverse=true&limit=2", "a/h/\na/g\n"},
		{"path=a&end_marker=a/g", "a/b\na/e/\n"},
		{"path=a/c", "a/c/d\n"},
		{"path=nothing", ""},
	} {
		t.Run(tc.query, func(t *testing.T) {
			want := http.StatusOK
			if tc.want == "" {
				want = http.StatusNoContent
			}
			if _, body := e.must(t, alice, want, "GET", a+"/tree?"+tc.query, nil, ""); body != tc.want {
				t.Fatalf("GET ?%s = %q; want %q", tc.query, body, tc.want)
			}
		})
	}
	_, body := e.must(t, alice, http.StatusOK, "GET", a+"/tree?path=a&format=json", nil, "")
	var rows []map[string]any
	if err := json.Unmarshal([]byte(body), &rows); err != nil || len(rows) != 4 || rows[0]["name"] != "a/b" || rows[0]["bytes"] != 1.0 {
		t.Fatalf("json path listing = %s (%v)", body, err)
	}
}
