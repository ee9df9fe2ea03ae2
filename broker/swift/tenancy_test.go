package swift_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestCrossTenant: project beta's users get 403, with one body, on every
// path and method under alpha's account, whether the container or
// object exists or not; alpha's data is unchanged afterwards. A reader
// of alpha may read but not write; a missing token is 401.
func TestCrossTenant(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	bob := e.login(t, "bob", "beta", "member")
	reader := e.login(t, "rita", "alpha", "reader")
	a := alice.account
	e.must(t, alice, http.StatusCreated, "PUT", a+"/secret", hdr("X-Container-Meta-Key", "k"), "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/secret/plan.txt", hdr("X-Object-Meta-Key", "v"), "the plan")
	e.must(t, bob, http.StatusCreated, "PUT", bob.account+"/mine", nil, "")
	e.must(t, bob, http.StatusCreated, "PUT", bob.account+"/mine/obj", nil, "bob's")

	paths := map[string]string{
		"account":           a,
		"account slash":     a + "/",
		"container":         a + "/secret",
		"missing container": a + "/nothing",
		"object":            a + "/secret/plan.txt",
		"missing object":    a + "/secret/none",
		"deep object":       a + "/nothing/x/y",
	}
	methods := []struct {
		method string
		header http.Header
	}{
		{"GET", nil}, {"HEAD", nil}, {"POST", hdr("X-Container-Meta-Key", "bob", "X-Object-Meta-Key", "bob", "X-Account-Meta-Key", "bob")},
		{"PUT", nil}, {"DELETE", nil}, {"COPY", hdr("Destination", "secret/stolen")},
	}
	var forbidden string
	for name, path := range paths {
		for _, m := range methods {
			t.Run(name+" "+m.method, func(t *testing.T) {
				resp, body := e.do(t, bob, m.method, path, m.header, strings.NewReader(""))
				// Methods a level does not have are 405 for anyone (no
				// account management, no container COPY): that says
				// nothing about alpha.
				want := http.StatusForbidden
				rest := strings.Trim(strings.TrimPrefix(path, a), "/")
				account, container := rest == "", rest != "" && !strings.Contains(rest, "/")
				if (account && (m.method == "PUT" || m.method == "DELETE" || m.method == "COPY")) || (container && m.method == "COPY") {
					want = http.StatusMethodNotAllowed
				}
				if resp.StatusCode != want {
					t.Fatalf("%s %s as beta = %d %q; want %d", m.method, path, resp.StatusCode, body, want)
				}
				if want == http.StatusForbidden && m.method != "HEAD" {
					if forbidden == "" {
						forbidden = body
					}
					if body != forbidden {
						t.Fatalf("403 bodies differ: %q and %q", body, forbidden)
					}
				}
			})
		}
	}
	if forbidden != "<html><h1>Forbidden</h1><p>Access was denied to this resource.</p></html>" {
		t.Fatalf("403 body = %q", forbidden)
	}
	// Copies naming alpha's objects from beta's own account.
	for _, h := range []http.Header{
		hdr("X-Copy-From", "secret/plan.txt", "X-Copy-From-Account", "AUTH_"+alice.project),
	} {
		e.must(t, bob, http.StatusForbidden, "PUT", bob.account+"/mine/stolen", h, "")
	}
	e.must(t, bob, http.StatusForbidden, "COPY", bob.account+"/mine/obj", hdr("Destination", "secret/planted", "Destination-Account", "AUTH_"+alice.project), "")

	// Alpha's things are as they were.
	resp, body := e.must(t, alice, http.StatusOK, "GET", a+"/secret/plan.txt", nil, "")
	if body != "the plan" || resp.Header.Get("X-Object-Meta-Key") != "v" {
		t.Fatalf("alpha's object changed: %q %v", body, resp.Header)
	}
	_, body = e.must(t, alice, http.StatusOK, "GET", a+"/secret", nil, "")
	if body != "plan.txt\n" {
		t.Fatalf("alpha's container = %q", body)
	}
	_, body = e.must(t, alice, http.StatusOK, "GET", a, nil, "")
	if body != "secret\n" {
		t.Fatalf("alpha's account = %q", body)
	}

	// A reader reads and lists, but writes nothing.
	e.must(t, reader, http.StatusOK, "GET", a+"/secret/plan.txt", nil, "")
	e.must(t, reader, http.StatusOK, "GET", a, nil, "")
	for _, m := range []string{"PUT", "POST", "DELETE"} {
		e.must(t, reader, http.StatusForbidden, m, a+"/secret/plan.txt", nil, "")
		e.must(t, reader, http.StatusForbidden, m, a+"/secret", nil, "")
	}
	// No token, or a bad one.
	e.must(t, user{}, http.StatusUnauthorized, "GET", a, nil, "")
	e.must(t, user{token: "nonsense"}, http.StatusUnauthorized, "GET", a+"/secret/plan.txt", nil, "")
}
