package identity_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/registry"
)

const adminPassword = "admin-secret-pw"

// cheapHashes makes a test directory hash at bcrypt's least cost: under
// the race detector a default-cost hash is seconds of CPU, and the tests
// log in hundreds of times. TestDefaultHashCost runs the production cost.
var cheapHashes = identity.WithHashCost(bcrypt.MinCost)

type env struct {
	k      *identity.Keystone
	srv    *httptest.Server
	dir    *identity.Directory
	tokens *identity.Tokens
	boot   identity.Bootstrapped
	// limits are the quota ledger's limits unified limits serve.
	limits *quota.Limits
}

// newEnv serves Keystone over real HTTP on a memory store; replicas > 1
// start more brokers on the same store (as replicas on one Consul).
func newEnv(t *testing.T, store registry.Store) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	log := logrus.New()
	log.SetOutput(io.Discard)
	dir := identity.NewDirectory(store, cheapHashes)
	boot, err := dir.Bootstrap(ctx, adminPassword, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := dir.SeedCatalog(ctx, identity.DefaultServices); err != nil {
		t.Fatal(err)
	}
	toks := identity.NewTokens(store, log)
	go func() { _ = toks.Run(ctx, time.Hour) }()
	limits := quota.NewLimits(store, log)
	go func() { _ = limits.Run(ctx) }()
	if err := limits.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	k := &identity.Keystone{Dir: dir, Tokens: toks, Catalog: dir.Catalog, Log: log, Limits: limits}
	r := chi.NewRouter()
	r.Use(osapi.RequestID)
	r.Get("/", k.Versions)
	r.Route("/v3", k.Routes)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{k: k, srv: srv, dir: dir, tokens: toks, boot: boot, limits: limits}
}

func (e *env) login(t *testing.T, user, password, project string) (*gophercloud.ProviderClient, error) {
	t.Helper()
	return openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: e.srv.URL + "/v3", Username: user, Password: password,
		DomainName: "Default", TenantName: project,
	})
}

func TestGophercloudFlows(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, registry.NewMemory())
	provider, err := e.login(t, "admin", adminPassword, "admin")
	if err != nil {
		t.Fatalf("gophercloud authentication: %v", err)
	}
	idc, err := openstack.NewIdentityV3(provider, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("catalog resolves every service", func(t *testing.T) {
		compute, err := openstack.NewComputeV2(provider, gophercloud.EndpointOpts{Region: identity.Region})
		if err != nil || !strings.HasSuffix(strings.TrimSuffix(compute.Endpoint, "/"), "/compute/v2.1") {
			t.Fatalf("compute endpoint = %v, %v", compute, err)
		}
		res := tokens.Get(ctx, idc, provider.Token())
		cat, err := res.ExtractServiceCatalog()
		if err != nil || len(cat.Entries) != len(identity.DefaultServices) {
			t.Fatalf("catalog = %+v, %v", cat, err)
		}
		// The object store's URL is the token's project's account.
		p, err := res.ExtractProject()
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range cat.Entries {
			if svc.Type == "object-store" && !strings.HasSuffix(svc.Endpoints[0].URL, "/swift/v1/AUTH_"+p.ID) {
				t.Fatalf("object-store endpoint = %s; want the account AUTH_%s", svc.Endpoints[0].URL, p.ID)
			}
		}
	})
	t.Run("token validates, shows project and roles", func(t *testing.T) {
		res := tokens.Get(ctx, idc, provider.Token())
		p, err := res.ExtractProject()
		if err != nil || p.Name != "admin" {
			t.Fatalf("project = %+v, %v", p, err)
		}
		rs, err := res.ExtractRoles()
		// admin and the roles it implies, as Keystone's token lists them.
		if err != nil || len(rs) != 3 || rs[0].Name != "admin" || rs[1].Name != "member" || rs[2].Name != "reader" {
			t.Fatalf("roles = %+v, %v", rs, err)
		}
	})

	// A second project with a member user.
	proj, err := projects.Create(ctx, idc, projects.CreateOpts{Name: "team-b", DomainID: "default"}).Extract()
	if err != nil {
		t.Fatalf("create project: %v", err)
	}
	user, err := users.Create(ctx, idc, users.CreateOpts{Name: "bob", Password: "bob-password-1", DomainID: "default", DefaultProjectID: proj.ID}).Extract()
	if err != nil {
		t.Fatalf("create user: %v", err)
	}
	if err := roles.Assign(ctx, idc, e.boot.Roles[identity.RoleMember].ID, roles.AssignOpts{UserID: user.ID, ProjectID: proj.ID}).ExtractErr(); err != nil {
		t.Fatalf("assign role: %v", err)
	}
	pages, err := projects.List(idc, projects.ListOpts{Name: "team-b"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := projects.ExtractProjects(pages); len(ps) != 1 || ps[0].ID != proj.ID {
		t.Fatalf("project list by name = %+v", ps)
	}

	t.Run("member logs in to its project", func(t *testing.T) {
		bob, err := e.login(t, "bob", "bob-password-1", "team-b")
		if err != nil {
			t.Fatalf("bob: %v", err)
		}
		bidc, _ := openstack.NewIdentityV3(bob, gophercloud.EndpointOpts{})
		_, err = projects.Create(ctx, bidc, projects.CreateOpts{Name: "not-allowed"}).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("member creating a project = %v, want 403", err)
		}
		// Revoking its own token works and the token then fails.
		if err := tokens.Revoke(ctx, bidc, bob.Token()).Err; err != nil {
			t.Fatalf("revoke: %v", err)
		}
		if ok, _ := tokens.Validate(ctx, idc, bob.Token()); ok {
			t.Fatal("a revoked token still validates")
		}
	})
	t.Run("refusals", func(t *testing.T) {
		cases := []struct{ name, user, pw, project string }{
			{"wrong password", "admin", "nope-nope", "admin"},
			{"unknown user", "mallory", "whatever1", "admin"},
			{"no role on project", "bob", "bob-password-1", "admin"},
			{"unknown project", "admin", adminPassword, "no-such-project"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, err := e.login(t, c.user, c.pw, c.project)
				if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
					t.Fatalf("login = %v, want 401", err)
				}
			})
		}
	})
}

