package peertest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

// testRouters checks peers.Routers, for a cloud that has it: a router
// with a gateway on an external network, interfaces by subnet and by
// port (and the ports they take), static routes, a floating IP
// associated, moved and released, and the refusals Neutron makes (a
// subnet twice, a router with interfaces, an interface or gateway a
// floating IP needs, a port no router reaches). Whether packets are
// routed is each driver's own test; this checks the contract.
func (s *suite) testRouters(t *testing.T) {
	rt, ok := s.c.(peers.Routers)
	if !ok {
		t.Skip("the cloud does not implement peers.Routers")
	}
	ctx := t.Context()
	if err := rt.RoutersAvailable(ctx); err != nil {
		wantErr(t, "RoutersAvailable", err, peers.ErrNotSupported)
		_, cerr := rt.CreateRouter(ctx, peers.RouterSpec{Name: s.name("router"), Project: s.fx.Project, Metadata: s.meta()})
		wantErr(t, "CreateRouter on a cloud that cannot route", cerr, peers.ErrNotSupported)
		t.Skipf("the cloud cannot route, and says why (checked): %v", err)
	}
	s.gap(t)
	ext := s.externalNetwork(t)
	netA, subA := s.makeNetwork(t, "10.86.0.0/24")
	netB, subB := s.makeNetwork(t, "10.87.0.0/24")
	netC, _ := s.makeNetwork(t, "10.88.0.0/24")

	meta := s.meta("peertest_role", "router")
	r, err := rt.CreateRouter(ctx, peers.RouterSpec{
		Name: s.name("router"), Project: s.fx.Project, Metadata: meta,
		Gateway: &peers.RouterGateway{NetworkID: ext, EnableSNAT: true},
	})
	if err != nil {
		t.Fatalf("CreateRouter with a gateway on %s: %v", ext, err)
	}
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		if err := rt.DeleteRouter(ctx, r.ID); err != nil && !errors.Is(err, peers.ErrNotFound) {
			t.Errorf("cleanup: DeleteRouter(%s): %v", r.ID, err)
		}
	})
	wantUUID(t, "CreateRouter's ID", r.ID)
	if r.Name == "" || r.Project != s.fx.Project || r.Gateway == nil || r.Gateway.NetworkID != ext || !r.Gateway.EnableSNAT || len(r.Gateway.FixedIPs) == 0 {
		t.Fatalf("CreateRouter = %+v (gateway %+v), want project %s and a SNAT gateway on %s with an address", r, r.Gateway, s.fx.Project, ext)
	}
	wantMetadata(t, "CreateRouter", r.Metadata, meta)
	s.checkListed(t, r.ID, meta, func(ctx context.Context, o peers.ListOptions) ([]string, error) {
		rs, err := rt.ListRouters(ctx, o)
		return ids(rs, func(r peers.Router) string { return r.ID }), err
	})

	ifA, err := rt.AddRouterInterface(ctx, r.ID, peers.RouterInterface{SubnetID: subA.ID})
	if err != nil {
		t.Fatalf("AddRouterInterface(subnet %s): %v", subA.ID, err)
	}
	removeIf := func(in peers.RouterInterface) {
		t.Cleanup(func() {
			ctx, cancel := s.cleanupCtx()
			defer cancel()
			if _, err := rt.RemoveRouterInterface(ctx, r.ID, in); err != nil && !errors.Is(err, peers.ErrNotFound) {
				t.Errorf("cleanup: RemoveRouterInterface(%+v): %v", in, err)
			}
		})
	}
	removeIf(peers.RouterInterface{SubnetID: subA.ID})
	if ifA.SubnetID != subA.ID || ifA.PortID == "" || ifA.NetworkID != netA.ID {
		t.Fatalf("AddRouterInterface(subnet %s) = %+v, want the subnet, its network and a port", subA.ID, ifA)
	}
	p, err := s.c.GetPort(ctx, ifA.PortID)
	if err != nil {
		t.Fatalf("GetPort of the interface's port: %v", err)
	}
	if p.DeviceID != r.ID || p.DeviceOwner != peers.OwnerRouterInterface || len(p.FixedIPs) != 1 || p.FixedIPs[0].IPAddress != subA.GatewayIP {
		t.Fatalf("the interface's port = %+v, want device %s (%s) at the subnet's gateway %s", p, r.ID, peers.OwnerRouterInterface, subA.GatewayIP)
	}
	_, err = rt.AddRouterInterface(ctx, r.ID, peers.RouterInterface{SubnetID: subA.ID})
	wantErr(t, "AddRouterInterface of a subnet the router is on", err, peers.ErrConflict, peers.ErrInvalid)

	pB, err := s.c.CreatePort(ctx, peers.PortSpec{Name: s.name("port"), Project: s.fx.Project, NetworkID: netB.ID, Metadata: s.meta()})
	if err != nil {
		t.Fatalf("CreatePort on %s: %v", netB.ID, err)
	}
	s.cleanupPort(t, pB.ID) // the interface's removal deletes it; this if it never became one
	ifB, err := rt.AddRouterInterface(ctx, r.ID, peers.RouterInterface{PortID: pB.ID})
	if err != nil {
		t.Fatalf("AddRouterInterface(port %s): %v", pB.ID, err)
	}
	removeIf(peers.RouterInterface{PortID: pB.ID})
	if ifB.SubnetID != subB.ID || ifB.PortID != pB.ID {
		t.Fatalf("AddRouterInterface(port %s) = %+v, want subnet %s", pB.ID, ifB, subB.ID)
	}
	wantErr(t, "DeleteRouter of a router with interfaces", rt.DeleteRouter(ctx, r.ID), peers.ErrConflict)

	t.Run("Routes", func(t *testing.T) {
		s.gap(t)
		routes := []peers.Route{{Destination: "192.0.2.0/24", NextHop: "10.87.0.50"}}
		got, err := rt.UpdateRouter(ctx, r.ID, peers.RouterPatch{Routes: &routes})
		if err != nil {
			t.Fatalf("UpdateRouter(routes): %v", err)
		}
		if !slices.Equal(got.Routes, routes) {
			t.Fatalf("UpdateRouter(routes) shows %v, want %v", got.Routes, routes)
		}
		bad := []peers.Route{{Destination: "192.0.2.0/24", NextHop: "10.99.0.1"}}
		_, err = rt.UpdateRouter(ctx, r.ID, peers.RouterPatch{Routes: &bad})
		wantErr(t, "UpdateRouter with a nexthop on no interface's subnet", err, peers.ErrInvalid)
		none := []peers.Route{}
		if got, err = rt.UpdateRouter(ctx, r.ID, peers.RouterPatch{Routes: &none}); err != nil || len(got.Routes) != 0 {
			t.Fatalf("UpdateRouter(no routes) = %v, %v; want none", got.Routes, err)
		}
	})

	// A floating IP, on an instance-like port behind interface A.
	vm, err := s.c.CreatePort(ctx, peers.PortSpec{Name: s.name("port"), Project: s.fx.Project, NetworkID: netA.ID, Metadata: s.meta()})
	if err != nil {
		t.Fatalf("CreatePort on %s: %v", netA.ID, err)
	}
	s.cleanupPort(t, vm.ID)
	fmeta := s.meta("peertest_role", "floatingip")
	fip, err := rt.CreateFloatingIP(ctx, peers.FloatingIPSpec{Project: s.fx.Project, NetworkID: ext, PortID: vm.ID, Metadata: fmeta})
	if err != nil {
		t.Fatalf("CreateFloatingIP for port %s: %v", vm.ID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		if err := rt.DeleteFloatingIP(ctx, fip.ID); err != nil && !errors.Is(err, peers.ErrNotFound) {
			t.Errorf("cleanup: DeleteFloatingIP(%s): %v", fip.ID, err)
		}
	})
	if fip.Address == "" || fip.NetworkID != ext || fip.PortID != vm.ID || fip.FixedIP != vm.FixedIPs[0].IPAddress || fip.RouterID != r.ID {
		t.Fatalf("CreateFloatingIP = %+v, want an address on %s mapped to %s (%s) through router %s", fip, ext, vm.ID, vm.FixedIPs[0].IPAddress, r.ID)
	}
	wantMetadata(t, "CreateFloatingIP", fip.Metadata, fmeta)
	s.checkListed(t, fip.ID, fmeta, func(ctx context.Context, o peers.ListOptions) ([]string, error) {
		fs, err := rt.ListFloatingIPs(ctx, o)
		return ids(fs, func(f peers.FloatingIP) string { return f.ID }), err
	})
	t.Run("OtherProjects", func(t *testing.T) { s.testRoutersOtherProject(t, rt, r, fip, vm) })
	_, err = rt.RemoveRouterInterface(ctx, r.ID, peers.RouterInterface{SubnetID: subA.ID})
	wantErr(t, "RemoveRouterInterface of an interface a floating IP needs", err, peers.ErrConflict)
	_, err = rt.UpdateRouter(ctx, r.ID, peers.RouterPatch{ClearGateway: true})
	wantErr(t, "UpdateRouter clearing a gateway a floating IP needs", err, peers.ErrConflict)

	lone, err := s.c.CreatePort(ctx, peers.PortSpec{Name: s.name("port"), Project: s.fx.Project, NetworkID: netC.ID, Metadata: s.meta()})
	if err != nil {
		t.Fatalf("CreatePort on %s: %v", netC.ID, err)
	}
	s.cleanupPort(t, lone.ID)
	_, err = rt.SetFloatingIPPort(ctx, fip.ID, lone.ID, "")
	wantErr(t, "SetFloatingIPPort to a port no router reaches", err, peers.ErrInvalid)

	if fip, err = rt.SetFloatingIPPort(ctx, fip.ID, "", ""); err != nil || fip.PortID != "" || fip.FixedIP != "" {
		t.Fatalf("SetFloatingIPPort(disassociate) = %+v, %v; want no port", fip, err)
	}
	got, err := rt.GetFloatingIP(ctx, fip.ID)
	if err != nil || got.PortID != "" {
		t.Fatalf("GetFloatingIP after disassociating = %+v, %v; want no port", got, err)
	}
	if fip, err = rt.SetFloatingIPPort(ctx, fip.ID, vm.ID, vm.FixedIPs[0].IPAddress); err != nil || fip.PortID != vm.ID {
		t.Fatalf("SetFloatingIPPort(%s) = %+v, %v", vm.ID, fip, err)
	}
	if err := rt.DeleteFloatingIP(ctx, fip.ID); err != nil {
		t.Fatalf("DeleteFloatingIP: %v", err)
	}
	_, err = rt.GetFloatingIP(ctx, fip.ID)
	wantErr(t, "GetFloatingIP after DeleteFloatingIP", err, peers.ErrNotFound)

	// Taken apart: interfaces, the gateway, the router.
	// Each answer names the interface's subnet, port and network, whether
	// the caller named the subnet or the port.
	for _, tc := range []struct {
		in                    peers.RouterInterface
		subnet, port, network string
	}{{peers.RouterInterface{SubnetID: subA.ID}, subA.ID, ifA.PortID, netA.ID}, {peers.RouterInterface{PortID: pB.ID}, subB.ID, pB.ID, netB.ID}} {
		got, err := rt.RemoveRouterInterface(ctx, r.ID, tc.in)
		if err != nil {
			t.Fatalf("RemoveRouterInterface(%+v): %v", tc.in, err)
		}
		if got.SubnetID != tc.subnet || got.PortID != tc.port || got.NetworkID != tc.network {
			t.Fatalf("RemoveRouterInterface(%+v) = %+v, want subnet %s, port %s, network %s", tc.in, got, tc.subnet, tc.port, tc.network)
		}
	}
	_, err = s.c.GetPort(ctx, ifA.PortID)
	wantErr(t, "GetPort of a removed interface's port", err, peers.ErrNotFound)
	if r, err = rt.UpdateRouter(ctx, r.ID, peers.RouterPatch{ClearGateway: true}); err != nil || r.Gateway != nil {
		t.Fatalf("UpdateRouter(clear gateway) = %+v, %v; want no gateway", r.Gateway, err)
	}
	if err := rt.DeleteRouter(ctx, r.ID); err != nil {
		t.Fatalf("DeleteRouter: %v", err)
	}
	_, err = rt.GetRouter(ctx, r.ID)
	wantErr(t, "GetRouter after DeleteRouter", err, peers.ErrNotFound)
}

