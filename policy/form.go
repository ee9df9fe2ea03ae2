package policy

import (
	"maps"
	"slices"
	"strconv"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// A policy comes in one of two forms, told apart statically from its
// compiled modules (analyze):
//
//   - the pool form reads input.peers and answers deny[peer_id] and
//     score[peer_id] for the whole pool in one evaluation;
//   - the per-peer form reads input.peer, input.request and input.pool
//     (never input.peers): deny is the set of reasons to reject
//     input.peer and score its score, evaluated per peer, while
//     request_deny, rejecting every peer, is evaluated once per decision.
//     The engine computes what spans peers (input.pool) in Go, after the
//     deny pass, and caches per-peer verdicts by what they read.
//
// The per-peer form is what makes placement fast: a peer's verdict is a
// function of the fields it reads, so it is evaluated again only when one
// of those changes.

var requestDenyRef = ast.MustParseRef("data." + Package + ".request_deny")

// plan is what analyze learned of a compiled policy.
type plan struct {
	perPeer bool
	// Which outputs the policy defines.
	deny, score, requestDeny bool
	// cacheable is false when the policy calls a nondeterministic
	// built-in (time.now_ns, rand.intn, http.send, ...): its verdicts
	// may change with nothing in its input changing.
	cacheable bool
	// What the per-peer deny and score rules read (with every rule and
	// function they depend on).
	denyReads, scoreReads, requestDenyReads reads
}

// reads are the input paths a set of rules reads, relative to
// input.peer, input.request and input.pool; an empty path is the whole
// document. No path is a prefix of another.
type reads struct {
	peer, request, pool []ast.Ref
}

var (
	peerKeyTerm    = ast.StringTerm("peer")
	requestKeyTerm = ast.StringTerm("request")
	poolKeyTerm    = ast.StringTerm("pool")
)

// analyze works out a compiled policy's form, what its per-peer rules
// read and whether their verdicts may be cached.
func analyze(c *ast.Compiler) plan {
	p := plan{cacheable: true}
	denyRules, scoreRules, reqRules := rulesOf(c, denyRef), rulesOf(c, scoreRef), rulesOf(c, requestDenyRef)
	p.deny, p.score, p.requestDeny = len(denyRules) > 0, len(scoreRules) > 0, len(reqRules) > 0
	// The form is decided over every rule of the policy: one that reads
	// the whole input or input.peers anywhere needs the pool form.
	perPeerRoot, poolRoot := false, false
	for _, m := range c.Modules {
		ast.WalkRefs(m, func(r ast.Ref) bool {
			if b := ast.BuiltinMap[r.String()]; b != nil && b.Nondeterministic {
				p.cacheable = false
			}
			g, ok := inputPath(r)
			if !ok {
				return false
			}
			switch {
			case len(g) == 1:
				poolRoot = true
			case g[1].Equal(peerKeyTerm) || g[1].Equal(poolKeyTerm):
				perPeerRoot = true
			case !g[1].Equal(requestKeyTerm):
				poolRoot = true // input.peers, or a document only the pool form could give
			}
			return false
		})
	}
	p.perPeer = perPeerRoot && !poolRoot
	if p.perPeer {
		p.denyReads = readsOf(c, denyRules)
		p.scoreReads = readsOf(c, scoreRules)
		p.requestDenyReads = readsOf(c, reqRules)
	}
	return p
}

// misreads names what a per-peer policy's rules read that their
// evaluation does not give them: deny runs before input.pool exists (it is
// computed from deny's verdicts), and request_deny runs once per decision,
// with no input.peer or input.pool.
func (p plan) misreads() []string {
	if !p.perPeer {
		return nil
	}
	var out []string
	if len(p.denyReads.pool) > 0 {
		out = append(out, denyRef.String()+" reads input.pool, which is computed after the deny pass from its verdicts; read it in score, or deny by input.peer and input.request")
	}
	if len(p.requestDenyReads.peer) > 0 || len(p.requestDenyReads.pool) > 0 {
		out = append(out, requestDenyRef.String()+" reads input.peer or input.pool; it is evaluated once per decision, with input.request only")
	}
	return out
}

// inputPath is the ground prefix of r when r reads input.
func inputPath(r ast.Ref) (ast.Ref, bool) {
	if len(r) == 0 || !r[0].Equal(ast.InputRootDocument) {
		return nil, false
	}
	g := r.GroundPrefix()
	for i := 1; i < len(g); i++ {
		switch g[i].Value.(type) {
		case ast.String, ast.Number, ast.Boolean, ast.Null:
		default:
			return g[:i], true
		}
	}
	return g, true
}

// rulesOf returns the rules defining the document at ref.
func rulesOf(c *ast.Compiler, ref ast.Ref) []*ast.Rule {
	var out []*ast.Rule
	for _, r := range append(c.GetRules(ref), c.GetRulesWithPrefix(ref)...) {
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out
}

// readsOf collects the input paths read by roots and every rule and
// function they depend on, through the compiler's dependency graph.
func readsOf(c *ast.Compiler, roots []*ast.Rule) reads {
	return readsOfExcept(c, roots, nil)
}

// readsOfExcept is readsOf leaving out the rules in except, and what only
// they depend on.
func readsOfExcept(c *ast.Compiler, roots []*ast.Rule, except map[*ast.Rule]bool) reads {
	var rd reads
	for _, r := range closure(c, roots, except) {
		ast.WalkRefs(r, func(ref ast.Ref) bool {
			g, ok := inputPath(ref)
			if !ok || len(g) < 2 {
				return false
			}
			switch {
			case g[1].Equal(peerKeyTerm):
				rd.peer = append(rd.peer, g[2:])
			case g[1].Equal(requestKeyTerm):
				rd.request = append(rd.request, g[2:])
			case g[1].Equal(poolKeyTerm):
				rd.pool = append(rd.pool, g[2:])
			}
			return false
		})
	}
	rd.peer, rd.request, rd.pool = minimal(rd.peer), minimal(rd.request), minimal(rd.pool)
	return rd
}

// closure is roots and every rule and function they depend on, through
// the compiler's dependency graph, leaving out the rules in except and
// what only they depend on.
func closure(c *ast.Compiler, roots []*ast.Rule, except map[*ast.Rule]bool) []*ast.Rule {
	seen := maps.Clone(except)
	if seen == nil {
		seen = map[*ast.Rule]bool{}
	}
	var out []*ast.Rule
	queue := slices.Clone(roots)
	for len(queue) > 0 {
		r := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if seen[r] {
			continue
		}
		seen[r] = true
		out = append(out, r)
		for d := range c.Graph.Dependencies(r) {
			if dr, ok := d.(*ast.Rule); ok && !seen[dr] {
				queue = append(queue, dr)
			}
		}
	}
	return out
}

// minimal drops the paths another path covers (a prefix of them) and
// duplicates, in a stable order.
func minimal(paths []ast.Ref) []ast.Ref {
	slices.SortFunc(paths, func(a, b ast.Ref) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return a.Compare(b)
	})
	var out []ast.Ref
	for _, p := range paths {
		if !slices.ContainsFunc(out, func(q ast.Ref) bool { return p.HasPrefix(q) }) {
			out = append(out, p)
		}
	}
	return out
}

// appendReads appends, for each path, the value doc holds there (or a
// mark for none) to key: equal keys mean every path holds equal values.
func appendReads(key []byte, doc *ast.Term, paths []ast.Ref) []byte {
	var w *keyWriter
	for _, p := range paths {
		v, err := doc.Value.Find(p)
		switch {
		case err != nil:
			key = append(key, 'u')
		case isComposite(v):
			if w == nil {
				w = keyWriters.Get().(*keyWriter)
			}
			w.b = key
			w.value(v)
			key = w.b
		default:
			key = appendScalar(key, v)
		}
	}
	if w != nil {
		w.b = nil
		keyWriters.Put(w)
	}
	return key
}

// keyWriters are writers kept for reuse: each is three allocations.
var keyWriters = sync.Pool{New: func() any { return newKeyWriter() }}

// appendValue encodes v without ambiguity: a type mark, and a length
// before anything of variable length.
func appendValue(b []byte, v ast.Value) []byte {
	if !isComposite(v) {
		return appendScalar(b, v)
	}
	w := keyWriters.Get().(*keyWriter)
	w.b = b
	w.value(v)
	b, w.b = w.b, nil
	keyWriters.Put(w)
	return b
}

func isComposite(v ast.Value) bool {
	switch v.(type) {
	case ast.Object, *ast.Array, ast.Set:
		return true
	}
	return false
}

// keyWriter encodes composite values into b. The iteration callbacks are
// made once per writer: a closure over the buffer in each call made every
// call allocate, scalars included, and keys were a tenth of a decision.
type keyWriter struct {
	b    []byte
	elem func(*ast.Term)
	pair func(k, v *ast.Term)
}

func newKeyWriter() *keyWriter {
	w := &keyWriter{}
	w.elem = func(t *ast.Term) { w.value(t.Value) }
	w.pair = func(k, v *ast.Term) { w.value(k.Value); w.value(v.Value) }
	return w
}

func (w *keyWriter) value(v ast.Value) {
	switch x := v.(type) {
	case *ast.Array:
		w.b = appendHeader(w.b, 'a', x.Len())
		for i := range x.Len() {
			w.value(x.Elem(i).Value)
		}
	case ast.Object:
		w.b = appendHeader(w.b, 'o', x.Len())
		x.Foreach(w.pair) // keys iterate sorted
	case ast.Set:
		w.b = appendHeader(w.b, 'e', x.Len())
		x.Foreach(w.elem)
	default:
		w.b = appendScalar(w.b, v)
	}
}

func appendHeader(b []byte, mark byte, n int) []byte {
	b = append(b, mark)
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, ':')
}

// appendScalar encodes a value that is not an object, array or set.
func appendScalar(b []byte, v ast.Value) []byte {
	switch x := v.(type) {
	case ast.Null:
		return append(b, 'n')
	case ast.Boolean:
		if x {
			return append(b, 't')
		}
		return append(b, 'f')
	case ast.Number:
		return append(appendHeader(b, 'd', len(x)), x...)
	case ast.String:
		return append(appendHeader(b, 's', len(x)), x...)
	default:
		s := v.String()
		return append(appendHeader(b, 'x', len(s)), s...)
	}
}
