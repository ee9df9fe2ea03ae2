package compute_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// flavorCounter counts the flavor calls a peer answers.
type flavorCounter struct {
	*localcloud.Cloud
	calls *atomic.Int32
}

func (f flavorCounter) ListFlavors(ctx context.Context) ([]peers.Flavor, error) {
	f.calls.Add(1)
	return f.Cloud.ListFlavors(ctx)
}

func (f flavorCounter) GetFlavor(ctx context.Context, id string) (peers.Flavor, error) {
	f.calls.Add(1)
	return f.Cloud.GetFlavor(ctx, id)
}

// TestServerViewsCacheFlavors: showing and listing servers, and listing
// flavors, does not ask the peer for its flavors every time (a second
// round trip to a remote cloud); the sizes still show.
func TestServerViewsCacheFlavors(t *testing.T) {
	ctx := context.Background()
	var calls atomic.Int32
	se := newServersEnv(t, brokertest.Peer{Name: "remote", Wrap: func(c *localcloud.Cloud) peers.Cloud {
		return flavorCounter{Cloud: c, calls: &calls}
	}})
	c := se.compute(t, "fay", se.Member(t, "fay", "team-f", identity.RoleMember), "team-f")
	s := create(t, c, servers.CreateOpts{Name: "vm", FlavorRef: "1", ImageRef: se.Seeded["remote"].ImageID, Networks: "none"})
	waitStatus(t, c, s.ID, "ACTIVE")
	before := calls.Load()
	for range 5 {
		got, err := servers.Get(ctx, c, s.ID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if got.Flavor["vcpus"] == nil && got.Flavor["id"] == nil {
			t.Fatalf("flavor missing from the view: %v", got.Flavor)
		}
		listAll(t, c, servers.ListOpts{})
		pages, err := flavors.ListDetail(c, nil).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if fs, err := flavors.ExtractFlavors(pages); err != nil || len(fs) == 0 || fs[0].VCPUs == 0 {
			t.Fatalf("flavors %+v, %v", fs, err)
		}
	}
	if n := calls.Load() - before; n > 1 {
		t.Fatalf("%d flavor calls for 5 shows, 5 server lists and 5 flavor lists; want at most 1", n)
	}
}
