package policy

import (
	"slices"
	"sync"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The verdict cache. A per-peer verdict is a function of what its rules
// read (analyze finds the paths from the compiled modules), so it is
// cached under the policy version (each compiled version has its own
// cache), the peer's ID and the values at those paths: the peer's fields,
// the request's and, for scores, the pool's. Capacity reaches the stock
// policy only as coarse facts (shortfall, room in tenths), so most
// capacity reports leave a peer's keys, and its verdicts, as they were.
// A policy calling a nondeterministic built-in is never cached.

// verdictCacheSize bounds one generation of the cache: when the current
// generation fills, it becomes the old one and the old one is dropped, so
// entries no decision asks for any more go within two generations.
const verdictCacheSize = 1 << 15

// cachedVerdict is one pass's verdict for one peer: deny's reasons, or a
// score and its reasons. Reasons are shared by every decision that hits
// the entry: their capacity is clipped, so an append copies.
type cachedVerdict struct {
	reasons []string
	score   int
	scored  bool      // score pass: the policy gave a score
	raw     *ast.Term // what the policy answered, for the decision log
}

// verdictCache maps a key's request part (a pass mark, the values read
// of the request and, for scores, of the pool), then its peer part (the
// peer's ID and the values read of it), to a verdict: a decision hashes
// its request part once per pass, not once per peer.
type verdictCache struct {
	mu       sync.Mutex
	cur, old map[string]map[string]*cachedVerdict
	n        int // entries in cur
}

// tables returns the current and old tables of a request part; the
// caller holds mu.
func (vc *verdictCache) tables(req string) (cur, old map[string]*cachedVerdict) {
	return vc.cur[req], vc.old[req]
}

// getLocked looks a peer part up in a request part's tables, moving an
// old entry to the current generation; the caller holds mu.
func (vc *verdictCache) getLocked(cur, old map[string]*cachedVerdict, req, peer string) *cachedVerdict {
	if v := cur[peer]; v != nil {
		return v
	}
	if v := old[peer]; v != nil {
		vc.putLocked(req, peer, v)
		return v
	}
	return nil
}

func (vc *verdictCache) putLocked(req, peer string, v *cachedVerdict) {
	if vc.n >= verdictCacheSize {
		vc.old, vc.cur, vc.n = vc.cur, nil, 0
	}
	if vc.cur == nil {
		vc.cur = map[string]map[string]*cachedVerdict{}
	}
	m := vc.cur[req]
	if m == nil {
		m = map[string]*cachedVerdict{}
		vc.cur[req] = m
	}
	if _, ok := m[peer]; !ok {
		vc.n++
	}
	m[peer] = v
}

// peerKeys are a peer term's parts of the cache keys under one compiled
// policy, worked out once per term.
type peerKeys struct {
	c           *compiled
	deny, score string
	// last remembers, per pass, the verdict of the last request part
	// asked: a decision like the one before finds its verdicts here
	// without hashing keys.
	last [2]atomic.Pointer[lastVerdict]
	// narrowed is, per pass, the peer part of the key under the last
	// narrowed read set asked (narrow.go).
	narrowed [2]atomic.Pointer[narrowedKey]
}

// narrowedKey is a peer key part under a read set.
type narrowedKey struct {
	set *readSet
	key string
}

// narrowedKey returns the peer part of the key under s for pass.
func (k *peerKeys) narrowedKey(pass int, s *readSet, t *peerTerm) string {
	if nk := k.narrowed[pass].Load(); nk != nil && nk.set == s {
		return nk.key
	}
	key := s.key(t)
	k.narrowed[pass].Store(&narrowedKey{s, key})
	return key
}

// lastVerdict is a verdict and the request part it answers.
type lastVerdict struct {
	req string
	v   *cachedVerdict
}

// reqPart is the one copy of a request part of keys kept for a compiled
// policy (every peer's remembered verdict then compares it by pointer,
// not by bytes), with the last decisions' verdicts for it.
type reqPart struct {
	key string
	// last is the last run of each of the last few request shapes, most
	// recent first: requests of several flavors often share a request
	// part (deny reads no sizes: they reach it through the peer terms,
	// one per shape), and each shape has its own terms.
	last atomic.Pointer[[]*lastRun]
}

// maxLastRuns is how many shapes' last runs a request part keeps.
const maxLastRuns = 4

// lastRun is a pass's peer terms and verdicts in a decision, by index
// (nil where the pass did not ask). A verdict is a function of the
// request part and the peer term, so the next decision of the same part
// and shape finds the verdict of every peer whose term is the one at the
// same index by comparing two pointers: at 100 peers, a tenth of what
// looking each peer up costs.
type lastRun struct {
	shape    shape
	terms    []*peerTerm
	verdicts []*cachedVerdict
}

// lastRun returns the part's last run for sh, nil if none.
func (p *reqPart) lastRun(sh shape) *lastRun {
	if runs := p.last.Load(); runs != nil {
		for _, r := range *runs {
			if r.shape == sh {
				return r
			}
		}
	}
	return nil
}

// remember makes r the part's last run of its shape.
func (p *reqPart) remember(r *lastRun) {
	for {
		old := p.last.Load()
		runs := make([]*lastRun, 1, maxLastRuns)
		runs[0] = r
		if old != nil {
			for _, o := range *old {
				if o.shape != r.shape && len(runs) < maxLastRuns {
					runs = append(runs, o)
				}
			}
		}
		if p.last.CompareAndSwap(old, &runs) {
			return
		}
	}
}

// internReq returns the request part req under c.
func (c *compiled) internReq(req []byte) *reqPart {
	c.reqsMu.Lock()
	defer c.reqsMu.Unlock()
	if p, ok := c.reqs[string(req)]; ok {
		return p
	}
	if c.reqs == nil || len(c.reqs) >= 1024 { // request shapes seen long ago go with the next reset
		c.reqs = map[string]*reqPart{}
	}
	p := &reqPart{key: string(req)}
	c.reqs[p.key] = p
	return p
}

// recall returns the verdict remembered for req in pass, nil if none.
func (k *peerKeys) recall(pass int, req string) *cachedVerdict {
	if l := k.last[pass].Load(); l != nil && l.req == req {
		return l.v
	}
	return nil
}

func (k *peerKeys) remember(pass int, req string, v *cachedVerdict) {
	k.last[pass].Store(&lastVerdict{req, v})
}

var idKeyTerm = ast.StringTerm("id")

// keysOf returns t's key parts under c.
func (c *compiled) keysOf(t *peerTerm) *peerKeys {
	if k := t.keys.Load(); k != nil && k.c == c {
		return k
	}
	var id ast.Value = ast.String("")
	if o, ok := t.term.Value.(ast.Object); ok {
		if v := o.Get(idKeyTerm); v != nil {
			id = v.Value
		}
	}
	// Both keys are built on head, one after the other: each is made a
	// string (a copy) in its own statement, since Go does not order a
	// conversion in a composite literal before the next element's call.
	head := appendValue(make([]byte, 0, 256), id)
	deny := string(appendReads(head, t.term, c.plan.denyReads.peer))
	score := string(appendReads(head, t.term, c.plan.scoreReads.peer))
	k := &peerKeys{c: c, deny: deny, score: score}
	t.keys.Store(k)
	return k
}

// recentShapes are the last few request shapes decided under a compiled
// policy: a peer that changes is evaluated again for each of them in the
// background, so the next decision of another flavor finds its verdicts.
type recentShapes struct {
	mu     sync.Mutex
	shapes []*recentShape // most recent first
}

// maxRecentShapes is how many request shapes a change is evaluated for.
const maxRecentShapes = 4

// recentShape is what evaluating a peer for a request shape needs.
type recentShape struct {
	req      Request
	reqTerm  *ast.Term
	denyReq  string
	pool     *ast.Term
	scoreReq string
}

// note records s as the most recent shape and returns the others.
func (r *recentShapes) note(s *recentShape) []*recentShape {
	r.mu.Lock()
	defer r.mu.Unlock()
	sameShape := func(o *recentShape) bool {
		return shapeOf(o.req) == shapeOf(s.req) && o.denyReq == s.denyReq && o.scoreReq == s.scoreReq
	}
	r.shapes = slices.DeleteFunc(r.shapes, sameShape)
	others := slices.Clone(r.shapes)
	r.shapes = append([]*recentShape{s}, r.shapes...)
	if len(r.shapes) > maxRecentShapes {
		r.shapes = r.shapes[:maxRecentShapes]
	}
	return others
}
