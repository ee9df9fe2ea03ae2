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
//
// A connection nothing has answered yet (a SYN, a UDP probe) is kept as
// Linux keeps an unreplied one, 2 minutes (TCP) or 30 s: a scan of
// thousands of addresses must not hold table entries for an hour.
const (
	timeoutUnrepliedTCP   = 2 * time.Minute
	timeoutUnrepliedOther = 30 * time.Second
	timeoutTCP            = time.Hour
	timeoutTCPClosed      = 30 * time.Second
	timeoutUDP            = 3 * time.Minute
	timeoutICMP           = 30 * time.Second
	timeoutOther          = 10 * time.Minute
)

// DefaultMaxConnections bounds the connection table of a switch.
const DefaultMaxConnections = 1 << 16

// perPortShare is the part of the table one port may hold: a guest
// opening connections by the thousand (a scan, a flood) fills its own
// share and then has its new connections dropped, while every other
// port's go on.
const perPortShare = 16

// fullSweepEvery bounds how often a full table is swept when a new
// connection finds it full: a flood of new connections must not turn
// every packet into a walk of the whole table under the lock.
const fullSweepEvery = time.Second

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
	replied bool   // a packet went the other way
	expires time.Time
}

// conntrack is the switch's connection table: one zone per filtered port,
// as Neutron's per-port conntrack zones.
type conntrack struct {
	mu        sync.Mutex
	max       int
	conns     map[connKey]*conn
	perZone   map[*port]int // connections held per port
	lastSweep time.Time     // of a full table
	now       func() time.Time
}

func newConntrack(max int) *conntrack {
	if max <= 0 {
		max = DefaultMaxConnections
	}
	return &conntrack{max: max, conns: map[connKey]*conn{}, perZone: map[*port]int{}, now: time.Now}
}

// zoneMax is how many connections one port may hold: its share, and
// never fewer than 64 (or the whole of a smaller table).
func (ct *conntrack) zoneMax() int { return max(ct.max/perPortShare, min(ct.max, 64)) }

// drop forgets connection k of zone. Callers hold ct.mu.
func (ct *conntrack) dropLocked(k connKey) {
	delete(ct.conns, k)
	if ct.perZone[k.zone]--; ct.perZone[k.zone] <= 0 {
		delete(ct.perZone, k.zone)
	}
}

func keyOf(zone *port, p *packet) connKey {
	a, b := netip.AddrPortFrom(p.src, p.sport), netip.AddrPortFrom(p.dst, p.dport)
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return connKey{zone: zone, proto: p.proto, lo: a, hi: b}
}

func timeoutOf(p *packet, replied bool) time.Duration {
	if !replied {
		if p.proto == protoTCP && p.tcpFlags&0x05 == 0 {
			return timeoutUnrepliedTCP
		}
		return min(timeoutUnrepliedOther, timeoutOfReplied(p))
	}
	return timeoutOfReplied(p)
}

func timeoutOfReplied(p *packet) time.Duration {
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
				ct.dropLocked(k)
				return false
			}
			c.gen = f.gen
		}
		if in != c.in {
			c.replied = true
		}
		c.expires = now.Add(timeoutOf(p, c.replied))
		return true
	}
	if !f.admits(p, in) {
		return false
	}
	if c := ct.conns[k]; c != nil {
		ct.dropLocked(k) // expired
	}
	if len(ct.conns) >= ct.max || ct.perZone[zone] >= ct.zoneMax() {
		if now.Sub(ct.lastSweep) >= fullSweepEvery {
			ct.sweepLocked(now)
			ct.lastSweep = now
		}
		if len(ct.conns) >= ct.max || ct.perZone[zone] >= ct.zoneMax() {
			// A full table (or this port's full share) drops new
			// connections, as Linux's does; established ones go on.
			return false
		}
	}
	ct.conns[k] = &conn{orig: *p, in: in, gen: f.gen, expires: now.Add(timeoutOf(p, false))}
	ct.perZone[zone]++
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
			ct.dropLocked(k)
		}
	}
}

// forget drops a port's zone.
func (ct *conntrack) forget(zone *port) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for k := range ct.conns {
		if k.zone == zone {
			ct.dropLocked(k)
		}
	}
}

func (ct *conntrack) len() int {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	return len(ct.conns)
}
