package vswitch

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/net/ipv4"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// Config configures a switch.
type Config struct {
	// Addr is the address the switch's ports listen on, the one guest
	// NICs send their frames to (default 127.0.0.1). A switch serving
	// remote hypervisors listens on an address they reach.
	Addr netip.Addr
	// MaxConnections bounds the connection table (default
	// DefaultMaxConnections).
	MaxConnections int
	// Batch is how many datagrams a port reads per system call (default
	// 32).
	Batch int
}

// Port is a guest NIC's place on the switch.
type Port struct {
	ID      string
	Network string
	MAC     net.HardwareAddr
	// IPs are the port's fixed addresses: the only sources it may send
	// IP packets from (and, for IPv6, its MAC's link-local address).
	IPs []netip.Addr
	// Switch is the switch side's UDP address, where the NIC sends; a
	// zero port picks a free one. NIC is the NIC's own UDP address (QEMU's
	// localaddr), where the switch sends; a zero port picks one free
	// here. AddPort answers both.
	Switch, NIC netip.AddrPort
	// Filtered ports drop all IP traffic but neighbour discovery until
	// their filter is set (a switch rebuilt after a restart fails closed).
	Filtered bool
}

// Stats count what the switch did since it started.
type Stats struct {
	Forwarded, Flooded, Dropped, Spoofed, Filtered uint64
}

// Switch is a user-space Ethernet switch whose ports are UDP sockets.
// Create it with New and Close it when done.
type Switch struct {
	cfg Config
	log logrus.FieldLogger
	ct  *conntrack
	nat *nat

	mu       sync.Mutex // serializes changes; frames read tab
	ports    map[string]*port
	filters  map[string]*filter // by port ID, set before or after the port
	networks map[string]bool
	routers  map[string]*routerState
	tab      atomic.Pointer[table]
	closed   bool
	done     chan struct{}
	wg       sync.WaitGroup

	forwarded, flooded, dropped, spoofed, filtered atomic.Uint64
}

// port is a live port.
type port struct {
	Port
	mac  [6]byte
	ips  map[netip.Addr]bool
	conn *net.UDPConn
	// pc batches reads and writes on conn (recvmmsg, sendmmsg: the ipv4
	// wrapper does both for either family); nicAddr is NIC, made once.
	pc      *ipv4.PacketConn
	nicAddr *net.UDPAddr
	filter  atomic.Pointer[filter] // nil: unfiltered
	// router is set on a router's ports (no NIC, no socket), with the
	// prefixes of its addresses.
	router   *routerState
	prefixes []netip.Prefix
}

// table is the forwarding state frames read without a lock, replaced
// whole on every change.
type table struct {
	nets map[string]*segment
}

// segment is one network's ports.
type segment struct {
	byMAC map[[6]byte]*port
	byIP  map[netip.Addr]*port
	all   []*port
}

// New starts a switch with no ports.
func New(cfg Config, log logrus.FieldLogger) *Switch {
	if !cfg.Addr.IsValid() {
		cfg.Addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if log == nil {
		l := logrus.New()
		l.SetLevel(logrus.PanicLevel)
		log = l
	}
	s := &Switch{cfg: cfg, log: log.WithField("component", "vswitch"), ct: newConntrack(cfg.MaxConnections), nat: newNAT(cfg.MaxConnections),
		ports: map[string]*port{}, filters: map[string]*filter{}, networks: map[string]bool{}, routers: map[string]*routerState{}, done: make(chan struct{})}
	s.tab.Store(&table{nets: map[string]*segment{}})
	s.wg.Add(1)
	go s.gc()
	return s
}

// Addr is the address the switch's ports listen on.
func (s *Switch) Addr() netip.Addr { return s.cfg.Addr }

// gc forgets expired connections every few seconds, so the table holds
// live ones only even when it is far from full.
func (s *Switch) gc() {
	defer s.wg.Done()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.ct.sweep()
			s.nat.sweep()
		}
	}
}

// Close stops every port.
func (s *Switch) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	for _, p := range s.ports {
		_ = p.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

// AddNetwork records a network. Ports may name a network before it is
// added (a switch rebuilt after a restart learns ports first); it only
// matters to Networks.
func (s *Switch) AddNetwork(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.networks[id] = true
}

// RemoveNetwork forgets a network; one with ports is ErrConflict.
func (s *Switch) RemoveNetwork(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.networks[id] {
		return fmt.Errorf("vswitch: network %s: %w", id, peers.ErrNotFound)
	}
	for _, p := range s.ports {
		if p.Network == id {
			return fmt.Errorf("vswitch: network %s has port %s: %w", id, p.ID, peers.ErrConflict)
		}
	}
	delete(s.networks, id)
	return nil
}

// Networks lists the networks added, sorted.
func (s *Switch) Networks() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.networks))
}

