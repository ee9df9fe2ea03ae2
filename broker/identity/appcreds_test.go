package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/ec2credentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// appEnv is a Keystone with project team-a, alice (member and reader
// there) and mallory (member there), and their identity clients.
type appEnv struct {
	*env
	proj                   identity.Project
	alice, mallory         identity.User
	aliceC, malC, adminC   *gophercloud.ServiceClient
	memberRole, readerRole identity.Role
}

func newAppEnv(t *testing.T, store registry.Store) *appEnv {
	t.Helper()
	ctx := context.Background()
	e := &appEnv{env: newEnv(t, store)}
	e.memberRole, e.readerRole = e.boot.Roles[identity.RoleMember], e.boot.Roles[identity.RoleReader]
	var err error
	if e.proj, err = e.dir.CreateProject(ctx, identity.Project{Name: "team-a", DomainID: identity.DefaultDomainID, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	mk := func(name string, rs ...identity.Role) identity.User {
		u, err := e.dir.CreateUser(ctx, identity.User{Name: name, DomainID: identity.DefaultDomainID, Enabled: true}, name+"-password")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if err := e.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: e.proj.ID, RoleID: r.ID}); err != nil {
				t.Fatal(err)
			}
		}
		return u
	}
	e.alice, e.mallory = mk("alice", e.memberRole, e.readerRole), mk("mallory", e.memberRole)
	e.aliceC, e.malC = e.client(t, "alice", "alice-password", "team-a"), e.client(t, "mallory", "mallory-password", "team-a")
	e.adminC = e.client(t, "admin", adminPassword, "admin")
	return e
}

// client logs in with a password; it logs in again when its token is
// revoked (a role removed, the user disabled).
func (e *appEnv) client(t *testing.T, user, password, project string) *gophercloud.ServiceClient {
	t.Helper()
	p, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: e.srv.URL + "/v3", Username: user, Password: password,
		DomainName: "Default", TenantName: project, AllowReauth: true,
	})
	if err != nil {
		t.Fatalf("%s logs in: %v", user, err)
	}
	c, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// appLogin authenticates with an application credential as gophercloud
// users do.
func (e *appEnv) appLogin(opts gophercloud.AuthOptions) (*gophercloud.ProviderClient, error) {
	opts.IdentityEndpoint = e.srv.URL + "/v3"
	return openstack.AuthenticatedClient(context.Background(), opts)
}

func (e *appEnv) appClient(t *testing.T, id, secret string) (*gophercloud.ServiceClient, string) {
	t.Helper()
	p, err := e.appLogin(gophercloud.AuthOptions{ApplicationCredentialID: id, ApplicationCredentialSecret: secret})
	if err != nil {
		t.Fatalf("application credential login: %v", err)
	}
	c, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return c, p.Token()
}

// tokenView is what a token body says of scope, roles and credential.
type tokenView struct {
	Methods []string `json:"methods"`
	Project struct {
		ID string `json:"id"`
	} `json:"project"`
	Roles []struct {
		Name string `json:"name"`
	} `json:"roles"`
	ExpiresAt string `json:"expires_at"`
	AppCred   *struct {
		ID         string `json:"id"`
		Name       string `json:"name"`
		Restricted bool   `json:"restricted"`
	} `json:"application_credential"`
}

func (e *appEnv) inspect(t *testing.T, token string) tokenView {
	t.Helper()
	var v tokenView
	if err := tokens.Get(context.Background(), e.adminC, token).ExtractInto(&v); err != nil {
		t.Fatalf("validate token: %v", err)
	}
	return v
}

func (v tokenView) roleNames() []string {
	out := []string{}
	for _, r := range v.Roles {
		out = append(out, r.Name)
	}
	slices.Sort(out)
	return out
}

// call sends a raw request and returns the status and decoded body.
func (e *appEnv) call(t *testing.T, method, path, token string, body any) (int, map[string]any) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func errorFields(body map[string]any) []string {
	var out []string
	e, _ := body["error"].(map[string]any)
	fs, _ := e["fields"].([]any)
	for _, f := range fs {
		if m, ok := f.(map[string]any); ok {
			out = append(out, m["field"].(string))
		}
	}
	return out
}

func create(t *testing.T, c *gophercloud.ServiceClient, userID string, opts applicationcredentials.CreateOpts) *applicationcredentials.ApplicationCredential {
	t.Helper()
	ac, err := applicationcredentials.Create(context.Background(), c, userID, opts).Extract()
	if err != nil {
		t.Fatalf("create application credential %q: %v", opts.Name, err)
	}
	return ac
}

