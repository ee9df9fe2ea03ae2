package network_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"

	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// countedNetworks counts the network reads a peer is asked for; while
// down (when set) is true its network lists fail as a peer that does not
// answer.
type countedNetworks struct {
	*localcloud.Cloud
	calls *atomic.Int64
	down  *atomic.Bool
}

func (c countedNetworks) ListNetworks(ctx context.Context, o peers.ListOptions) ([]peers.Network, error) {
	c.calls.Add(1)
	if c.down != nil && c.down.Load() {
		return nil, peers.ErrUnavailable
	}
	return c.Cloud.ListNetworks(ctx, o)
}

func (c countedNetworks) ListSubnets(ctx context.Context, o peers.ListOptions) ([]peers.Subnet, error) {
	c.calls.Add(1)
	return c.Cloud.ListSubnets(ctx, o)
}

func (c countedNetworks) ListPorts(ctx context.Context, o peers.ListOptions) ([]peers.Port, error) {
	c.calls.Add(1)
	return c.Cloud.ListPorts(ctx, o)
}

func (c countedNetworks) GetNetwork(ctx context.Context, id string) (peers.Network, error) {
	c.calls.Add(1)
	return c.Cloud.GetNetwork(ctx, id)
}

func (c countedNetworks) GetSubnet(ctx context.Context, id string) (peers.Subnet, error) {
	c.calls.Add(1)
	return c.Cloud.GetSubnet(ctx, id)
}

func (c countedNetworks) GetPort(ctx context.Context, id string) (peers.Port, error) {
	c.calls.Add(1)
	return c.Cloud.GetPort(ctx, id)
}

// TestNativesResolveFromMemory: a peer's own networks are resolved by
// broker ID from what the broker learnt of the peer (its first read, the
// background discovery), never by asking the peers per request; a
// network the peer shares later is known after the next discovery, one
// it deletes is gone after it.
func TestNativesResolveFromMemory(t *testing.T) {
	ctx := context.Background()
	var west *localcloud.Cloud
	var calls atomic.Int64
	e := newEnvWith(t, []brokertest.Peer{{Name: "east"}, {Name: "west", Wrap: func(c *localcloud.Cloud) peers.Cloud {
		west = c
		return countedNetworks{Cloud: c, calls: &calls}
	}}}, 0)
	westID := member(t, e, "west").Peer.ID
	project := e.Boot.Project.ID

	if _, err := e.svc.Resolve(ctx, project, network.KindNetwork, e.seeded.NetworkID); err != nil {
		t.Fatalf("the seeded network: %v", err)
	}
	before := calls.Load()
	if before == 0 {
		t.Fatal("west was never read")
	}
	for _, tc := range []struct{ name, kind, id string }{
		{"an unknown ID", network.KindNetwork, uuid.NewString()},
		{"the seeded network by east's ID", network.KindNetwork, e.peerSeeded.NetworkID},
		{"the seeded subnet by east's ID", network.KindSubnet, e.peerSeeded.SubnetID},
		{"an unknown port", network.KindPort, uuid.NewString()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := e.svc.Resolve(ctx, project, tc.kind, tc.id); !errors.Is(err, network.ErrNotFound) {
				t.Fatalf("Resolve = %v, want not found", err)
			}
		})
	}
	if after := calls.Load(); after != before {
		t.Fatalf("resolving unknown IDs asked west %d times", after-before)
	}

	pub, err := west.CreateNetwork(ctx, peers.NetworkSpec{Name: "later", Project: "provider", Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	alias := network.NativeID(westID, network.KindNetwork, pub.ID)
	e.svc.Discover(ctx)
	ref, err := e.svc.Resolve(ctx, project, network.KindNetwork, alias)
	if err != nil || !ref.Native || ref.PeerResourceID != pub.ID || ref.Member.Peer.Name != "west" || ref.OwnedBy(project) {
		t.Fatalf("the network west shared later = %+v, %v", ref, err)
	}
	if err := west.DeleteNetwork(ctx, pub.ID); err != nil {
		t.Fatal(err)
	}
	e.svc.Discover(ctx)
	if _, err := e.svc.Resolve(ctx, project, network.KindNetwork, alias); !errors.Is(err, network.ErrNotFound) {
		t.Fatalf("the network west deleted = %v, want not found", err)
	}
}
