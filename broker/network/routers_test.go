package network_test

import (
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestRoutersGophercloud checks routers and floating IPs through
// gophercloud's layer3 packages: broker IDs everywhere (the external
// network's and subnet's are the peer's own, under NativeID), an
// interface by port, routes refused with a next hop on no interface's
// subnet, Neutron's errors for a router in use, a port of another peer,
// and another project's router and floating IP.
func TestRoutersGophercloud(t *testing.T) {
	e := newEnv(t)
	ctx := e.Ctx
	ext := e.externalNet(t, "east")
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	bobPassword := e.Member(t, "bob", "team-b", identity.RoleMember)
	bob := client(t, e, "bob", bobPassword, "team-b")

	mkNet := func(zone, cidr string) (*networks.Network, *subnets.Subnet) {
		t.Helper()
		n, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "n-" + zone, AvailabilityZoneHints: []string{zone}}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		sn, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: n.ID, CIDR: cidr, IPVersion: 4}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		return n, sn
	}
	eastNet, _ := mkNet("east", "10.40.0.0/24")
	westNet, _ := mkNet("west", "10.41.0.0/24")

	r, err := routers.Create(ctx, admin, routers.CreateOpts{Name: "r", GatewayInfo: &routers.GatewayInfo{NetworkID: ext}}).Extract()
	if err != nil {
		t.Fatalf("router create with a gateway: %v", err)
	}
	if r.GatewayInfo.NetworkID != ext || len(r.GatewayInfo.ExternalFixedIPs) != 1 || r.GatewayInfo.EnableSNAT == nil || !*r.GatewayInfo.EnableSNAT {
		t.Fatalf("router gateway = %+v, want network %s with an address and SNAT", r.GatewayInfo, ext)
	}
	p, err := ports.Create(ctx, admin, ports.CreateOpts{NetworkID: eastNet.ID, Name: "ifc"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	in, err := routers.AddInterface(ctx, admin, r.ID, routers.AddInterfaceOpts{PortID: p.ID}).Extract()
	if err != nil || in.PortID != p.ID || in.SubnetID != p.FixedIPs[0].SubnetID || in.ID != r.ID {
		t.Fatalf("add interface by port = %+v, %v; want port %s on subnet %s", in, err, p.ID, p.FixedIPs[0].SubnetID)
	}
	westPort, err := ports.Create(ctx, admin, ports.CreateOpts{NetworkID: westNet.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	vm, err := ports.Create(ctx, admin, ports.CreateOpts{NetworkID: eastNet.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		call func() error
		code int
		typ  string
	}{
		{"route via no interface", func() error {
			_, err := routers.Update(ctx, admin, r.ID, routers.UpdateOpts{Routes: &[]routers.Route{{DestinationCIDR: "192.0.2.0/24", NextHop: "10.99.0.1"}}}).Extract()
			return err
		}, http.StatusBadRequest, "BadRequest"},
		{"route not a CIDR", func() error {
			_, err := routers.Update(ctx, admin, r.ID, routers.UpdateOpts{Routes: &[]routers.Route{{DestinationCIDR: "nope", NextHop: "10.40.0.9"}}}).Extract()
			return err
		}, http.StatusBadRequest, "InvalidInput"},
		{"router in use", func() error { return routers.Delete(ctx, admin, r.ID).ExtractErr() }, http.StatusConflict, "RouterInUse"},
		{"interface of another peer", func() error {
			_, err := routers.AddInterface(ctx, admin, r.ID, routers.AddInterfaceOpts{PortID: westPort.ID}).Extract()
			return err
		}, http.StatusBadRequest, "BadRequest"},
		{"floating IP for another peer's port", func() error {
			_, err := floatingips.Create(ctx, admin, floatingips.CreateOpts{FloatingNetworkID: ext, PortID: westPort.ID}).Extract()
			return err
		}, http.StatusBadRequest, "BadRequest"},
		{"floating IP on a network that is not external", func() error {
			_, err := floatingips.Create(ctx, admin, floatingips.CreateOpts{FloatingNetworkID: eastNet.ID}).Extract()
			return err
		}, http.StatusBadRequest, "BadRequest"},
		{"bob cannot see the router", func() error { _, err := routers.Get(ctx, bob, r.ID).Extract(); return err }, http.StatusNotFound, "RouterNotFound"},
		{"bob cannot add to the router", func() error {
			_, err := routers.AddInterface(ctx, bob, r.ID, routers.AddInterfaceOpts{PortID: vm.ID}).Extract()
			return err
		}, http.StatusNotFound, "RouterNotFound"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantFault(t, tc.name, tc.call(), tc.code, tc.typ)
		})
	}

	fip, err := floatingips.Create(ctx, admin, floatingips.CreateOpts{FloatingNetworkID: ext, PortID: vm.ID}).Extract()
	if err != nil {
		t.Fatalf("floating IP for a port: %v", err)
	}
	if fip.FloatingNetworkID != ext || fip.PortID != vm.ID || fip.FixedIP != vm.FixedIPs[0].IPAddress || fip.RouterID != r.ID {
		t.Fatalf("floating IP = %+v, want on %s, port %s (%s) through router %s", fip, ext, vm.ID, vm.FixedIPs[0].IPAddress, r.ID)
	}
	_, err = floatingips.Get(ctx, bob, fip.ID).Extract()
	wantFault(t, "bob's show of admin's floating IP", err, http.StatusNotFound, "FloatingIPNotFound")
	pages, err := floatingips.List(admin, floatingips.ListOpts{PortID: vm.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := floatingips.ExtractFloatingIPs(pages); len(got) != 1 || got[0].ID != fip.ID {
		t.Fatalf("floating IPs of port %s = %+v, want %s", vm.ID, got, fip.ID)
	}
	if err := floatingips.Delete(ctx, admin, fip.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := routers.RemoveInterface(ctx, admin, r.ID, routers.RemoveInterfaceOpts{PortID: p.ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	_, err = ports.Get(ctx, admin, p.ID).Extract()
	wantFault(t, "the interface's port after its removal", err, http.StatusNotFound, "PortNotFound")
	if err := routers.Delete(ctx, admin, r.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}
