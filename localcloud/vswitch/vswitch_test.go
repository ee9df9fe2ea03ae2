package vswitch

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// wait bounds how long a frame that must arrive may take; it never
// decides an outcome.
const wait = 5 * time.Second

// expectNone checks that n gets nothing before marker, a frame sent
// after the one that must be dropped, arrives (frames of one sender on
// loopback arrive in order).
func expectNone(t *testing.T, n *nic, marker []byte, what string) {
	t.Helper()
	for {
		got := n.recv(wait)
		if got == nil {
			t.Fatalf("%s: the marker frame never arrived", what)
		}
		if bytes.Equal(got, marker) {
			return
		}
		t.Fatalf("%s: got a frame that must have been dropped: % x", what, got[:min(len(got), 42)])
	}
}

func expect(t *testing.T, n *nic, want []byte, what string) {
	t.Helper()
	got := n.recv(wait)
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: got % x, want % x", what, got, want)
	}
}

// TestForwarding checks layer 2: unicast by destination MAC within a
// network, broadcast flooded within the network only, never across
// networks; a frame to an unknown MAC goes nowhere.
func TestForwarding(t *testing.T) {
	s := New(Config{}, nil)
	t.Cleanup(func() { _ = s.Close() })
	a := attach(t, s, "a", "n1", mac(1), "10.0.0.1")
	b := attach(t, s, "b", "n1", mac(2), "10.0.0.2")
	c := attach(t, s, "c", "n2", mac(3), "10.0.0.3")
	d := attach(t, s, "d", "n1", mac(4), "10.0.0.4")

	tests := []struct {
		name   string
		from   *nic
		frame  []byte
		get    []*nic
		notGet []*nic
	}{
		{"unicast to its MAC only", a, ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoUDP, 1000, 53, 0), []*nic{b}, []*nic{d, c}},
		{"broadcast within the network", a, arpFrame(mac(1), "10.0.0.1", "10.0.0.2"), []*nic{b, d}, []*nic{c}},
		{"another network's MAC unreachable", a, ipv4Frame(mac(3), mac(1), "10.0.0.1", "10.0.0.3", protoUDP, 1000, 53, 0), nil, []*nic{c}},
		{"unknown MAC", a, ipv4Frame(mac(9), mac(1), "10.0.0.1", "10.0.0.9", protoUDP, 1000, 53, 0), nil, []*nic{b, c, d}},
		{"the other network's broadcast stays there", c, arpFrame(mac(3), "10.0.0.3", "10.0.0.1"), nil, []*nic{a, b, d}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.from.send(tc.frame)
			for _, n := range tc.get {
				expect(t, n, tc.frame, "receiver")
			}
			// A marker each silent NIC must get next proves the frame
			// was not delivered to it.
			for _, n := range tc.notGet {
				m := ipv4Frame(n.mac, mac(100), "10.9.9.9", "10.0.0.1", protoUDP, uint16(i), 9, 0)
				sender := attach(t, s, "m"+tc.name+string(rune('a'+i))+n.port.ID, n.port.Network, mac(100), "10.9.9.9")
				sender.send(m)
				expectNone(t, n, m, tc.name)
				_ = s.RemovePort(sender.port.ID)
			}
		})
	}
}

// TestAntiSpoofing checks a port sends only with its own MAC and IPs.
func TestAntiSpoofing(t *testing.T) {
	s := New(Config{}, nil)
	t.Cleanup(func() { _ = s.Close() })
	a := attach(t, s, "a", "n1", mac(1), "10.0.0.1")
	b := attach(t, s, "b", "n1", mac(2), "10.0.0.2")
	tests := []struct {
		name  string
		frame []byte
	}{
		{"another source MAC", ipv4Frame(mac(2), mac(7), "10.0.0.1", "10.0.0.2", protoUDP, 1, 2, 0)},
		{"another source IP", ipv4Frame(mac(2), mac(1), "10.0.0.66", "10.0.0.2", protoUDP, 1, 2, 0)},
		{"ARP for another IP", arpFrame(mac(1), "10.0.0.66", "10.0.0.2")},
		{"truncated", ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoUDP, 1, 2, 0)[:20]},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := s.Stats()
			a.send(tc.frame)
			m := ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoUDP, 7, uint16(i), 0)
			a.send(m)
			expectNone(t, b, m, tc.name)
			if after := s.Stats(); after.Spoofed+after.Dropped <= before.Spoofed+before.Dropped {
				t.Fatalf("stats %+v after %+v: the frame was not counted as dropped", after, before)
			}
		})
	}
	// Another process sending on a's switch port is not a's NIC.
	other := attach(t, s, "x", "n9", mac(9), "10.0.0.9")
	f := ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoUDP, 1, 2, 0)
	if _, err := other.conn.WriteToUDPAddrPort(f, a.port.Switch); err != nil {
		t.Fatal(err)
	}
	m := ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoUDP, 8, 8, 0)
	a.send(m)
	expectNone(t, b, m, "a frame from a stranger's socket")
}

