package compute

import (
	"context"
	"maps"
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
	fs, err := m.Cloud.ListFlavors(ctx)
	if err != nil {
		return set.flavors
	}
	fresh := flavorSet{at: time.Now(), flavors: make(map[string]peers.Flavor, len(fs))}
	for _, f := range fs {
		fresh.flavors[f.ID] = f
	}
	c.put(m.Peer.ID, fresh)
	return fresh.flavors
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
	c.put(m.Peer.ID, flavorSet{at: set.at, flavors: next})
	return f, true
}
