package vswitch

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
)

// checksum16 is the Internet checksum of b, starting from acc.
func checksum16(acc uint32, b []byte) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		acc += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	if len(b)%2 == 1 {
		acc += uint32(b[len(b)-1]) << 8
	}
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}

// l4Sum is a TCP or UDP segment's checksum over its pseudo-header, with
// the checksum field as it is (0 when it is right).
func l4Sum(ip []byte) uint16 {
	ihl := int(ip[0]&0x0f) * 4
	seg := ip[ihl:binary.BigEndian.Uint16(ip[2:4])]
	var acc uint32
	for i := 12; i < 20; i += 2 {
		acc += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	acc += uint32(ip[9]) + uint32(len(seg))
	return checksum16(acc, seg)
}

// withChecksums fills a test frame's IPv4 and TCP/UDP checksums.
func withChecksums(f []byte) []byte {
	ip := f[14:]
	fixIPv4Checksum(ip)
	off := 20 + 16
	if ip[9] == protoUDP {
		off = 20 + 6
		binary.BigEndian.PutUint16(ip[24:26], 20) // UDP length
	}
	ip[off], ip[off+1] = 0, 0
	binary.BigEndian.PutUint16(ip[off:], l4Sum(ip))
	return f
}

// withIPChecksum fills a test frame's IPv4 header checksum.
func withIPChecksum(f []byte) []byte {
	fixIPv4Checksum(f[14:])
	return f
}

// checkFrame verifies a routed frame's addresses, ports and checksums.
func checkFrame(t *testing.T, what string, f []byte, dstMAC, srcMAC [6]byte, src, dst string) (sport, dport uint16) {
	t.Helper()
	if f == nil {
		t.Fatalf("%s: nothing arrived", what)
	}
	ip := f[14:]
	if [6]byte(f[0:6]) != dstMAC || [6]byte(f[6:12]) != srcMAC {
		t.Fatalf("%s: MACs %x -> %x, want %x -> %x", what, f[6:12], f[0:6], srcMAC, dstMAC)
	}
	gs, gd := netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
	if gs.String() != src || gd.String() != dst {
		t.Fatalf("%s: %s -> %s, want %s -> %s", what, gs, gd, src, dst)
	}
	if checksum16(0, ip[:20]) != 0 || l4Sum(ip) != 0 {
		t.Fatalf("%s: bad checksum (IP %#x, transport %#x)", what, checksum16(0, ip[:20]), l4Sum(ip))
	}
	if ip[8] != 63 {
		t.Fatalf("%s: TTL %d, want 63", what, ip[8])
	}
	return binary.BigEndian.Uint16(ip[20:22]), binary.BigEndian.Uint16(ip[22:24])
}

// TestRouter checks a router's data plane: ARP for its address, routing
// between two networks, a floating IP both ways, SNAT for a port without
// one and its answer, and nothing once the router is gone.
func TestRouter(t *testing.T) {
	s := New(Config{}, nil)
	t.Cleanup(func() { _ = s.Close() })
	a := attach(t, s, "a", "na", mac(1), "10.1.0.10")
	b := attach(t, s, "b", "nb", mac(2), "10.2.0.10")
	x := attach(t, s, "x", "ext", mac(3), "198.51.100.50")
	r1, r2, rg := mac(0x11), mac(0x12), mac(0x13)
	str := func(m [6]byte) string { return netMAC(m) }
	plan := localcloud.RouterPlan{ID: "r",
		Interfaces: []localcloud.RouterPort{
			{PortID: "ri1", NetworkID: "na", MAC: str(r1), IPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}},
			{PortID: "ri2", NetworkID: "nb", MAC: str(r2), IPs: []netip.Prefix{netip.MustParsePrefix("10.2.0.1/24")}},
		},
		Gateway:     &localcloud.RouterPort{PortID: "rg", NetworkID: "ext", MAC: str(rg), IPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}},
		SNAT:        true,
		FloatingIPs: []localcloud.FloatingNAT{{External: netip.MustParseAddr("198.51.100.20"), Internal: netip.MustParseAddr("10.1.0.10"), PortID: "a"}},
	}
	if err := s.SetRouter(plan); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name           string
		from           *nic
		frame          []byte
		to             *nic
		dstMAC, srcMAC [6]byte
		src, dst       string
	}{
		{"a to b through the router", a, ipv4Frame(r1, mac(1), "10.1.0.10", "10.2.0.10", protoTCP, 40000, 8080, tcpSYN), b, mac(2), r2, "10.1.0.10", "10.2.0.10"},
		{"x to a's floating IP", x, ipv4Frame(rg, mac(3), "198.51.100.50", "198.51.100.20", protoTCP, 50000, 22, tcpSYN), a, mac(1), r1, "198.51.100.50", "10.1.0.10"},
		{"a's answer leaves from its floating IP", a, ipv4Frame(r1, mac(1), "10.1.0.10", "198.51.100.50", protoTCP, 22, 50000, tcpSYN|tcpACK), x, mac(3), rg, "198.51.100.20", "198.51.100.50"},
	}
	for _, st := range steps {
		st.from.send(withChecksums(st.frame))
		checkFrame(t, st.name, st.to.recv(wait), st.dstMAC, st.srcMAC, st.src, st.dst)
	}
	// ARP for the router's address on a's network.
	a.send(arpFrame(mac(1), "10.1.0.10", "10.1.0.1"))
	rep := a.recv(wait)
	if rep == nil || binary.BigEndian.Uint16(rep[20:22]) != 2 || [6]byte(rep[22:28]) != r1 || [6]byte(rep[0:6]) != mac(1) {
		t.Fatalf("ARP reply = % x", rep)
	}
	// A ping of the router's address on a's network is answered.
	ping := ipv4Frame(r1, mac(1), "10.1.0.10", "10.1.0.1", protoICMP, 77, 8, 0)
	ping[14+20+2], ping[14+20+3] = 0, 0
	binary.BigEndian.PutUint16(ping[14+20+2:], checksum16(0, ping[14+20:]))
	a.send(withIPChecksum(ping))
	pong := a.recv(wait)
	if pong == nil || [6]byte(pong[0:6]) != mac(1) || [6]byte(pong[6:12]) != r1 || pong[14+20] != 0 ||
		netip.AddrFrom4([4]byte(pong[14+12:14+16])).String() != "10.1.0.1" || checksum16(0, pong[14:14+20]) != 0 || checksum16(0, pong[14+20:]) != 0 {
		t.Fatalf("echo reply = % x", pong)
	}
	// SNAT: b has no floating IP.
	b.send(withChecksums(ipv4Frame(r2, mac(2), "10.2.0.10", "198.51.100.50", protoUDP, 5353, 53, 0)))
	sport, _ := checkFrame(t, "b's packet SNATed", x.recv(wait), mac(3), rg, "198.51.100.2", "198.51.100.50")
	x.send(withChecksums(ipv4Frame(rg, mac(3), "198.51.100.50", "198.51.100.2", protoUDP, 53, sport, 0)))
	if _, dport := checkFrame(t, "the answer back to b", b.recv(wait), mac(2), r2, "198.51.100.50", "10.2.0.10"); dport != 5353 {
		t.Fatalf("answer to port %d, want 5353", dport)
	}
	// Unsolicited traffic to the gateway's address goes nowhere.
	x.send(withChecksums(ipv4Frame(rg, mac(3), "198.51.100.50", "198.51.100.2", protoUDP, 53, 40000, 0)))
	marker := withChecksums(ipv4Frame(mac(2), mac(9), "10.2.0.9", "10.2.0.10", protoUDP, 9, 9, 0))
	mk := attach(t, s, "m", "nb", mac(9), "10.2.0.9")
	mk.send(marker)
	expectNone(t, b, marker, "unsolicited to the gateway address")
	if err := s.DeleteRouter("r"); err != nil {
		t.Fatal(err)
	}
	a.send(withChecksums(ipv4Frame(r1, mac(1), "10.1.0.10", "10.2.0.10", protoTCP, 40001, 8080, tcpSYN)))
	mk.send(marker)
	expectNone(t, b, marker, "routed after the router is gone")
}

