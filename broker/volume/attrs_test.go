package volume_test

import (
	"context"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry/registrytest"
)

// TestVolumeViewsReadNoStore: with the index and the attrs held in memory,
// showing and listing a project's volumes (renamed, so they have attrs)
// reads nothing from the Store, and shows the broker's attrs; a rename
// made through a second replica's service reaches the first one's memory
// through the watch.
func TestVolumeViewsReadNoStore(t *testing.T) {
	ctx := context.Background()
	var counted *registrytest.CountingStore
	var other *volume.Service
	var attrs *volume.AttrsMemory
	e := brokertest.New(t, []brokertest.Peer{{Name: "big", DiskGiB: 500}}, func(e *brokertest.Env, r chi.Router) {
		counted = registrytest.NewCountingStore(e.Store)
		idx := index.New(counted)
		attrs = volume.NewAttrsMemory(counted, e.Log)
		e.Start(t, idx, attrs)
		svc := &volume.Service{Pool: e.Pool, Index: idx, Placer: policy.Default{}, Store: counted, Attrs: attrs, Log: e.Log,
			BrokerID: "test-broker", Quota: quota.NewLedger(counted, "test-broker", e.Log)}
		r.Route("/volume", (&volume.Cinder{Volumes: svc, Auth: e.Keystone.Authenticate, Log: e.Log}).Routes)
		// The second replica's service: its own attrs memory, never run,
		// so it reads and writes the Store only.
		other = &volume.Service{Pool: e.Pool, Index: e.Index, Placer: policy.Default{}, Store: e.Store, Log: e.Log,
			BrokerID: "test-broker", Quota: quota.NewLedger(e.Store, "test-broker", e.Log)}
	})
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	var ids []string
	for _, name := range []string{"one", "two"} {
		v, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1, Name: "before"}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		n := name
		if _, err := volumes.Update(ctx, admin, v.ID, volumes.UpdateOpts{Name: &n}).Extract(); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, v.ID)
	}
	counted.Reset()
	tests := []struct {
		name string
		read func(t *testing.T) []string
	}{
		{"show", func(t *testing.T) []string {
			var names []string
			for _, id := range ids {
				v, err := volumes.Get(ctx, admin, id).Extract()
				if err != nil {
					t.Fatal(err)
				}
				names = append(names, v.Name)
			}
			return names
		}},
		{"list", func(t *testing.T) []string {
			pages, err := volumes.List(admin, volumes.ListOpts{Sort: "name:asc"}).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			vs, err := volumes.ExtractVolumes(pages)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, v := range vs {
				names = append(names, v.Name)
			}
			return names
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			counted.Reset()
			names := tt.read(t)
			if len(names) != 2 || !(names[0] == "one" && names[1] == "two" || names[0] == "two" && names[1] == "one") {
				t.Fatalf("names = %v, want one and two", names)
			}
			if n := counted.Reads(); n != 0 {
				t.Fatalf("%s read the Store %d times, want 0", tt.name, n)
			}
		})
	}

	// Another replica renames: the watch brings it here.
	renamed := "three"
	p, err := e.Dir.FindProject(ctx, "default", "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Update(ctx, volume.Caller{Project: p.ID, Admin: true}, ids[0], volume.UpdateSpec{Name: &renamed}); err != nil {
		t.Fatal(err)
	}
	_, at, err := e.Store.List(ctx, "volume/attrs/")
	if err != nil {
		t.Fatal(err)
	}
	if err := attrs.WaitIndex(ctx, at); err != nil {
		t.Fatal(err)
	}
	if v, err := volumes.Get(ctx, admin, ids[0]).Extract(); err != nil || v.Name != renamed {
		t.Fatalf("after another replica's rename: %+v, %v; want %s", v, err, renamed)
	}
}
