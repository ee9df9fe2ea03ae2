package network_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// flakyNetworks is a local cloud whose network reads fail while down is
// set (a peer timing out), so a test can break it after creating on it.
type flakyNetworks struct {
	*localcloud.Cloud
	down *atomic.Bool
}

func (f flakyNetworks) GetNetwork(ctx context.Context, id string) (peers.Network, error) {
	if f.down.Load() {
		return peers.Network{}, fmt.Errorf("timed out: %w", peers.ErrUnavailable)
	}
	return f.Cloud.GetNetwork(ctx, id)
}

func (f flakyNetworks) GetSubnet(ctx context.Context, id string) (peers.Subnet, error) {
	if f.down.Load() {
		return peers.Subnet{}, fmt.Errorf("timed out: %w", peers.ErrUnavailable)
	}
	return f.Cloud.GetSubnet(ctx, id)
}

// Another project's private network or subnet is "not found" even when
// its peer does not answer: a 503 would tell the asker the ID exists.
func TestUnreachablePeerDoesNotLeakOthersNetworks(t *testing.T) {
	ctx := context.Background()
	var down atomic.Bool
	e := newEnvWith(t, []brokertest.Peer{{Name: "east"}, {Name: "flaky", Wrap: func(c *localcloud.Cloud) peers.Cloud {
		return flakyNetworks{Cloud: c, down: &down}
	}}}, 0)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	bob := client(t, e, "bob", e.Member(t, "bob", "team-b", identity.RoleMember), "team-b")
	net, sn := networkWithSubnet(t, admin, networks.CreateOpts{Name: "private", AvailabilityZoneHints: []string{"flaky"}}, "10.50.0.0/24")
	down.Store(true)
	for _, tc := range []struct {
		name string
		err  error
		typ  string
	}{
		{"show network", networks.Get(ctx, bob, net.ID).Err, "NetworkNotFound"},
		{"delete network", networks.Delete(ctx, bob, net.ID).ExtractErr(), "NetworkNotFound"},
		{"show subnet", subnets.Get(ctx, bob, sn.ID).Err, "SubnetNotFound"},
		{"port on it", ports.Create(ctx, bob, ports.CreateOpts{NetworkID: net.ID}).Err, "NetworkNotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) { wantFault(t, tc.name, tc.err, 404, tc.typ) })
	}
}

// A network delete that removes the network (and its subnets) from the
// peer but cannot drop the index entries fails; deleting it again must
// finish the job, leaving no subnet entry that points at nothing.
func TestNetworkDeleteCutBeforeTheIndexIsRetried(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	net, sn := networkWithSubnet(t, admin, networks.CreateOpts{Name: "doomed"}, "10.60.0.0/24")
	storeFails(e, func(op registry.Op, key string) bool {
		return op == registry.OpDelete && strings.HasPrefix(key, "index/subnet/")
	})
	if err := networks.Delete(ctx, admin, net.ID).ExtractErr(); err == nil {
		t.Fatal("delete succeeded although the index could not be written")
	}
	e.Store.InjectFault(nil)
	if err := networks.Delete(ctx, admin, net.ID).ExtractErr(); err != nil {
		t.Fatalf("retried delete = %v, want it to finish", err)
	}
	for _, kind := range []string{network.KindNetwork, network.KindSubnet} {
		id := map[string]string{network.KindNetwork: net.ID, network.KindSubnet: sn.ID}[kind]
		if _, err := e.Index.Get(ctx, kind, id, ""); !errors.Is(err, index.ErrNotFound) {
			t.Fatalf("%s entry after the retried delete: %v", kind, err)
		}
	}
}

// A create whose attributes cannot be stored after the index entry was
// written, and whose entry then cannot be removed either, must not leave
// the entry pointing at a resource it deleted.
func TestCreateFailingAfterTheIndexLeavesNoDanglingEntry(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	storeFails(e, func(op registry.Op, key string) bool {
		return (op == registry.OpCAS && strings.HasPrefix(key, "neutron/attrs/")) || (op == registry.OpDelete && strings.HasPrefix(key, "index/"))
	})
	if _, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "half", Description: "kept by the broker"}).Extract(); err == nil {
		t.Fatal("create succeeded although its attributes could not be stored")
	}
	e.Store.InjectFault(nil)
	entries, err := e.Index.List(ctx, network.KindNetwork, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		m, ok := e.Pool.Get(en.PeerID)
		if !ok {
			t.Fatalf("entry %+v names an unknown peer", en)
		}
		if _, err := m.Cloud.GetNetwork(ctx, en.PeerResourceID); err != nil {
			t.Fatalf("entry %s points at nothing: %v", en.ID, err)
		}
	}
}

