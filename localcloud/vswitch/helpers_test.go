package vswitch

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"
)

// nic is a test guest NIC: a UDP socket on 127.0.0.1 speaking to its
// switch port, as QEMU's socket netdev does.
type nic struct {
	t    testing.TB
	conn *net.UDPConn
	port Port
	mac  [6]byte
}

// attach adds a port to s for a NIC with mac and ips on network, and
// opens the NIC's socket.
func attach(t testing.TB, s *Switch, id, network string, mac [6]byte, ips ...string) *nic {
	t.Helper()
	p := Port{ID: id, Network: network, MAC: mac[:]}
	for _, ip := range ips {
		p.IPs = append(p.IPs, netip.MustParseAddr(ip))
	}
	got, err := s.AddPort(p)
	if err != nil {
		t.Fatalf("AddPort(%s): %v", id, err)
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(got.NIC))
	if err != nil {
		t.Fatalf("NIC socket of %s: %v", id, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &nic{t: t, conn: c, port: got, mac: mac}
}

func (n *nic) send(frame []byte) {
	n.t.Helper()
	if _, err := n.conn.WriteToUDPAddrPort(frame, n.port.Switch); err != nil {
		n.t.Fatalf("send: %v", err)
	}
}

// recv returns the next frame the NIC gets, or nil when none comes
// within wait. A test asserting that nothing arrives sends a frame that
// must arrive after it (see expectNone), so the wait bounds a failure
// only, never the outcome.
func (n *nic) recv(wait time.Duration) []byte {
	_ = n.conn.SetReadDeadline(time.Now().Add(wait))
	b := make([]byte, 65536)
	k, err := n.conn.Read(b)
	if err != nil {
		return nil
	}
	return b[:k]
}

func mac(last byte) [6]byte { return [6]byte{0xfa, 0x16, 0x3e, 0, 0, last} }

var broadcast = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// ipv4Frame builds an Ethernet frame with an IPv4 packet of proto whose
// transport header starts with sport, dport (ICMP: type, code and the
// echo ID in sport) and flags (TCP).
func ipv4Frame(dst, src [6]byte, sip, dip string, proto uint8, sport, dport uint16, flags uint8) []byte {
	f := make([]byte, 14+20+20)
	copy(f[0:6], dst[:])
	copy(f[6:12], src[:])
	binary.BigEndian.PutUint16(f[12:14], etherIPv4)
	ip := f[14:]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:4], 40)
	ip[8], ip[9] = 64, proto
	s4, d4 := netip.MustParseAddr(sip).As4(), netip.MustParseAddr(dip).As4()
	copy(ip[12:16], s4[:])
	copy(ip[16:20], d4[:])
	tp := ip[20:]
	switch proto {
	case protoICMP:
		tp[0], tp[1] = byte(dport), 0 // type in dport
		binary.BigEndian.PutUint16(tp[4:6], sport)
	default:
		binary.BigEndian.PutUint16(tp[0:2], sport)
		binary.BigEndian.PutUint16(tp[2:4], dport)
		tp[13] = flags
	}
	return f
}

func arpFrame(src [6]byte, senderIP, targetIP string) []byte {
	f := make([]byte, 14+28)
	copy(f[0:6], broadcast[:])
	copy(f[6:12], src[:])
	binary.BigEndian.PutUint16(f[12:14], etherARP)
	a := f[14:]
	binary.BigEndian.PutUint16(a[0:2], 1)
	binary.BigEndian.PutUint16(a[2:4], etherIPv4)
	a[4], a[5] = 6, 4
	binary.BigEndian.PutUint16(a[6:8], 1)
	copy(a[8:14], src[:])
	s4, t4 := netip.MustParseAddr(senderIP).As4(), netip.MustParseAddr(targetIP).As4()
	copy(a[14:18], s4[:])
	copy(a[24:28], t4[:])
	return f
}

const (
	tcpSYN = 0x02
	tcpACK = 0x10
)
