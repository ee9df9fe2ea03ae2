package vswitch

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
)

// outbox gathers the frames one read batch forwards, so frames to the
// same port leave in one sendmmsg; they point into the read buffers,
// which stay untouched until the next read.
type outbox struct {
	dst   []*port
	frame [][]byte
	msgs  []ipv4.Message
}

func (o *outbox) add(dst *port, frame []byte) {
	o.dst = append(o.dst, dst)
	o.frame = append(o.frame, frame)
}

// flush sends what the batch forwarded, a sendmmsg per run of frames to
// one port.
func (s *Switch) flush(o *outbox) {
	for i := 0; i < len(o.dst); {
		dst := o.dst[i]
		o.msgs = o.msgs[:0]
		j := i
		for ; j < len(o.dst) && o.dst[j] == dst; j++ {
			o.msgs = append(o.msgs, ipv4.Message{Buffers: o.frame[j : j+1], Addr: dst.nicAddr})
		}
		sent := 0
		for sent < len(o.msgs) {
			n, err := dst.pc.WriteBatch(o.msgs[sent:], 0)
			if err != nil {
				// The NIC's QEMU is not running (ECONNREFUSED from an
				// earlier send) or the port closed: the frame is lost,
				// as on a wire; the rest are tried.
				s.dropped.Add(1)
				n = max(n, 1)
			} else {
				s.forwarded.Add(uint64(n))
			}
			sent += n
		}
		i = j
	}
	o.dst, o.frame = o.dst[:0], o.frame[:0]
}

// serve reads p's frames, a batch per system call (recvmmsg), into
// buffers reused for the port's life, and forwards each.
func (s *Switch) serve(p *port) {
	defer s.wg.Done()
	msgs := make([]ipv4.Message, s.cfg.Batch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 65536)}
	}
	out := &outbox{}
	for {
		n, err := p.pc.ReadBatch(msgs, 0)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				continue
			}
			return // closed
		}
		for i := range n {
			m := &msgs[i]
			from, ok := m.Addr.(*net.UDPAddr)
			if !ok || from.AddrPort() != p.NIC && netip.AddrPortFrom(from.AddrPort().Addr().Unmap(), from.AddrPort().Port()) != p.NIC {
				// Only the NIC may send on its port.
				s.dropped.Add(1)
				continue
			}
			s.forward(out, p, m.Buffers[0][:m.N])
		}
		s.flush(out)
	}
}

// forward switches one frame from port src.
func (s *Switch) forward(out *outbox, src *port, frame []byte) {
	pk, ok := parse(frame)
	if !ok {
		s.dropped.Add(1)
		return
	}
	if [6]byte(frame[6:12]) != src.mac || !s.sourceOK(src, &pk, frame) {
		s.spoofed.Add(1)
		return
	}
	f := src.filter.Load()
	if f != nil && pk.isIP() && !pk.isND() && !s.ct.check(src, f, &pk, false) {
		s.filtered.Add(1)
		return
	}
	seg := s.tab.Load().nets[src.Network]
	if seg == nil {
		s.dropped.Add(1)
		return
	}
	if frame[0]&1 != 0 { // broadcast or multicast: every other port of the network
		s.flooded.Add(1)
		for _, dst := range seg.all {
			switch {
			case dst == src:
			case dst.router != nil:
				if pk.ether == etherARP {
					s.answerARP(out, dst, src, frame)
				}
			default:
				s.deliver(out, dst, &pk, frame)
			}
		}
		return
	}
	dst := seg.byMAC[[6]byte(frame[0:6])]
	if dst == nil || dst == src {
		// Every port's MAC is known: a unicast frame to an unknown MAC
		// has nowhere to go (no flooding, no learning).
		s.dropped.Add(1)
		return
	}
	if dst.router != nil {
		if pk.ether == etherARP {
			// Unicast to the router's MAC: how Linux re-checks a cached
			// neighbour before it goes stale.
			s.answerARP(out, dst, src, frame)
			return
		}
		s.route(out, dst, &pk, frame, 0)
		return
	}
	s.deliver(out, dst, &pk, frame)
}

// sourceOK checks that an ARP or IP packet comes from the port's own
// addresses: its fixed IPs, 0.0.0.0 in an ARP probe, for IPv6 its
// link-local address and the unspecified address of duplicate address
// detection. Neighbour discovery, which passes the filters, is held to
// the port too (ndOK). Other Ethernet types are dropped.
func (s *Switch) sourceOK(src *port, pk *packet, frame []byte) bool {
	switch pk.ether {
	case etherARP:
		return pk.arpMAC == src.mac && (src.ips[pk.arpIP] || pk.arpIP.IsUnspecified())
	case etherIPv4:
		return src.ips[pk.src]
	case etherIPv6:
		if pk.proto == protoICMPv6 && !ndOK(src, pk, frame) {
			return false
		}
		if pk.src.IsUnspecified() {
			return pk.proto == protoICMPv6 && pk.icmpType == icmp6NeighborSolicit // duplicate address detection
		}
		return src.ips[pk.src]
	}
	return false
}

// ICMPv6 neighbour discovery message types (RFC 4861).
const (
	icmp6RouterSolicit   = 133
	icmp6RouterAdvert    = 134
	icmp6NeighborSolicit = 135
	icmp6NeighborAdvert  = 136
	icmp6Redirect        = 137
)

// ndOK holds a guest's neighbour discovery to its own port, as Neutron's
// anti-spoofing does: no router advertisements or redirects (a guest is
// no router), a neighbour advertisement only for the port's own
// addresses, and link-layer address options only with the port's MAC.
// The message starts after the fixed IPv6 header (the switch parses no
// extension headers: a message behind one is no neighbour discovery and
// meets the filters).
func ndOK(src *port, pk *packet, frame []byte) bool {
	var body []byte
	if len(frame) >= 14+40 {
		body = frame[14+40:]
	}
	var opts []byte
	switch pk.icmpType {
	case icmp6RouterAdvert, icmp6Redirect:
		return false
	case icmp6RouterSolicit:
		if len(body) < 8 {
			return false
		}
		opts = body[8:]
	case icmp6NeighborSolicit:
		if len(body) < 24 {
			return false
		}
		opts = body[24:]
	case icmp6NeighborAdvert:
		if len(body) < 24 || !src.ips[netip.AddrFrom16([16]byte(body[8:24]))] {
			return false
		}
		opts = body[24:]
	default:
		return true
	}
	for len(opts) > 0 {
		if len(opts) < 8 || opts[1] == 0 || int(opts[1])*8 > len(opts) {
			return false
		}
		n := int(opts[1]) * 8
		// Source (1) and target (2) link-layer address options.
		if (opts[0] == 1 || opts[0] == 2) && [6]byte(opts[2:8]) != src.mac {
			return false
		}
		opts = opts[n:]
	}
	return true
}

// deliver passes dst's filter and queues the frame for dst's NIC.
func (s *Switch) deliver(out *outbox, dst *port, pk *packet, frame []byte) {
	if f := dst.filter.Load(); f != nil && pk.isIP() && !pk.isND() && !s.ct.check(dst, f, pk, true) {
		s.filtered.Add(1)
		return
	}
	out.add(dst, frame)
}
