package vswitch

import (
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
)

// pkt is a parsed test packet.
func pkt(t *testing.T, proto uint8, src, dst string, sport, dport uint16, flags uint8) *packet {
	t.Helper()
	p, ok := parse(ipv4Frame(mac(2), mac(1), src, dst, proto, sport, dport, flags))
	if !ok {
		t.Fatal("test frame does not parse")
	}
	return &p
}

// TestConntrack drives the connection tracker of one filtered port, on a
// clock the test moves: replies of admitted connections pass, others do
// not; connections expire after their timeouts (shorter once TCP closes);
// a full table drops new connections but keeps established ones, and
// makes room by sweeping expired ones; a filter change cuts what it no
// longer admits and keeps what it still does.
func TestConntrack(t *testing.T) {
	now := time.Unix(1e9, 0)
	ct := newConntrack(2)
	ct.now = func() time.Time { return now }
	zone := &port{}
	compileF := func(rules ...localcloud.FilterRule) *filter {
		f, err := compile(localcloud.PortFilter{PortID: "p", Accept: rules})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	egress := localcloud.FilterRule{ICMPType: -1, ICMPCode: -1}
	ssh := localcloud.FilterRule{In: true, Protocol: "tcp", PortMin: 22, PortMax: 22, ICMPType: -1, ICMPCode: -1}
	f := compileF(egress, ssh)
	const guest, peer, other = "10.0.0.2", "10.0.0.1", "10.0.0.3"
	type step struct {
		name    string
		advance time.Duration
		filter  *filter
		p       *packet
		in      bool
		want    bool
	}
	out := func(proto uint8, dst string, sport, dport uint16, flags uint8) *packet {
		return pkt(t, proto, guest, dst, sport, dport, flags)
	}
	in := func(proto uint8, src string, sport, dport uint16, flags uint8) *packet {
		return pkt(t, proto, src, guest, sport, dport, flags)
	}
	steps := []step{
		{"unsolicited UDP in", 0, f, in(protoUDP, peer, 53, 5000, 0), true, false},
		{"UDP out starts a connection", 0, f, out(protoUDP, peer, 5000, 53, 0), false, true},
		{"its reply passes", 0, f, in(protoUDP, peer, 53, 5000, 0), true, true},
		{"after the UDP timeout the reply is unsolicited", timeoutUDP + time.Second, f, in(protoUDP, peer, 53, 5000, 0), true, false},
		{"SSH in admitted", 0, f, in(protoTCP, peer, 40000, 22, tcpSYN), true, true},
		{"its answer out", 0, f, out(protoTCP, peer, 22, 40000, tcpSYN|tcpACK), false, true},
		{"the table (2) takes a second connection", 0, f, out(protoUDP, other, 6000, 53, 0), false, true},
		{"full: a third is dropped", 0, f, out(protoUDP, other, 6001, 53, 0), false, false},
		{"full: established ones go on", 0, f, in(protoTCP, peer, 40000, 22, tcpACK), true, true},
		{"FIN shortens the TCP timeout", 0, f, in(protoTCP, peer, 40000, 22, tcpACK|0x01), true, true},
		{"the UDP one expired, so a new one fits (swept)", timeoutUDP + time.Second, f, out(protoUDP, other, 6002, 53, 0), false, true},
		{"the closed TCP one expired too", 0, f, out(protoTCP, peer, 22, 40000, tcpACK), false, true}, // egress is open: a new connection
		{"SSH in again", 0, f, in(protoTCP, peer, 40001, 22, tcpSYN), true, false},                    // full: 2 live connections
	}
	for _, st := range steps {
		now = now.Add(st.advance)
		if got := ct.check(zone, st.filter, st.p, st.in); got != st.want {
			t.Fatalf("%s: passed = %v, want %v (table %d)", st.name, got, st.want, ct.len())
		}
	}

	// A filter change: connections it still admits go on, the others are
	// cut at their next packet.
	ct = newConntrack(0)
	ct.now = func() time.Time { return now }
	if !ct.check(zone, f, in(protoTCP, peer, 40000, 22, tcpSYN), true) || !ct.check(zone, f, out(protoTCP, peer, 5555, 80, tcpSYN), false) {
		t.Fatal("setup: connections not admitted")
	}
	noSSH := compileF(egress)
	if ct.check(zone, noSSH, out(protoTCP, peer, 22, 40000, tcpACK), false) {
		t.Fatal("the SSH connection outlived the rule admitting it")
	}
	if !ct.check(zone, noSSH, in(protoTCP, peer, 80, 5555, tcpACK), true) {
		t.Fatal("the outgoing connection, still admitted, was cut")
	}
	// Zones are per port: another port's tracker state does not admit.
	if ct.check(&port{}, noSSH, in(protoTCP, peer, 80, 5555, tcpACK), true) {
		t.Fatal("a connection of one port admitted traffic of another")
	}
	// Echo replies match their request by ID.
	icmpOut := out(protoICMP, peer, 7, 8, 0) // echo request, ID 7
	if !ct.check(zone, noSSH, icmpOut, false) {
		t.Fatal("echo request out dropped")
	}
	reply := in(protoICMP, peer, 7, 0, 0) // echo reply, ID 7
	if !ct.check(zone, noSSH, reply, true) {
		t.Fatal("echo reply dropped")
	}
	if ct.check(zone, noSSH, in(protoICMP, peer, 8, 0, 0), true) {
		t.Fatal("an echo reply of another ID passed")
	}
	ct.sweep()
	now = now.Add(time.Hour + time.Minute)
	ct.sweep()
	if n := ct.len(); n != 0 {
		t.Fatalf("after every timeout, %d connections left", n)
	}
}

// TestConntrackShares: one port opening connections by the thousand (a
// scan) fills its own share of the table, not the table: another port's
// new connections still pass; and its unanswered SYNs are forgotten after
// 2 minutes, not the hour an established connection keeps.
func TestConntrackShares(t *testing.T) {
	now := time.Unix(1e9, 0)
	ct := newConntrack(64 * perPortShare)
	ct.now = func() time.Time { return now }
	f, err := compile(localcloud.PortFilter{PortID: "p", Accept: []localcloud.FilterRule{{ICMPType: -1, ICMPCode: -1}}})
	if err != nil {
		t.Fatal(err)
	}
	scanner, victim := &port{}, &port{}
	for i := range ct.max {
		ct.check(scanner, f, pkt(t, protoTCP, "10.0.0.2", "10.0.0.9", uint16(10000+i), 80, tcpSYN), false)
	}
	if n := ct.len(); n != ct.zoneMax() {
		t.Fatalf("the scanner holds %d connections; want its share, %d", n, ct.zoneMax())
	}
	if !ct.check(victim, f, pkt(t, protoTCP, "10.0.0.3", "10.0.0.9", 40000, 443, tcpSYN), false) {
		t.Fatal("another port's new connection was dropped while the scanner's share was full")
	}
	now = now.Add(timeoutUnrepliedTCP + time.Second)
	ct.sweep()
	if n := ct.len(); n != 0 {
		t.Fatalf("%d unanswered connections left after %v", n, timeoutUnrepliedTCP)
	}
}
