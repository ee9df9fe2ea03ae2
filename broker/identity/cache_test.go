package identity_test

import (
	"context"
	"errors"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
	"github.com/cloudmux/cloudmux/registry/registrytest"
)

// replica is one broker's identity over a shared Store: its directory and
// EC2 credentials read through its own running Cache.
type replica struct {
	cache *identity.Cache
	dir   *identity.Directory
	creds *identity.EC2Credentials
	store *registrytest.CountingStore
}

func newReplica(ctx context.Context, t *testing.T, store registry.Store) *replica {
	t.Helper()
	counted := registrytest.NewCountingStore(store)
	cache := identity.NewCache(counted, logrus.New())
	go func() { _ = cache.Run(ctx) }()
	if err := cache.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	dir := identity.NewDirectory(cache, cheapHashes)
	return &replica{cache: cache, dir: dir, creds: identity.NewEC2Credentials(dir), store: counted}
}

// authorize is what the EC2 API does per request: look the access key up
// and resolve it to a token.
func (r *replica) authorize(ctx context.Context, access string) error {
	cred, err := r.creds.Lookup(ctx, access)
	if err != nil {
		return err
	}
	_, err = r.creds.Authorize(ctx, cred)
	return err
}

// caughtUp waits until r's cache holds every write made so far.
func (r *replica) caughtUp(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := r.cache.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestCacheAcrossReplicas: two brokers over one Store. Each serves a
// signed request's lookups from memory (no Store read once warm); a change
// made on one applies there at once (read-your-writes) and on the other
// as soon as its watch delivers it, whichever change revokes the keys.
func TestCacheAcrossReplicas(t *testing.T) {
	stores := []struct {
		name string
		open func(t *testing.T) registry.Store
	}{
		{"memory", func(*testing.T) registry.Store { return registry.NewMemory() }},
		{"consul", func(t *testing.T) registry.Store {
			if _, err := consultest.Binary(); err != nil {
				t.Skip("no Consul agent: ", err)
			}
			agent := consultest.Start(t)
			s, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: "replicas/"}, logrus.New())
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) { testCacheAcrossReplicas(t, st.open(t)) })
	}
}

func testCacheAcrossReplicas(t *testing.T, store registry.Store) {
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()
	a := newReplica(ctx, t, store)
	boot, err := a.dir.Bootstrap(ctx, "admin-password", true)
	if err != nil {
		t.Fatal(err)
	}
	b := newReplica(ctx, t, store)

	revocations := []struct {
		name   string
		revoke func(t *testing.T, u identity.User, p identity.Project, cred identity.EC2Credential)
		want   error
	}{
		{"credential deleted", func(t *testing.T, u identity.User, _ identity.Project, cred identity.EC2Credential) {
			if err := a.creds.Delete(ctx, u.ID, cred.Access); err != nil {
				t.Fatal(err)
			}
		}, identity.ErrNotFound},
		{"user disabled", func(t *testing.T, u identity.User, _ identity.Project, _ identity.EC2Credential) {
			if _, err := a.dir.UpdateUser(ctx, u.ID, func(u *identity.User) { u.Enabled = false }); err != nil {
				t.Fatal(err)
			}
		}, identity.ErrUnauthorized},
		{"project disabled", func(t *testing.T, _ identity.User, p identity.Project, _ identity.EC2Credential) {
			if _, err := a.dir.UpdateProject(ctx, p.ID, func(p *identity.Project) { p.Enabled = false }); err != nil {
				t.Fatal(err)
			}
		}, identity.ErrUnauthorized},
		{"role removed", func(t *testing.T, u identity.User, p identity.Project, _ identity.EC2Credential) {
			if err := a.dir.Ungrant(ctx, identity.Assignment{UserID: u.ID, ProjectID: p.ID, RoleID: boot.Roles[identity.RoleMember].ID}); err != nil {
				t.Fatal(err)
			}
		}, identity.ErrUnauthorized},
	}
	for i, tc := range revocations {
		t.Run(tc.name, func(t *testing.T) {
			name := "user-" + string(rune('a'+i))
			p, err := a.dir.CreateProject(ctx, identity.Project{Name: name, DomainID: identity.DefaultDomainID, Enabled: true})
			if err != nil {
				t.Fatal(err)
			}
			u, err := a.dir.CreateUser(ctx, identity.User{Name: name, DomainID: identity.DefaultDomainID, Enabled: true}, "password-"+name)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: p.ID, RoleID: boot.Roles[identity.RoleMember].ID}); err != nil {
				t.Fatal(err)
			}
			cred, err := a.creds.Create(ctx, u.ID, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The writer uses the keys at once; the other replica may not
			// have them from its watch yet, and reads the Store for them.
			for _, r := range []*replica{a, b} {
				if err := r.authorize(ctx, cred.Access); err != nil {
					t.Fatal(err)
				}
			}
			b.caughtUp(ctx, t)
			for _, r := range []*replica{a, b} {
				r.store.Reset()
				if err := r.authorize(ctx, cred.Access); err != nil {
					t.Fatal(err)
				}
				if n := r.store.Reads(); n != 0 {
					t.Fatalf("a warm request read the Store %d times", n)
				}
			}

			tc.revoke(t, u, p, cred)
			if err := a.authorize(ctx, cred.Access); !errors.Is(err, tc.want) {
				t.Fatalf("the writing replica: %v; want %v", err, tc.want)
			}
			b.caughtUp(ctx, t)
			if err := b.authorize(ctx, cred.Access); !errors.Is(err, tc.want) {
				t.Fatalf("the other replica, caught up: %v; want %v", err, tc.want)
			}
		})
	}
}

