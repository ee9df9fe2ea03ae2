package libvirt_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// TestGuestNetworking checks the user-space switch with three real TCG
// guests, none in security groups: on network A a server listening on
// TCP 8080 and a client probing it (they reach each other); the client
// also pings the server from an address that is not its port's (the
// server has a static neighbour entry for it, so only the switch's
// source check can stop it); on network B, with the same CIDR, a guest
// with a static neighbour entry for the server's MAC pings it (only the
// switch's isolation of networks can stop it). The host's firewall and
// links are the same after the test as before.
func TestGuestNetworking(t *testing.T) {
	ctx, c, img := guestTest(t, "boots three real guests", 10*time.Minute)
	const cidr, serverIP, clientIP, otherIP, spoofIP = "10.94.0.0/24", "10.94.0.10", "10.94.0.20", "10.94.0.30", "10.94.0.99"
	network := func(name string) peers.Network {
		n, _ := testNetwork(t, ctx, c, name, cidr, false)
		return n
	}
	netA, netB := network("net-a"), network("net-b")
	port := func(n peers.Network, ip string) peers.Port { return fixedPort(t, ctx, c, n, ip) }
	sp, cp, op := port(netA, serverIP), port(netA, clientIP), port(netB, otherIP)
	boot := func(name string, p peers.Port, script string) peers.Server {
		return bootGuest(t, ctx, c, peers.ServerSpec{Name: name, Project: "p", FlavorID: "1", ImageID: img.ID,
			Networks: []peers.NetworkAttachment{{PortID: p.ID}}, UserData: []byte("#!/bin/sh\n" + script)})
	}
	server := boot("net-server", sp, fmt.Sprintf("ip neigh replace %s lladdr %s dev eth0 nud permanent\n"+
		"(while true; do echo pong | nc -l -p 8080; done) >/dev/null 2>&1 &\necho net-listening\n", spoofIP, cp.MACAddress))
	// Each round: a TCP probe from the client's own address, then a ping
	// from the spoofed one.
	// The client's neighbour entry for the server is static too: no ARP
	// from the spoofed address (which the switch drops as well) decides
	// the spoofed pings' fate, only the IP source check.
	client := boot("net-client", cp, fmt.Sprintf("ip addr add %[1]s/32 dev eth0\nip neigh replace %[2]s lladdr %[3]s dev eth0 nud permanent\n"+
		`(n=0; while true; do n=$((n+1)); `+
		`if echo ping | nc -w 2 %[2]s 8080 2>/dev/null | grep -q pong; then echo "net-probe $n ok"; else echo "net-probe $n fail"; fi; `+
		`if ping -c 1 -W 2 -I %[1]s %[2]s >/dev/null 2>&1; then echo "spoof-probe $n ok"; else echo "spoof-probe $n fail"; fi; `+
		`sleep 1; done) &
`, spoofIP, serverIP, sp.MACAddress))
	other := boot("net-other", op, fmt.Sprintf("ip neigh replace %[1]s lladdr %[2]s dev eth0 nud permanent\n"+
		`(n=0; while true; do n=$((n+1)); `+
		`if ping -c 1 -W 2 %[1]s >/dev/null 2>&1; then echo "cross-probe $n ok"; else echo "cross-probe $n fail"; fi; `+
		`if echo ping | nc -w 2 %[1]s 8080 2>/dev/null | grep -q pong; then echo "cross-probe $n ok"; else echo "cross-probe $n fail"; fi; `+
		`sleep 1; done) &
`, serverIP, sp.MACAddress))

	waitFor(t, ctx, "the server guest listening", func() (string, bool, error) {
		lines := consoleLines(t, ctx, c, server.ID)
		return lastLines(strings.Join(lines, "\n"), 5), contains(lines, "net-listening"), nil
	})
	count := func(id, kind string) (int, int) { return probeCounts(t, ctx, c, id, kind) }
	waitFor(t, ctx, "the client reaching the server on its network, its spoofed pings dropped", func() (string, bool, error) {
		ok, fail := count(client.ID, "net-probe")
		sok, sfail := count(client.ID, "spoof-probe")
		seen := fmt.Sprintf("TCP %d ok %d failed; spoofed ping %d ok %d failed", ok, fail, sok, sfail)
		if sok > 0 {
			return seen, false, fmt.Errorf("a ping from a spoofed source address got through")
		}
		return seen, ok >= 3 && sfail >= 3, nil
	})
	waitFor(t, ctx, "the other network's guest never reaching the server", func() (string, bool, error) {
		ok, fail := count(other.ID, "cross-probe")
		seen := fmt.Sprintf("%d ok %d failed", ok, fail)
		if ok > 0 {
			return seen, false, fmt.Errorf("a guest on another network reached the server")
		}
		return seen, fail >= 6, nil
	})
	// The client's spoofed pings are still dropped after all that.
	if sok, _ := count(client.ID, "spoof-probe"); sok > 0 {
		t.Fatalf("a ping from a spoofed source address got through")
	}
}
