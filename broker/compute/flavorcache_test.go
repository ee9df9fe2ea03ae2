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

// privateTiny is a peer whose m1.tiny is private.
type privateTiny struct{ *localcloud.Cloud }

func (p privateTiny) ListFlavors(ctx context.Context) ([]peers.Flavor, error) {
	fs, err := p.Cloud.ListFlavors(ctx)
	for i := range fs {
		if fs[i].Name == "m1.tiny" {
			fs[i].IsPublic = false
		}
	}
	return fs, err
}

// TestPublicFlavors: a name private on one peer and public on another is
// the public one among the public flavors (EC2's instance types), and no
// private flavor is among them.
func TestPublicFlavors(t *testing.T) {
	se := newServersEnv(t, brokertest.Peer{Name: "a-private", Wrap: func(c *localcloud.Cloud) peers.Cloud { return privateTiny{c} }},
		brokertest.Peer{Name: "b-public"})
	find := func(fs []peers.Flavor) (peers.Flavor, bool) {
		for _, f := range fs {
			if f.Name == "m1.tiny" {
				return f, true
			}
		}
		return peers.Flavor{}, false
	}
	pub, failed := se.Servers.PublicFlavors(se.Ctx)
	if f, ok := find(pub); !ok || !f.IsPublic || len(failed) > 0 {
		t.Fatalf("public flavors: m1.tiny %+v (%v), failed %v", f, ok, failed)
	}
	for _, f := range pub {
		if !f.IsPublic {
			t.Fatalf("a private flavor among the public ones: %+v", f)
		}
	}
}
