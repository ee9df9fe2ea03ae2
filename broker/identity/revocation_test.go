package identity_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/registry"
)

// TestDeletingDomainRoleVoidsHoldersTokens: a token that got "member"
// through a domain-specific role must die with that role.
func TestDeletingDomainRoleVoidsHoldersTokens(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	dom, err := domains.Create(ctx, e.adminC, domains.CreateOpts{Name: "d1"}).Extract()
	mustOK(t, "domain", err)
	p, err := projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "p1", DomainID: dom.ID}).Extract()
	mustOK(t, "project", err)
	u, err := users.Create(ctx, e.adminC, users.CreateOpts{Name: "u1", DomainID: dom.ID, Password: "u1-pw"}).Extract()
	mustOK(t, "user", err)
	dr, err := roles.Create(ctx, e.adminC, roles.CreateOpts{Name: "ops", DomainID: dom.ID}).Extract()
	mustOK(t, "domain role", err)
	mustOK(t, "ops implies member", roles.CreateRoleInferenceRule(ctx, e.adminC, dr.ID, e.memberRole.ID).Err)
	mustOK(t, "grant", roles.Assign(ctx, e.adminC, dr.ID, roles.AssignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr())
	tok, v, err := e.scopedToken(t, "u1", dom.ID, "u1-pw", tokens.Scope{ProjectID: p.ID})
	mustOK(t, "login", err)
	t.Logf("token roles before: %v", v.roleNames())
	mustOK(t, "delete the domain role", roles.Delete(ctx, e.adminC, dr.ID).ExtractErr())
	if _, err := tokens.Get(ctx, e.adminC, tok).Extract(); err == nil {
		t.Fatalf("the token still validates, with roles %v, after the role that gave them was deleted", e.inspect(t, tok).roleNames())
	}
}

// TestDeletingImpliedRuleVoidsHoldersTokens: removing "ops implies member"
// must take member away from tokens that hold it only through the rule.
func TestDeletingImpliedRuleVoidsHoldersTokens(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	ops, err := roles.Create(ctx, e.adminC, roles.CreateOpts{Name: "ops"}).Extract()
	mustOK(t, "role", err)
	mustOK(t, "ops implies member", roles.CreateRoleInferenceRule(ctx, e.adminC, ops.ID, e.memberRole.ID).Err)
	u, err := users.Create(ctx, e.adminC, users.CreateOpts{Name: "u2", DomainID: identity.DefaultDomainID, Password: "u2-pw"}).Extract()
	mustOK(t, "user", err)
	mustOK(t, "grant", roles.Assign(ctx, e.adminC, ops.ID, roles.AssignOpts{UserID: u.ID, ProjectID: e.proj.ID}).ExtractErr())
	tok, _, err := e.scopedToken(t, "u2", identity.DefaultDomainID, "u2-pw", tokens.Scope{ProjectID: e.proj.ID})
	mustOK(t, "login", err)
	mustOK(t, "delete rule", roles.DeleteRoleInferenceRule(ctx, e.adminC, ops.ID, e.memberRole.ID).ExtractErr())
	if _, err := tokens.Get(ctx, e.adminC, tok).Extract(); err == nil {
		if got := e.inspect(t, tok).roleNames(); slices.Contains(got, "member") {
			t.Fatalf("the token still carries member (%v) after the rule that implied it was deleted", got)
		}
	}
}

// TestDeletingDomainVoidsItsGroupMembersTokens: a group of domain X holds
// admin on a project of the default domain; alice (default domain) is a
// member. Deleting domain X deletes the group: alice's token must die.
func TestDeletingDomainVoidsItsGroupMembersTokens(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	x, err := domains.Create(ctx, e.adminC, domains.CreateOpts{Name: "x"}).Extract()
	mustOK(t, "domain", err)
	g, err := groups.Create(ctx, e.adminC, groups.CreateOpts{Name: "gx", DomainID: x.ID}).Extract()
	mustOK(t, "group", err)
	q, err := projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "q", DomainID: identity.DefaultDomainID}).Extract()
	mustOK(t, "project", err)
	admin := e.boot.Roles[identity.RoleAdmin]
	mustOK(t, "grant group admin on q", roles.Assign(ctx, e.adminC, admin.ID, roles.AssignOpts{GroupID: g.ID, ProjectID: q.ID}).ExtractErr())
	mustOK(t, "alice joins", users.AddToGroup(ctx, e.adminC, g.ID, e.alice.ID).ExtractErr())
	tok, v, err := e.scopedToken(t, "alice", identity.DefaultDomainID, "alice-password", tokens.Scope{ProjectID: q.ID})
	mustOK(t, "alice on q", err)
	t.Logf("alice's roles on q: %v", v.roleNames())
	f := false
	_, err = domains.Update(ctx, e.adminC, x.ID, domains.UpdateOpts{Enabled: &f}).Extract()
	mustOK(t, "disable x", err)
	mustOK(t, "delete x", domains.Delete(ctx, e.adminC, x.ID).ExtractErr())
	if err := groups.Get(ctx, e.adminC, g.ID).Err; !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("group after domain delete: %v", err)
	}
	if _, err := tokens.Get(ctx, e.adminC, tok).Extract(); err == nil {
		t.Fatalf("alice's token still validates with %v after the group that gave it was deleted with its domain", e.inspect(t, tok).roleNames())
	}
}

