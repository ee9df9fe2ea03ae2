package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestPasswordPolicy: a configured policy (length, regex, history,
// lockout, expiry) applies to creation, admin resets and the user's own
// change through gophercloud, which needs the original password.
func TestPasswordPolicy(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, registry.NewMemory())
	var skew atomic.Int64 // how far the directory's clock runs ahead
	identity.SetClock(e.dir, func() time.Time { return time.Now().UTC().Add(time.Duration(skew.Load())) })
	mustOK(t, "policy", e.dir.SetPasswordPolicy(identity.PasswordPolicy{MinLength: 10, Regex: "[0-9]", RegexDescription: "must hold a digit",
		UniqueLastPasswords: 2, LockoutFailures: 3, LockoutDuration: time.Hour, ExpiresDays: 90}))
	admin, err := e.login(t, "admin", adminPassword, "admin")
	mustOK(t, "admin login", err)
	adminC := identityClient(t, admin)
	t.Run("creation follows the policy", func(t *testing.T) {
		cases := []struct{ name, password, want string }{
			{"too short", "short1", "at least 10 bytes"},
			{"no digit", "long-enough-password", "must hold a digit"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := users.Create(ctx, adminC, users.CreateOpts{Name: "x", DomainID: "default", Password: c.password}).Extract()
				if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("create = %v, want 400 %q", err, c.want)
				}
			})
		}
	})
	u, err := users.Create(ctx, adminC, users.CreateOpts{Name: "pat", DomainID: "default", Password: "first-pass-1"}).Extract()
	mustOK(t, "create", err)
	if u.PasswordExpiresAt.IsZero() {
		t.Fatalf("password_expires_at = %v, want set by expires_days", u.PasswordExpiresAt)
	}
	mustOK(t, "grant", e.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: e.boot.Project.ID, RoleID: e.boot.Roles[identity.RoleReader].ID}))
	patLogin := func(password string) error { _, err := e.login(t, "pat", password, "admin"); return err }
	old, err := e.login(t, "pat", "first-pass-1", "admin")
	mustOK(t, "login", err)

	t.Run("own change", func(t *testing.T) {
		err := users.ChangePassword(ctx, adminC, u.ID, users.ChangePasswordOpts{OriginalPassword: "wrong-pass-1", Password: "second-pass-2"}).ExtractErr()
		if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("wrong original = %v, want 401", err)
		}
		mustOK(t, "change", users.ChangePassword(ctx, adminC, u.ID, users.ChangePasswordOpts{OriginalPassword: "first-pass-1", Password: "second-pass-2"}).ExtractErr())
		if ok, _ := tokens.Validate(ctx, adminC, old.Token()); ok {
			t.Fatal("a token from before the change still validates")
		}
		mustOK(t, "login with the new password", patLogin("second-pass-2"))
		err = users.ChangePassword(ctx, adminC, u.ID, users.ChangePasswordOpts{OriginalPassword: "second-pass-2", Password: "first-pass-1"}).ExtractErr()
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
			t.Fatalf("reusing the last password = %v, want 400", err)
		}
	})
	t.Run("lockout", func(t *testing.T) {
		for range 3 {
			if err := patLogin("not-it-0000"); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
				t.Fatalf("wrong password = %v", err)
			}
		}
		if err := patLogin("second-pass-2"); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("locked-out login = %v, want 401", err)
		}
		skew.Add(int64(2 * time.Hour)) // the lockout lasts an hour
		mustOK(t, "login after the lockout", patLogin("second-pass-2"))
	})
	t.Run("expiry", func(t *testing.T) {
		skew.Add(int64(91 * 24 * time.Hour))
		err := patLogin("second-pass-2")
		if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("expired password = %v, want 401 expired", err)
		}
		mustOK(t, "an expired password may be changed", users.ChangePassword(ctx, adminC, u.ID,
			users.ChangePasswordOpts{OriginalPassword: "second-pass-2", Password: "third-pass-3"}).ExtractErr())
		mustOK(t, "login", patLogin("third-pass-3"))
	})
}

func identityClient(t *testing.T, p *gophercloud.ProviderClient) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{})
	mustOK(t, "identity client", err)
	return c
}

// TestLoginThrottle: past the failures a replica allows within its
// window, logins of that name get 429 with Retry-After, the right
// password included, while other names log in.
func TestLoginThrottle(t *testing.T) {
	e := newEnv(t, registry.NewMemory())
	e.k.Throttle = identity.LoginThrottle{Failures: 3, Window: time.Hour}
	for i := range 3 {
		if _, err := e.login(t, "admin", "wrong-password", "admin"); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("failure %d = %v, want 401", i+1, err)
		}
	}
	body := map[string]any{"auth": map[string]any{"identity": map[string]any{"methods": []string{"password"},
		"password": map[string]any{"user": map[string]any{"name": "admin", "domain": map[string]string{"id": "default"}, "password": adminPassword}}}}}
	raw, _ := json.Marshal(body)
	resp, err := http.Post(e.srv.URL+"/v3/auth/tokens", "application/json", bytes.NewReader(raw))
	mustOK(t, "post", err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("throttled login = %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	ctx := context.Background()
	u, err := e.dir.CreateUser(ctx, identity.User{Name: "other", DomainID: identity.DefaultDomainID, Enabled: true}, "other-pw")
	mustOK(t, "user", err)
	mustOK(t, "grant", e.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: e.boot.Project.ID, RoleID: e.boot.Roles[identity.RoleReader].ID}))
	if _, err := e.login(t, "other", "other-pw", "admin"); err != nil {
		t.Fatalf("another name = %v, want a token", err)
	}
}