// TestApplicationCredentials drives /v3/users/{id}/application_credentials
// and the application_credential auth method with gophercloud.
func TestApplicationCredentials(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	cred := create(t, e.aliceC, e.alice.ID, applicationcredentials.CreateOpts{Name: "ci", Description: "for CI"})
	if len(cred.Secret) != 86 || cred.ProjectID != e.proj.ID || cred.Unrestricted || !cred.ExpiresAt.IsZero() || len(cred.Roles) != 2 || cred.Description != "for CI" {
		t.Fatalf("created %+v", cred)
	}

	t.Run("the secret is shown once", func(t *testing.T) {
		got, err := applicationcredentials.Get(ctx, e.aliceC, e.alice.ID, cred.ID).Extract()
		if err != nil || got.Secret != "" || got.Name != "ci" || len(got.Roles) != 2 {
			t.Fatalf("show = %+v, %v", got, err)
		}
		for _, path := range []string{"", "/" + cred.ID} {
			if code, _ := e.call(t, http.MethodHead, "/v3/users/"+e.alice.ID+"/application_credentials"+path, e.aliceC.Token(), nil); code != http.StatusOK {
				t.Errorf("HEAD %s = %d, want 200", path, code)
			}
		}
		for _, c := range []struct {
			name, filter string
			want         int
		}{{"all", "", 1}, {"by name", "ci", 1}, {"by name, any case", "CI", 1}, {"unknown name", "nope", 0}} {
			t.Run(c.name, func(t *testing.T) {
				pages, err := applicationcredentials.List(e.aliceC, e.alice.ID, applicationcredentials.ListOpts{Name: c.filter}).AllPages(ctx)
				if err != nil {
					t.Fatal(err)
				}
				acs, err := applicationcredentials.ExtractApplicationCredentials(pages)
				if err != nil || len(acs) != c.want || (c.want == 1 && (acs[0].ID != cred.ID || acs[0].Secret != "")) {
					t.Fatalf("list %q = %+v, %v", c.filter, acs, err)
				}
			})
		}
	})
	t.Run("names are unique per user", func(t *testing.T) {
		_, err := applicationcredentials.Create(ctx, e.aliceC, e.alice.ID, applicationcredentials.CreateOpts{Name: "ci"}).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
			t.Fatalf("duplicate name = %v, want 409", err)
		}
		mine := create(t, e.malC, e.mallory.ID, applicationcredentials.CreateOpts{Name: "ci"})
		if err := applicationcredentials.Delete(ctx, e.malC, e.mallory.ID, mine.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("authenticates by id, or by name and user", func(t *testing.T) {
		for _, c := range []struct {
			name string
			opts gophercloud.AuthOptions
		}{
			{"id", gophercloud.AuthOptions{ApplicationCredentialID: cred.ID, ApplicationCredentialSecret: cred.Secret}},
			{"name and user id", gophercloud.AuthOptions{ApplicationCredentialName: "ci", UserID: e.alice.ID, ApplicationCredentialSecret: cred.Secret}},
			{"name, user name and domain", gophercloud.AuthOptions{ApplicationCredentialName: "ci", Username: "alice", DomainName: "Default", ApplicationCredentialSecret: cred.Secret}},
		} {
			t.Run(c.name, func(t *testing.T) {
				p, err := e.appLogin(c.opts)
				if err != nil {
					t.Fatal(err)
				}
				v := e.inspect(t, p.Token())
				if v.Project.ID != e.proj.ID || !slices.Equal(v.roleNames(), []string{"member", "reader"}) || !slices.Equal(v.Methods, []string{"application_credential"}) {
					t.Fatalf("token = %+v", v)
				}
				if v.AppCred == nil || v.AppCred.ID != cred.ID || v.AppCred.Name != "ci" || !v.AppCred.Restricted {
					t.Fatalf("token's application_credential = %+v", v.AppCred)
				}
			})
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			name string
			opts gophercloud.AuthOptions
		}{
			{"wrong secret", gophercloud.AuthOptions{ApplicationCredentialID: cred.ID, ApplicationCredentialSecret: "not-the-secret"}},
			{"unknown id", gophercloud.AuthOptions{ApplicationCredentialID: identity.NewID(), ApplicationCredentialSecret: cred.Secret}},
			{"another user's name", gophercloud.AuthOptions{ApplicationCredentialName: "ci", UserID: e.mallory.ID, ApplicationCredentialSecret: cred.Secret}},
			{"unknown user", gophercloud.AuthOptions{ApplicationCredentialName: "ci", Username: "nobody", DomainName: "Default", ApplicationCredentialSecret: cred.Secret}},
		} {
			t.Run(c.name, func(t *testing.T) {
				if _, err := e.appLogin(c.opts); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
					t.Fatalf("login = %v, want 401", err)
				}
			})
		}
		t.Run("a requested scope", func(t *testing.T) {
			code, body := e.call(t, http.MethodPost, "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{
				"identity": map[string]any{"methods": []string{"application_credential"}, "application_credential": map[string]string{"id": cred.ID, "secret": cred.Secret}},
				"scope":    map[string]any{"project": map[string]string{"id": e.proj.ID}}}})
			if code != http.StatusUnauthorized {
				t.Fatalf("scoped app credential login = %d %v, want 401", code, body)
			}
		})
		t.Run("no secret", func(t *testing.T) {
			code, body := e.call(t, http.MethodPost, "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{
				"identity": map[string]any{"methods": []string{"application_credential"}, "application_credential": map[string]string{"id": cred.ID}}}})
			if code != http.StatusBadRequest || !slices.Contains(errorFields(body), "auth.identity.application_credential.secret") {
				t.Fatalf("login without secret = %d %v, want 400 naming the secret", code, body)
			}
		})
	})

	restricted, restrictedTok := e.appClient(t, cred.ID, cred.Secret)
	t.Run("a restricted credential's token", func(t *testing.T) {
		_, err := applicationcredentials.Create(ctx, restricted, e.alice.ID, applicationcredentials.CreateOpts{Name: "child"}).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Errorf("create = %v, want 403", err)
		}
		if err := applicationcredentials.Delete(ctx, restricted, e.alice.ID, cred.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Errorf("delete = %v, want 403", err)
		}
		if _, err := applicationcredentials.Get(ctx, restricted, e.alice.ID, cred.ID).Extract(); err != nil {
			t.Errorf("show = %v, want it shown", err)
		}
		if _, err := ec2credentials.Create(ctx, restricted, e.alice.ID, ec2credentials.CreateOpts{TenantID: e.proj.ID}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Errorf("EC2 credential create = %v, want 403 (keys would act with all the user's roles)", err)
		}
		code, body := e.call(t, http.MethodPost, "/v3/auth/tokens", "", map[string]any{"auth": map[string]any{
			"identity": map[string]any{"methods": []string{"token"}, "token": map[string]string{"id": restrictedTok}},
			"scope":    map[string]any{"project": map[string]string{"id": e.proj.ID}}}})
		if code != http.StatusForbidden {
			t.Errorf("token method with it = %d %v, want 403", code, body)
		}
	})
	t.Run("an unrestricted credential's token may create one", func(t *testing.T) {
		un := create(t, e.aliceC, e.alice.ID, applicationcredentials.CreateOpts{Name: "deployer", Unrestricted: true, Roles: []applicationcredentials.Role{{Name: "member"}}})
		c, tok := e.appClient(t, un.ID, un.Secret)
		if v := e.inspect(t, tok); v.AppCred == nil || v.AppCred.Restricted {
			t.Fatalf("token's application_credential = %+v", v.AppCred)
		}
		child := create(t, c, e.alice.ID, applicationcredentials.CreateOpts{Name: "child"})
		// The token carries member and the reader it implies; the child
		// gets the token's roles, as Keystone's.
		if len(child.Roles) != 2 || child.Roles[0].Name != "member" || child.Roles[1].Name != "reader" {
			t.Fatalf("child roles = %+v, want the creating token's (member, reader)", child.Roles)
		}
		for _, id := range []string{child.ID, un.ID} {
			if err := applicationcredentials.Delete(ctx, c, e.alice.ID, id).ExtractErr(); err != nil {
				t.Fatal(err)
			}
		}
	})
	var ro *applicationcredentials.ApplicationCredential
	t.Run("roles are a subset of the creator's", func(t *testing.T) {
		ro = create(t, e.aliceC, e.alice.ID, applicationcredentials.CreateOpts{Name: "ro", Roles: []applicationcredentials.Role{{ID: e.readerRole.ID}}})
		_, tok := e.appClient(t, ro.ID, ro.Secret)
		if got := e.inspect(t, tok).roleNames(); !slices.Equal(got, []string{"reader"}) {
			t.Fatalf("token roles = %v, want [reader]", got)
		}
		for _, c := range []struct {
			name string
			role applicationcredentials.Role
		}{{"a role the user lacks", applicationcredentials.Role{Name: "admin"}}, {"an unknown role", applicationcredentials.Role{Name: "no-such-role"}}} {
			t.Run(c.name, func(t *testing.T) {
				_, err := applicationcredentials.Create(ctx, e.aliceC, e.alice.ID, applicationcredentials.CreateOpts{Name: "x", Roles: []applicationcredentials.Role{c.role}}).Extract()
				if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
					t.Fatalf("create = %v, want 400 as Keystone", err)
				}
			})
		}
	})
	t.Run("tokens hold the roles the user still has", func(t *testing.T) {
		if err := roles.Unassign(ctx, e.adminC, e.readerRole.ID, roles.UnassignOpts{UserID: e.alice.ID, ProjectID: e.proj.ID}).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if ok, _ := tokens.Validate(ctx, e.adminC, restrictedTok); ok {
			t.Error("a token from before the role went still validates")
		}
		// reader is no longer granted but member implies it: the
		// reader-only credential still logs in, as with Keystone.
		_, tok := e.appClient(t, cred.ID, cred.Secret)
		if got := e.inspect(t, tok).roleNames(); !slices.Equal(got, []string{"member", "reader"}) {
			t.Errorf("token roles = %v, want [member reader]", got)
		}
		if ro != nil {
			_, tok := e.appClient(t, ro.ID, ro.Secret)
			if got := e.inspect(t, tok).roleNames(); !slices.Equal(got, []string{"reader"}) {
				t.Errorf("reader-only credential's token roles = %v, want [reader]", got)
			}
		}
		if err := roles.Assign(ctx, e.adminC, e.readerRole.ID, roles.AssignOpts{UserID: e.alice.ID, ProjectID: e.proj.ID}).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("expiry", func(t *testing.T) {
		past := time.Now().Add(-time.Minute)
		_, err := applicationcredentials.Create(ctx, e.aliceC, e.alice.ID, applicationcredentials.CreateOpts{Name: "old", ExpiresAt: &past}).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
			t.Fatalf("expiry in the past = %v, want 400", err)
		}
		soon := time.Now().UTC().Add(10 * time.Minute).Truncate(time.Microsecond)
		ac := create(t, e.aliceC, e.alice.ID, applicationcredentials.CreateOpts{Name: "short", ExpiresAt: &soon})
		if !ac.ExpiresAt.Equal(soon) {
			t.Fatalf("expires_at = %v, want %v", ac.ExpiresAt, soon)
		}
		_, tok := e.appClient(t, ac.ID, ac.Secret)
		exp, err := time.Parse("2006-01-02T15:04:05.000000Z", e.inspect(t, tok).ExpiresAt)
		if err != nil || exp.After(soon) {
			t.Fatalf("token expires at %v (%v), after its credential (%v)", exp, err, soon)
		}
	})
	t.Run("a disabled user's credential fails", func(t *testing.T) {
		off, on := false, true
		if _, err := users.Update(ctx, e.adminC, e.alice.ID, users.UpdateOpts{Enabled: &off}).Extract(); err != nil {
			t.Fatal(err)
		}
		_, err := e.appLogin(gophercloud.AuthOptions{ApplicationCredentialID: cred.ID, ApplicationCredentialSecret: cred.Secret})
		if _, uerr := users.Update(ctx, e.adminC, e.alice.ID, users.UpdateOpts{Enabled: &on}).Extract(); uerr != nil {
			t.Fatal(uerr)
		}
		if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("login while disabled = %v, want 401", err)
		}
		if _, err := e.appLogin(gophercloud.AuthOptions{ApplicationCredentialID: cred.ID, ApplicationCredentialSecret: cred.Secret}); err != nil {
			t.Fatalf("login once enabled again: %v", err)
		}
	})
	t.Run("another user's credentials are not found", func(t *testing.T) {
		for _, owner := range []string{e.alice.ID, e.mallory.ID} {
			if _, err := applicationcredentials.Get(ctx, e.malC, owner, cred.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Errorf("mallory shows alice's under %s = %v, want 404", owner, err)
			}
			if err := applicationcredentials.Delete(ctx, e.malC, owner, cred.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Errorf("mallory deletes alice's under %s = %v, want 404", owner, err)
			}
		}
		if _, err := applicationcredentials.List(e.malC, e.alice.ID, nil).AllPages(ctx); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Errorf("mallory lists alice's = %v, want 403", err)
		}
		if _, err := applicationcredentials.Create(ctx, e.malC, e.alice.ID, applicationcredentials.CreateOpts{Name: "planted"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Errorf("mallory creates one for alice = %v, want 403", err)
		}
		if got, err := applicationcredentials.Get(ctx, e.adminC, e.alice.ID, cred.ID).Extract(); err != nil || got.ID != cred.ID {
			t.Errorf("cloud admin shows alice's = %+v, %v", got, err)
		}
	})
	t.Run("bad input names the field", func(t *testing.T) {
		cases := []struct {
			name  string
			body  any
			field string
		}{
			{"no name", map[string]any{"application_credential": map[string]any{"description": "x"}}, "application_credential.name"},
			{"no section", map[string]any{"name": "x"}, "application_credential"},
			{"bad expiry", map[string]any{"application_credential": map[string]any{"name": "x", "expires_at": "tomorrow"}}, "application_credential.expires_at"},
			{"role by id and name", map[string]any{"application_credential": map[string]any{"name": "x", "roles": []any{map[string]string{"id": e.memberRole.ID, "name": "member"}}}}, "application_credential.roles[0]"},
			{"access rule without a leading slash", map[string]any{"application_credential": map[string]any{"name": "x", "access_rules": []any{map[string]string{"service": "compute", "method": "GET", "path": "servers"}}}}, "application_credential.access_rules[0].path"},
		}
		p, err := e.login(t, "alice", "alice-password", "team-a")
		if err != nil {
			t.Fatal(err)
		}
		aliceTok := p.Token()
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				code, body := e.call(t, http.MethodPost, "/v3/users/"+e.alice.ID+"/application_credentials", aliceTok, c.body)
				if code != http.StatusBadRequest || !slices.Contains(errorFields(body), c.field) {
					t.Fatalf("create = %d %v, want 400 naming %s", code, body, c.field)
				}
			})
		}
	})
	t.Run("deleting revokes its tokens", func(t *testing.T) {
		_, tok := e.appClient(t, cred.ID, cred.Secret)
		if ok, err := tokens.Validate(ctx, e.adminC, tok); !ok || err != nil {
			t.Fatalf("fresh token validates = %v, %v", ok, err)
		}
		if err := applicationcredentials.Delete(ctx, e.aliceC, e.alice.ID, cred.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if ok, _ := tokens.Validate(ctx, e.adminC, tok); ok {
			t.Error("a token of a deleted credential still validates")
		}
		if _, err := e.appLogin(gophercloud.AuthOptions{ApplicationCredentialID: cred.ID, ApplicationCredentialSecret: cred.Secret}); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Errorf("login with a deleted credential = %v, want 401", err)
		}
		if _, err := applicationcredentials.Get(ctx, e.aliceC, e.alice.ID, cred.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Errorf("show deleted = %v, want 404", err)
		}
	})
}

// TestAppCredentialRevocationReachesReplicas: a credential deleted through
// one broker voids its tokens on another broker of the same store, even
// one that cached them.
func TestAppCredentialRevocationReachesReplicas(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()
	store := registry.NewMemory()
	a := newAppEnv(t, store)
	b := newEnv(t, store)
	cred := create(t, a.aliceC, a.alice.ID, applicationcredentials.CreateOpts{Name: "replicated"})
	_, tok := a.appClient(t, cred.ID, cred.Secret)
	if _, err := b.tokens.Validate(ctx, tok); err != nil {
		t.Fatalf("replica b refuses a token a issued: %v", err)
	}
	if err := applicationcredentials.Delete(ctx, a.aliceC, a.alice.ID, cred.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	// The bound starts after the revoke (setup under -race can take
	// longer), at twice the revocation watch's own staleness bound.
	deadline := time.Now().Add(2 * identity.RevocationStaleBound)
	for {
		_, err := b.tokens.Validate(ctx, tok)
		if errors.Is(err, identity.ErrUnauthorized) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica b still accepts a token of a deleted credential")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a correctness gate
	}
}
