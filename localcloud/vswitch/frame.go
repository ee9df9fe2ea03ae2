package vswitch

import (
	"encoding/binary"
	"net/netip"
)

// Ethernet types the switch understands; every other one is dropped.
const (
	etherIPv4 = 0x0800
	etherARP  = 0x0806
	etherIPv6 = 0x86dd
)

// IP protocol numbers the filter and the connection tracker look into.
const (
	protoICMP   = 1
	protoTCP    = 6
	protoUDP    = 17
	protoICMPv6 = 58
	protoSCTP   = 132
	protoUDPLit = 136
)

// packet is what the switch reads from a frame: enough to check its
// source, filter it and track its connection.
type packet struct {
	ether        uint16
	v6           bool
	proto        uint8
	src, dst     netip.Addr
	sport, dport uint16 // ICMP echo: both are the echo ID
	icmpType     int16  // -1 when not ICMP
	icmpCode     int16
	tcpFlags     uint8
	// arpSender is the ARP sender's hardware and protocol address.
	arpMAC [6]byte
	arpIP  netip.Addr
}

// parse reads frame's headers. It reports false for a frame too short or
// malformed to judge, which the switch drops.
func parse(frame []byte) (packet, bool) {
	p := packet{icmpType: -1, icmpCode: -1}
	if len(frame) < 14 {
		return p, false
	}
	p.ether = binary.BigEndian.Uint16(frame[12:14])
	b := frame[14:]
	switch p.ether {
	case etherARP:
		// htype 1, ptype IPv4, hlen 6, plen 4.
		if len(b) < 28 || binary.BigEndian.Uint16(b[0:2]) != 1 || binary.BigEndian.Uint16(b[2:4]) != etherIPv4 || b[4] != 6 || b[5] != 4 {
			return p, false
		}
		copy(p.arpMAC[:], b[8:14])
		p.arpIP = netip.AddrFrom4([4]byte(b[14:18]))
		return p, true
	case etherIPv4:
		if len(b) < 20 || b[0]>>4 != 4 {
			return p, false
		}
		ihl := int(b[0]&0x0f) * 4
		if ihl < 20 || len(b) < ihl {
			return p, false
		}
		p.proto = b[9]
		p.src = netip.AddrFrom4([4]byte(b[12:16]))
		p.dst = netip.AddrFrom4([4]byte(b[16:20]))
		// Later fragments carry no transport header: they are judged by
		// addresses and protocol alone.
		if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
			return p, true
		}
		return p, p.transport(b[ihl:])
	case etherIPv6:
		if len(b) < 40 || b[0]>>4 != 6 {
			return p, false
		}
		p.v6 = true
		p.proto = b[6]
		p.src = netip.AddrFrom16([16]byte(b[8:24]))
		p.dst = netip.AddrFrom16([16]byte(b[24:40]))
		// Extension headers are not walked: a packet carrying them is
		// judged by its next-header value, which no rule but "any"
		// admits.
		return p, p.transport(b[40:])
	}
	return p, true
}

// transport reads the ports, ICMP type and code, and TCP flags.
func (p *packet) transport(b []byte) bool {
	switch p.proto {
	case protoTCP:
		if len(b) < 14 {
			return false
		}
		p.sport, p.dport = binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
		p.tcpFlags = b[13]
	case protoUDP, protoUDPLit, protoSCTP:
		if len(b) < 4 {
			return false
		}
		p.sport, p.dport = binary.BigEndian.Uint16(b[0:2]), binary.BigEndian.Uint16(b[2:4])
	case protoICMP, protoICMPv6:
		if len(b) < 4 {
			return false
		}
		p.icmpType, p.icmpCode = int16(b[0]), int16(b[1])
		if p.isEcho() {
			if len(b) < 8 {
				return false
			}
			id := binary.BigEndian.Uint16(b[4:6])
			p.sport, p.dport = id, id
		}
	}
	return true
}

// isEcho reports an ICMP(v6) echo request or reply.
func (p *packet) isEcho() bool {
	if p.proto == protoICMP {
		return p.icmpType == 8 || p.icmpType == 0
	}
	return p.proto == protoICMPv6 && (p.icmpType == 128 || p.icmpType == 129)
}

// isND reports IPv6 neighbour discovery (router and neighbour
// solicitations and advertisements), which passes every filter as
// Neutron lets it.
func (p *packet) isND() bool {
	return p.v6 && p.proto == protoICMPv6 && p.icmpType >= 133 && p.icmpType <= 136
}

// isIP reports an IPv4 or IPv6 packet.
func (p *packet) isIP() bool { return p.ether == etherIPv4 || p.ether == etherIPv6 }

// linkLocal is the IPv6 link-local address a guest derives from its MAC
// (modified EUI-64), the source of its neighbour discovery.
func linkLocal(mac [6]byte) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}