// testRoutersOtherProject: a router or a floating IP of the fixture's
// project never takes another project's port or subnet: a floating IP
// created or moved onto that port, an interface by that port or subnet,
// are refused (not found, as Neutron hides them from a member, or
// invalid) and change nothing. fip is associated with vm. A cloud that
// holds one project (a remote cloud's credentials are scoped to one: the
// port comes back in the fixture's project) skips, saying so.
func (s *suite) testRoutersOtherProject(t *testing.T, rt peers.Routers, r peers.Router, fip peers.FloatingIP, vm peers.Port) {
	ctx := t.Context()
	other := "peertest-other-" + s.run
	net, sub := s.makeNetworkIn(t, other, "10.89.0.0/24")
	if net.Project != other {
		t.Skipf("the cloud holds one project: a network asked for in %s came back in %s", other, net.Project)
	}
	p, err := s.c.CreatePort(ctx, peers.PortSpec{Name: s.name("port"), Project: other, NetworkID: net.ID, Metadata: s.meta()})
	if err != nil {
		t.Fatalf("CreatePort in %s: %v", other, err)
	}
	s.cleanupPort(t, p.ID)
	tests := []struct {
		name string
		call func() error
	}{
		{"CreateFloatingIP onto it", func() error {
			f, err := rt.CreateFloatingIP(ctx, peers.FloatingIPSpec{Project: s.fx.Project, NetworkID: fip.NetworkID, PortID: p.ID, Metadata: s.meta()})
			if err == nil {
				_ = rt.DeleteFloatingIP(ctx, f.ID)
			}
			return err
		}},
		{"SetFloatingIPPort onto it", func() error { _, err := rt.SetFloatingIPPort(ctx, fip.ID, p.ID, ""); return err }},
		{"AddRouterInterface by its port", func() error {
			_, err := rt.AddRouterInterface(ctx, r.ID, peers.RouterInterface{PortID: p.ID})
			return err
		}},
		{"AddRouterInterface by its subnet", func() error {
			_, err := rt.AddRouterInterface(ctx, r.ID, peers.RouterInterface{SubnetID: sub.ID})
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name+" of another project", tc.call(), peers.ErrNotFound, peers.ErrInvalid)
		})
	}
	if got, err := rt.GetFloatingIP(ctx, fip.ID); err != nil || got.PortID != vm.ID {
		t.Fatalf("the floating IP after the refusals = %+v, %v; want it still on %s", got, err, vm.ID)
	}
	if got, err := s.c.GetPort(ctx, p.ID); err != nil || got.DeviceID != "" {
		t.Fatalf("the other project's port after the refusals = %+v, %v; want it unused", got, err)
	}
}

// externalNetwork is the fixture's external network, or one the suite
// creates with a test range (198.51.100.0/24, TEST-NET-2) for a cloud
// whose credentials may.
func (s *suite) externalNetwork(t *testing.T) string {
	t.Helper()
	if s.fx.ExternalNetworkID != "" {
		return s.fx.ExternalNetworkID
	}
	ctx := t.Context()
	n, err := s.c.CreateNetwork(ctx, peers.NetworkSpec{Name: s.name("ext"), Project: s.fx.Project, External: true, Metadata: s.meta()})
	if err != nil {
		t.Fatalf("CreateNetwork(external; the Fixture names none): %v", err)
	}
	s.cleanupNetwork(t, n.ID)
	if !n.External {
		t.Fatalf("CreateNetwork(external) = %+v, not external", n)
	}
	if _, err := s.c.CreateSubnet(ctx, peers.SubnetSpec{
		Name: s.name("subnet"), Project: s.fx.Project, NetworkID: n.ID, CIDR: "198.51.100.0/24", IPVersion: 4, Metadata: s.meta(),
	}); err != nil {
		t.Fatalf("CreateSubnet on the external network: %v", err)
	}
	return n.ID
}