// TestSecurityGroups checks the stateful filter: ingress denied by
// default, admitted by a rule, replies of allowed connections admitted,
// connections no longer allowed cut when the rule goes.
func TestSecurityGroups(t *testing.T) {
	s := New(Config{}, nil)
	t.Cleanup(func() { _ = s.Close() })
	cli := attach(t, s, "cli", "n1", mac(1), "10.0.0.1")
	srv := attach(t, s, "srv", "n1", mac(2), "10.0.0.2")
	egressAll := localcloud.FilterRule{In: false, ICMPType: -1, ICMPCode: -1}
	deny := localcloud.PortFilter{PortID: "srv", Accept: []localcloud.FilterRule{egressAll}}
	allow8080 := localcloud.PortFilter{PortID: "srv", Accept: []localcloud.FilterRule{egressAll,
		{In: true, Protocol: "tcp", PortMin: 8080, PortMax: 8080, Remote: netip.MustParsePrefix("10.0.0.0/24"), ICMPType: -1, ICMPCode: -1}}}
	if err := s.SetFilter(deny); err != nil {
		t.Fatal(err)
	}
	syn := ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoTCP, 40000, 8080, tcpSYN)
	synAck := ipv4Frame(mac(1), mac(2), "10.0.0.2", "10.0.0.1", protoTCP, 8080, 40000, tcpSYN|tcpACK)
	ack := ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoTCP, 40000, 8080, tcpACK)
	marker := func(n byte) []byte {
		return ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoICMP, uint16(n), 8, 0)
	}
	icmpIn := localcloud.FilterRule{In: true, Protocol: "icmp", ICMPType: -1, ICMPCode: -1}
	steps := []struct {
		name   string
		filter *localcloud.PortFilter
		from   *nic
		frame  []byte
		to     *nic
		pass   bool
	}{
		{"SYN blocked by default", nil, cli, syn, srv, false},
		{"SYN admitted by the rule", &allow8080, cli, syn, srv, true},
		{"SYN-ACK out", nil, srv, synAck, cli, true},
		{"ACK in (tracked)", nil, cli, ack, srv, true},
		{"rule removed: the connection is cut", &deny, cli, ack, srv, false},
		{"and a new one blocked", nil, cli, syn, srv, false},
		{"other port blocked", &allow8080, cli, ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoTCP, 40001, 22, tcpSYN), srv, false},
		{"outgoing UDP allowed and its reply admitted", nil, srv, ipv4Frame(mac(1), mac(2), "10.0.0.2", "10.0.0.1", protoUDP, 5353, 53, 0), cli, true},
		{"the reply", nil, cli, ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoUDP, 53, 5353, 0), srv, true},
		{"unsolicited UDP in", nil, cli, ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoUDP, 53, 5354, 0), srv, false},
		{"ARP passes", nil, cli, arpFrame(mac(1), "10.0.0.1", "10.0.0.2"), srv, true},
	}
	for i, st := range steps {
		if st.filter != nil {
			// markers pass: ICMP in admitted
			f := *st.filter
			f.Accept = append(append([]localcloud.FilterRule{}, f.Accept...), icmpIn)
			if err := s.SetFilter(f); err != nil {
				t.Fatal(err)
			}
		} else if i == 0 {
			f := deny
			f.Accept = append(append([]localcloud.FilterRule{}, f.Accept...), icmpIn)
			_ = s.SetFilter(f)
		}
		st.from.send(st.frame)
		if st.pass {
			expect(t, st.to, st.frame, st.name)
			continue
		}
		m := marker(byte(i))
		if st.to == cli {
			t.Fatal("markers go to srv only")
		}
		cli.send(m)
		expectNone(t, srv, m, st.name)
	}
	if err := s.DeleteFilter("srv"); err != nil {
		t.Fatal(err)
	}
	cli.send(syn)
	expect(t, srv, syn, "unfiltered once the filter is deleted")
	if err := s.DeleteFilter("srv"); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("DeleteFilter twice = %v, want ErrNotFound", err)
	}
}

