package swift_test

import (
	"net/http"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
)

// TestContainerACLs: alpha grants beta reads on one container, then
// writes, then the public reads; beta gets what the grants say and no
// more, and never sees the ACLs or alpha's other containers.
func TestContainerACLs(t *testing.T) {
	e := newEnv(t)
	alice := e.login(t, "alice", "alpha", "member")
	bob := e.login(t, "bob", "beta", "member")
	carol := e.login(t, "carol", "gamma", "member")
	anon := user{}
	// A token that is not one (expired, revoked, made up) is anonymous,
	// as Swift's keystoneauth treats an invalid identity: referrer grants
	// still let it read, nothing else does.
	bogus := user{token: "gAAAAA-not-a-token"}
	a := alice.account
	e.must(t, alice, http.StatusCreated, "PUT", a+"/shared", nil, "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/private", nil, "")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/shared/doc", nil, "shared text")
	e.must(t, alice, http.StatusCreated, "PUT", a+"/private/doc", nil, "private text")

	type probe struct {
		who          user
		method, path string
		header       http.Header
		want         int
	}
	check := func(t *testing.T, probes []probe) {
		t.Helper()
		for _, p := range probes {
			if resp, body := e.do(t, p.who, p.method, p.path, p.header, nil); resp.StatusCode != p.want {
				t.Errorf("%s %s as %s = %d %q; want %d", p.method, p.path, p.who.project, resp.StatusCode, body, p.want)
			}
		}
	}

	t.Run("read grant", func(t *testing.T) {
		e.must(t, alice, http.StatusNoContent, "POST", a+"/shared", hdr("X-Container-Read", bob.project+":*"), "")
		resp, _ := e.must(t, alice, http.StatusNoContent, "HEAD", a+"/shared", nil, "")
		if resp.Header.Get("X-Container-Read") != bob.project+":*" {
			t.Fatalf("the owner does not see the ACL: %v", resp.Header)
		}
		resp, _ = e.must(t, bob, http.StatusNoContent, "HEAD", a+"/shared", nil, "")
		if resp.Header.Get("X-Container-Read") != "" {
			t.Fatalf("a grantee sees the ACL: %v", resp.Header)
		}
		_, body := e.must(t, bob, http.StatusOK, "GET", a+"/shared/doc", nil, "")
		if body != "shared text" {
			t.Fatalf("granted read = %q", body)
		}
		_, body = e.must(t, bob, http.StatusOK, "GET", a+"/shared", nil, "")
		if body != "doc\n" {
			t.Fatalf("granted listing = %q", body)
		}
		check(t, []probe{
			{bob, "PUT", a + "/shared/new", nil, 403},
			{bob, "DELETE", a + "/shared/doc", nil, 403},
			{bob, "POST", a + "/shared/doc", nil, 403},
			{bob, "POST", a + "/shared", hdr("X-Container-Read", "*:*"), 403},
			{bob, "DELETE", a + "/shared", nil, 403},
			{bob, "GET", a + "/private/doc", nil, 403},
			{bob, "GET", a + "/private", nil, 403},
			{bob, "GET", a, nil, 403},
			{bob, "PUT", a + "/shared2", nil, 403},
			{bob, "GET", a + "/missing/doc", nil, 403},
			{carol, "GET", a + "/shared/doc", nil, 403},
			{anon, "GET", a + "/shared/doc", nil, 401},
		})
		// A copy out of the shared container into bob's own account.
		e.must(t, bob, http.StatusCreated, "PUT", bob.account+"/mine", nil, "")
		e.must(t, bob, http.StatusCreated, "PUT", bob.account+"/mine/copied", hdr("X-Copy-From", "shared/doc", "X-Copy-From-Account", "AUTH_"+alice.project), "")
		e.must(t, bob, http.StatusForbidden, "PUT", bob.account+"/mine/copied", hdr("X-Copy-From", "private/doc", "X-Copy-From-Account", "AUTH_"+alice.project), "")
	})

	t.Run("write grant", func(t *testing.T) {
		e.must(t, alice, http.StatusNoContent, "POST", a+"/shared", hdr("X-Container-Write", "*:"+userID(t, e, "bob")), "")
		e.must(t, bob, http.StatusCreated, "PUT", a+"/shared/from-bob", nil, "bob wrote")
		e.must(t, bob, http.StatusAccepted, "POST", a+"/shared/from-bob", hdr("X-Object-Meta-By", "bob"), "")
		e.must(t, bob, http.StatusNoContent, "DELETE", a+"/shared/from-bob", nil, "")
		check(t, []probe{
			{carol, "PUT", a + "/shared/from-carol", nil, 403},
			{bob, "PUT", a + "/private/from-bob", nil, 403},
			{bob, "POST", a + "/shared", hdr("X-Container-Meta-X", "y"), 403},
		})
		e.must(t, alice, http.StatusNoContent, "POST", a+"/shared", hdr("X-Remove-Container-Write", "x"), "")
		e.must(t, bob, http.StatusForbidden, "PUT", a+"/shared/from-bob", nil, "again")
	})

	t.Run("names and roles", func(t *testing.T) {
		// Names in the default domain, and a role of the caller's.
		e.must(t, alice, http.StatusNoContent, "POST", a+"/shared", hdr("X-Container-Read", "gamma:carol", "X-Container-Write", "member"), "")
		check(t, []probe{
			{carol, "GET", a + "/shared/doc", nil, 200},
			{bob, "GET", a + "/shared/doc", nil, 403},
			{bob, "PUT", a + "/shared/by-role", nil, 201},
			{carol, "DELETE", a + "/shared/by-role", nil, 204},
		})
		e.must(t, alice, http.StatusNoContent, "POST", a+"/shared", hdr("X-Remove-Container-Write", "x"), "")
	})

	t.Run("public read", func(t *testing.T) {
		e.must(t, alice, http.StatusNoContent, "POST", a+"/shared", hdr("X-Container-Read", ".r:*"), "")
		_, body := e.must(t, anon, http.StatusOK, "GET", a+"/shared/doc", nil, "")
		if body != "shared text" {
			t.Fatalf("public read = %q", body)
		}
		check(t, []probe{
			{anon, "GET", a + "/shared", nil, 401},
			{bogus, "GET", a + "/shared/doc", nil, 200},
			{bogus, "HEAD", a + "/shared/doc", nil, 200},
			{bogus, "GET", a + "/shared", nil, 401},
			{bogus, "PUT", a + "/shared/x", nil, 401},
			{bogus, "GET", a + "/private/doc", nil, 401},
			{bogus, "GET", a, nil, 401},
			{carol, "GET", a + "/shared/doc", nil, 200},
			{carol, "GET", a + "/shared", nil, 403},
			{anon, "PUT", a + "/shared/x", nil, 401},
			{anon, "GET", a + "/private/doc", nil, 401},
			{anon, "GET", a, nil, 401},
			// The read ACL replaced bob's grant.
			{bob, "GET", a + "/shared", nil, 403},
		})
		e.must(t, alice, http.StatusNoContent, "POST", a+"/shared", hdr("X-Container-Read", ".r:*,.rlistings"), "")
		for _, u := range []user{anon, bogus} {
			_, body = e.must(t, u, http.StatusOK, "GET", a+"/shared", nil, "")
			if body != "doc\n" {
				t.Fatalf("public listing = %q", body)
			}
		}
		e.must(t, alice, http.StatusNoContent, "POST", a+"/shared", hdr("X-Container-Read", ".r:.example.com,.r:-bad.example.com"), "")
		check(t, []probe{
			{anon, "GET", a + "/shared/doc", hdr("Referer", "http://www.example.com/page"), 200},
			{anon, "GET", a + "/shared/doc", hdr("Referer", "http://bad.example.com/page"), 401},
			{anon, "GET", a + "/shared/doc", hdr("Referer", "http://elsewhere.org/"), 401},
		})
	})

	t.Run("malformed", func(t *testing.T) {
		check(t, []probe{
			{alice, "POST", a + "/shared", hdr("X-Container-Write", ".r:*"), 400},
			{alice, "POST", a + "/shared", hdr("X-Container-Read", ".r:"), 400},
			{alice, "POST", a + "/shared", hdr("X-Container-Read", ".x:y"), 400},
			{alice, "PUT", a + "/acl-new", hdr("X-Container-Read", ".r:"), 400},
		})
		e.must(t, alice, http.StatusNotFound, "HEAD", a+"/acl-new", nil, "")
	})
}

// userID returns a user's ID.
func userID(t *testing.T, e *env, name string) string {
	t.Helper()
	u, err := e.Dir.FindUser(e.Ctx, identity.DefaultDomainID, name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}