// TestBuiltinRolesAreNotRenamed: the bootstrap roles may not be deleted
// ("the broker's own authorization names them"), but a rename has the
// same effect and is accepted.
func TestBuiltinRolesAreNotRenamed(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	r, err := roles.Update(ctx, e.adminC, e.memberRole.ID, roles.UpdateOpts{Name: "staff"}).Extract()
	if err != nil && !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("renaming member: %v, want 403", err)
	}
	if _, err := roles.Update(ctx, e.adminC, e.memberRole.ID, roles.UpdateOpts{Description: new("the member role")}).Extract(); err != nil {
		t.Fatalf("a bootstrap role's description is not its name: %v", err)
	}
	if err == nil {
		_, v, lerr := e.scopedToken(t, "mallory", identity.DefaultDomainID, "mallory-password", tokens.Scope{ProjectID: e.proj.ID})
		mustOK(t, "login", lerr)
		t.Fatalf("renaming bootstrap role member to %q was accepted; mallory's new token roles %v (no member: every member-only API now refuses her)", r.Name, v.roleNames())
	}
}

// replicaKeystone serves Keystone over a Cache on store, as a broker
// replica does, and returns its URL and the cache's stop function.
func replicaKeystone(t *testing.T, store registry.Store) (string, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := logrus.New()
	log.SetOutput(io.Discard)
	cacheCtx, stopCache := context.WithCancel(ctx)
	cache := identity.NewCache(store, log)
	stopped := make(chan struct{})
	go func() { _ = cache.Run(cacheCtx); close(stopped) }()
	if err := cache.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	dir := identity.NewDirectory(cache, cheapHashes)
	toks := identity.NewTokens(store, log)
	go func() { _ = toks.Run(ctx, 0) }()
	k := &identity.Keystone{Dir: dir, Tokens: toks, Catalog: dir.Catalog, Log: log}
	r := chi.NewRouter()
	r.Use(osapi.RequestID)
	r.Route("/v3", k.Routes)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return srv.URL, func() { stopCache(); <-stopped }
}

// TestTokenIssuedOnLaggingReplicaReadsTheStore: alice is removed from a group on
// replica A (which voids her tokens); replica B's memory has not seen the
// removal yet (its watch is between answers: up to mirrorMaxWait, 5 s, on
// a busy prefix; here it is held still to make that window deterministic).
// B must issue from the Store: a token carrying the removed role would
// outlive the revocation event, on every replica, for its whole life.
func TestTokenIssuedOnLaggingReplicaReadsTheStore(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	e := newAppEnv(t, store)
	g, err := groups.Create(ctx, e.adminC, groups.CreateOpts{Name: "g", DomainID: identity.DefaultDomainID}).Extract()
	mustOK(t, "group", err)
	q, err := projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "q2", DomainID: identity.DefaultDomainID}).Extract()
	mustOK(t, "project", err)
	admin := e.boot.Roles[identity.RoleAdmin]
	mustOK(t, "grant group admin on q2", roles.Assign(ctx, e.adminC, admin.ID, roles.AssignOpts{GroupID: g.ID, ProjectID: q.ID}).ExtractErr())
	mustOK(t, "alice joins", users.AddToGroup(ctx, e.adminC, g.ID, e.alice.ID).ExtractErr())

	bURL, holdB := replicaKeystone(t, store)
	holdB() // B's watch will not deliver what follows

	mustOK(t, "alice leaves (on A)", users.RemoveFromGroup(ctx, e.adminC, g.ID, e.alice.ID).ExtractErr())
	bClient := *e.adminC
	bClient.IdentityEndpoint = bURL + "/v3/"
	bClient.Endpoint = bURL + "/v3/"
	res := tokens.Create(ctx, &bClient, &tokens.AuthOptions{Username: "alice", DomainID: identity.DefaultDomainID, Password: "alice-password", Scope: tokens.Scope{ProjectID: q.ID}})
	if res.Err != nil {
		if !gophercloud.ResponseCodeIs(res.Err, http.StatusUnauthorized) {
			t.Fatalf("B on alice's login to q2: %v, want 401", res.Err)
		}
		return
	}
	tok, _ := res.ExtractTokenID()
	// Validated on A, whose memory and revocation events are current.
	if _, err := tokens.Get(ctx, e.adminC, tok).Extract(); err == nil {
		t.Fatalf("a token B issued after alice left the group validates on A with %v", e.inspect(t, tok).roleNames())
	}
}

