package swift_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// versionsOf lists the archived versions of name in container, oldest
// first, with their bytes.
func (e *env) versionsOf(t *testing.T, u user, container, name string) []string {
	t.Helper()
	prefix := fmt.Sprintf("%03x%s/", len(name), name)
	_, body := e.must(t, u, http.StatusOK, "GET", u.account+"/"+container+"?format=json&prefix="+prefix, nil, "")
	var rows []struct {
		Name string `json:"name"`
		Type string `json:"content_type"`
	}
	if err := json.Unmarshal([]byte(body), &rows); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range rows {
		stamp, ok := strings.CutPrefix(r.Name, prefix)
		if !ok || len(stamp) != 16 || stamp[10] != '.' {
			t.Fatalf("archived name %q is not %s<timestamp>", r.Name, prefix)
		}
		_, got := e.must(t, u, http.StatusOK, "GET", u.account+"/"+container+"/"+r.Name, nil, "")
		if r.Type == "application/x-deleted;swift_versions_deleted=1" && got == "" {
			got = "<deleted>"
		}
		out = append(out, got)
	}
	return out
}

// wantBody GETs path and fails the test unless its body is want.
func (e *env) wantBody(t *testing.T, u user, path, want string) {
	t.Helper()
	if _, body := e.must(t, u, http.StatusOK, "GET", path, nil, ""); body != want {
		t.Fatalf("GET %s = %q; want %q", path, body, want)
	}
}

