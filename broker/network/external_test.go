package network_test

import (
	"context"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// An external network is visible to every project but only the cloud's to
// use: a member cannot take its addresses with a port (Neutron's tenancy
// check answers 404), nor add subnets to it.
func TestExternalNetworkTakesNoPortsFromProjects(t *testing.T) {
	ctx := context.Background()
	var provider *localcloud.Cloud
	e := newEnvWith(t, []brokertest.Peer{{Name: "east"}, {Name: "edge", Wrap: func(c *localcloud.Cloud) peers.Cloud {
		provider = c
		return brokertest.ExternalNetworks{Cloud: c}
	}}}, 0)
	pub, err := provider.CreateNetwork(ctx, peers.NetworkSpec{Name: "public", Project: "provider"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.CreateSubnet(ctx, peers.SubnetSpec{Name: "public-v4", Project: "provider", NetworkID: pub.ID, CIDR: "203.0.113.0/24", IPVersion: 4}); err != nil {
		t.Fatal(err)
	}
	bob := client(t, e, "bob", e.Member(t, "bob", "team-b", identity.RoleMember), "team-b")
	// A client finds it by name, as `openstack network show public` does.
	pages, err := networks.List(bob, networks.ListOpts{Name: "public"}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found, _ := networks.ExtractNetworks(pages)
	if len(found) != 1 || found[0].ID == pub.ID {
		t.Fatalf("bob's list of public = %+v; want it once, by its broker ID", found)
	}
	got, err := networks.Get(ctx, bob, found[0].ID).Extract()
	if err != nil {
		t.Fatalf("the external network is not visible: %v", err)
	}
	if got.Shared {
		t.Fatalf("external network shown as shared: %+v", got)
	}
	wantFault(t, "the external network by the peer's ID", networks.Get(ctx, bob, pub.ID).Err, 404, "NetworkNotFound")
	wantFault(t, "port on the external network", ports.Create(ctx, bob, ports.CreateOpts{NetworkID: got.ID}).Err, 404, "HTTPNotFound")
	wantFault(t, "subnet on the external network", subnets.Create(ctx, bob, subnets.CreateOpts{NetworkID: got.ID, CIDR: "198.51.100.0/24", IPVersion: 4}).Err, 403, "PolicyNotAuthorized")
	left, err := provider.ListPorts(ctx, peers.ListOptions{})
	if err != nil || len(left) != 0 {
		t.Fatalf("the provider's peer has ports %+v (%v)", left, err)
	}
	// The seeded shared network still takes the project's ports.
	if _, err := ports.Create(ctx, bob, ports.CreateOpts{NetworkID: e.seeded.NetworkID}).Extract(); err != nil {
		t.Fatalf("port on the shared network: %v", err)
	}
}