// TestRevocationReachesReplicas: a token revoked on one broker is refused
// by another broker on the same store, even one that cached it.
func TestRevocationReachesReplicas(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()
	store := registry.NewMemory()
	a, b := newEnv(t, store), newEnv(t, store)
	provider, err := a.login(t, "admin", adminPassword, "admin")
	if err != nil {
		t.Fatal(err)
	}
	token := provider.Token()
	if _, err := b.tokens.Validate(ctx, token); err != nil {
		t.Fatalf("replica b refuses a token a issued: %v", err)
	}
	if err := a.tokens.Revoke(ctx, token); err != nil {
		t.Fatal(err)
	}
	// The bound starts after the revoke (setup under -race can take
	// longer), at twice the revocation watch's own staleness bound.
	deadline := time.Now().Add(2 * identity.RevocationStaleBound)
	for {
		_, err := b.tokens.Validate(ctx, token)
		if errors.Is(err, identity.ErrUnauthorized) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica b still accepts a revoked token it had cached")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a correctness gate
	}
}

func TestSweepRemovesExpired(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	e := newEnv(t, store)
	tok, _, err := e.tokens.Issue(ctx, identity.Token{UserID: "u"}, -time.Second) // born expired
	if err != nil {
		t.Fatal(err)
	}
	live, _, err := e.tokens.Issue(ctx, identity.Token{UserID: "u"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n, err := e.tokens.Sweep(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1 removed", n, err)
	}
	if _, err := e.tokens.Validate(ctx, tok); !errors.Is(err, identity.ErrUnauthorized) {
		t.Fatalf("expired token = %v", err)
	}
	if _, err := e.tokens.Validate(ctx, live); err != nil {
		t.Fatalf("a live token was swept: %v", err)
	}
}

// TestDeletedUserLosesTokens: deleting a user voids its live tokens on every
// replica and removes its role assignments.
func TestDeletedUserLosesTokens(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()
	store := registry.NewMemory()
	a, b := newEnv(t, store), newEnv(t, store)
	u, err := a.dir.CreateUser(ctx, identity.User{Name: "carol", DomainID: identity.DefaultDomainID, Enabled: true}, "carol-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := a.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: a.boot.Project.ID, RoleID: a.boot.Roles[identity.RoleMember].ID}); err != nil {
		t.Fatal(err)
	}
	carol, err := a.login(t, "carol", "carol-password", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.tokens.Validate(ctx, carol.Token()); err != nil {
		t.Fatalf("replica b refuses carol's fresh token: %v", err)
	}
	admin, err := a.login(t, "admin", adminPassword, "admin")
	if err != nil {
		t.Fatal(err)
	}
	idc, _ := openstack.NewIdentityV3(admin, gophercloud.EndpointOpts{})
	if err := users.Delete(ctx, idc, u.ID).ExtractErr(); err != nil {
		t.Fatalf("delete user: %v", err)
	}
	deadline := time.Now().Add(2 * identity.RevocationStaleBound) // from the delete, not the setup
	for {
		_, err := b.tokens.Validate(ctx, carol.Token())
		if errors.Is(err, identity.ErrUnauthorized) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("replica b still accepts a deleted user's token")
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a correctness gate
	}
	if as, err := a.dir.Assignments(ctx, "", u.ID); err != nil || len(as) != 0 {
		t.Fatalf("assignments after delete = %v, %v", as, err)
	}
}

// TestProjectAdminIsNotCloudAdmin: the admin role on an ordinary project
// does not reach cloud-wide operations (Keystone's is_admin_project).
func TestProjectAdminIsNotCloudAdmin(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, registry.NewMemory())
	demo, err := e.dir.CreateProject(ctx, identity.Project{Name: "demo", DomainID: identity.DefaultDomainID, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.dir.CreateUser(ctx, identity.User{Name: "dana", DomainID: identity.DefaultDomainID, Enabled: true}, "dana-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: demo.ID, RoleID: e.boot.Roles[identity.RoleAdmin].ID}); err != nil {
		t.Fatal(err)
	}
	dana, err := e.login(t, "dana", "dana-password", "demo")
	if err != nil {
		t.Fatal(err)
	}
	idc, _ := openstack.NewIdentityV3(dana, gophercloud.EndpointOpts{})
	if _, err := projects.Create(ctx, idc, projects.CreateOpts{Name: "grab"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("project admin creating a project = %v, want 403", err)
	}
	err = roles.Assign(ctx, idc, e.boot.Roles[identity.RoleAdmin].ID, roles.AssignOpts{UserID: u.ID, ProjectID: e.boot.Project.ID}).ExtractErr()
	if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("project admin granting itself the admin project = %v, want 403", err)
	}
	admin, err := e.login(t, "admin", adminPassword, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := tokens.Validate(ctx, idc, admin.Token()); ok || err == nil {
		t.Fatal("a project admin validated the cloud admin's token")
	}
}

func TestTokensDieWithTheirGrounds(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, registry.NewMemory())
	admin, err := e.login(t, "admin", adminPassword, "admin")
	if err != nil {
		t.Fatal(err)
	}
	idc, _ := openstack.NewIdentityV3(admin, gophercloud.EndpointOpts{})
	mk := func(project, user string) (identity.Project, identity.User) {
		p, err := e.dir.CreateProject(ctx, identity.Project{Name: project, DomainID: identity.DefaultDomainID, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		u, err := e.dir.CreateUser(ctx, identity.User{Name: user, DomainID: identity.DefaultDomainID, Enabled: true}, user+"-password")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: p.ID, RoleID: e.boot.Roles[identity.RoleMember].ID}); err != nil {
			t.Fatal(err)
		}
		return p, u
	}
	t.Run("role removed", func(t *testing.T) {
		p, u := mk("p1", "u1")
		c, err := e.login(t, "u1", "u1-password", "p1")
		if err != nil {
			t.Fatal(err)
		}
		if err := roles.Unassign(ctx, idc, e.boot.Roles[identity.RoleMember].ID, roles.UnassignOpts{UserID: u.ID, ProjectID: p.ID}).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if _, err := e.tokens.Validate(ctx, c.Token()); !errors.Is(err, identity.ErrUnauthorized) {
			t.Fatalf("token after its role was removed = %v, want refused", err)
		}
	})
	t.Run("project deleted", func(t *testing.T) {
		p, _ := mk("p2", "u2")
		c, err := e.login(t, "u2", "u2-password", "p2")
		if err != nil {
			t.Fatal(err)
		}
		if err := projects.Delete(ctx, idc, p.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if _, err := e.tokens.Validate(ctx, c.Token()); !errors.Is(err, identity.ErrUnauthorized) {
			t.Fatalf("token of a deleted project = %v, want refused", err)
		}
	})
	t.Run("rescoping never extends a lifetime", func(t *testing.T) {
		first, err := e.tokens.Validate(ctx, admin.Token())
		if err != nil {
			t.Fatal(err)
		}
		res := tokens.Create(ctx, idc, &tokens.AuthOptions{TokenID: admin.Token(), Scope: tokens.Scope{ProjectName: "admin", DomainName: "Default"}})
		tok, err := res.ExtractToken()
		if err != nil {
			t.Fatal(err)
		}
		if tok.ExpiresAt.After(first.ExpiresAt.Add(time.Millisecond)) {
			t.Fatalf("rescoped token expires %v, after its parent %v", tok.ExpiresAt, first.ExpiresAt)
		}
	})
	t.Run("passwords bcrypt would truncate are refused", func(t *testing.T) {
		_, err := users.Create(ctx, idc, users.CreateOpts{Name: "long", Password: strings.Repeat("x", 80), DomainID: "default"}).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
			t.Fatalf("80-byte password = %v, want 400", err)
		}
	})
}
