package network

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/cloudmux/cloudmux/peers"
)

// aliasSpace is the namespace of the broker IDs of resources the broker
// did not create. It is fixed for good: another value renames every such
// resource.
var aliasSpace = uuid.MustParse("0f6c3a52-8d1e-4b7a-9c2f-5e4d3b2a1c90")

// NativeID is the broker ID of a resource a peer made itself (a shared or
// external network, a subnet of one, a port it made for a server): a
// name-based UUID over the peer's registry ID, the kind and the peer's ID
// for it. Every replica derives the same ID without a record or any
// coordination, and no user ever sees, or may hand in, the peer's ID.
func NativeID(peerID, kind, peerResourceID string) string {
	return uuid.NewSHA1(aliasSpace, []byte(peerID+"/"+kind+"/"+peerResourceID)).String()
}

// DefaultDiscoveryInterval is how often Run reads every peer's own
// networks when Service.DiscoveryInterval is unset.
const DefaultDiscoveryInterval = 30 * time.Second

// relearnAfter is how long a peer whose first read failed is left alone
// before a request may try it again.
const relearnAfter = 5 * time.Second

// native is a peer's own network or subnet, as last read.
type native struct {
	kind, peerID, peerResourceID, project string
}

// nativePeer is what was last learnt of one peer.
type nativePeer struct {
	ids    []string // broker IDs of its native resources
	loaded bool
	// shared: its last full read had shared or external networks, its
	// own or a broker's, which every project's list must show.
	shared bool
	tried  time.Time // the last failed read while never loaded
}

// natives is every replica's memory of the peers' own shared and external
// networks and their subnets, by broker ID (NativeID): what Resolve looks
// an ID up in, so no request asks every peer. It is fed by every full
// read of a peer's networks (Run's periodic discovery, and lists).
type natives struct {
	mu    sync.RWMutex
	byID  map[string]native
	peers map[string]*nativePeer
	learn sync.Mutex // one first read of unread peers at a time
}

// observe replaces what is known of a peer with a full read of its
// networks and subnets: its shared or external networks that no broker of
// this installation (brokerID) made, and their subnets, and whether it
// holds any shared or external network at all.
func (n *natives) observe(peerID, brokerID string, nets []peers.Network, subnets []peers.Subnet) {
	found := map[string]native{}
	nativeNet := map[string]bool{}
	shared := false
	for _, net := range nets {
		if !(net.Shared || net.External) {
			continue
		}
		shared = true
		if net.Metadata[peers.MetaBrokerID] == brokerID {
			continue
		}
		nativeNet[net.ID] = true
		found[NativeID(peerID, KindNetwork, net.ID)] = native{kind: KindNetwork, peerID: peerID, peerResourceID: net.ID, project: net.Project}
	}
	for _, sn := range subnets {
		if nativeNet[sn.NetworkID] && sn.Metadata[peers.MetaBrokerID] != brokerID {
			found[NativeID(peerID, KindSubnet, sn.ID)] = native{kind: KindSubnet, peerID: peerID, peerResourceID: sn.ID, project: sn.Project}
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.byID == nil {
		n.byID, n.peers = map[string]native{}, map[string]*nativePeer{}
	}
	p := n.peers[peerID]
	if p == nil {
		p = &nativePeer{}
		n.peers[peerID] = p
	}
	for _, id := range p.ids {
		delete(n.byID, id)
	}
	p.ids, p.loaded, p.shared = p.ids[:0], true, shared
	for id, r := range found {
		n.byID[id] = r
		p.ids = append(p.ids, id)
	}
}

// failed notes that a read of a peer failed; what was known stays.
func (n *natives) failed(peerID string, at time.Time) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.peers == nil {
		n.byID, n.peers = map[string]native{}, map[string]*nativePeer{}
	}
	if n.peers[peerID] == nil {
		n.peers[peerID] = &nativePeer{}
	}
	n.peers[peerID].tried = at
}

// get returns the native resource with broker ID id.
func (n *natives) get(id string) (native, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	r, ok := n.byID[id]
	return r, ok
}

// unread returns the members never read in full; with now set, only
// those not tried within relearnAfter of it.
func (n *natives) unread(members []*peers.Member, now time.Time) []*peers.Member {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []*peers.Member
	for _, m := range members {
		p := n.peers[m.Peer.ID]
		switch {
		case p != nil && p.loaded:
		case p != nil && !now.IsZero() && now.Sub(p.tried) < relearnAfter:
		default:
			out = append(out, m)
		}
	}
	return out
}

// sharedPeers returns the IDs of the peers whose last full read had
// shared or external networks.
func (n *natives) sharedPeers() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	var out []string
	for id, p := range n.peers {
		if p.shared {
			out = append(out, id)
		}
	}
	return out
}

