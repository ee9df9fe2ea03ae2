package network_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
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
	net, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "private", AvailabilityZoneHints: []string{"flaky"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sn, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.50.0.0/24", IPVersion: 4}).Extract()
	if err != nil {
		t.Fatal(err)
	}
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