// AddPort opens a port and starts forwarding its frames. A port already
// there with the same ID is replaced. It answers the port with both UDP
// addresses chosen.
func (s *Switch) AddPort(p Port) (Port, error) {
	if len(p.MAC) != 6 || p.ID == "" || p.Network == "" {
		return p, fmt.Errorf("vswitch: port %q: needs an ID, a network and a 6-byte MAC: %w", p.ID, peers.ErrInvalid)
	}
	if !p.Switch.Addr().IsValid() {
		p.Switch = netip.AddrPortFrom(s.cfg.Addr, p.Switch.Port())
	}
	if !p.NIC.Addr().IsValid() {
		p.NIC = netip.AddrPortFrom(s.cfg.Addr, p.NIC.Port())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return p, fmt.Errorf("vswitch: closed: %w", peers.ErrUnavailable)
	}
	if old := s.ports[p.ID]; old != nil {
		s.removeLocked(old)
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(p.Switch))
	if err != nil {
		return p, fmt.Errorf("vswitch: port %s: listen on %s: %w", p.ID, p.Switch, err)
	}
	p.Switch = c.LocalAddr().(*net.UDPAddr).AddrPort()
	p.Switch = netip.AddrPortFrom(p.Switch.Addr().Unmap(), p.Switch.Port())
	if p.NIC.Port() == 0 {
		// A port free here now; on a remote hypervisor, whose addresses
		// cannot be bound here, the switch side's number (a port in the
		// same ephemeral range, most likely free there too).
		free, err := freePort(p.NIC.Addr())
		if err != nil {
			free = p.Switch.Port()
		}
		p.NIC = netip.AddrPortFrom(p.NIC.Addr(), free)
	}
	p.MAC = slices.Clone(p.MAC)
	p.IPs = slices.Clone(p.IPs)
	lp := &port{Port: p, mac: [6]byte(p.MAC), ips: map[netip.Addr]bool{}, conn: c, pc: ipv4.NewPacketConn(c), nicAddr: net.UDPAddrFromAddrPort(p.NIC)}
	for _, a := range p.IPs {
		lp.ips[a.Unmap()] = true
	}
	if p.Is6Capable() {
		lp.ips[linkLocal(lp.mac)] = true
	}
	if f := s.filters[p.ID]; f != nil {
		lp.filter.Store(f)
	} else if p.Filtered {
		lp.filter.Store(denyAll())
	}
	s.ports[p.ID] = lp
	s.rebuildLocked()
	s.wg.Add(1)
	go s.serve(lp)
	return p, nil
}

// Is6Capable reports whether the port may use IPv6: it has an IPv6
// address, or none at all (its link-local address then is its only one).
func (p Port) Is6Capable() bool {
	return !slices.ContainsFunc(p.IPs, func(a netip.Addr) bool { return a.Is4() }) ||
		slices.ContainsFunc(p.IPs, func(a netip.Addr) bool { return a.Is6() })
}

// RemovePort closes a port; one not there is ErrNotFound.
func (s *Switch) RemovePort(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.ports[id]
	if p == nil {
		return fmt.Errorf("vswitch: port %s: %w", id, peers.ErrNotFound)
	}
	s.removeLocked(p)
	s.rebuildLocked()
	return nil
}

func (s *Switch) removeLocked(p *port) {
	_ = p.conn.Close()
	delete(s.ports, p.ID)
	s.ct.forget(p)
}

// Ports lists the ports, by ID.
func (s *Switch) Ports() []Port {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Port
	for _, id := range slices.Sorted(maps.Keys(s.ports)) {
		out = append(out, s.ports[id].Port)
	}
	return out
}

// Port returns one port.
func (s *Switch) Port(id string) (Port, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.ports[id]
	if p == nil {
		return Port{}, false
	}
	return p.Port, true
}

// SetFilter sets (or replaces) a port's filter, before or after the port
// is added. The port's frames follow from the next one on: the filter is
// swapped whole, and a tracked connection the new filter would not admit
// is cut at its next packet.
func (s *Switch) SetFilter(f localcloud.PortFilter) error {
	cf, err := compile(f)
	if err != nil {
		return fmt.Errorf("vswitch: %w: %w", err, peers.ErrInvalid)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.filters[f.PortID] = cf
	if p := s.ports[f.PortID]; p != nil {
		p.filter.Store(cf)
	}
	return nil
}

// DeleteFilter removes a port's filter: the port then passes all its own
// traffic (its source checks stay). One not set is ErrNotFound.
func (s *Switch) DeleteFilter(portID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.filters[portID]; !ok {
		return fmt.Errorf("vswitch: filter of port %s: %w", portID, peers.ErrNotFound)
	}
	delete(s.filters, portID)
	if p := s.ports[portID]; p != nil {
		p.filter.Store(nil)
		s.ct.forget(p)
	}
	return nil
}

// Stats reports the counters.
func (s *Switch) Stats() Stats {
	return Stats{Forwarded: s.forwarded.Load(), Flooded: s.flooded.Load(), Dropped: s.dropped.Load(),
		Spoofed: s.spoofed.Load(), Filtered: s.filtered.Load()}
}

// Connections is how many connections the tracker holds.
func (s *Switch) Connections() int { return s.ct.len() }

func (s *Switch) rebuildLocked() {
	t := &table{nets: map[string]*segment{}}
	add := func(p *port) {
		seg := t.nets[p.Network]
		if seg == nil {
			seg = &segment{byMAC: map[[6]byte]*port{}, byIP: map[netip.Addr]*port{}}
			t.nets[p.Network] = seg
		}
		seg.byMAC[p.mac] = p
		for a := range p.ips {
			seg.byIP[a] = p
		}
		seg.all = append(seg.all, p)
	}
	for _, id := range slices.Sorted(maps.Keys(s.ports)) {
		add(s.ports[id])
	}
	for _, id := range slices.Sorted(maps.Keys(s.routers)) {
		for _, p := range s.routers[id].ports {
			add(p)
		}
	}
	s.tab.Store(t)
}

// freePort finds a UDP port free on addr now, for a NIC to bind.
func freePort(addr netip.Addr) (uint16, error) {
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
	if err != nil {
		return 0, err
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Port(), nil
}
