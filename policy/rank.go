package policy

import (
	"cmp"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/cloudmux/cloudmux/registry"
)

// rank orders the verdicts, allowed first, best first, then by name.
// Verdicts are worked out without their peers and ordered by index;
// each Verdict points at its candidate.
// keys is scratch of len(candidates), nil to allocate it. Each sort key
// carries its verdict's order and its peer's name, so comparing two reads
// neither the verdicts nor the candidates (half a kilobyte apart each).
func rank(version string, candidates []registry.Peer, vs []verdict, keys []rankKey) Decision {
	if len(keys) != len(candidates) {
		keys = make([]rankKey, len(candidates))
	}
	for i := range keys {
		v := &vs[i]
		k := -v.score // best first
		if !v.allowed {
			k += 1 << 40 // after every allowed peer
		}
		keys[i] = rankKey{key: k, name: candidates[i].Name, i: i}
	}
	// The index breaks the last ties, so an unstable sort (pdqsort, about
	// half the comparisons of a stable one) orders as a stable one would.
	slices.SortFunc(keys, func(a, b rankKey) int {
		if a.key != b.key {
			return cmp.Compare(a.key, b.key)
		}
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		return cmp.Compare(a.i, b.i)
	})
	d := Decision{Policy: version, Verdicts: make([]Verdict, len(keys))}
	for k, r := range keys {
		v := &vs[r.i]
		d.Verdicts[k] = Verdict{Peer: &candidates[r.i], Allowed: v.allowed, Score: v.score, Reasons: v.reasons}
	}
	return d
}

// rankKey is a verdict's place in the ranking: its order (allowed first,
// best score first), then its peer's name.
type rankKey struct {
	key  int
	name string
	i    int
}

// nameOrder is a candidate list's order by name (then index), kept
// between decisions: the candidates of a decision are most often the last
// one's, and comparing names was most of ranking (a fifth of a decision
// at 100 peers with every verdict cached). With it, a verdict's place is
// one integer, and the sort compares integers.
type nameOrder struct {
	names []string // the candidates' names, by index
	at    []int    // the index at each place by name
	place []int    // each index's place by name
}

// nameOrders keeps the last candidate list's name order.
type nameOrders struct{ last atomic.Pointer[nameOrder] }

// of returns the name order of candidates: the last one when their names
// are the same, by index, else a new one.
func (o *nameOrders) of(candidates []registry.Peer) *nameOrder {
	if l := o.last.Load(); l != nil && len(l.names) == len(candidates) {
		same := true
		for i := range candidates {
			if l.names[i] != candidates[i].Name {
				same = false
				break
			}
		}
		if same {
			return l
		}
	}
	n := len(candidates)
	no := &nameOrder{names: make([]string, n), at: make([]int, n), place: make([]int, n)}
	for i := range candidates {
		no.names[i], no.at[i] = candidates[i].Name, i
	}
	slices.SortFunc(no.at, func(a, b int) int {
		if c := strings.Compare(no.names[a], no.names[b]); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for p, i := range no.at {
		no.place[i] = p
	}
	o.last.Store(no)
	return no
}

// rankByName is rank with the candidates' name order known: each
// verdict's sort key is one integer (denied after allowed, best score
// first, then its place by name), so sorting compares integers. keys is
// scratch of len(candidates). A score outside 0-100 (never, once
// clamped) falls back to rank.
func rankByName(version string, candidates []registry.Peer, vs []verdict, no *nameOrder, keys []uint64, scratch []rankKey) Decision {
	const placeBits, scoreBits = 32, 8
	if len(keys) != len(candidates) || len(candidates) >= 1<<placeBits {
		return rank(version, candidates, vs, scratch)
	}
	for i := range vs {
		v := &vs[i]
		if v.score < 0 || v.score > 100 {
			return rank(version, candidates, vs, scratch)
		}
		k := uint64(100-v.score)<<placeBits | uint64(no.place[i])
		if !v.allowed {
			k |= 1 << (placeBits + scoreBits)
		}
		keys[i] = k
	}
	slices.Sort(keys)
	d := Decision{Policy: version, Verdicts: make([]Verdict, len(keys))}
	for k, key := range keys {
		i := no.at[key&(1<<placeBits-1)]
		v := &vs[i]
		d.Verdicts[k] = Verdict{Peer: &candidates[i], Allowed: v.allowed, Score: v.score, Reasons: v.reasons}
	}
	return d
}
