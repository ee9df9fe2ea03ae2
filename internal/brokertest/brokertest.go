// Package brokertest builds what the broker's API tests share: a memory
// store, local-cloud peers (fake driver) registered, probed up and pooled,
// and Keystone bootstrapped, served over real HTTP with the API under test.
package brokertest

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/sirupsen/logrus"
	"golang.org/x/crypto/bcrypt"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// AdminPassword is the bootstrapped admin's password.
const AdminPassword = "admin-secret-pw"

// Peer describes one local-cloud peer of the environment.
type Peer struct {
	Name    string
	DiskGiB int // host disk; 0 keeps the fake's default
	// VCPUs and RAMMiB size the host as DiskGiB does (benchmarks hold
	// thousands of servers).
	VCPUs, RAMMiB int
	// Labels are the peer record's labels (placement reads them).
	Labels map[string]string
	// Transition is how long the fake driver's guests take to boot, stop,
	// reboot (fake.Driver.SetTransitionTime); 0 settles them at once.
	Transition time.Duration
	// Wrap, when set, serves the peer through a wrapper (a stuck or
	// failing cloud) instead of the local cloud itself.
	Wrap func(*localcloud.Cloud) peers.Cloud
	// Fake, when set, is handed the peer's fake driver before the cloud
	// starts (a test injects faults: a teardown held, a host failing).
	Fake func(*fake.Driver)
}

// Env is a running environment.
type Env struct {
	Ctx   context.Context
	Log   *logrus.Logger
	Store *registry.Memory
	// Index is the resource index, served from memory as brokers run it.
	Index    *index.Index
	Pool     *peers.Pool
	Dir      *identity.Directory
	Boot     identity.Bootstrapped
	Keystone *identity.Keystone
	Server   *httptest.Server
}

