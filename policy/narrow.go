package policy

import (
	"context"
	"strconv"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// Narrowing the peer part of a verdict's key by the request. What a pass
// reads of input.peer is found statically over every rule it may use
// (analyze), but a request often rules some of them out before they read
// the peer: the stock score reads input.peer.room.disk_gib only for a
// volume or an image and input.peer.room.ram_mib only for the rest. Keyed
// by both, a server's score missed the cache whenever a capacity report
// moved the disk room it never reads (a fifth of the decisions under
// churn, and twice as many background evaluations).
//
// A guard is a rule whose body begins with expressions that read nothing
// but input.request and data (directly, or through the rules they
// call): evaluated alone for a request, that prefix says whether the rule
// can hold for any peer. When it is undefined, the rule gives no value,
// and what it (and whatever only it depends on) reads of the peer is left
// out of the key. The set left out is a function of the request values
// the pass reads, which its key's request part already holds, so every
// verdict under one request part uses one narrowing, and a verdict is
// still a function of what its key holds. Rules with an else branch or
// arguments, and default rules, are never guards.

// maxGuards bounds the guards of a pass: the rules ruled out are a bit
// mask.
const maxGuards = 64

// guard is one rule's request-only prefix, prepared as a query.
type guard struct {
	rule  *ast.Rule
	query rego.PreparedEvalQuery
}

// narrower narrows one pass's peer reads by the request.
type narrower struct {
	c      *ast.Compiler
	roots  []*ast.Rule
	guards []guard
	mu     sync.Mutex
	byReq  map[string]*readSet // by the request part of the pass's key
	sets   map[uint64]*readSet // by the mask of guards ruled out
}

// readSet is what a pass reads of the peer when the guards in mask are
// ruled out; nil peer reads is the static set (nothing ruled out).
type readSet struct {
	mask uint64
	peer []ast.Ref
	// mark starts every peer key under the set: the mask, so keys under
	// different sets never meet (they never share a request part anyway).
	mark string
}

// newNarrower finds the guards among the rules roots depend on and
// prepares their prefixes; nil when there are none.
func newNarrower(ctx context.Context, c *ast.Compiler, store storage.Store, roots []*ast.Rule) *narrower {
	var guards []guard
	rules := closure(c, roots, nil)
	// An else branch holds only when the branches before it do not: it is
	// never a rule of its own to rule out.
	branches := map[*ast.Rule]bool{}
	for _, r := range rules {
		for e := r.Else; e != nil; e = e.Else {
			branches[e] = true
		}
	}
	for _, r := range rules {
		if len(guards) == maxGuards {
			break
		}
		if r.Else != nil || branches[r] || r.Default || len(r.Head.Args) > 0 {
			continue
		}
		n := requestOnlyPrefix(c, r.Body)
		if n == 0 {
			continue
		}
		body := make(ast.Body, n)
		for i, e := range r.Body[:n] {
			body[i] = e.Copy()
		}
		q, err := rego.New(rego.Compiler(c), rego.Store(store), rego.ParsedQuery(body)).PrepareForEval(ctx)
		if err != nil {
			continue // not a guard, then: the rule's reads stay in the key
		}
		guards = append(guards, guard{rule: r, query: q})
	}
	if len(guards) == 0 {
		return nil
	}
	return &narrower{c: c, roots: roots, guards: guards}
}

// requestOnlyPrefix is how many of body's first expressions read only
// input.request and data, directly and through the rules they call, and
// carry no with modifier; 0 when those read nothing of the request (they
// hold for every request alike, or for none).
func requestOnlyPrefix(c *ast.Compiler, body ast.Body) int {
	n, request := 0, false
	for _, e := range body {
		ok, reads := requestOnly(c, e)
		if len(e.With) > 0 || !ok {
			break
		}
		n, request = n+1, request || reads
	}
	if !request {
		return 0
	}
	return n
}

// requestOnly says whether e reads nothing of the input but
// input.request, through the rules it calls too, and whether it reads
// the request. A per-peer policy reads no other document of the input
// (analyze), so the peer and the pool are all there is to rule out.
func requestOnly(c *ast.Compiler, e *ast.Expr) (ok, request bool) {
	ok = true
	ast.WalkRefs(e, func(r ast.Ref) bool {
		if !ok {
			return true
		}
		if g, isInput := inputPath(r); isInput {
			ok = len(g) >= 2 && g[1].Equal(requestKeyTerm)
			request = true
			return true
		}
		if !r[0].Equal(ast.DefaultRootDocument) {
			return false
		}
		rules := rulesOf(c, r.GroundPrefix())
		if len(rules) == 0 {
			return false // base data: fixed for the version
		}
		rd := readsOf(c, rules)
		ok = len(rd.peer) == 0 && len(rd.pool) == 0
		request = request || len(rd.request) > 0
		return true
	})
	return ok, request
}

// set returns the read set for the request term, reqKey being the
// request part of the pass's key (what it reads of the request): nil when
// no guard rules anything out or a guard fails to evaluate.
func (nw *narrower) set(sc *scope, reqKey []byte, reqTerm *ast.Term) *readSet {
	if nw == nil {
		return nil
	}
	nw.mu.Lock()
	s, ok := nw.byReq[string(reqKey)]
	nw.mu.Unlock()
	if ok {
		return s
	}
	input := ast.NewObject([2]*ast.Term{requestKeyTerm, reqTerm})
	var mask uint64
	for i := range nw.guards {
		rs, err := sc.eval(&nw.guards[i].query, input)
		if err != nil {
			return nil // not remembered: the next decision tries again
		}
		if len(rs) == 0 {
			mask |= 1 << i
		}
	}
	nw.mu.Lock()
	defer nw.mu.Unlock()
	if mask != 0 {
		if s = nw.sets[mask]; s == nil {
			out := map[*ast.Rule]bool{}
			for i, g := range nw.guards {
				if mask&(1<<i) != 0 {
					out[g.rule] = true
				}
			}
			s = &readSet{mask: mask, peer: readsOfExcept(nw.c, nw.roots, out).peer, mark: "n" + strconv.FormatUint(mask, 36) + ":"}
			if nw.sets == nil {
				nw.sets = map[uint64]*readSet{}
			}
			nw.sets[mask] = s
		}
	}
	if nw.byReq == nil || len(nw.byReq) >= 1024 { // requests seen long ago go with the next reset
		nw.byReq = map[string]*readSet{}
	}
	nw.byReq[string(reqKey)] = s
	return s
}

// key is the peer part of a key under the set for t: the set's mark, the
// peer's ID and the values at the set's paths.
func (s *readSet) key(t *peerTerm) string {
	b := make([]byte, 0, 128)
	b = append(b, s.mark...)
	var id ast.Value = ast.String("")
	if o, ok := t.term.Value.(ast.Object); ok {
		if v := o.Get(idKeyTerm); v != nil {
			id = v.Value
		}
	}
	return string(appendReads(appendValue(b, id), t.term, s.peer))
}
