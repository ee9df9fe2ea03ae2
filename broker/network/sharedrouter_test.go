package network_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestRouterInterfaceOnSharedNetwork: a subnet of another project's
// shared network, as Neutron has it (checked against the real testcloud's
// Neutron): a member may make a port on it and join its router to the
// network by that port, but not by the subnet (400 BadRequest: the
// subnet "is not owned by project making the request"), whether the
// network is one a cloud admin made shared or a peer's own (east's
// "private"); a cloud admin may join its router by the subnet.
func TestRouterInterfaceOnSharedNetwork(t *testing.T) {
	e := newEnv(t)
	ctx := e.Ctx
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	bob := client(t, e, "bob", e.Member(t, "bob", "team-b", identity.RoleMember), "team-b")
	n, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "shared-n", Shared: ptr(true), AvailabilityZoneHints: []string{"east"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sn, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.43.0.0/24", IPVersion: 4}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	r, err := routers.Create(ctx, bob, routers.CreateOpts{Name: "bob-r", AvailabilityZoneHints: []string{"east"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, subnet string }{
		{"an admin's shared network", sn.ID},
		{"the peer's own shared network", e.seeded.SubnetID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := routers.AddInterface(ctx, bob, r.ID, routers.AddInterfaceOpts{SubnetID: tc.subnet}).Extract()
			wantFault(t, "a member's interface by a shared subnet of another project", err, http.StatusBadRequest, "BadRequest")
			if !strings.Contains(err.Error(), "is not owned by project making the request") {
				t.Errorf("the refusal does not say why: %v", err)
			}
		})
	}
	p, err := ports.Create(ctx, bob, ports.CreateOpts{NetworkID: n.ID, Name: "bob-on-shared"}).Extract()
	if err != nil {
		t.Fatalf("a member's port on a shared network: %v", err)
	}
	if p.ProjectID == "" || len(p.FixedIPs) != 1 || p.FixedIPs[0].SubnetID != sn.ID {
		t.Fatalf("bob's port on the shared network = %+v", p)
	}
	in, err := routers.AddInterface(ctx, bob, r.ID, routers.AddInterfaceOpts{PortID: p.ID}).Extract()
	if err != nil || in.SubnetID != sn.ID || in.PortID != p.ID {
		t.Fatalf("a member's interface by its port on the shared network = %+v, %v", in, err)
	}
	if got, err := ports.Get(ctx, bob, p.ID).Extract(); err != nil || got.DeviceOwner != "network:router_interface" || got.DeviceID != r.ID {
		t.Fatalf("the interface port = %+v, %v", got, err)
	}
	if _, err := routers.RemoveInterface(ctx, bob, r.ID, routers.RemoveInterfaceOpts{PortID: p.ID}).Extract(); err != nil {
		t.Fatal(err)
	}

	// A cloud admin joins its own router by the peer's shared subnet.
	ar, err := routers.Create(ctx, admin, routers.CreateOpts{Name: "admin-r", AvailabilityZoneHints: []string{"east"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	ain, err := routers.AddInterface(ctx, admin, ar.ID, routers.AddInterfaceOpts{SubnetID: e.seeded.SubnetID}).Extract()
	if err != nil || ain.SubnetID != e.seeded.SubnetID {
		t.Fatalf("an admin's interface by the peer's shared subnet = %+v, %v", ain, err)
	}
	if _, err := routers.RemoveInterface(ctx, admin, ar.ID, routers.RemoveInterfaceOpts{SubnetID: e.seeded.SubnetID}).Extract(); err != nil {
		t.Fatal(err)
	}
}
