package policy

import (
	"context"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/cloudmux/cloudmux/registry"
)

// poolTerm is input.pool: the facts that span peers, computed in Go after
// the deny pass over the peers allowed (by the policy, and healthy), for
// the score rules:
//
//	allowed, private, public    how many peers are allowed, and of them private and public
//	cost                        {min, max}: the allowed peers' costs; {} when none is allowed
//	private_cost, public_cost   the same over the allowed private or public peers
//	spread_min                  the fewest replicas of request.spread's group on an allowed peer
//	                            (0 when one holds none, or when there is no group)
func poolTerm(req Request, candidates []registry.Peer, terms []*peerTerm, allowed []int) *ast.Term {
	add := func(s *span, c int64) {
		if s.n == 0 || c < s.min {
			s.min = c
		}
		if s.n == 0 || c > s.max {
			s.max = c
		}
		s.n++
	}
	var all, private, public span
	group := spreadGroup(req)
	healthy, held, fewest := 0, 0, int64(0)
	for _, i := range allowed {
		p := &candidates[i]
		if !Healthy(p.Status) {
			continue
		}
		healthy++
		c := terms[i].cost
		add(&all, c)
		if terms[i].private {
			add(&private, c)
		} else {
			add(&public, c)
		}
		if n, ok := req.SpreadPeers[p.ID]; ok && group != "" {
			if held == 0 || int64(n) < fewest {
				fewest = int64(n)
			}
			held++
		}
	}
	if held < healthy {
		fewest = 0
	}
	return poolTerms.term(poolFacts{healthy, all, private, public, fewest})
}

// span is the costs of a set of peers: how many, the least and the most.
type span struct {
	min, max int64
	n        int
}

// poolFacts is what input.pool is built from.
type poolFacts struct {
	allowed              int
	all, private, public span
	spreadMin            int64
}

// poolTerms are the pool terms built, by their facts: most decisions see
// the pool facts of the one before (one peer's capacity report seldom
// changes the cheapest or dearest allowed peer), and a term built once
// is one object less for each of them to build, and collect.
var poolTerms = poolMemo{m: map[poolFacts]*ast.Term{}}

type poolMemo struct {
	mu sync.Mutex
	m  map[poolFacts]*ast.Term
}

func (pm *poolMemo) term(f poolFacts) *ast.Term {
	pm.mu.Lock()
	defer pm.mu.Unlock()
	if t := pm.m[f]; t != nil {
		return t
	}
	minMax := func(s span) *ast.Term {
		if s.n == 0 {
			return ast.InternedEmptyObject
		}
		return obj("min", num(s.min), "max", num(s.max))
	}
	t := obj("allowed", num(int64(f.allowed)), "private", num(int64(f.private.n)), "public", num(int64(f.public.n)),
		"cost", minMax(f.all), "private_cost", minMax(f.private), "public_cost", minMax(f.public), "spread_min", num(f.spreadMin))
	if len(pm.m) >= maxMemoTerms { // facts seen long ago go with the next reset
		clear(pm.m)
	}
	pm.m[f] = t
	return t
}

// spreadGroup is the request's spread group: its deployment's, or the
// deployment and resource; "" when none.
func spreadGroup(req Request) string {
	d := req.Deployment
	if d == nil {
		return ""
	}
	if d.SpreadGroup == "" && d.Resource != "" {
		return d.ID + "/" + d.Resource
	}
	return d.SpreadGroup
}

// refresher evaluates changed peers for the recent request shapes in the
// background, one piece of work at a time, on a goroutine that runs while
// there is work and exits when there is none.
type refresher struct {
	mu      sync.Mutex
	queue   []refresh
	running bool
	idle    sync.WaitGroup // the goroutine running, for tests to wait on
}

// maxRefreshQueue bounds the background work waiting; more is dropped
// (a decision evaluates what it misses itself).
const maxRefreshQueue = 64

// refresh is the peers that changed in a decision under c, and the other
// request shapes decided recently.
type refresh struct {
	c      *compiled
	peers  []registry.Peer
	shapes []*recentShape
}

func (r *refresher) schedule(e *Engine, w refresh) {
	r.mu.Lock()
	if len(r.queue) < maxRefreshQueue {
		r.queue = append(r.queue, w)
	}
	start := !r.running
	r.running = true
	r.mu.Unlock()
	if start {
		r.idle.Add(1)
		go r.drain(e)
	}
}

func (r *refresher) drain(e *Engine) {
	for {
		r.mu.Lock()
		if len(r.queue) == 0 {
			r.running = false
			r.mu.Unlock()
			r.idle.Done()
			return
		}
		w := r.queue[0]
		r.queue = r.queue[1:]
		r.mu.Unlock()
		e.refresh(w)
	}
}

// refresh evaluates w's peers for each of w's shapes into the cache: deny,
// then score against the pool that shape's last decision saw (a verdict
// is keyed by the pool facts it read, so a changed pool only misses). A
// failure is left for the next decision to meet, and report.
func (e *Engine) refresh(w refresh) {
	c := w.c
	if e.cur.Load() != c {
		return // another version decides now
	}
	sc := newScope(context.Background(), time.Now().Add(e.cfg.Timeout))
	defer sc.release()
	n := len(w.peers)
	which := make([]int, n)
	for i := range which {
		which[i] = i
	}
	for _, s := range w.shapes {
		terms := make([]*peerTerm, n)
		e.peers.terms(s.req, w.peers, terms, nil)
		deny := make([]*cachedVerdict, n)
		allowed := which
		if c.plan.deny {
			var buf []byte
			dp := denyPass(&sc, c, s.reqTerm, &buf)
			dp.refresh = true
			if _, err := dp.run(&sc, c, true, terms, which, deny); err != nil {
				return
			}
			allowed = nil
			for i, v := range deny {
				if len(v.reasons) == 0 {
					allowed = append(allowed, i)
				}
			}
		}
		if c.plan.score {
			var buf []byte
			sp := scorePass(&sc, c, s.reqTerm, s.pool, &buf)
			sp.refresh = true
			if _, err := sp.run(&sc, c, true, terms, allowed, make([]*cachedVerdict, n)); err != nil {
				return
			}
		}
	}
}