// storeFails makes the registry refuse the operations fail picks, as a
// Consul without a leader does, until the test ends or InjectFault(nil).
func storeFails(e *testEnv, fail func(op registry.Op, key string) bool) {
	e.Store.InjectFault(func(op registry.Op, key string) error {
		if fail(op, key) {
			return fmt.Errorf("consul lost its leader: %w", registry.ErrUnavailable)
		}
		return nil
	})
}

// networkWithSubnet creates a network and one IPv4 subnet on it.
func networkWithSubnet(t *testing.T, c *gophercloud.ServiceClient, opts networks.CreateOpts, cidr string) (*networks.Network, *subnets.Subnet) {
	t.Helper()
	ctx := context.Background()
	net, err := networks.Create(ctx, c, opts).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sn, err := subnets.Create(ctx, c, subnets.CreateOpts{NetworkID: net.ID, CIDR: cidr, IPVersion: 4}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	return net, sn
}

// lossyNetworks is a local cloud that, while lose is set, makes what it is
// asked to and then loses the answer (a timeout after the peer acted).
type lossyNetworks struct {
	*localcloud.Cloud
	lose *atomic.Bool
}

func (l lossyNetworks) lost(err error) error {
	if err == nil && l.lose.Load() {
		return fmt.Errorf("no answer in time: %w", peers.ErrUnavailable)
	}
	return err
}

func (l lossyNetworks) CreateNetwork(ctx context.Context, spec peers.NetworkSpec) (peers.Network, error) {
	n, err := l.Cloud.CreateNetwork(ctx, spec)
	return n, l.lost(err)
}

func (l lossyNetworks) CreateSubnet(ctx context.Context, spec peers.SubnetSpec) (peers.Subnet, error) {
	sn, err := l.Cloud.CreateSubnet(ctx, spec)
	return sn, l.lost(err)
}

func (l lossyNetworks) CreatePort(ctx context.Context, spec peers.PortSpec) (peers.Port, error) {
	p, err := l.Cloud.CreatePort(ctx, spec)
	return p, l.lost(err)
}

// A create whose answer is lost after the peer acted fails, and leaves
// nothing on the peer: unindexed, it would be listed nowhere and never
// deleted (a subnet would even hold its CIDR).
func TestLostCreateAnswersLeaveNoOrphans(t *testing.T) {
	ctx := context.Background()
	var lose atomic.Bool
	var lossy *localcloud.Cloud
	e := newEnvWith(t, []brokertest.Peer{{Name: "east"}, {Name: "lossy", Wrap: func(c *localcloud.Cloud) peers.Cloud {
		lossy = c
		return lossyNetworks{Cloud: c, lose: &lose}
	}}}, 0)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	ours := peers.ListOptions{Metadata: map[string]string{peers.MetaBrokerID: "test-broker"}}
	net, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "kept", AvailabilityZoneHints: []string{"lossy"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	lose.Store(true)
	for _, tc := range []struct {
		name  string
		err   error
		count func() (int, error)
		want  int
	}{
		{"network", networks.Create(ctx, admin, networks.CreateOpts{Name: "lost", AvailabilityZoneHints: []string{"lossy"}}).Err,
			func() (int, error) { ns, err := lossy.ListNetworks(ctx, ours); return len(ns), err }, 1},
		{"subnet", subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.70.0.0/24", IPVersion: 4}).Err,
			func() (int, error) { sns, err := lossy.ListSubnets(ctx, ours); return len(sns), err }, 0},
		{"port", ports.Create(ctx, admin, ports.CreateOpts{NetworkID: net.ID}).Err,
			func() (int, error) { ps, err := lossy.ListPorts(ctx, ours); return len(ps), err }, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.err == nil {
				t.Fatal("the create succeeded although its answer was lost")
			}
			n, err := tc.count()
			if err != nil || n != tc.want {
				t.Fatalf("the peer holds %d of the broker's %ss (%v), want %d", n, tc.name, err, tc.want)
			}
		})
	}
}
