package localcloud_test

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
)

// routedSetup is an external network (198.51.100.0/24), a project network
// (10.20.0.0/24) joined to it by a router with SNAT, and a port there
// with a floating IP.
type routedSetup struct {
	ext, net     peers.Network
	extSub, sub  peers.Subnet
	router       peers.Router
	port         peers.Port
	fip          peers.FloatingIP
	interfacePID string
}

func setUpRouted(t *testing.T, c *localcloud.Cloud) routedSetup {
	t.Helper()
	ctx := t.Context()
	var s routedSetup
	var err error
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	s.ext, err = c.CreateNetwork(ctx, peers.NetworkSpec{Name: "public", Project: "admin", External: true})
	must("CreateNetwork(external)", err)
	s.extSub, err = c.CreateSubnet(ctx, peers.SubnetSpec{NetworkID: s.ext.ID, Project: "admin", CIDR: "198.51.100.0/24", IPVersion: 4})
	must("CreateSubnet(external)", err)
	s.net, err = c.CreateNetwork(ctx, peers.NetworkSpec{Name: "private", Project: "p"})
	must("CreateNetwork", err)
	s.sub, err = c.CreateSubnet(ctx, peers.SubnetSpec{NetworkID: s.net.ID, Project: "p", CIDR: "10.20.0.0/24", IPVersion: 4})
	must("CreateSubnet", err)
	s.router, err = c.CreateRouter(ctx, peers.RouterSpec{Name: "r", Project: "p", Gateway: &peers.RouterGateway{NetworkID: s.ext.ID, EnableSNAT: true}})
	must("CreateRouter", err)
	in, err := c.AddRouterInterface(ctx, s.router.ID, peers.RouterInterface{SubnetID: s.sub.ID})
	must("AddRouterInterface", err)
	s.interfacePID = in.PortID
	s.port, err = c.CreatePort(ctx, peers.PortSpec{Project: "p", NetworkID: s.net.ID})
	must("CreatePort", err)
	s.fip, err = c.CreateFloatingIP(ctx, peers.FloatingIPSpec{Project: "p", NetworkID: s.ext.ID, PortID: s.port.ID})
	must("CreateFloatingIP", err)
	return s
}

