package identity_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/trusts"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestTrusts: OS-TRUST through gophercloud: a trustor delegates a role on
// its project to a trustee with no role of its own, who gets
// trust-scoped tokens (impersonating or not) until the uses run out, the
// trust expires or the trustor deletes it.
func TestTrusts(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	trent, err := users.Create(ctx, e.adminC, users.CreateOpts{Name: "trent", DomainID: identity.DefaultDomainID, Password: "trent-pw"}).Extract()
	mustOK(t, "trustee", err)
	exp := time.Now().Add(time.Hour)
	mk := func(t *testing.T, imp bool, uses int, roles ...string) *trusts.Trust {
		t.Helper()
		var rs []trusts.Role
		for _, r := range roles {
			rs = append(rs, trusts.Role{Name: r})
		}
		tr, err := trusts.Create(ctx, e.aliceC, trusts.CreateOpts{TrustorUserID: e.alice.ID, TrusteeUserID: trent.ID, ProjectID: e.proj.ID,
			Impersonation: imp, RemainingUses: uses, Roles: rs, ExpiresAt: &exp}).Extract()
		mustOK(t, "create trust", err)
		return tr
	}
	trustToken := func(t *testing.T, user, password, trustID string) (string, tokenView, error) {
		t.Helper()
		return e.scopedToken(t, user, identity.DefaultDomainID, password, tokens.Scope{TrustID: trustID})
	}
	plain := mk(t, false, 0, "member")
	if plain.TrustorUserID != e.alice.ID || len(plain.Roles) != 1 || plain.Roles[0].Name != "member" || plain.ExpiresAt.IsZero() {
		t.Fatalf("trust = %+v", plain)
	}

	t.Run("trust-scoped token", func(t *testing.T) {
		tok, v, err := trustToken(t, "trent", "trent-pw", plain.ID)
		mustOK(t, "trust token", err)
		if v.Project.ID != e.proj.ID || !slices.Equal(v.roleNames(), []string{"member", "reader"}) {
			t.Fatalf("token = %+v", v)
		}
		var body struct {
			User struct {
				ID string `json:"id"`
			} `json:"user"`
			Trust struct {
				ID      string `json:"id"`
				Trustor struct {
					ID string `json:"id"`
				} `json:"trustor_user"`
			} `json:"OS-TRUST:trust"`
		}
		mustOK(t, "validate", tokens.Get(ctx, e.adminC, tok).ExtractInto(&body))
		if body.User.ID != trent.ID || body.Trust.ID != plain.ID || body.Trust.Trustor.ID != e.alice.ID {
			t.Fatalf("token body = %+v", body)
		}
		if exp, _ := time.Parse(time.RFC3339Nano, v.ExpiresAt); exp.After(plain.ExpiresAt.Add(time.Second)) {
			t.Fatalf("token expires %s, after its trust %s", v.ExpiresAt, plain.ExpiresAt)
		}
		code, _ := e.call(t, http.MethodPost, "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{
			"identity": map[string]any{"methods": []string{"token"}, "token": map[string]string{"id": tok}},
			"scope":    map[string]any{"project": map[string]string{"id": e.proj.ID}}}})
		if code != http.StatusForbidden {
			t.Fatalf("rescoping a trust token = %d, want 403", code)
		}
		code, _ = e.call(t, http.MethodPost, "/v3/OS-TRUST/trusts", tok, map[string]any{"trust": map[string]any{
			"trustor_user_id": trent.ID, "trustee_user_id": e.mallory.ID, "project_id": e.proj.ID, "impersonation": false, "roles": []map[string]string{{"name": "reader"}}}})
		if code != http.StatusForbidden {
			t.Fatalf("a trust token creating a trust = %d, want 403", code)
		}
	})
	t.Run("impersonation", func(t *testing.T) {
		tr := mk(t, true, 0, "reader")
		tok, v, err := trustToken(t, "trent", "trent-pw", tr.ID)
		mustOK(t, "trust token", err)
		if !slices.Equal(v.roleNames(), []string{"reader"}) {
			t.Fatalf("roles = %v", v.roleNames())
		}
		u, err := tokens.Get(ctx, e.adminC, tok).ExtractUser()
		if err != nil || u.ID != e.alice.ID {
			t.Fatalf("impersonating token's user = %+v, %v; want the trustor", u, err)
		}
	})
	t.Run("remaining uses", func(t *testing.T) {
		tr := mk(t, false, 2, "member")
		for i := range 2 {
			if _, _, err := trustToken(t, "trent", "trent-pw", tr.ID); err != nil {
				t.Fatalf("use %d: %v", i+1, err)
			}
		}
		if _, _, err := trustToken(t, "trent", "trent-pw", tr.ID); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("a used-up trust = %v, want 401", err)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		cases := []struct {
			name string
			err  error
			code int
		}{
			{"another trustee", func() error { _, _, err := trustToken(t, "mallory", "mallory-password", plain.ID); return err }(), http.StatusUnauthorized},
			{"a role the trustor lacks", trusts.Create(ctx, e.aliceC, trusts.CreateOpts{TrustorUserID: e.alice.ID, TrusteeUserID: trent.ID,
				ProjectID: e.proj.ID, Roles: []trusts.Role{{Name: "admin"}}}).Err, http.StatusBadRequest},
			{"another trustor", trusts.Create(ctx, e.malC, trusts.CreateOpts{TrustorUserID: e.alice.ID, TrusteeUserID: trent.ID,
				ProjectID: e.proj.ID, Roles: []trusts.Role{{Name: "member"}}}).Err, http.StatusForbidden},
			{"redelegation", trusts.Create(ctx, e.aliceC, trusts.CreateOpts{TrustorUserID: e.alice.ID, TrusteeUserID: trent.ID,
				ProjectID: e.proj.ID, Roles: []trusts.Role{{Name: "member"}}, AllowRedelegation: true}).Err, http.StatusBadRequest},
			{"the trustee deletes", trusts.Delete(ctx, identityClient(t, e.providerFor(t, "trent", "trent-pw")), plain.ID).Err, http.StatusForbidden},
			{"a stranger reads", trusts.Get(ctx, e.malC, plain.ID).Err, http.StatusNotFound},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if !gophercloud.ResponseCodeIs(c.err, c.code) {
					t.Fatalf("err = %v, want %d", c.err, c.code)
				}
			})
		}
	})
	t.Run("list, roles, delete", func(t *testing.T) {
		pages, err := trusts.List(e.aliceC, trusts.ListOpts{TrustorUserID: e.alice.ID}).AllPages(ctx)
		mustOK(t, "list", err)
		if ts, _ := trusts.ExtractTrusts(pages); len(ts) != 3 {
			t.Fatalf("alice's trusts = %d, want 3", len(ts))
		}
		mustOK(t, "check role", trusts.CheckRole(ctx, e.aliceC, plain.ID, e.memberRole.ID).Err)
		r, err := trusts.GetRole(ctx, e.aliceC, plain.ID, e.memberRole.ID).Extract()
		if err != nil || r.Name != "member" {
			t.Fatalf("get role = %+v, %v", r, err)
		}
		tok, _, err := trustToken(t, "trent", "trent-pw", plain.ID)
		mustOK(t, "trust token", err)
		mustOK(t, "delete", trusts.Delete(ctx, e.aliceC, plain.ID).ExtractErr())
		if _, err := e.tokens.Validate(ctx, tok); !errors.Is(err, identity.ErrUnauthorized) {
			t.Fatalf("a deleted trust's token = %v, want refused", err)
		}
	})
}