// TestDeletingDomainDeletesItsUsersCredentials: deleting a user deletes its EC2
// and application credentials (forgetCredentialsOf); deleting its domain,
// which deletes the user, does not, and no collector ever will.
func TestDeletingDomainDeletesItsUsersCredentials(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	e := newAppEnv(t, store)
	x, err := domains.Create(ctx, e.adminC, domains.CreateOpts{Name: "x"}).Extract()
	mustOK(t, "domain", err)
	p, err := projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "px", DomainID: x.ID}).Extract()
	mustOK(t, "project", err)
	u, err := users.Create(ctx, e.adminC, users.CreateOpts{Name: "ux", DomainID: x.ID, Password: "ux-pw"}).Extract()
	mustOK(t, "user", err)
	mustOK(t, "grant", roles.Assign(ctx, e.adminC, e.memberRole.ID, roles.AssignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr())
	if _, err := identity.NewEC2Credentials(e.dir).Create(ctx, u.ID, p.ID); err != nil {
		t.Fatal(err)
	}
	f := false
	_, err = domains.Update(ctx, e.adminC, x.ID, domains.UpdateOpts{Enabled: &f}).Extract()
	mustOK(t, "disable x", err)
	mustOK(t, "delete x", domains.Delete(ctx, e.adminC, x.ID).ExtractErr())
	for _, prefix := range []string{"identity/ec2-credentials/", "identity/ec2-credentials-by-user/" + u.ID} {
		kvs, _, err := store.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) > 0 {
			t.Errorf("%d records left under %s after the user's domain was deleted", len(kvs), prefix)
		}
	}
}

// TestDeletedUsersCredentialsCollector: a user deleted without its
// credentials (Directory.DeleteUser, not the API) leaves EC2 and
// application credentials; the collector removes them, and only them.
func TestDeletedUsersCredentialsCollector(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	e := newAppEnv(t, store)
	ec2 := identity.NewEC2Credentials(e.dir)
	apps := identity.NewAppCredentials(e.dir)
	owned := func(u identity.User) {
		t.Helper()
		_, err := ec2.Create(ctx, u.ID, e.proj.ID)
		mustOK(t, "ec2 credential", err)
		tok := identity.Token{UserID: u.ID, ProjectID: e.proj.ID, Roles: []identity.Role{e.memberRole}}
		_, _, err = apps.Create(ctx, tok, identity.AppCredentialRequest{Name: "ci"})
		mustOK(t, "application credential", err)
	}
	owned(e.alice)
	owned(e.mallory)
	mustOK(t, "delete alice (directory only)", e.dir.DeleteUser(ctx, e.alice.ID))
	gc := identity.DeletedUsersCredentials{EC2: ec2, Tokens: e.tokens}
	cases := []struct {
		name    string
		removed int
	}{
		{"alice's leftovers", 1},
		{"nothing more", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n, err := gc.Collect(ctx, time.Now())
			mustOK(t, "collect", err)
			if n != c.removed {
				t.Fatalf("removed the leftovers of %d users, want %d", n, c.removed)
			}
			for _, u := range []identity.User{e.alice, e.mallory} {
				ecs, err := ec2.List(ctx, u.ID)
				mustOK(t, "list ec2", err)
				acs, err := apps.List(ctx, u.ID)
				mustOK(t, "list app", err)
				if want := map[string]int{e.alice.ID: 0, e.mallory.ID: 1}[u.ID]; len(ecs) != want || len(acs) != want {
					t.Errorf("%s: %d EC2 and %d application credentials, want %d each", u.Name, len(ecs), len(acs), want)
				}
			}
		})
	}
}