// New builds the environment and serves Keystone at /v3 plus whatever
// mount adds (the API under test), under the broker's request IDs.
func New(t testing.TB, ps []Peer, mount func(e *Env, r chi.Router)) *Env {
	t.Helper()
	// No deadline of its own: a test that hangs is stopped by go test's
	// -timeout, and a fixed one failed slow but correct runs (the
	// openstack CLI steps of one test took 4 minutes on a loaded machine).
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &Env{Ctx: ctx, Log: logrus.New(), Store: registry.NewMemory()}
	e.Log.SetOutput(io.Discard)
	reg := registry.NewPeerRegistry(e.Store)
	snap := registry.NewPeerSnapshot(e.Store, e.Log)
	go func() { _ = snap.Run(ctx) }()
	inProcess := map[string]peers.Cloud{}
	for _, p := range ps {
		cfg := localcloud.DevDefaults(t.TempDir())
		cfg.Name = p.Name
		if p.DiskGiB > 0 {
			cfg.Hosts[0].DiskGiB = p.DiskGiB
		}
		cfg.Hosts[0].VCPUs, cfg.Hosts[0].RAMMiB = p.VCPUs, p.RAMMiB
		fd := fake.New(cfg.Hosts...)
		fd.SetTransitionTime(p.Transition)
		if p.Fake != nil {
			p.Fake(fd)
		}
		c, err := localcloud.New(cfg, fd, e.Log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		inProcess[p.Name] = c
		if p.Wrap != nil {
			inProcess[p.Name] = p.Wrap(c)
		}
		capacity, err := c.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rec, err := reg.Create(ctx, registry.Peer{Name: p.Name, Kind: registry.KindLocal, Labels: p.Labels}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.ReportHealth(ctx, rec.ID, registry.Health{Status: registry.StatusUp, Capacity: &capacity, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		changed := snap.Changed() // before looking, or a change in between is missed
		if v := snap.View(); v.Len() == len(ps) && allUp(v.List()) {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("the snapshot never saw every peer up")
		}
	}
	e.Pool = peers.NewPool(peers.PoolConfig{Source: snap, Credentials: reg, InProcess: inProcess, Log: e.Log})
	e.Pool.Reconcile(ctx)

	e.Index = index.New(e.Store).WithLog(e.Log)
	e.Start(t, e.Index)
	// bcrypt's least cost: a default-cost login is seconds of CPU under
	// the race detector (identity.WithHashCost; identity's own tests run
	// the production cost).
	e.Dir = identity.NewDirectory(e.Store, identity.WithHashCost(bcrypt.MinCost))
	boot, err := e.Dir.Bootstrap(ctx, AdminPassword, true)
	if err != nil {
		t.Fatal(err)
	}
	e.Boot = boot
	e.Keystone = &identity.Keystone{Dir: e.Dir, Tokens: identity.NewTokens(e.Store, e.Log),
		Catalog: identity.StaticCatalog(identity.DefaultServices), Log: e.Log}
	r := chi.NewRouter()
	r.Use(osapi.RequestID)
	r.Route("/v3", e.Keystone.Routes)
	if mount != nil {
		mount(e, r)
	}
	e.Server = httptest.NewServer(r)
	t.Cleanup(e.Server.Close)
	return e
}

func allUp(ps []registry.Peer) bool {
	for _, p := range ps {
		if p.Status != registry.StatusUp {
			return false
		}
	}
	return true
}

// Provider logs in with gophercloud as user on project.
func (e *Env) Provider(t testing.TB, user, password, project string) *gophercloud.ProviderClient {
	t.Helper()
	p, err := openstack.AuthenticatedClient(e.Ctx, gophercloud.AuthOptions{
		IdentityEndpoint: e.Server.URL + "/v3", Username: user, Password: password, DomainName: "Default", TenantName: project,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Member creates a project (if needed) and a user holding role on it, and
// returns the user's password.
func (e *Env) Member(t testing.TB, user, project, role string) string {
	t.Helper()
	p, err := e.Dir.FindProject(e.Ctx, identity.DefaultDomainID, project)
	if err != nil {
		if p, err = e.Dir.CreateProject(e.Ctx, identity.Project{Name: project, DomainID: identity.DefaultDomainID, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	password := fmt.Sprintf("%s-password", user)
	u, err := e.Dir.CreateUser(e.Ctx, identity.User{Name: user, DomainID: identity.DefaultDomainID, Enabled: true}, password)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Dir.Grant(e.Ctx, identity.Assignment{UserID: u.ID, ProjectID: p.ID, RoleID: e.Boot.Roles[role].ID}); err != nil {
		t.Fatal(err)
	}
	return password
}

// ExternalNetworks serves a local cloud whose network named "public" is a
// provider's external network (visible to all, shared with none), as a
// remote OpenStack peer reports one; the local cloud makes none itself.
type ExternalNetworks struct{ *localcloud.Cloud }

func (x ExternalNetworks) mark(n peers.Network) peers.Network {
	if n.Name == "public" {
		n.External, n.Shared = true, false
	}
	return n
}

// GetNetwork implements peers.Networks.
func (x ExternalNetworks) GetNetwork(ctx context.Context, id string) (peers.Network, error) {
	n, err := x.Cloud.GetNetwork(ctx, id)
	return x.mark(n), err
}

// ListNetworks implements peers.Networks.
func (x ExternalNetworks) ListNetworks(ctx context.Context, opts peers.ListOptions) ([]peers.Network, error) {
	ns, err := x.Cloud.ListNetworks(ctx, opts)
	for i := range ns {
		ns[i] = x.mark(ns[i])
	}
	return ns, err
}

// Runner is state a broker keeps in memory from a store watch (the
// index, keypairs, attributes).
type Runner interface {
	Run(ctx context.Context) error
	WaitReady(ctx context.Context) error
}

// Start runs each r for the environment's life and waits for its first
// load, as serve does.
func (e *Env) Start(t testing.TB, rs ...Runner) {
	t.Helper()
	for _, r := range rs {
		go func() { _ = r.Run(e.Ctx) }()
		if err := r.WaitReady(e.Ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// Seeded describes local-cloud peers named names, each seeded (the
// image, flavors and network a fresh cloud offers) before it joins.
func Seeded(t testing.TB, names ...string) []Peer {
	var ps []Peer
	for _, name := range names {
		ps = append(ps, Peer{Name: name, Wrap: func(c *localcloud.Cloud) peers.Cloud {
			if _, err := c.Seed(context.Background()); err != nil {
				t.Fatal(err)
			}
			return c
		}})
	}
	return ps
}