// TestRouterPlans checks what routers compile to for the driver: the
// interfaces and gateway with their prefixes, the default route, SNAT,
// routes and the floating IPs' NAT, following each change; a deleted
// router leaves the driver.
func TestRouterPlans(t *testing.T) {
	cfg := oneHost(t)
	c, drv := newCloud(t, cfg)
	ctx := t.Context()
	s := setUpRouted(t, c)
	gwIP := netip.MustParseAddr(s.router.Gateway.FixedIPs[0].IPAddress)
	plan, ok := drv.Router("host-a", s.router.ID)
	if !ok {
		t.Fatalf("the driver holds no plan for router %s", s.router.ID)
	}
	if len(plan.Interfaces) != 1 || plan.Interfaces[0].PortID != s.interfacePID || plan.Interfaces[0].IPs[0] != netip.MustParsePrefix("10.20.0.1/24") {
		t.Fatalf("plan interfaces %+v, want port %s at 10.20.0.1/24", plan.Interfaces, s.interfacePID)
	}
	if plan.Gateway == nil || plan.Gateway.NetworkID != s.ext.ID || plan.Gateway.IPs[0] != netip.PrefixFrom(gwIP, 24) || !plan.SNAT ||
		plan.DefaultVia != netip.MustParseAddr("198.51.100.1") {
		t.Fatalf("plan gateway %+v snat %v via %v, want %s/24 on %s with SNAT via 198.51.100.1", plan.Gateway, plan.SNAT, plan.DefaultVia, gwIP, s.ext.ID)
	}
	want := localcloud.FloatingNAT{External: netip.MustParseAddr(s.fip.Address), Internal: netip.MustParseAddr(s.port.FixedIPs[0].IPAddress), PortID: s.port.ID}
	if len(plan.FloatingIPs) != 1 || plan.FloatingIPs[0] != want {
		t.Fatalf("plan floating IPs %+v, want %+v", plan.FloatingIPs, want)
	}

	routes := []peers.Route{{Destination: "192.0.2.0/24", NextHop: "10.20.0.9"}}
	noSNAT := &peers.RouterGateway{NetworkID: s.ext.ID, EnableSNAT: false}
	if _, err := c.UpdateRouter(ctx, s.router.ID, peers.RouterPatch{Routes: &routes, Gateway: noSNAT}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SetFloatingIPPort(ctx, s.fip.ID, "", ""); err != nil {
		t.Fatal(err)
	}
	plan, _ = drv.Router("host-a", s.router.ID)
	wantRoute := localcloud.RouterRoute{Destination: netip.MustParsePrefix("192.0.2.0/24"), NextHop: netip.MustParseAddr("10.20.0.9")}
	if plan.SNAT || len(plan.Routes) != 1 || plan.Routes[0] != wantRoute || len(plan.FloatingIPs) != 0 || plan.Gateway.IPs[0].Addr() != gwIP {
		t.Fatalf("plan after SNAT off, a route and the floating IP disassociated: %+v", plan)
	}

	if err := c.DeleteFloatingIP(ctx, s.fip.ID); err != nil {
		t.Fatal(err)
	}
	none := []peers.Route{}
	if _, err := c.UpdateRouter(ctx, s.router.ID, peers.RouterPatch{Routes: &none}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RemoveRouterInterface(ctx, s.router.ID, peers.RouterInterface{SubnetID: s.sub.ID}); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteRouter(ctx, s.router.ID); err != nil {
		t.Fatal(err)
	}
	if _, ok := drv.Router("host-a", s.router.ID); ok {
		t.Fatalf("the driver still holds deleted router %s", s.router.ID)
	}
	// Their ports are gone: with the test's own, the networks can go.
	if err := c.DeletePort(ctx, s.port.ID); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{s.net.ID, s.ext.ID} {
		if err := c.DeleteNetwork(ctx, n); err != nil {
			t.Fatalf("DeleteNetwork(%s) after the router went: %v", n, err)
		}
	}
}

// TestRoutersSurviveRestart checks routers and floating IPs are saved with
// the state (journal included) and handed to the driver again by Recover.
func TestRoutersSurviveRestart(t *testing.T) {
	cfg := oneHost(t)
	c1, _ := newCloud(t, cfg)
	s := setUpRouted(t, c1)
	localcloud.Halt(c1)
	_ = c1.Close()
	fresh := fake.New(cfg.Hosts...) // a host whose data plane lost the router
	c2, err := localcloud.New(cfg, fresh, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c2.Close() })

	if _, err := c2.Recover(t.Context()); err != nil {
		t.Logf("Recover: %v (the fresh fake has no domains or networks)", err)
	}
	r, err := c2.GetRouter(t.Context(), s.router.ID)
	if err != nil || r.Gateway == nil || r.Gateway.FixedIPs[0] != s.router.Gateway.FixedIPs[0] {
		t.Fatalf("router after a restart = %+v, %v; want %+v", r, err, s.router)
	}
	f, err := c2.GetFloatingIP(t.Context(), s.fip.ID)
	if err != nil || !reflect.DeepEqual(f, s.fip) {
		t.Fatalf("floating IP after a restart = %+v, %v; want %+v", f, err, s.fip)
	}
	if plan, ok := fresh.Router("host-a", s.router.ID); !ok || len(plan.FloatingIPs) != 1 {
		t.Fatalf("the restarted host's plan = %+v, %v; want the router with its floating IP", plan, ok)
	}
}

// noRouting hides the fake's router data plane.
type noRouting struct{ localcloud.Driver }

// TestRoutersRefusedWithoutDataPlane checks a driver without RouterDriver
// makes every router and floating IP write a clear ErrNotSupported.
func TestRoutersRefusedWithoutDataPlane(t *testing.T) {
	cfg := oneHost(t)
	c, err := localcloud.New(cfg, noRouting{fake.New(cfg.Hosts...)}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()
	tests := []struct {
		name string
		err  error
	}{
		{"RoutersAvailable", c.RoutersAvailable(ctx)},
		{"CreateRouter", second(c.CreateRouter(ctx, peers.RouterSpec{Name: "r", Project: "p"}))},
		{"CreateFloatingIP", second(c.CreateFloatingIP(ctx, peers.FloatingIPSpec{Project: "p", NetworkID: "n"}))},
		{"AddRouterInterface", second(c.AddRouterInterface(ctx, "r", peers.RouterInterface{SubnetID: "s"}))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, peers.ErrNotSupported) {
				t.Fatalf("%s = %v, want ErrNotSupported", tc.name, tc.err)
			}
		})
	}
}

func second[T any](_ T, err error) error { return err }

// TestFloatingIPInServerAddresses checks a server's addresses show the
// floating IP mapped onto its port, as Nova's floating type.
func TestFloatingIPInServerAddresses(t *testing.T) {
	cfg := oneHost(t)
	c, _ := newCloud(t, cfg)
	ctx := t.Context()
	seeded, err := c.Seed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := setUpRouted(t, c)
	srv, err := c.CreateServer(ctx, peers.ServerSpec{Name: "web", Project: "p", FlavorID: "1", ImageID: seeded.ImageID,
		Networks: []peers.NetworkAttachment{{PortID: s.port.ID}}})
	if err != nil {
		t.Fatal(err)
	}
	srv = waitServer(t, c, srv.ID, peers.ServerActive)
	var floating []string
	for _, a := range srv.Addresses {
		if a.Type == "floating" {
			floating = append(floating, a.Addr)
		}
	}
	if len(floating) != 1 || floating[0] != s.fip.Address {
		t.Fatalf("server addresses %+v, want the floating IP %s", srv.Addresses, s.fip.Address)
	}
}

// TestPortDeleteDropsFloatingNAT: deleting a port with a floating IP
// takes the association and the routers' NAT mapping with it, so the
// port's fixed address, free again, is no longer the floating IP's.
func TestPortDeleteDropsFloatingNAT(t *testing.T) {
	c, drv := newCloud(t, oneHost(t))
	ctx := t.Context()
	s := setUpRouted(t, c)
	if err := c.DeletePort(ctx, s.port.ID); err != nil {
		t.Fatal(err)
	}
	f, err := c.GetFloatingIP(ctx, s.fip.ID)
	if err != nil || f.PortID != "" || f.FixedIP != "" {
		t.Fatalf("floating IP after its port's delete: %+v, %v; want it unassociated", f, err)
	}
	// The plan goes to the driver in the background.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		plan, ok := drv.Router("host-a", s.router.ID)
		if ok && len(plan.FloatingIPs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the driver's plan still maps the deleted port's floating IP: %+v", plan.FloatingIPs)
		}
	}
}
