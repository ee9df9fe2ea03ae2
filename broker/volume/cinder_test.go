package volume_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// newEnv serves Keystone and Cinder with two local-cloud peers: "small"
// with 2 GiB of disk and "big" with 500 GiB.
func newEnv(t *testing.T) *brokertest.Env {
	t.Helper()
	return brokertest.New(t, []brokertest.Peer{{Name: "small", DiskGiB: 2}, {Name: "big", DiskGiB: 500}}, func(e *brokertest.Env, r chi.Router) {
		svc := &volume.Service{Pool: e.Pool, Index: index.New(e.Store), Placer: policy.Default{}, Store: e.Store, Log: e.Log, BrokerID: "test-broker",
			Quota: quota.NewLedger(e.Store, "test-broker", e.Log)}
		cinder := &volume.Cinder{Volumes: svc, Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/volume", cinder.Routes)
	})
}

func client(t *testing.T, e *brokertest.Env, user, password, project string) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewBlockStorageV3(e.Provider(t, user, password, project), gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVolumesAcrossPeers(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")

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
		pw := e.Member(t, "eve", "other", identity.RoleMember)
		eve := client(t, e, "eve", pw, "other")
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

	t.Run("extend", func(t *testing.T) {
		if err := volumes.ExtendSize(ctx, admin, small.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
			t.Fatalf("extend 1 -> 2 GiB: %v", err)
		}
		for {
			got, err := volumes.Get(ctx, admin, small.ID).Extract()
			if err != nil {
				t.Fatal(err)
			}
			if got.Size == 2 && got.Status == "available" {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("volume never reached 2 GiB available: %+v", got)
			}
			time.Sleep(10 * time.Millisecond) // polling a transition, not a correctness gate
		}
		for _, tc := range []struct {
			name string
			size int
			code int
		}{
			{"shrink refused", 1, http.StatusBadRequest},
			{"beyond the peer's disk", 100, http.StatusRequestEntityTooLarge},
		} {
			t.Run(tc.name, func(t *testing.T) {
				err := volumes.ExtendSize(ctx, admin, small.ID, volumes.ExtendSizeOpts{NewSize: tc.size}).ExtractErr()
				if !gophercloud.ResponseCodeIs(err, tc.code) {
					t.Fatalf("extend to %d = %v, want %d", tc.size, err, tc.code)
				}
			})
		}
	})
	t.Run("paging and filters", func(t *testing.T) {
		pages, err := volumes.List(admin, volumes.ListOpts{Limit: 1}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if vs, _ := volumes.ExtractVolumes(pages); len(vs) != 2 {
			t.Fatalf("paging one at a time found %d volumes, want 2", len(vs))
		}
		one, err := volumes.List(admin, volumes.ListOpts{Name: "data"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if vs, _ := volumes.ExtractVolumes(one); len(vs) != 1 || vs[0].ID != v.ID {
			t.Fatalf("name filter = %+v", vs)
		}
		resp, err := admin.Get(ctx, admin.ServiceURL("volumes")+"?limit=abc", nil, nil)
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
			t.Fatalf("limit=abc = %v %v, want 400", resp, err)
		}
	})
	t.Run("only admins see the owning project", func(t *testing.T) {
		pw := e.Member(t, "mo", "admin", identity.RoleMember)
		mo := client(t, e, "mo", pw, "admin")
		raw := func(c *gophercloud.ServiceClient) map[string]any {
			res := volumes.Get(ctx, c, v.ID)
			if res.Err != nil {
				t.Fatal(res.Err)
			}
			return res.Body.(map[string]any)["volume"].(map[string]any)
		}
		if _, ok := raw(mo)["os-vol-tenant-attr:tenant_id"]; ok {
			t.Fatal("a member sees the admin-only tenant attribute")
		}
		if raw(admin)["os-vol-tenant-attr:tenant_id"] == nil {
			t.Fatal("the cloud admin does not see the owning project")
		}
	})
	t.Run("readers read, members write", func(t *testing.T) {
		pw := e.Member(t, "rita", "admin", identity.RoleReader)
		rita := client(t, e, "rita", pw, "admin")
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

// TestPathProject: another project's ID in a served path is refused; a
// path nothing serves is Cinder's 404 whatever its first segment is.
func TestPathProject(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	p, err := e.Dir.FindProject(e.Ctx, identity.DefaultDomainID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	own := p.ID
	tests := []struct {
		name, path string
		want       int
	}{
		{"own project", "/volume/v3/" + own + "/volumes", http.StatusOK},
		{"another project", "/volume/v3/someone-else/volumes", http.StatusForbidden},
		{"another project, deeper", "/volume/v3/someone-else/volumes/detail", http.StatusForbidden},
		{"unknown path", "/volume/v3/no/such/thing", http.StatusNotFound},
		{"unknown path in own project", "/volume/v3/" + own + "/no-such-thing", http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := admin.Request(ctx, "GET", e.Server.URL+tc.path, &gophercloud.RequestOpts{OkCodes: []int{tc.want}, KeepResponseBody: true})
			if err != nil {
				t.Fatalf("GET %s: %v", tc.path, err)
			}
			resp.Body.Close()
		})
	}
}
