package identity_test

import (
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestUserOptions: Keystone's user options, as `openstack user set
// --ignore-lockout-failure-attempts` (and kin) send them, under a policy
// that locks out after two failures and expires passwords.
func TestUserOptions(t *testing.T) {
	e := newAppEnv(t, registry.NewMemory())
	if err := e.dir.SetPasswordPolicy(identity.PasswordPolicy{LockoutFailures: 2, ExpiresDays: 90}); err != nil {
		t.Fatal(err)
	}
	admin := e.adminC.Token()
	set := func(t *testing.T, userID string, opts map[string]any) (int, map[string]any) {
		t.Helper()
		return e.call(t, http.MethodPatch, "/v3/users/"+userID, admin, map[string]any{"user": map[string]any{"options": opts}})
	}
	options := func(body map[string]any) map[string]any {
		u, _ := body["user"].(map[string]any)
		o, _ := u["options"].(map[string]any)
		return o
	}
	// fails logs in with a wrong password n times, then with the right one.
	fails := func(t *testing.T, name string, n int) error {
		t.Helper()
		for range n {
			_, _, _ = e.scopedToken(t, name, identity.DefaultDomainID, "wrong", tokens.Scope{ProjectID: e.proj.ID})
		}
		_, _, err := e.scopedToken(t, name, identity.DefaultDomainID, name+"-password", tokens.Scope{ProjectID: e.proj.ID})
		return err
	}
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a user without options shows {} and a password expiry", func(t *testing.T) {
			code, body := e.call(t, http.MethodGet, "/v3/users/"+e.mallory.ID, admin, nil)
			u, _ := body["user"].(map[string]any)
			if code != 200 || options(body) == nil || len(options(body)) != 0 || u["password_expires_at"] == nil {
				t.Fatalf("GET mallory: %d %v", code, body)
			}
		}},
		{"ignore_lockout_failure_attempts keeps alice out of lockout", func(t *testing.T) {
			code, body := set(t, e.alice.ID, map[string]any{identity.OptIgnoreLockout: true})
			if code != 200 || options(body)[identity.OptIgnoreLockout] != true {
				t.Fatalf("PATCH: %d %v", code, body)
			}
			if err := fails(t, "alice", 3); err != nil {
				t.Fatalf("alice, exempt, after 3 failures: %v", err)
			}
		}},
		{"without it mallory is locked out", func(t *testing.T) {
			if err := fails(t, "mallory", 2); err == nil {
				t.Fatal("mallory logged in after 2 failures under a lockout of 2")
			}
		}},
		{"the bootstrap admin can be exempted", func(t *testing.T) {
			if code, body := set(t, e.boot.User.ID, map[string]any{identity.OptIgnoreLockout: true}); code != 200 {
				t.Fatalf("PATCH admin: %d %v", code, body)
			}
			for range 3 {
				_, _, _ = e.scopedToken(t, "admin", identity.DefaultDomainID, "wrong", tokens.Scope{ProjectID: e.boot.Project.ID})
			}
			if _, _, err := e.scopedToken(t, "admin", identity.DefaultDomainID, adminPassword, tokens.Scope{ProjectID: e.boot.Project.ID}); err != nil {
				t.Fatalf("admin, exempt, after 3 failures: %v", err)
			}
		}},
		{"ignore_password_expiry: no expiry shown", func(t *testing.T) {
			code, body := set(t, e.alice.ID, map[string]any{identity.OptIgnorePasswordExpiry: true})
			u, _ := body["user"].(map[string]any)
			if code != 200 || u["password_expires_at"] != nil || options(body)[identity.OptIgnoreLockout] != true {
				t.Fatalf("PATCH: %d %v (options merge; no expiry)", code, body)
			}
		}},
		{"lock_password refuses alice's own change", func(t *testing.T) {
			if code, body := set(t, e.alice.ID, map[string]any{identity.OptLockPassword: true}); code != 200 {
				t.Fatalf("PATCH: %d %v", code, body)
			}
			code, body := e.call(t, http.MethodPost, "/v3/users/"+e.alice.ID+"/password", "",
				map[string]any{"user": map[string]any{"original_password": "alice-password", "password": "alice-password-2"}})
			if code != http.StatusForbidden {
				t.Fatalf("change of a locked password: %d %v, want 403", code, body)
			}
		}},
		{"null removes an option", func(t *testing.T) {
			code, body := set(t, e.alice.ID, map[string]any{identity.OptLockPassword: nil})
			if _, has := options(body)[identity.OptLockPassword]; code != 200 || has {
				t.Fatalf("PATCH null: %d %v", code, body)
			}
		}},
		{"an unknown option is refused", func(t *testing.T) {
			code, body := set(t, e.alice.ID, map[string]any{"ignore_change_password_upon_first_use": true})
			if code != http.StatusBadRequest {
				t.Fatalf("PATCH unknown option: %d %v, want 400", code, body)
			}
			_, body = e.call(t, http.MethodGet, "/v3/users/"+e.alice.ID, admin, nil)
			if len(options(body)) != 2 {
				t.Fatalf("alice's options after a refused PATCH: %v", options(body))
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}

// TestUserOptionsCLI: the openstack CLI's user set flags for the options
// reach the user, and user show reads them back.
func TestUserOptionsCLI(t *testing.T) {
	e := newAppEnv(t, registry.NewMemory())
	c := newCLI(t, e.env)
	admin := passwordLogin("admin", adminPassword, "admin")
	c.runSteps(t, []cliStep{
		{name: "set the options", login: admin, args: []string{"user", "set", "--ignore-lockout-failure-attempts", "--ignore-password-expiry", "--enable-lock-password", "alice"}},
		{name: "show them", login: admin, args: []string{"user", "show", "-f", "json", "alice"},
			want: []string{`"ignore_lockout_failure_attempts": true`, `"ignore_password_expiry": true`, `"lock_password": true`}},
		{name: "an option the broker lacks is refused", login: admin, args: []string{"user", "set", "--ignore-change-password-upon-first-use", "alice"}, wantCode: 1,
			want: []string{"ignore_change_password_upon_first_use"}},
		{name: "unset one", login: admin, args: []string{"user", "set", "--disable-lock-password", "alice"}},
		{name: "it is false", login: admin, args: []string{"user", "show", "-f", "json", "alice"}, want: []string{`"lock_password": false`}},
	})
}
