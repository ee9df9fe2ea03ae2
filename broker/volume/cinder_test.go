package volume_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

type env struct {
	srv  *httptest.Server
	dir  *identity.Directory
	boot identity.Bootstrapped
}

// newEnv serves Keystone and Cinder with two local-cloud peers: "small"
// with 2 GiB of disk and "big" with 500 GiB.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	log := logrus.New()
	log.SetOutput(io.Discard)
	store := registry.NewMemory()
	reg := registry.NewPeerRegistry(store)
	snap := registry.NewPeerSnapshot(store, log)
	go func() { _ = snap.Run(ctx) }()
	inProcess := map[string]peers.Cloud{}
	for name, disk := range map[string]int{"small": 2, "big": 500} {
		cfg := localcloud.DevDefaults(t.TempDir())
		cfg.Name = name
		cfg.Hosts[0].DiskGiB = disk
		c, err := localcloud.New(cfg, fake.New(cfg.Hosts...), log)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		inProcess[name] = c
		capacity, err := c.Capacity(ctx)
		if err != nil {
			t.Fatal(err)
		}
		p, err := reg.Create(ctx, registry.Peer{Name: name, Kind: registry.KindLocal}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := reg.ReportHealth(ctx, p.ID, registry.Health{Status: registry.StatusUp, Capacity: &capacity, At: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		changed := snap.Changed() // before looking, or a change in between is missed
		ps := snap.View().List()
		if len(ps) == 2 && ps[0].Status == registry.StatusUp && ps[1].Status == registry.StatusUp {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("peers never up in the snapshot")
		}
	}
	pool := peers.NewPool(peers.PoolConfig{Source: snap, Credentials: reg, InProcess: inProcess, Log: log})
	pool.Reconcile(ctx)
	dir := identity.NewDirectory(store)
	boot, err := dir.Bootstrap(ctx, "admin-password", true)
	if err != nil {
		t.Fatal(err)
	}
	keystone := &identity.Keystone{Dir: dir, Tokens: identity.NewTokens(store, log), Catalog: identity.StaticCatalog(identity.DefaultServices), Log: log}
	cinder := &volume.Cinder{Pool: pool, Index: index.New(store), Placer: policy.Default{}, Auth: keystone.Authenticate, Log: log, BrokerID: "test-broker"}
	r := chi.NewRouter()
	r.Use(osapi.RequestID)
	r.Route("/v3", keystone.Routes)
	r.Route("/volume", cinder.Routes)
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return &env{srv: srv, dir: dir, boot: boot}
}

func (e *env) client(t *testing.T, user, password, project string) *gophercloud.ServiceClient {
	t.Helper()
	provider, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: e.srv.URL + "/v3", Username: user, Password: password, DomainName: "Default", TenantName: project,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := openstack.NewBlockStorageV3(provider, gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVolumesAcrossPeers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := e.client(t, "admin", "admin-password", "admin")

	// 10 GiB fits only on "big": placement must say so and put it there.
	v, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 10, Name: "data", Metadata: map[string]string{"app": "db"}}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if v.AvailabilityZone != "big" || v.Size != 10 || v.Metadata["app"] != "db" {
		t.Fatalf("created = %+v; want 10 GiB on big with its metadata", v)
	}
	if _, ok := v.Metadata[peers.MetaID]; ok {
		t.Fatal("cloudmux's own metadata leaks into the API")
	}
	// Pinned by availability zone.
	small, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1, Name: "tiny", AvailabilityZone: "small"}, nil).Extract()
	if err != nil || small.AvailabilityZone != "small" {
		t.Fatalf("pinned create = %+v, %v", small, err)
	}
	got, err := volumes.Get(ctx, admin, v.ID).Extract()
	if err != nil || got.ID != v.ID || got.Name != "data" {
		t.Fatalf("get = %+v, %v", got, err)
	}
	pages, err := volumes.List(admin, volumes.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := volumes.ExtractVolumes(pages)
	if len(all) != 2 || all[0].ID != small.ID { // newest first
		t.Fatalf("list = %+v", all)
	}

	refusals := []struct {
		name string
		opts volumes.CreateOpts
		code int
	}{
		{"too big for every peer", volumes.CreateOpts{Size: 10000}, http.StatusRequestEntityTooLarge},
		{"zone too small", volumes.CreateOpts{Size: 10, AvailabilityZone: "small"}, http.StatusRequestEntityTooLarge},
		{"zero size", volumes.CreateOpts{Size: 0}, http.StatusBadRequest},
		{"unknown zone", volumes.CreateOpts{Size: 1, AvailabilityZone: "nope"}, http.StatusBadRequest},
		{"reserved metadata", volumes.CreateOpts{Size: 1, Metadata: map[string]string{"cloudmux_id": "x"}}, http.StatusBadRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := volumes.Create(ctx, admin, tc.opts, nil).Extract(); !gophercloud.ResponseCodeIs(err, tc.code) {
				t.Fatalf("create = %v, want %d", err, tc.code)
			}
		})
	}

	t.Run("another project sees nothing", func(t *testing.T) {
		p, err := e.dir.CreateProject(ctx, identity.Project{Name: "other", DomainID: identity.DefaultDomainID, Enabled: true})
		if err != nil {
			t.Fatal(err)
		}
		u, err := e.dir.CreateUser(ctx, identity.User{Name: "eve", DomainID: identity.DefaultDomainID, Enabled: true}, "eve-password")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: p.ID, RoleID: e.boot.Roles[identity.RoleMember].ID}); err != nil {
			t.Fatal(err)
		}
		eve := e.client(t, "eve", "eve-password", "other")
		pages, err := volumes.List(eve, volumes.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if vs, _ := volumes.ExtractVolumes(pages); len(vs) != 0 {
			t.Fatalf("eve sees %d volumes of another project", len(vs))
		}
		if _, err := volumes.Get(ctx, eve, v.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("eve reading another project's volume = %v, want 404", err)
		}
		if err := volumes.Delete(ctx, eve, v.ID, nil).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("eve deleting another project's volume = %v, want 404", err)
		}
	})

	t.Run("readers read, members write", func(t *testing.T) {
		u, err := e.dir.CreateUser(ctx, identity.User{Name: "rita", DomainID: identity.DefaultDomainID, Enabled: true}, "rita-password")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: e.boot.Project.ID, RoleID: e.boot.Roles[identity.RoleReader].ID}); err != nil {
			t.Fatal(err)
		}
		rita := e.client(t, "rita", "rita-password", "admin")
		if _, err := volumes.Get(ctx, rita, v.ID).Extract(); err != nil {
			t.Fatalf("reader show = %v", err)
		}
		if _, err := volumes.Create(ctx, rita, volumes.CreateOpts{Size: 1}, nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("reader create = %v, want 403", err)
		}
		if err := volumes.Delete(ctx, rita, v.ID, nil).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("reader delete = %v, want 403", err)
		}
	})

	for _, id := range []string{v.ID, small.ID} {
		if err := volumes.Delete(ctx, admin, id, nil).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := volumes.Get(ctx, admin, v.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get after delete = %v, want 404", err)
	}
}