// providerFor logs a user in unscoped.
func (e *appEnv) providerFor(t *testing.T, user, password string) *gophercloud.ProviderClient {
	t.Helper()
	p, err := e.appLogin(gophercloud.AuthOptions{Username: user, Password: password, DomainName: "Default"})
	mustOK(t, "login "+user, err)
	return p
}

// TestTrustCollector: the collector removes trusts long expired and those
// whose project is gone, and keeps the rest.
func TestTrustCollector(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	creator, err := e.tokens.Validate(ctx, e.aliceC.TokenID)
	mustOK(t, "alice's token", err)
	soon := time.Now().Add(time.Minute)
	mk := func(exp *time.Time) identity.Trust {
		tr, err := e.dir.CreateTrust(ctx, creator, identity.TrustRequest{TrusteeID: e.mallory.ID, ProjectID: e.proj.ID, Roles: []identity.Role{e.memberRole}, ExpiresAt: exp})
		mustOK(t, "trust", err)
		return tr
	}
	expiring, forever := mk(&soon), mk(nil)
	gc := identity.ExpiredTrusts{Dir: e.dir, Retention: time.Hour}
	cases := []struct {
		name    string
		at      time.Time
		setup   func()
		removed int
		gone    []string
	}{
		{"nothing yet", time.Now(), func() {}, 0, nil},
		{"expired past the retention", time.Now().Add(2 * time.Hour), func() {}, 1, []string{expiring.ID}},
		{"the project is gone", time.Now(), func() { mustOK(t, "delete project", e.dir.DeleteProject(ctx, e.proj.ID)) }, 1, []string{forever.ID}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.setup()
			n, err := gc.Collect(ctx, c.at)
			if err != nil || n != c.removed {
				t.Fatalf("Collect = %d, %v; want %d", n, err, c.removed)
			}
			for _, id := range c.gone {
				if _, err := e.dir.GetTrust(ctx, id); !errors.Is(err, identity.ErrNotFound) {
					t.Fatalf("trust %s = %v, want gone", id, err)
				}
			}
		})
	}
}
