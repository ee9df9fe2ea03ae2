package ui_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/volume"
)

// TestResourcePages: each list shows the project's own resources, and
// never another project's.
func TestResourcePages(t *testing.T) {
	e := newEnv(t)
	alice := e.member(t, "alice", "proj-a")
	bob := e.member(t, "bob", "proj-b")
	tok := func(user string) identity.Token {
		u, _ := e.Dir.FindUser(e.Ctx, identity.DefaultDomainID, user)
		ps, _ := e.Dir.ProjectsOf(e.Ctx, u.ID)
		return identity.Token{UserID: u.ID, ProjectID: ps[0].ID}
	}
	if _, err := e.vols.Create(e.Ctx, volume.CallerOf(tok("alice")), volume.CreateSpec{Name: "alice-data", SizeGiB: 1}); err != nil {
		t.Fatal(err)
	}
	code, _, body := alice.post("/ui/keypairs", url.Values{"name": {"alice key"}})
	if code != http.StatusCreated || !strings.Contains(body, "PRIVATE KEY") {
		t.Fatalf("keypair create: %d %s", code, body)
	}
	for _, tc := range []struct {
		path, alices string
	}{
		{path: "/ui/volumes", alices: "alice-data"},
		{path: "/ui/keypairs", alices: "alice key"},
		{path: "/ui/images", alices: "cirros"},
		{path: "/ui/networks", alices: "private"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := alice.get(tc.path)
			if code != http.StatusOK || !strings.Contains(body, tc.alices) {
				t.Fatalf("alice: %d %s", code, body)
			}
			if inlineScript.MatchString(body) {
				t.Fatalf("inline script or style: %s", inlineScript.FindString(body))
			}
			code, body = bob.get(tc.path)
			if code != http.StatusOK || strings.Contains(body, "alice") {
				t.Fatalf("bob: %d %s", code, body)
			}
		})
	}
	t.Run("delete keypair", func(t *testing.T) {
		alice.get("/ui/keypairs")
		if code, _, body := bob.post("/ui/keypairs/alice%20key/delete", nil); code != http.StatusNotFound {
			t.Fatalf("bob deleted alice's key pair: %d %s", code, body)
		}
		if code, loc, body := alice.post("/ui/keypairs/alice%20key/delete", nil); code != http.StatusSeeOther || loc != "/ui/keypairs" {
			t.Fatalf("delete: %d %s", code, body)
		}
		if _, body := alice.get("/ui/keypairs"); strings.Contains(body, "alice key") {
			t.Fatal("the key pair is still listed")
		}
	})
}

func TestAPIAccess(t *testing.T) {
	e := newEnv(t)
	alice := e.member(t, "alice", "proj-a")
	for _, tc := range []struct {
		path string
		want []string
	}{
		{path: "/ui/api-access", want: []string{"/v3", "compute"}},
		{path: "/ui/api-access/openrc", want: []string{"export OS_USERNAME='alice'", "export OS_PROJECT_NAME='proj-a'", "read -sr OS_PASSWORD_INPUT", e.Server.URL + "/v3"}},
		{path: "/ui/api-access/clouds.yaml", want: []string{"username: alice", "project_name: proj-a", "auth_url: " + e.Server.URL + "/v3"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			code, body := alice.get(tc.path)
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, body)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("lacks %q: %s", w, body)
				}
			}
			if strings.Contains(body, "alice-password") {
				t.Error("the password is in the file")
			}
		})
	}
}