func TestVersionedWrites(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	a := alice.account

	_, body := e.must(t, alice, http.StatusOK, "GET", "/swift/info", nil, "")
	if !strings.Contains(body, `"versioned_writes"`) {
		t.Fatalf("/info lacks versioned_writes: %s", body)
	}

	modes := []struct {
		name, header string
	}{
		{"stack", "X-Versions-Location"},
		{"history", "X-History-Location"},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			// The versions container on the other peer: every copy crosses.
			docs, old := "p1-docs-"+m.name, "p2-old-"+m.name
			e.must(t, alice, http.StatusCreated, "PUT", a+"/"+old, nil, "")
			e.must(t, alice, http.StatusCreated, "PUT", a+"/"+docs, hdr(m.header, old), "")
			if e.peerOf(t, alice, docs) == e.peerOf(t, alice, old) {
				t.Fatal("the two containers share a peer")
			}
			resp, _ := e.must(t, alice, http.StatusNoContent, "HEAD", a+"/"+docs, nil, "")
			if resp.Header.Get(m.header) != old {
				t.Fatalf("HEAD container %s = %q; want %q", m.header, resp.Header.Get(m.header), old)
			}
			obj := a + "/" + docs + "/report.txt"
			e.must(t, alice, http.StatusCreated, "PUT", obj, hdr("X-Object-Meta-Rev", "1", "Content-Type", "text/plain"), "first")
			if got := e.versionsOf(t, alice, old, "report.txt"); len(got) != 0 {
				t.Fatalf("a new object archived %q", got)
			}
			e.must(t, alice, http.StatusCreated, "PUT", obj, hdr("X-Object-Meta-Rev", "2"), "second")
			e.must(t, alice, http.StatusCreated, "PUT", obj, hdr("X-Object-Meta-Rev", "3"), "third")
			if got := e.versionsOf(t, alice, old, "report.txt"); strings.Join(got, ",") != "first,second" {
				t.Fatalf("archived versions = %q; want first, second", got)
			}
			_, body := e.must(t, alice, http.StatusOK, "GET", obj, nil, "")
			if body != "third" {
				t.Fatalf("current = %q", body)
			}
			// The archive keeps the object's metadata and type.
			_, list := e.must(t, alice, http.StatusOK, "GET", a+"/"+old, nil, "")
			first := strings.SplitN(list, "\n", 2)[0]
			resp, _ = e.must(t, alice, http.StatusOK, "HEAD", a+"/"+old+"/"+first, nil, "")
			if resp.Header.Get("X-Object-Meta-Rev") != "1" || resp.Header.Get("Content-Type") != "text/plain" {
				t.Fatalf("archived first version headers = %v", resp.Header)
			}

			switch m.name {
			case "stack":
				// Each DELETE pops the newest version back.
				e.must(t, alice, http.StatusNoContent, "DELETE", obj, nil, "")
				resp, body = e.must(t, alice, http.StatusOK, "GET", obj, nil, "")
				if body != "second" || resp.Header.Get("X-Object-Meta-Rev") != "2" {
					t.Fatalf("after one DELETE: %q rev %q; want second", body, resp.Header.Get("X-Object-Meta-Rev"))
				}
				if got := e.versionsOf(t, alice, old, "report.txt"); strings.Join(got, ",") != "first" {
					t.Fatalf("versions after one DELETE = %q", got)
				}
				e.must(t, alice, http.StatusNoContent, "DELETE", obj, nil, "")
				_, body = e.must(t, alice, http.StatusOK, "GET", obj, nil, "")
				if body != "first" {
					t.Fatalf("after two DELETEs = %q; want first", body)
				}
				e.must(t, alice, http.StatusNoContent, "DELETE", obj, nil, "")
				e.must(t, alice, http.StatusNotFound, "GET", obj, nil, "")
				e.must(t, alice, http.StatusNotFound, "DELETE", obj, nil, "")
			case "history":
				// DELETE archives the current object and puts a delete
				// marker after it, then it is gone; a DELETE of a missing
				// object leaves a marker too (as a real Swift does).
				e.must(t, alice, http.StatusNoContent, "DELETE", obj, nil, "")
				e.must(t, alice, http.StatusNotFound, "GET", obj, nil, "")
				if got := e.versionsOf(t, alice, old, "report.txt"); strings.Join(got, ",") != "first,second,third,<deleted>" {
					t.Fatalf("history after DELETE = %q; want first, second, third, a delete marker", got)
				}
				e.must(t, alice, http.StatusNotFound, "DELETE", obj, nil, "")
				if got := e.versionsOf(t, alice, old, "report.txt"); strings.Join(got, ",") != "first,second,third,<deleted>,<deleted>" {
					t.Fatalf("history after a DELETE of nothing = %q; want a second delete marker", got)
				}
			}

			// Removing the location stops archiving.
			e.must(t, alice, http.StatusNoContent, "POST", a+"/"+docs, hdr("X-Remove-"+strings.TrimPrefix(m.header, "X-"), "x"), "")
			resp, _ = e.must(t, alice, http.StatusNoContent, "HEAD", a+"/"+docs, nil, "")
			if resp.Header.Get(m.header) != "" {
				t.Fatalf("location left after removal: %v", resp.Header)
			}
			before := len(e.versionsOf(t, alice, old, "plain"))
			e.must(t, alice, http.StatusCreated, "PUT", a+"/"+docs+"/plain", nil, "1")
			e.must(t, alice, http.StatusCreated, "PUT", a+"/"+docs+"/plain", nil, "2")
			if got := e.versionsOf(t, alice, old, "plain"); len(got) != before {
				t.Fatalf("archived with versioning off: %q", got)
			}
		})
	}

	t.Run("settings", func(t *testing.T) {
		e.must(t, alice, http.StatusCreated, "PUT", a+"/set", nil, "")
		cases := []struct {
			name   string
			header http.Header
			want   int
			body   string
			stack  string
			hist   string
		}{
			{"both", hdr("X-Versions-Location", "v", "X-History-Location", "h"), 400,
				"Only one of X-Versions-Location or X-History-Location may be specified", "", ""},
			{"slash", hdr("X-History-Location", "a/b"), 412, "Container name cannot contain slashes", "", ""},
			{"history", hdr("X-History-Location", "h"), 204, "", "", "h"},
			{"switch to stack with an empty history", hdr("X-Versions-Location", "v", "X-History-Location", ""), 204, "", "v", ""},
			{"empty value removes", hdr("X-Versions-Location", ""), 204, "", "", ""},
			{"set wins over remove", hdr("X-History-Location", "h", "X-Remove-History-Location", "x"), 204, "", "", "h"},
			{"remove", hdr("X-Remove-Versions-Location", "x"), 204, "", "", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, body := e.must(t, alice, tc.want, "POST", a+"/set", tc.header, "")
				if tc.body != "" && body != tc.body {
					t.Fatalf("body = %q; want %q", body, tc.body)
				}
				resp, _ := e.must(t, alice, http.StatusNoContent, "HEAD", a+"/set", nil, "")
				if resp.Header.Get("X-Versions-Location") != tc.stack || resp.Header.Get("X-History-Location") != tc.hist {
					t.Fatalf("locations = %q, %q; want %q, %q", resp.Header.Get("X-Versions-Location"),
						resp.Header.Get("X-History-Location"), tc.stack, tc.hist)
				}
			})
		}
	})

	t.Run("missing versions container", func(t *testing.T) {
		e.must(t, alice, http.StatusCreated, "PUT", a+"/orphan", hdr("X-History-Location", "nowhere"), "")
		// A new object has nothing to archive; replacing one cannot be
		// versioned, so nothing changes.
		e.must(t, alice, http.StatusCreated, "PUT", a+"/orphan/o", nil, "kept")
		e.must(t, alice, http.StatusPreconditionFailed, "PUT", a+"/orphan/o", nil, "lost")
		e.must(t, alice, http.StatusPreconditionFailed, "DELETE", a+"/orphan/o", nil, "")
		e.must(t, alice, http.StatusPreconditionFailed, "DELETE", a+"/orphan/never", nil, "")
		e.wantBody(t, alice, a+"/orphan/o", "kept")
		// Stack mode without its container deletes as usual.
		e.must(t, alice, http.StatusNoContent, "POST", a+"/orphan", hdr("X-Versions-Location", "nowhere"), "")
		e.must(t, alice, http.StatusNoContent, "DELETE", a+"/orphan/o", nil, "")
		e.must(t, alice, http.StatusNotFound, "GET", a+"/orphan/o", nil, "")
	})

	t.Run("other projects", func(t *testing.T) {
		bob := e.login(t, "bob", "beta", "member")
		b := bob.account
		e.must(t, alice, http.StatusCreated, "PUT", a+"/vault", nil, "")
		// Bob's location names a container of his own account: Alice's
		// container of that name is not his.
		e.must(t, bob, http.StatusCreated, "PUT", b+"/mine", hdr("X-History-Location", "vault"), "")
		e.must(t, bob, http.StatusCreated, "PUT", b+"/mine/o", nil, "1")
		e.must(t, bob, http.StatusPreconditionFailed, "PUT", b+"/mine/o", nil, "2")
		if got := e.versionsOf(t, alice, "vault", "o"); len(got) != 0 {
			t.Fatalf("bob archived into alice's container: %q", got)
		}
		// Bob may not set versioning on Alice's container, nor point at
		// another account's container by path.
		e.must(t, bob, http.StatusForbidden, "POST", a+"/vault", hdr("X-History-Location", "mine"), "")
		e.must(t, bob, http.StatusPreconditionFailed, "POST", b+"/mine", hdr("X-History-Location", "AUTH_"+alice.project+"/vault"), "")

		// A write grant on Alice's versioned container is not one on its
		// versions container: Bob's writes there are refused (as Swift
		// checks before it looks for an object to keep), nothing lost.
		e.must(t, alice, http.StatusCreated, "PUT", a+"/inbox", hdr("X-History-Location", "vault",
			"X-Container-Write", bob.project+":*", "X-Container-Read", bob.project+":*"), "")
		e.must(t, alice, http.StatusCreated, "PUT", a+"/inbox/note", nil, "v1")
		e.must(t, bob, http.StatusForbidden, "PUT", a+"/inbox/new", nil, "v1")
		e.must(t, bob, http.StatusForbidden, "PUT", a+"/inbox/note", nil, "v2")
		e.must(t, bob, http.StatusForbidden, "DELETE", a+"/inbox/note", nil, "")
		e.wantBody(t, bob, a+"/inbox/note", "v1")
		// Granted on the versions container too, Bob's writes archive.
		e.must(t, alice, http.StatusNoContent, "POST", a+"/vault", hdr("X-Container-Write", bob.project+":*"), "")
		e.must(t, bob, http.StatusCreated, "PUT", a+"/inbox/note", nil, "v2")
		if got := e.versionsOf(t, alice, "vault", "note"); strings.Join(got, ",") != "v1" {
			t.Fatalf("vault = %q; want v1", got)
		}
	})
}