// TestFilteredPortFailsClosed: a port known to be filtered whose filter
// has not been set (a switch rebuilt after a restart) passes no IP.
func TestFilteredPortFailsClosed(t *testing.T) {
	s := New(Config{}, nil)
	t.Cleanup(func() { _ = s.Close() })
	cli := attach(t, s, "cli", "n1", mac(1), "10.0.0.1")
	srv := attach(t, s, "srv", "n1", mac(2), "10.0.0.2")
	// The port reopened as a restarted switch does, known to be filtered.
	p := srv.port
	p.Filtered = true
	if _, err := s.AddPort(p); err != nil {
		t.Fatal(err)
	}
	arp := arpFrame(mac(1), "10.0.0.1", "10.0.0.2")
	cli.send(ipv4Frame(mac(2), mac(1), "10.0.0.1", "10.0.0.2", protoTCP, 1, 22, tcpSYN))
	cli.send(arp)
	expectNone(t, srv, arp, "IP to a filtered port without its filter")
}

// TestNetworks checks network bookkeeping.
func TestNetworks(t *testing.T) {
	s := New(Config{}, nil)
	t.Cleanup(func() { _ = s.Close() })
	s.AddNetwork("n1")
	attach(t, s, "a", "n1", mac(1), "10.0.0.1")
	if err := s.RemoveNetwork("n1"); !errors.Is(err, peers.ErrConflict) {
		t.Fatalf("RemoveNetwork with a port = %v, want ErrConflict", err)
	}
	if err := s.RemovePort("a"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveNetwork("n1"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveNetwork("n1"); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("RemoveNetwork twice = %v", err)
	}
	if len(s.Networks()) != 0 {
		t.Fatalf("Networks = %v", s.Networks())
	}
}

// icmp6Frame is an Ethernet frame with an ICMPv6 message of type typ
// from src to dst, its target address (NS, NA) and options after it.
func icmp6Frame(dstMAC, srcMAC [6]byte, src, dst string, typ byte, target string, opts ...byte) []byte {
	f := make([]byte, 14+40+24, 14+40+24+len(opts))
	copy(f[0:6], dstMAC[:])
	copy(f[6:12], srcMAC[:])
	f[12], f[13] = 0x86, 0xdd
	ip := f[14:]
	ip[0] = 0x60
	ip[5] = byte(24 + len(opts))
	ip[6], ip[7] = protoICMPv6, 255
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(ip[8:24], s[:])
	copy(ip[24:40], d[:])
	ip[40] = typ
	if target != "" {
		tg := netip.MustParseAddr(target).As16()
		copy(ip[48:64], tg[:])
	}
	return append(f, opts...)
}

// TestNeighbourDiscoveryHeldToPort: neighbour discovery passes the
// filters (a deny-all port still learns its neighbours), so the switch
// holds it to its sender's port: a guest's router advertisement is
// dropped, and so is a neighbour advertisement for another port's
// address or naming another MAC; one for the sender's own address
// arrives.
func TestNeighbourDiscoveryHeldToPort(t *testing.T) {
	s := New(Config{}, nil)
	t.Cleanup(func() { _ = s.Close() })
	a := attach(t, s, "a", "shared", mac(1), "2001:db8::a")
	b := attach(t, s, "b", "shared", mac(2), "2001:db8::b")
	if err := s.SetFilter(localcloud.PortFilter{PortID: "b"}); err != nil { // b admits nothing
		t.Fatal(err)
	}
	allNodes := [6]byte{0x33, 0x33, 0, 0, 0, 1}
	other := mac(9)
	tlla := func(m [6]byte) []byte { return append([]byte{2, 1}, m[:]...) }
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"router advertisement", icmp6Frame(allNodes, mac(1), linkLocal(mac(1)).String(), "ff02::1", icmp6RouterAdvert, "")},
		{"redirect", icmp6Frame(mac(2), mac(1), linkLocal(mac(1)).String(), "2001:db8::b", icmp6Redirect, "2001:db8::c")},
		{"advertisement for b's address", icmp6Frame(allNodes, mac(1), "2001:db8::a", "ff02::1", icmp6NeighborAdvert, "2001:db8::b")},
		{"advertisement naming another MAC", icmp6Frame(allNodes, mac(1), "2001:db8::a", "ff02::1", icmp6NeighborAdvert, "2001:db8::a", tlla(other)...)},
		{"advertisement from the unspecified address", icmp6Frame(allNodes, mac(1), "::", "ff02::1", icmp6NeighborAdvert, "2001:db8::a")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.send(tc.frame)
			// a's own advertisement of its address, sent after, is the
			// marker: it must arrive, and nothing before it.
			marker := icmp6Frame(allNodes, mac(1), "2001:db8::a", "ff02::1", icmp6NeighborAdvert, "2001:db8::a", tlla(mac(1))...)
			a.send(marker)
			expectNone(t, b, marker, tc.name)
		})
	}
}
