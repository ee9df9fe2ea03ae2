package compute

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// flavorTTL is how long a peer's flavor list is trusted. A flavor's sizes
// never change in Nova (flavors are deleted and recreated, not edited), so
// a cached entry is right for as long as its ID exists; the refresh only
// learns of new and deleted flavors.
const flavorTTL = time.Minute

// flavorCache remembers each peer's flavors, so showing or listing servers
// of a remote cloud costs one round trip, not two. Its zero value is ready.
// The map is replaced whole (copy on write) through an atomic.Value, so
// readers take no lock, and a Servers copied by value (tests derive
// variants that way) shares a consistent snapshot.
type flavorCache struct {
	v atomic.Value // *flavorMap
}

// flavorMap is peer ID -> that peer's flavors.
type flavorMap map[string]flavorSet

type flavorSet struct {
	at      time.Time
	flavors map[string]peers.Flavor
	list    []peers.Flavor // as the peer listed them (its order), for merging
}

func (c *flavorCache) load() flavorMap {
	if m, ok := c.v.Load().(*flavorMap); ok {
		return *m
	}
	return nil
}

// put records set as peer's; concurrent puts retry, so none is lost.
func (c *flavorCache) put(peer string, set flavorSet) {
	for {
		old, _ := c.v.Load().(*flavorMap)
		next := flavorMap{}
		if old != nil {
			maps.Copy(next, *old)
		}
		next[peer] = set
		if old == nil {
			if c.v.CompareAndSwap(nil, &next) {
				return
			}
			continue
		}
		if c.v.CompareAndSwap(old, &next) {
			return
		}
	}
}

// all returns m's flavors by ID: cached while fresh, else listed anew. A
// failed list serves what was cached before (possibly nothing): sizes are
// a nicety of the server view, never a reason to fail it.
func (c *flavorCache) all(ctx context.Context, m *peers.Member) map[string]peers.Flavor {
	set, ok := c.load()[m.Peer.ID]
	if ok && time.Since(set.at) < flavorTTL {
		return set.flavors
	}
	fresh, err := c.refresh(ctx, m)
	if err != nil {
		return set.flavors
	}
	return fresh.flavors
}

// refresh lists m's flavors and caches them.
func (c *flavorCache) refresh(ctx context.Context, m *peers.Member) (flavorSet, error) {
	fs, err := m.Cloud.ListFlavors(ctx)
	if err != nil {
		return flavorSet{}, err
	}
	fresh := flavorSet{at: time.Now(), flavors: make(map[string]peers.Flavor, len(fs)), list: fs}
	for _, f := range fs {
		fresh.flavors[f.ID] = f
	}
	c.put(m.Peer.ID, fresh)
	return fresh, nil
}

// list returns m's flavor list, cached while fresh (unless fresh is
// asked), else listed anew: server create reads it, so a create costs no
// flavor call per peer. A failed list is the peer's error: create names
// the peer as not answering rather than guess at its flavors.
func (c *flavorCache) list(ctx context.Context, m *peers.Member, fresh bool) ([]peers.Flavor, error) {
	if set, ok := c.load()[m.Peer.ID]; ok && !fresh && set.list != nil && time.Since(set.at) < flavorTTL {
		return set.list, nil
	}
	set, err := c.refresh(ctx, m)
	return set.list, err
}

// get returns one of m's flavors. One the list lacks (a private flavor,
// or one created since) is asked for directly and remembered.
func (c *flavorCache) get(ctx context.Context, m *peers.Member, id string) (peers.Flavor, bool) {
	known := c.all(ctx, m)
	if f, ok := known[id]; ok {
		return f, true
	}
	f, err := m.Cloud.GetFlavor(ctx, id)
	if err != nil {
		return peers.Flavor{}, false
	}
	set := c.load()[m.Peer.ID]
	next := make(map[string]peers.Flavor, len(set.flavors)+1)
	maps.Copy(next, set.flavors)
	next[id] = f
	c.put(m.Peer.ID, flavorSet{at: set.at, flavors: next, list: set.list})
	return f, true
}

// cachedFlavors is gatherFlavors through the cache: each member's list
// as cached while fresh (fresh: listed anew), in parallel.
func (s *Servers) cachedFlavors(ctx context.Context, members []*peers.Member, fresh bool) []peers.Result[[]peers.Flavor] {
	return peers.Gather(ctx, members, s.timeout(), func(ctx context.Context, m *peers.Member) ([]peers.Flavor, error) {
		return s.flavors.list(ctx, m, fresh)
	})
}

// findFlavor merges the peers' lists and finds ref in it, by ID and then
// by name; the index is -1 when no flavor matches.
func findFlavor(res []peers.Result[[]peers.Flavor], ref string) ([]peers.Flavor, int) {
	merged, _, _ := mergeFlavors(res)
	i := slices.IndexFunc(merged, func(f peers.Flavor) bool { return f.ID == ref })
	if i < 0 {
		i = slices.IndexFunc(merged, func(f peers.Flavor) bool { return f.Name == ref })
	}
	return merged, i
}

// Flavors lists the flavors the pool offers, one per name, with the IDs
// the Nova API shows (what CreateSpec.FlavorRef takes); peers that did not
// answer are named in failed. EC2's instance types are these names.
// Each peer's list is the flavor cache's while fresh.
func (s *Servers) Flavors(ctx context.Context) (flavors []peers.Flavor, failed []string) {
	members, _ := s.connected()
	flavors, failed, errs := mergeFlavors(s.cachedFlavors(ctx, members, false))
	s.logFailedFlavors(errs)
	return flavors, failed
}

// PublicFlavors is Flavors over the public flavors only: a name private on
// one peer and public on another is the public one (EC2's instance types
// are the public sizes).
func (s *Servers) PublicFlavors(ctx context.Context) (flavors []peers.Flavor, failed []string) {
	members, _ := s.connected()
	res := s.cachedFlavors(ctx, members, false)
	for i := range res {
		res[i].Value = slices.DeleteFunc(slices.Clone(res[i].Value), func(f peers.Flavor) bool { return !f.IsPublic })
	}
	flavors, failed, errs := mergeFlavors(res)
	s.logFailedFlavors(errs)
	return flavors, failed
}

// logFailedFlavors says why peers' flavor lists failed (callers name the
// peers to clients, never their errors).
func (s *Servers) logFailedFlavors(errs []error) {
	if len(errs) > 0 && s.Log != nil {
		s.Log.WithError(errors.Join(errs...)).Warn("flavors: peers did not answer")
	}
}