func netMAC(m [6]byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 17)
	for i, c := range m {
		if i > 0 {
			out = append(out, ':')
		}
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return string(out)
}

// TestFloatingIPBoundToItsPort: a floating IP's mapping serves the port
// it was made for alone. Once that port is gone and another port holds
// its fixed address (before the plan is updated), traffic to the
// floating IP does not reach the newcomer, and the newcomer's traffic
// does not leave as the floating IP.
func TestFloatingIPBoundToItsPort(t *testing.T) {
	s := New(Config{}, nil)
	t.Cleanup(func() { _ = s.Close() })
	attach(t, s, "a", "na", mac(1), "10.1.0.10")
	x := attach(t, s, "x", "ext", mac(3), "198.51.100.50")
	r1, rg := mac(0x11), mac(0x13)
	plan := localcloud.RouterPlan{ID: "r",
		Interfaces:  []localcloud.RouterPort{{PortID: "ri1", NetworkID: "na", MAC: netMAC(r1), IPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}}},
		Gateway:     &localcloud.RouterPort{PortID: "rg", NetworkID: "ext", MAC: netMAC(rg), IPs: []netip.Prefix{netip.MustParsePrefix("198.51.100.2/24")}},
		SNAT:        true,
		FloatingIPs: []localcloud.FloatingNAT{{External: netip.MustParseAddr("198.51.100.20"), Internal: netip.MustParseAddr("10.1.0.10"), PortID: "a"}},
	}
	if err := s.SetRouter(plan); err != nil {
		t.Fatal(err)
	}
	if err := s.RemovePort("a"); err != nil {
		t.Fatal(err)
	}
	c := attach(t, s, "c", "na", mac(4), "10.1.0.10")
	m := attach(t, s, "m", "na", mac(9), "10.1.0.9")
	// The marker goes only once the switch has dealt with x's frame
	// (counted as forwarded or dropped): frames from two ports have no
	// order between them.
	before := s.Stats()
	x.send(withChecksums(ipv4Frame(rg, mac(3), "198.51.100.50", "198.51.100.20", protoTCP, 50000, 22, tcpSYN)))
	for deadline := time.Now().Add(wait); ; time.Sleep(time.Millisecond) {
		if now := s.Stats(); now.Dropped > before.Dropped || now.Forwarded > before.Forwarded {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the switch never dealt with the frame to the floating IP")
		}
	}
	marker := withChecksums(ipv4Frame(mac(4), mac(9), "10.1.0.9", "10.1.0.10", protoUDP, 9, 9, 0))
	m.send(marker)
	expectNone(t, c, marker, "the floating IP's traffic to the fixed address's new holder")
	c.send(withChecksums(ipv4Frame(r1, mac(4), "10.1.0.10", "198.51.100.50", protoUDP, 5353, 53, 0)))
	checkFrame(t, "the new holder's traffic SNATed to the gateway, not the floating IP", x.recv(wait), mac(3), rg, "198.51.100.2", "198.51.100.50")
}

// TestRouterAnswersUnicastARP: Linux re-checks a cached neighbour with a
// unicast ARP request to its MAC; the router answers it as it answers a
// broadcast one (long flows through a gateway would stall otherwise).
func TestRouterAnswersUnicastARP(t *testing.T) {
	s := New(Config{}, nil)
	t.Cleanup(func() { _ = s.Close() })
	a := attach(t, s, "a", "na", mac(1), "10.1.0.10")
	r1 := mac(0x11)
	if err := s.SetRouter(localcloud.RouterPlan{ID: "r",
		Interfaces: []localcloud.RouterPort{{PortID: "ri1", NetworkID: "na", MAC: netMAC(r1), IPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}}},
	}); err != nil {
		t.Fatal(err)
	}
	f := arpFrame(mac(1), "10.1.0.10", "10.1.0.1")
	copy(f[0:6], r1[:])
	a.send(f)
	rep := a.recv(wait)
	if rep == nil || binary.BigEndian.Uint16(rep[20:22]) != 2 || [6]byte(rep[22:28]) != r1 || [6]byte(rep[0:6]) != mac(1) {
		t.Fatalf("reply to a unicast ARP request = % x", rep)
	}
}
