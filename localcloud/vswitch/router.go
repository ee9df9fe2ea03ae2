package vswitch

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// A router (localcloud.RouterPlan) is ports of the switch that no NIC is
// behind: the switch answers ARP for their addresses (and, on the
// gateway, for the floating IPs) and routes the IPv4 packets sent to
// their MACs itself: the longest matching prefix of its interfaces'
// subnets, gateway subnet and static routes, else the default route by
// the gateway. The next hop's MAC is looked up in the switch's own
// tables (every port's addresses are known), so routers send no ARP.
// Floating IPs are 1:1 NAT (destination rewritten on the way in, source
// on the way out by the gateway); SNAT rewrites what else leaves by the
// gateway to the gateway's address with a port of its own (nat.go). The
// TTL is decremented; a packet whose TTL runs out is dropped (no ICMP
// time exceeded). A router answers pings of the address it has on the
// sender's network. IPv6 is not routed.

// routerState is a router as the switch runs it.
type routerState struct {
	plan    localcloud.RouterPlan
	ports   []*port // interfaces, then the gateway
	gateway *port
	dnat    map[netip.Addr]natEnd // floating → the fixed address and its port
	snat    map[netip.Addr]natEnd // fixed → the floating address and the port
	// routes are the static routes, longest prefix first.
	routes []localcloud.RouterRoute
}

// natEnd is one side of a floating IP's 1:1 mapping and the port it is
// bound to: a mapping applies to that port's traffic alone, so a plan
// not yet updated after the port's deletion (its fixed address given to
// another port meanwhile) never hands the floating IP's traffic, or its
// address, to whoever holds the fixed address now.
type natEnd struct {
	addr netip.Addr
	port string
}

// SetRouter defines or replaces a router: frames follow the new plan at
// once.
func (s *Switch) SetRouter(plan localcloud.RouterPlan) error {
	r := &routerState{plan: plan, dnat: map[netip.Addr]natEnd{}, snat: map[netip.Addr]natEnd{}}
	mk := func(rp localcloud.RouterPort) (*port, error) {
		mac, err := net.ParseMAC(rp.MAC)
		if err != nil || len(mac) != 6 {
			return nil, fmt.Errorf("vswitch: router %s port %s: MAC %q: %w", plan.ID, rp.PortID, rp.MAC, peers.ErrInvalid)
		}
		p := &port{Port: Port{ID: rp.PortID, Network: rp.NetworkID, MAC: mac}, mac: [6]byte(mac), ips: map[netip.Addr]bool{}, router: r}
		for _, pr := range rp.IPs {
			p.ips[pr.Addr()] = true
			p.prefixes = append(p.prefixes, pr) // the address with its subnet's length
		}
		return p, nil
	}
	for _, rp := range plan.Interfaces {
		p, err := mk(rp)
		if err != nil {
			return err
		}
		r.ports = append(r.ports, p)
	}
	if plan.Gateway != nil {
		p, err := mk(*plan.Gateway)
		if err != nil {
			return err
		}
		r.gateway = p
		r.ports = append(r.ports, p)
	}
	for _, f := range plan.FloatingIPs {
		r.dnat[f.External] = natEnd{addr: f.Internal, port: f.PortID}
		r.snat[f.Internal] = natEnd{addr: f.External, port: f.PortID}
	}
	r.routes = slices.Clone(plan.Routes)
	slices.SortFunc(r.routes, func(a, b localcloud.RouterRoute) int { return b.Destination.Bits() - a.Destination.Bits() })
	s.mu.Lock()
	defer s.mu.Unlock()
	s.routers[plan.ID] = r
	s.rebuildLocked()
	return nil
}

// DeleteRouter removes a router; one not there is ErrNotFound.
func (s *Switch) DeleteRouter(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.routers[id]; !ok {
		return fmt.Errorf("vswitch: router %s: %w", id, peers.ErrNotFound)
	}
	delete(s.routers, id)
	s.nat.forget(id)
	s.rebuildLocked()
	return nil
}

