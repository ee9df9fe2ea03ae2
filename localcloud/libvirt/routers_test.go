package libvirt_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// TestRouterDataPlane checks routers in the user-space switch with three
// real TCG guests: a on network A and b on network B, joined by a router
// whose gateway is on an external network (no uplink) where x sits. a
// reaches b's TCP listener through the router and gets answers to pings
// of its gateway (the router's address); x reaches a's listener
// through a's floating IP (and a's answers leave from it). The host's
// firewall and links are the same after the test as before.
func TestRouterDataPlane(t *testing.T) {
	ctx, c, img := guestTest(t, "boots three real guests", 10*time.Minute)
	network := func(name, cidr string, external bool) (peers.Network, peers.Subnet) {
		return testNetwork(t, ctx, c, name, cidr, external)
	}
	netA, subA := network("rt-a", "10.95.1.0/24", false)
	netB, subB := network("rt-b", "10.95.2.0/24", false)
	ext, _ := network("rt-ext", "198.51.100.0/24", true)
	r, err := c.CreateRouter(ctx, peers.RouterSpec{Name: "rt", Project: "p", Gateway: &peers.RouterGateway{NetworkID: ext.ID, EnableSNAT: true}})
	if err != nil {
		t.Fatalf("CreateRouter: %v", err)
	}
	t.Cleanup(func() {
		for _, sn := range []string{subA.ID, subB.ID} {
			_, _ = c.RemoveRouterInterface(context.Background(), r.ID, peers.RouterInterface{SubnetID: sn})
		}
		if err := c.DeleteRouter(context.Background(), r.ID); err != nil {
			t.Errorf("cleanup: DeleteRouter: %v", err)
		}
	})
	for _, sn := range []string{subA.ID, subB.ID} {
		if _, err := c.AddRouterInterface(ctx, r.ID, peers.RouterInterface{SubnetID: sn}); err != nil {
			t.Fatalf("AddRouterInterface(%s): %v", sn, err)
		}
	}
	port := func(n peers.Network, ip string) peers.Port { return fixedPort(t, ctx, c, n, ip) }
	const aIP, bIP, xIP = "10.95.1.10", "10.95.2.10", "198.51.100.50"
	pa, pb, px := port(netA, aIP), port(netB, bIP), port(ext, xIP)
	fip, err := c.CreateFloatingIP(ctx, peers.FloatingIPSpec{Project: "p", NetworkID: ext.ID, PortID: pa.ID})
	if err != nil {
		t.Fatalf("CreateFloatingIP: %v", err)
	}
	t.Cleanup(func() { _ = c.DeleteFloatingIP(context.Background(), fip.ID) })
	listen := "(while true; do echo pong | nc -l -p 8080; done) >/dev/null 2>&1 &\necho rt-listening\n"
	probe := func(kind, ip string) string {
		return fmt.Sprintf(`(n=0; while true; do n=$((n+1)); `+
			`if echo ping | nc -w 2 %s 8080 2>/dev/null | grep -q pong; then echo "%s $n ok"; else echo "%s $n fail"; fi; `+
			`sleep 1; done) &
`, ip, kind, kind)
	}
	boot := func(name string, p peers.Port, gw, script string) peers.Server {
		return bootGuest(t, ctx, c, peers.ServerSpec{Name: name, Project: "p", FlavorID: "1", ImageID: img.ID,
			Networks: []peers.NetworkAttachment{{PortID: p.ID}}, UserData: []byte("#!/bin/sh\nip route add default via " + gw + "\n" + script)})
	}
	b := boot("rt-b", pb, "10.95.2.1", listen)
	gwPing := `(n=0; while true; do n=$((n+1)); if ping -c 1 -W 2 10.95.1.1 >/dev/null 2>&1; then echo "gw-probe $n ok"; else echo "gw-probe $n fail"; fi; sleep 1; done) &` + "\n"
	a := boot("rt-a", pa, "10.95.1.1", listen+probe("rt-probe", bIP)+gwPing)
	x := boot("rt-x", px, "198.51.100.1", probe("fip-probe", fip.Address))
	for _, s := range []peers.Server{a, b} {
		waitFor(t, ctx, s.Name+" listening", func() (string, bool, error) {
			lines := consoleLines(t, ctx, c, s.ID)
			return lastLines(strings.Join(lines, "\n"), 5), contains(lines, "rt-listening"), nil
		})
	}
	oks := func(id, kind string) (int, int) { return probeCounts(t, ctx, c, id, kind) }
	waitFor(t, ctx, "a reaching b through the router", func() (string, bool, error) {
		ok, fail := oks(a.ID, "rt-probe")
		return fmt.Sprintf("%d ok, %d failed", ok, fail), ok >= 2, nil
	})
	waitFor(t, ctx, "a's pings of its gateway (the router) answered", func() (string, bool, error) {
		ok, fail := oks(a.ID, "gw-probe")
		return fmt.Sprintf("%d ok, %d failed", ok, fail), ok >= 2, nil
	})
	waitFor(t, ctx, "x reaching a through its floating IP "+fip.Address, func() (string, bool, error) {
		ok, fail := oks(x.ID, "fip-probe")
		return fmt.Sprintf("%d ok, %d failed", ok, fail), ok >= 2, nil
	})
}
