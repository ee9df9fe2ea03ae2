package vswitch

import (
	"net/netip"
	"sync"
	"time"
)

// Connection timeouts, after the last packet seen either way. They follow
// Linux's conntrack in spirit, shorter where a guest network needs no
// more: an idle established TCP connection is forgotten after an hour (a
// longer-lived one sends keepalives), one that has seen FIN or RST after
// 30 s.
const (
	timeoutTCP       = time.Hour
	timeoutTCPClosed = 30 * time.Second
	timeoutUDP       = 3 * time.Minute
	timeoutICMP      = 30 * time.Second
	timeoutOther     = 10 * time.Minute
)

// DefaultMaxConnections bounds the connection table of a switch.
const DefaultMaxConnections = 1 << 16

// connKey names a connection in a port's zone: its endpoints in a
// canonical order, so both directions find it.
type connKey struct {
	zone   *port
	proto  uint8
	lo, hi netip.AddrPort
}

// conn is a tracked connection: what its first packet was, so it can be
// judged again when the port's filter changes.
type conn struct {
	orig    packet
	in      bool   // orig went to the guest
	gen     uint64 // generation of the filter that last admitted it
	expires time.Time
}

// conntrack is the switch's connection table: one zone per filtered port,
// as Neutron's per-port conntrack zones.
type conntrack struct {
	mu    sync.Mutex
	max   int
	conns map[connKey]*conn
	now   func() time.Time
}

func newConntrack(max int) *conntrack {
	if max <= 0 {
		max = DefaultMaxConnections
	}
	return &conntrack{max: max, conns: map[connKey]*conn{}, now: time.Now}
}

func keyOf(zone *port, p *packet) connKey {
	a, b := netip.AddrPortFrom(p.src, p.sport), netip.AddrPortFrom(p.dst, p.dport)
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return connKey{zone: zone, proto: p.proto, lo: a, hi: b}
}

func timeoutOf(p *packet) time.Duration {
	switch p.proto {
	case protoTCP:
		if p.tcpFlags&0x05 != 0 { // FIN or RST
			return timeoutTCPClosed
		}
		return timeoutTCP
	case protoUDP, protoUDPLit, protoSCTP:
		return timeoutUDP
	case protoICMP, protoICMPv6:
		return timeoutICMP
	}
	return timeoutOther
}

// trackable reports whether p can start or belong to a connection: any
// IP packet but ICMP other than echo (errors and the rest are judged by
// the rules alone).
func trackable(p *packet) bool {
	if p.proto == protoICMP || p.proto == protoICMPv6 {
		return p.isEcho()
	}
	return true
}

// check decides a packet of zone's port going in (to the guest) or out
// under filter f: a packet of a tracked connection still admitted by f
// passes, so does one f's rules admit (which starts a connection); a
// connection f no longer admits is cut. It reports whether p passes.
func (ct *conntrack) check(zone *port, f *filter, p *packet, in bool) bool {
	if !trackable(p) {
		return f.admits(p, in)
	}
	k := keyOf(zone, p)
	now := ct.now()
	ct.mu.Lock()
	defer ct.mu.Unlock()
	if c := ct.conns[k]; c != nil && now.Before(c.expires) {
		if c.gen != f.gen {
			// The filter changed since: the connection stays only if
			// its first packet would be admitted now.
			if !f.admits(&c.orig, c.in) {
				delete(ct.conns, k)
				return false
			}
			c.gen = f.gen
		}
		c.expires = now.Add(timeoutOf(p))
		return true
	}
	if !f.admits(p, in) {
		return false
	}
	if len(ct.conns) >= ct.max {
		ct.sweepLocked(now)
		if len(ct.conns) >= ct.max {
			// A full table drops new connections, as Linux's does;
			// established ones go on.
			return false
		}
	}
	ct.conns[k] = &conn{orig: *p, in: in, gen: f.gen, expires: now.Add(timeoutOf(p))}
	return true
}

// sweep forgets expired connections.
func (ct *conntrack) sweep() {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.sweepLocked(ct.now())
}

func (ct *conntrack) sweepLocked(now time.Time) {
	for k, c := range ct.conns {
		if !now.Before(c.expires) {
			delete(ct.conns, k)
		}
	}
}

// forget drops a port's zone.
func (ct *conntrack) forget(zone *port) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for k := range ct.conns {
		if k.zone == zone {
			delete(ct.conns, k)
		}
	}
}

func (ct *conntrack) len() int {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return len(ct.conns)
}