// answerARP replies, as router port rp, to an ARP request from src for
// one of rp's addresses or, on a gateway, a floating IP.
func (s *Switch) answerARP(out *outbox, rp, src *port, frame []byte) {
	a := frame[14:]
	if len(a) < 28 || binary.BigEndian.Uint16(a[6:8]) != 1 {
		return // not a request
	}
	target := netip.AddrFrom4([4]byte(a[24:28]))
	if !rp.ips[target] {
		if _, fip := rp.router.dnat[target]; rp != rp.router.gateway || !fip {
			return
		}
	}
	r := make([]byte, 42)
	copy(r[0:6], frame[6:12])
	copy(r[6:12], rp.mac[:])
	binary.BigEndian.PutUint16(r[12:14], etherARP)
	copy(r[14:22], a[0:6])
	binary.BigEndian.PutUint16(r[20:22], 2) // reply
	copy(r[22:28], rp.mac[:])
	copy(r[28:32], target.AsSlice())
	copy(r[32:38], a[8:14])  // the requester's MAC
	copy(r[38:42], a[14:18]) // and IP
	out.add(src, r)
}

// route forwards an IPv4 packet sent to router port in. hops bounds
// routers handing packets to routers.
func (s *Switch) route(out *outbox, in *port, pk *packet, frame []byte, hops int) {
	r := in.router
	ip := frame[14:]
	if pk.ether != etherIPv4 || hops > 8 || len(ip) < 20 || ip[8] <= 1 {
		s.dropped.Add(1)
		return
	}
	if in.ips[pk.dst] && pk.proto == protoICMP && pk.icmpType == 8 {
		s.echoReply(out, in, frame)
		return
	}
	src, dst := pk.src, pk.dst
	viaGateway := in == r.gateway
	boundTo := "" // the port a floating IP's mapping may deliver to
	if fixed, ok := r.dnat[dst]; ok {
		dst, boundTo = fixed.addr, fixed.port
	} else if viaGateway && r.gateway.ips[dst] {
		// An answer to a connection SNAT sent out.
		var ok bool
		if dst, ok = s.nat.in(r, pk, frame); !ok {
			s.dropped.Add(1)
			return
		}
	} else if in.ips[dst] {
		s.dropped.Add(1) // to the router itself: nothing answers
		return
	}
	egress, next := r.lookup(dst)
	if egress == nil {
		s.dropped.Add(1)
		return
	}
	if egress == r.gateway && !r.gateway.ips[src] {
		if fip, ok := r.snat[src]; ok && s.sentBy(in, frame, fip.port) {
			src = fip.addr
		} else if r.plan.SNAT && !viaGateway {
			var ok bool
			if src, ok = s.nat.out(r, pk, frame); !ok {
				s.dropped.Add(1)
				return
			}
		}
	}
	seg := s.tab.Load().nets[egress.Network]
	if seg == nil {
		s.dropped.Add(1)
		return
	}
	to := seg.byIP[next]
	if to == nil || to == egress || (boundTo != "" && to.router == nil && to.ID != boundTo) {
		s.dropped.Add(1)
		return
	}
	// The frame is this packet's alone (unicast to the router): it is
	// rewritten in place.
	rewrite4(frame, src, dst)
	ip[8]--
	fixIPv4Checksum(ip)
	copy(frame[0:6], to.mac[:])
	copy(frame[6:12], egress.mac[:])
	npk, ok := parse(frame)
	if !ok {
		s.dropped.Add(1)
		return
	}
	if to.router != nil {
		s.route(out, to, &npk, frame, hops+1)
		return
	}
	s.deliver(out, to, &npk, frame)
}

// sentBy reports whether the frame that reached router port in was sent
// by port id: its sender is found by source MAC on in's network. A frame
// another router forwarded cannot tell its first sender, and passes.
func (s *Switch) sentBy(in *port, frame []byte, id string) bool {
	seg := s.tab.Load().nets[in.Network]
	if seg == nil {
		return false
	}
	from := seg.byMAC[[6]byte(frame[6:12])]
	return from != nil && (from.router != nil || from.ID == id)
}

