package vswitch

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"time"
)

// nat is the routers' source NAT: what leaves a router by its gateway
// from an interface's subnet (and has no floating IP) leaves from the
// gateway's address with a port (an echo ID for ICMP) the router picks,
// and answers to that address and port go back to the original sender.
// Entries expire as connections do (conntrack's timeouts) and are swept
// with them; the table is bounded like the connection table.
type nat struct {
	mu        sync.Mutex
	max       int
	next      uint16
	out_      map[natOrig]*natEntry
	in_       map[natReply]*natEntry
	perRouter map[string]int // translations held per router
	lastSweep time.Time      // of a full table
	now       func() time.Time
}

// natOrig is a connection as its sender sees it.
type natOrig struct {
	router       string
	proto        uint8
	src, dst     netip.Addr
	sport, dport uint16
}

// natReply is how its answers arrive at the gateway.
type natReply struct {
	router     string
	proto      uint8
	remote     netip.Addr
	rport, gwp uint16
}

type natEntry struct {
	orig    natOrig
	reply   natReply
	gw      netip.Addr
	replied bool // an answer came back
	expires time.Time
}

func newNAT(max int) *nat {
	if max <= 0 {
		max = DefaultMaxConnections
	}
	return &nat{max: max, next: 1024, out_: map[natOrig]*natEntry{}, in_: map[natReply]*natEntry{}, perRouter: map[string]int{}, now: time.Now}
}

// routerMax is how many translations one router may hold: one project's
// router opening connections by the thousand fills its own share only.
func (n *nat) routerMax() int { return max(n.max/perPortShare, min(n.max, 64)) }

// dropLocked forgets translation e. Callers hold n.mu.
func (n *nat) dropLocked(e *natEntry) {
	if n.out_[e.orig] == e {
		delete(n.out_, e.orig)
		if n.perRouter[e.orig.router]--; n.perRouter[e.orig.router] <= 0 {
			delete(n.perRouter, e.orig.router)
		}
	}
	if n.in_[e.reply] == e {
		delete(n.in_, e.reply)
	}
}

// portField is the offset of the source (or, when dest, destination)
// port in ip, or of an ICMP echo's ID, and of the checksum covering it;
// ok is false for what SNAT cannot translate (other protocols,
// fragments).
func portField(ip []byte, proto uint8, dest bool) (field, sum int, ok bool) {
	ihl := int(ip[0]&0x0f) * 4
	if binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
		return 0, 0, false
	}
	off := 0
	if dest {
		off = 2
	}
	switch {
	case proto == protoTCP && len(ip) >= ihl+18:
		return ihl + off, ihl + 16, true
	case proto == protoUDP && len(ip) >= ihl+8:
		return ihl + off, ihl + 6, true
	case proto == protoICMP && len(ip) >= ihl+8:
		return ihl + 4, ihl + 2, true
	}
	return 0, 0, false
}

// setPort rewrites a port (or echo ID) and its checksum.
func setPort(ip []byte, field, sum int, v uint16) {
	old := [2]byte(ip[field : field+2])
	binary.BigEndian.PutUint16(ip[field:], v)
	cs := binary.BigEndian.Uint16(ip[sum:])
	if ip[9] == protoUDP && cs == 0 {
		return
	}
	binary.BigEndian.PutUint16(ip[sum:], csumReplace(cs, old[:], ip[field:field+2]))
}

// out translates a packet leaving by r's gateway: it answers the
// gateway's address, the packet's source port already rewritten.
func (n *nat) out(r *routerState, pk *packet, frame []byte) (netip.Addr, bool) {
	ip := frame[14:]
	field, sum, ok := portField(ip, pk.proto, false)
	gw := firstV4(r.gateway)
	if !ok || !gw.IsValid() || (pk.proto == protoICMP && pk.icmpType != 8) {
		return netip.Addr{}, false
	}
	o := natOrig{router: r.plan.ID, proto: pk.proto, src: pk.src, dst: pk.dst, sport: pk.sport, dport: pk.dport}
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.out_[o]
	if e == nil || !now.Before(e.expires) {
		if e != nil {
			n.dropLocked(e)
		}
		if len(n.out_) >= n.max || n.perRouter[o.router] >= n.routerMax() {
			if now.Sub(n.lastSweep) >= fullSweepEvery {
				n.sweepLocked(now)
				n.lastSweep = now
			}
			if len(n.out_) >= n.max || n.perRouter[o.router] >= n.routerMax() {
				return netip.Addr{}, false
			}
		}
		rep := natReply{router: r.plan.ID, proto: pk.proto, remote: pk.dst, rport: pk.dport}
		found := false
		for range 64512 {
			n.next++
			if n.next < 1024 {
				n.next = 1024
			}
			rep.gwp = n.next
			if pk.proto == protoICMP {
				rep.rport = n.next // an echo reply carries the ID both ways
			}
			if old := n.in_[rep]; old == nil || !now.Before(old.expires) {
				found = true
				break
			}
		}
		if !found {
			return netip.Addr{}, false
		}
		e = &natEntry{orig: o, reply: rep, gw: gw}
		n.out_[o], n.in_[rep] = e, e
		n.perRouter[o.router]++
	}
	e.expires = now.Add(timeoutOf(pk, e.replied))
	setPort(ip, field, sum, e.reply.gwp)
	return gw, true
}

// in translates an answer arriving at r's gateway address: it answers
// the original sender's address, the destination port already rewritten.
func (n *nat) in(r *routerState, pk *packet, frame []byte) (netip.Addr, bool) {
	ip := frame[14:]
	field, sum, ok := portField(ip, pk.proto, true)
	if !ok || (pk.proto == protoICMP && pk.icmpType != 0) {
		return netip.Addr{}, false
	}
	rep := natReply{router: r.plan.ID, proto: pk.proto, remote: pk.src, rport: pk.sport, gwp: pk.dport}
	now := n.now()
	n.mu.Lock()
	defer n.mu.Unlock()
	e := n.in_[rep]
	if e == nil || !now.Before(e.expires) {
		return netip.Addr{}, false
	}
	e.replied = true
	e.expires = now.Add(timeoutOf(pk, true))
	setPort(ip, field, sum, e.orig.sport)
	return e.orig.src, true
}

func (n *nat) sweep() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sweepLocked(n.now())
}

func (n *nat) sweepLocked(now time.Time) {
	for _, e := range n.out_ {
		if !now.Before(e.expires) {
			n.dropLocked(e)
		}
	}
}

// forget drops a router's translations.
func (n *nat) forget(router string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for k, e := range n.out_ {
		if k.router == router {
			n.dropLocked(e)
		}
	}
}

// firstV4 is a port's first IPv4 address.
func firstV4(p *port) netip.Addr {
	for _, pr := range p.prefixes {
		if pr.Addr().Is4() {
			return pr.Addr()
		}
	}
	return netip.Addr{}
}