// forget drops what is known of peers no longer in the pool.
func (n *natives) forget(live map[string]bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, p := range n.peers {
		if live[id] {
			continue
		}
		for _, rid := range p.ids {
			delete(n.byID, rid)
		}
		delete(n.peers, id)
	}
}

// resolveNative finds a peer's own shared or external network (or a subnet
// of one) by its broker ID, in memory. Peers never read yet (the broker
// just started, a peer just joined) are read once first; while one of
// them cannot be read, an unknown ID may be on it and is ErrUnavailable,
// not a "not found" a client would act on.
func (s *Service) resolveNative(ctx context.Context, kind, id string) (Ref, error) {
	if _, err := uuid.Parse(id); err != nil {
		// Not an ID at all (clients look names up by ID first).
		return Ref{}, notFound(kind, id)
	}
	r, ok := s.natives.get(id)
	if !ok {
		s.learn(ctx)
		r, ok = s.natives.get(id)
	}
	if !ok {
		if unread := s.natives.unread(s.connected(), time.Time{}); len(unread) > 0 {
			names := make([]string, len(unread))
			for i, m := range unread {
				names[i] = m.Peer.Name
			}
			return Ref{}, fmt.Errorf("%s %s may be on peers not read yet (%s): %w", kind, id, strings.Join(names, ", "), peers.ErrUnavailable)
		}
		return Ref{}, notFound(kind, id)
	}
	if r.kind != kind {
		return Ref{}, notFound(kind, id)
	}
	m, ok := s.member(r.peerID)
	if !ok {
		return Ref{}, fmt.Errorf("the peer holding %s %s is not connected: %w", kind, id, peers.ErrUnavailable)
	}
	return Ref{Kind: kind, ID: id, Project: r.project, Member: m, PeerResourceID: r.peerResourceID, Native: true}, nil
}

// learn reads the connected peers never read in full (and not tried just
// now), once for all concurrent callers.
func (s *Service) learn(ctx context.Context) {
	s.natives.learn.Lock()
	defer s.natives.learn.Unlock()
	if unread := s.natives.unread(s.connected(), time.Now()); len(unread) > 0 {
		s.readPeers(ctx, unread, false)
	}
}

func (s *Service) discoveryInterval() time.Duration {
	if s.DiscoveryInterval > 0 {
		return s.DiscoveryInterval
	}
	return DefaultDiscoveryInterval
}

// Run reads every connected peer's networks, subnets and ports every
// DiscoveryInterval, in the background, until ctx ends: the peers' own
// shared and external networks are then resolved from memory on every
// replica, and the index entries of ports a peer made for servers are
// dropped once their port or their server is gone.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.discoveryInterval())
	defer t.Stop()
	for {
		s.discover(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// discover is one pass of Run.
func (s *Service) discover(ctx context.Context) {
	live := map[string]bool{}
	for _, m := range s.Pool.Members() {
		live[m.Peer.ID] = true
	}
	s.natives.forget(live)
	// The entries are taken before the peers are read: each names a port
	// seen before, so a full list without it means the port is gone.
	entries, err := s.Index.List(ctx, kindServerPort, "")
	if err != nil {
		s.Log.WithError(err).Warn("network discovery: could not read the servers' ports")
		return
	}
	routerPorts, err := s.Index.List(ctx, kindRouterPort, "")
	if err != nil {
		s.Log.WithError(err).Warn("network discovery: could not read the routers' ports")
		return
	}
	entries = append(entries, routerPorts...)
	states, _ := s.readPeers(ctx, s.connected(), true)
	s.sweepServerPorts(ctx, entries, states)
}