// echoReply answers, as router port in, a ping of its address, rewriting
// the request in place into the reply to its sender.
func (s *Switch) echoReply(out *outbox, in *port, frame []byte) {
	seg := s.tab.Load().nets[in.Network]
	if seg == nil {
		return
	}
	to := seg.byMAC[[6]byte(frame[6:12])]
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	if to == nil || to.router != nil || len(ip) < ihl+8 || binary.BigEndian.Uint16(ip[6:8])&0x3fff != 0 {
		return // no sender port, or a fragment
	}
	copy(frame[0:6], frame[6:12])
	copy(frame[6:12], in.mac[:])
	var a [4]byte
	copy(a[:], ip[12:16])
	copy(ip[12:16], ip[16:20])
	copy(ip[16:20], a[:])
	ip[8] = 64
	fixIPv4Checksum(ip)
	icmp := ip[ihl:]
	old := [2]byte{icmp[0], icmp[1]}
	icmp[0] = 0 // echo reply
	binary.BigEndian.PutUint16(icmp[2:4], csumReplace(binary.BigEndian.Uint16(icmp[2:4]), old[:], icmp[0:2]))
	pk, ok := parse(frame)
	if !ok {
		return
	}
	s.deliver(out, to, &pk, frame)
}

// lookup picks the egress port and next hop for dst: a connected subnet
// (longest prefix), else a static route, else the default route.
func (r *routerState) lookup(dst netip.Addr) (*port, netip.Addr) {
	connected := func(a netip.Addr) *port {
		var best *port
		bits := -1
		for _, p := range r.ports {
			for _, pr := range p.prefixes {
				if pr.Contains(a) && pr.Bits() > bits {
					best, bits = p, pr.Bits()
				}
			}
		}
		return best
	}
	if p := connected(dst); p != nil {
		return p, dst
	}
	for _, rt := range r.routes {
		if rt.Destination.Contains(dst) {
			return connected(rt.NextHop), rt.NextHop
		}
	}
	if r.gateway != nil && r.plan.DefaultVia.IsValid() {
		return r.gateway, r.plan.DefaultVia
	}
	return nil, netip.Addr{}
}

// rewrite4 sets an IPv4 packet's addresses, updating the IP, TCP and UDP
// checksums incrementally (a later fragment has no transport header).
func rewrite4(frame []byte, src, dst netip.Addr) {
	ip := frame[14:]
	ihl := int(ip[0]&0x0f) * 4
	first := binary.BigEndian.Uint16(ip[6:8])&0x1fff == 0
	for i, a := range []netip.Addr{src, dst} {
		off := 12 + 4*i
		old := [4]byte(ip[off : off+4])
		nw := a.As4()
		if old == nw {
			continue
		}
		copy(ip[off:off+4], nw[:])
		if l4 := l4Checksum(ip, ihl, first); l4 >= 0 {
			sum := binary.BigEndian.Uint16(ip[l4:])
			if !(ip[9] == protoUDP && sum == 0) { // UDP without a checksum
				binary.BigEndian.PutUint16(ip[l4:], csumReplace(sum, old[:], nw[:]))
			}
		}
	}
}

// l4Checksum is the offset of the TCP or UDP checksum in ip, or -1.
func l4Checksum(ip []byte, ihl int, first bool) int {
	if !first {
		return -1
	}
	switch {
	case ip[9] == protoTCP && len(ip) >= ihl+18:
		return ihl + 16
	case ip[9] == protoUDP && len(ip) >= ihl+8:
		return ihl + 6
	}
	return -1
}

// csumReplace updates an Internet checksum for old bytes replaced by new
// (RFC 1624: HC' = ~(~HC + ~m + m')), both of even length.
func csumReplace(sum uint16, old, nw []byte) uint16 {
	acc := uint32(^sum)
	for i := 0; i+1 < len(old); i += 2 {
		acc += uint32(^binary.BigEndian.Uint16(old[i:]))
		acc += uint32(binary.BigEndian.Uint16(nw[i:]))
	}
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	return ^uint16(acc)
}

// fixIPv4Checksum recomputes an IPv4 header's checksum.
func fixIPv4Checksum(ip []byte) {
	ihl := int(ip[0]&0x0f) * 4
	ip[10], ip[11] = 0, 0
	var acc uint32
	for i := 0; i+1 < ihl; i += 2 {
		acc += uint32(binary.BigEndian.Uint16(ip[i:]))
	}
	for acc>>16 != 0 {
		acc = acc&0xffff + acc>>16
	}
	binary.BigEndian.PutUint16(ip[10:12], ^uint16(acc))
}