// TestCacheBeforeLoadReadsStore: a Cache that has not loaded (not Run
// yet) answers every read from the Store, including the group and
// inherited grants and the inference rules it otherwise reads from its
// indexes.
func TestCacheBeforeLoadReadsStore(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	admin := identity.NewDirectory(store, cheapHashes)
	_, err := admin.Bootstrap(ctx, "admin-password", false)
	mustOK(t, "bootstrap", err)
	p, err := admin.CreateProject(ctx, identity.Project{Name: "p", DomainID: identity.DefaultDomainID, Enabled: true})
	mustOK(t, "setup", err)
	u, err := admin.CreateUser(ctx, identity.User{Name: "u", DomainID: identity.DefaultDomainID, Enabled: true}, "u-password")
	mustOK(t, "setup", err)
	g, err := admin.CreateGroup(ctx, identity.Group{Name: "g", DomainID: identity.DefaultDomainID})
	mustOK(t, "setup", err)
	mustOK(t, "setup", admin.AddToGroup(ctx, g.ID, u.ID))
	ops, err := admin.CreateRole(ctx, identity.Role{Name: "ops"})
	mustOK(t, "setup", err)
	reader, err := admin.FindRole(ctx, identity.RoleReader)
	mustOK(t, "setup", err)
	_, err = admin.CreateImpliedRole(ctx, ops.ID, reader.ID)
	mustOK(t, "setup", err)
	mustOK(t, "setup", admin.Grant(ctx, identity.Assignment{GroupID: g.ID, DomainID: identity.DefaultDomainID, Inherited: true, RoleID: ops.ID}))

	cold := identity.NewDirectory(identity.NewCache(store, logrus.New()), cheapHashes)
	roles, err := cold.RolesOn(ctx, p.ID, u.ID)
	mustOK(t, "setup", err)
	var names []string
	for _, r := range roles {
		names = append(names, r.Name)
	}
	if len(names) != 2 || names[0] != "ops" || names[1] != identity.RoleReader {
		t.Fatalf("roles through an unloaded cache: %v, want [ops reader]", names)
	}
}

// TestCredentialListsReadMemory: a user's and an admin's credential
// listings are answered from the Cache, not by reading the Store's
// credential prefixes, once the replica has caught up.
func TestCredentialListsReadMemory(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := newReplica(ctx, t, registry.NewMemory())
	boot, err := r.dir.Bootstrap(ctx, "admin-password", true)
	if err != nil {
		t.Fatal(err)
	}
	p, err := r.dir.CreateProject(ctx, identity.Project{Name: "p", DomainID: identity.DefaultDomainID, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	creds := identity.NewCredentials(r.creds)
	var users []identity.User
	for _, name := range []string{"ann", "bob"} {
		u, err := r.dir.CreateUser(ctx, identity.User{Name: name, DomainID: identity.DefaultDomainID, Enabled: true}, "password-"+name)
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, u)
		if err := r.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: p.ID, RoleID: boot.Roles[identity.RoleMember].ID}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.creds.Create(ctx, u.ID, p.ID); err != nil { // an ec2 one, listed too
			t.Fatal(err)
		}
		for range 2 {
			if _, err := creds.Create(ctx, identity.Credential{UserID: u.ID, Type: "totp", Blob: "secret-of-" + name}); err != nil {
				t.Fatal(err)
			}
		}
	}
	r.caughtUp(ctx, t)
	tests := []struct {
		name string
		user string
		want int
	}{
		{name: "a user's own", user: users[0].ID, want: 3},
		{name: "an admin's, every user's", user: "", want: 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.store.Reset()
			got, err := creds.List(ctx, tt.user)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Fatalf("%d credentials, want %d", len(got), tt.want)
			}
			if n := r.store.Reads(); n != 0 {
				t.Fatalf("the listing read the Store %d times", n)
			}
		})
	}
}
