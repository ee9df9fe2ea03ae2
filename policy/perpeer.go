package policy

import (
	"fmt"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/cloudmux/cloudmux/registry"
)

// peerRun is one per-peer-form evaluation, kept for the decision log,
// with the evaluation's scratch: runs are pooled, so a decision over n
// peers does not allocate (and collect) a dozen slices of n.
type peerRun struct {
	reqTerm *ast.Term
	terms   []*peerTerm
	pool    *ast.Term
	// reasons is each peer's merged deny reasons (request_deny's and its
	// own); score its score verdict, nil for a denied peer.
	reasons [][]string
	score   []*cachedVerdict
	// allowedN is how many peers the policy allowed: the decision log's
	// order is built from the decision when a log is written, not on the
	// hot path.
	allowedN int
	// Scratch: deny verdicts, indexes of every peer and of the allowed,
	// the verdicts ranked and their order.
	deny         []*cachedVerdict
	all, allowed []int
	built        []int // peers whose terms were built in this decision
	keyBuf       []byte
	vs           []verdict
	keys         []rankKey
	ukeys        []uint64
}

var peerRuns = sync.Pool{New: func() any { return new(peerRun) }}

// newPeerRun returns a run for n peers, from the pool.
func newPeerRun(n int) *peerRun {
	pr := peerRuns.Get().(*peerRun)
	pr.terms, pr.reasons, pr.score = sized(pr.terms, n), sized(pr.reasons, n), sized(pr.score, n)
	pr.deny, pr.vs, pr.keys, pr.allowed = sized(pr.deny, n), sized(pr.vs, n), sized(pr.keys, n), pr.allowed[:0]
	pr.ukeys = sized(pr.ukeys, n)
	pr.built = pr.built[:0]
	if len(pr.all) < n {
		pr.all = make([]int, n)
		for i := range pr.all {
			pr.all[i] = i
		}
	}
	return pr
}

// release returns the run to the pool once nothing reads it any more
// (a decision's verdicts hold their own slices of reasons, not the run's).
func (pr *peerRun) release() {
	clear(pr.terms)
	clear(pr.reasons)
	clear(pr.score)
	clear(pr.deny)
	clear(pr.vs)
	clear(pr.keys)
	pr.reqTerm, pr.pool = nil, nil
	peerRuns.Put(pr)
}

// sized is s with length n, zeroed, reallocated only when too small.
func sized[T any](s []T, n int) []T {
	if cap(s) < n {
		return make([]T, n)
	}
	s = s[:n]
	clear(s)
	return s
}

// log renders the run as the pool form's decision log shows a decision:
// the input (with the pool facts), deny and score by peer ID, and ord,
// the policy's order of the allowed peers.
func (pr *peerRun) log(ord []string) (ast.Value, result) {
	peers := make([]*ast.Term, len(pr.terms))
	var deny, score [][2]*ast.Term
	for i, t := range pr.terms {
		peers[i] = t.term
		id := ast.StringTerm("")
		if o, ok := t.term.Value.(ast.Object); ok {
			if v := o.Get(idKeyTerm); v != nil {
				id = v
			}
		}
		if len(pr.reasons[i]) > 0 {
			rs := make([]*ast.Term, len(pr.reasons[i]))
			for j, r := range pr.reasons[i] {
				rs[j] = ast.StringTerm(r)
			}
			deny = append(deny, [2]*ast.Term{id, ast.SetTerm(rs...)})
		} else if s := pr.score[i]; s != nil && s.raw != nil {
			score = append(score, [2]*ast.Term{id, s.raw})
		}
	}
	in := obj("request", pr.reqTerm, "peers", ast.ArrayTerm(peers...), "pool", pr.pool).Value
	return in, result{Deny: ast.ObjectTerm(deny...), Score: ast.ObjectTerm(score...), Order: ord}
}

// pass is one per-peer evaluation over a batch of peers: deny, or score.
// Its parts are plain fields and its behaviour methods on the pass kind:
// closures over the request made two passes allocate a dozen objects per
// decision, a decision that evaluates nothing included.
type pass struct {
	pass int // denyPass or scorePass, for peerKeys.last
	c    *compiled
	// req is the key's request part, part its interned copy.
	req  string
	part *reqPart
	// reqTerm and pool (score only) are the input around the peers.
	reqTerm, pool *ast.Term
	// refresh marks a background refresh's pass, over a few peers.
	refresh bool
	// set narrows the peer part of the keys (nil: the static reads).
	set *readSet
	// shape is the request's shape, which the peer terms are built for.
	shape shape
	// terms, when set, is the decision's copy of its peer terms for the
	// last run, made by the first pass that needs it and shared by the
	// next.
	terms *[]*peerTerm
}

// The passes, indexes of peerKeys.last.
const (
	denyPassKind = iota
	scorePassKind
)

var (
	noReasons      = &cachedVerdict{}
	noScoreVerdict = &cachedVerdict{reasons: []string{noScore}}
	batchKeyTerm   = ast.StringTerm("batch")
)

// denyPass is the deny pass of c for the request term; buf is scratch
// for the key.
func denyPass(sc *scope, c *compiled, reqTerm *ast.Term, buf *[]byte) pass {
	*buf = appendReads(append((*buf)[:0], 'd'), reqTerm, c.plan.denyReads.request)
	set := c.denyNarrow.set(sc, *buf, reqTerm)
	part := c.internReq(*buf)
	return pass{pass: denyPassKind, c: c, req: part.key, part: part, reqTerm: reqTerm, set: set}
}

// scorePass is the score pass of c for the request term and pool; buf is
// scratch for the key.
func scorePass(sc *scope, c *compiled, reqTerm, pool *ast.Term, buf *[]byte) pass {
	key := appendReads(append((*buf)[:0], 's'), reqTerm, c.plan.scoreReads.request)
	set := c.scoreNarrow.set(sc, key, reqTerm)
	*buf = appendReads(append(key, '|'), pool, c.plan.scoreReads.pool)
	part := c.internReq(*buf)
	return pass{pass: scorePassKind, c: c, req: part.key, part: part, reqTerm: reqTerm, pool: pool, set: set}
}

// name is the rule the pass evaluates, and its binding in the queries.
func (ps *pass) name() string {
	if ps.pass == scorePassKind {
		return "score"
	}
	return "deny"
}

// queries are the pass's prepared queries: over a batch of peers, and
// for one peer.
func (ps *pass) queries() (batch, one *rego.PreparedEvalQuery) {
	if ps.pass == scorePassKind {
		return &ps.c.scoreQuery, &ps.c.scoreOne
	}
	return &ps.c.denyQuery, &ps.c.denyOne
}

// peerKey picks the peer's part of the pass's key for the term t.
func (ps *pass) peerKey(k *peerKeys, t *peerTerm) string {
	if ps.set != nil {
		return k.narrowedKey(ps.pass, ps.set, t)
	}
	if ps.pass == scorePassKind {
		return k.score
	}
	return k.deny
}

// input is the evaluation's input around a batch of peer terms (key
// batch) or one peer's term (key peer).
func (ps *pass) input(key, peers *ast.Term) ast.Value {
	if ps.pass == scorePassKind {
		return ast.NewObject([2]*ast.Term{requestKeyTerm, ps.reqTerm}, [2]*ast.Term{poolKeyTerm, ps.pool}, [2]*ast.Term{key, peers})
	}
	return ast.NewObject([2]*ast.Term{requestKeyTerm, ps.reqTerm}, [2]*ast.Term{key, peers})
}

// undefined is the verdict of a peer the policy gave no answer for.
func (ps *pass) undefined() *cachedVerdict {
	if ps.pass == scorePassKind {
		return noScoreVerdict
	}
	return noReasons
}

// read turns the policy's answer for one peer into a verdict.
func (ps *pass) read(t *ast.Term) (*cachedVerdict, error) {
	if ps.pass == scorePassKind {
		n, rs, err := scoreOf(t.Value)
		if err != nil {
			return nil, err
		}
		return &cachedVerdict{score: n, reasons: slices.Clip(rs), scored: true, raw: t}, nil
	}
	rs, err := stringsOf(t.Value)
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 {
		return noReasons, nil
	}
	return &cachedVerdict{reasons: slices.Clip(rs), raw: t}, nil
}

// run evaluates the pass for the peers at which (indexes into terms),
// from the cache where it can, writing each verdict into out. It returns
// the indexes it evaluated. A decision (not a background refresh, whose
// terms are a few peers) leaves its terms and verdicts for the next
// decision of the same request part.
func (ps *pass) run(sc *scope, c *compiled, cached bool, terms []*peerTerm, which []int, out []*cachedVerdict) ([]int, error) {
	if len(which) == 0 {
		return nil, nil
	}
	if !cached {
		c.evaluated.Add(int64(len(which)))
		return which, ps.eval(sc, terms, which, out)
	}
	var lt []*peerTerm
	var lv []*cachedVerdict
	if last := ps.part.lastRun(ps.shape); last != nil && len(last.terms) == len(terms) {
		lt, lv = last.terms, last.verdicts
	}
	var unknown []int
	same := lt != nil
	for _, i := range which {
		if lt != nil && lt[i] == terms[i] && lv[i] != nil {
			out[i] = lv[i]
			continue
		}
		same = false
		if v := c.keysOf(terms[i]).recall(ps.pass, ps.req); v != nil {
			out[i] = v
		} else {
			unknown = append(unknown, i)
		}
	}
	if same {
		return nil, nil // the last decision's verdicts, every one
	}
	var misses []int
	if len(unknown) > 0 {
		vc := &c.verdicts
		vc.mu.Lock()
		cur, old := vc.tables(ps.req)
		for _, i := range unknown {
			k := c.keysOf(terms[i])
			if v := vc.getLocked(cur, old, ps.req, ps.peerKey(k, terms[i])); v != nil {
				out[i] = v
				k.remember(ps.pass, ps.req, v)
			} else {
				misses = append(misses, i)
			}
		}
		vc.mu.Unlock()
	}
	if len(misses) > 0 {
		c.evaluated.Add(int64(len(misses)))
		if err := ps.eval(sc, terms, misses, out); err != nil {
			return nil, err
		}
		c.verdicts.mu.Lock()
		for _, i := range misses {
			k := c.keysOf(terms[i])
			c.verdicts.putLocked(ps.req, ps.peerKey(k, terms[i]), out[i])
			k.remember(ps.pass, ps.req, out[i])
		}
		c.verdicts.mu.Unlock()
	}
	if !ps.refresh {
		var ts []*peerTerm
		if ps.terms != nil {
			ts = *ps.terms
		}
		if ts == nil {
			ts = slices.Clone(terms)
			if ps.terms != nil {
				*ps.terms = ts
			}
		}
		ps.part.remember(&lastRun{shape: ps.shape, terms: ts, verdicts: slices.Clone(out)})
	}
	return misses, nil
}

// eval evaluates the pass for the peers at misses (indexes into terms),
// writing each verdict into out: one peer alone, more as a batch.
func (ps *pass) eval(sc *scope, terms []*peerTerm, misses []int, out []*cachedVerdict) error {
	if len(misses) == 1 {
		i := misses[0]
		_, one := ps.queries()
		rs, err := sc.eval(one, ps.input(peerKeyTerm, terms[i].term))
		if err != nil {
			return err
		}
		out[i] = ps.undefined()
		if len(rs) == 1 {
			if t, ok := rs[0].Bindings[ps.name()].(*ast.Term); ok {
				return ps.readInto(t, terms[i], &out[i])
			}
		}
		return nil
	}
	batch := make([]*ast.Term, len(misses))
	for j, i := range misses {
		batch[j] = terms[i].term
	}
	query, _ := ps.queries()
	rs, err := sc.eval(query, ps.input(batchKeyTerm, ast.ArrayTerm(batch...)))
	if err != nil {
		return err
	}
	var answers ast.Object
	if len(rs) == 1 {
		if t, ok := rs[0].Bindings[ps.name()].(*ast.Term); ok {
			answers, _ = t.Value.(ast.Object)
		}
	}
	if answers == nil {
		return fmt.Errorf("%s is undefined for this input", ps.name())
	}
	for j, i := range misses {
		out[i] = ps.undefined()
		if t := answers.Get(ast.InternedTerm(j)); t != nil {
			if err := ps.readInto(t, terms[i], &out[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// readInto reads the policy's answer t for the peer of term into v.
func (ps *pass) readInto(t *ast.Term, term *peerTerm, v **cachedVerdict) error {
	var err error
	if *v, err = ps.read(t); err != nil {
		return fmt.Errorf("%s for peer %s: %w", ps.name(), term.term.Value.(ast.Object).Get(idKeyTerm), err)
	}
	return nil
}

// evalPerPeer evaluates a per-peer-form policy: request_deny once, deny
// per peer, the pool facts from the peers allowed, score per allowed peer;
// each peer's verdicts from the cache unless what they read changed.
func (e *Engine) evalPerPeer(sc *scope, c *compiled, req Request, candidates []registry.Peer) (run, error) {
	fail := func(err error) (run, error) {
		if sc.context().Err() != nil {
			return run{}, e.evalError(sc.context(), c, err)
		}
		return run{}, fmt.Errorf("%w: policy %s: %v", ErrEvaluation, c.version, err)
	}
	n := len(candidates)
	pr := newPeerRun(n)
	pr.reqTerm = requestTerm(req, &e.reqs)
	pr.built = e.peers.terms(req, candidates, pr.terms, pr.built)
	cached := c.plan.cacheable && !e.cfg.NoVerdictCache
	requestReasons, err := c.requestDeny(sc, cached, pr.reqTerm, &pr.keyBuf)
	if err != nil {
		return fail(err)
	}
	deny := pr.deny
	var termsCopy []*peerTerm
	dp := denyPass(sc, c, pr.reqTerm, &pr.keyBuf)
	dp.terms, dp.shape = &termsCopy, shapeOf(req)
	// changed is the peers whose terms changed or that were evaluated,
	// for the background refresh (only read when cached): a peer whose
	// capacity report changed is evaluated for the other recent request
	// shapes off the decision path, whether this decision found its
	// verdicts cached or not, so the next decision of another flavor
	// finds its term built and its verdicts cached.
	changed := pr.built
	if c.plan.deny {
		denied, err := dp.run(sc, c, cached, pr.terms, pr.all[:n:n], deny)
		if err != nil {
			return fail(err)
		}
		if cached {
			changed = append(changed, denied...)
		}
	} else {
		for i := range deny {
			deny[i] = noReasons
		}
	}
	allowed := pr.allowed
	for i := range candidates {
		pr.reasons[i] = mergeReasons(requestReasons, deny[i].reasons)
		if len(pr.reasons[i]) == 0 {
			allowed = append(allowed, i)
		}
	}
	pr.allowed = allowed
	pr.pool = poolTerm(req, candidates, pr.terms, allowed)
	sp := scorePass(sc, c, pr.reqTerm, pr.pool, &pr.keyBuf)
	sp.terms, sp.shape = &termsCopy, dp.shape
	if c.plan.score {
		scored, err := sp.run(sc, c, cached, pr.terms, allowed, pr.score)
		if err != nil {
			return fail(err)
		}
		if cached {
			changed = append(changed, scored...)
		}
	} else {
		for _, i := range allowed {
			pr.score[i] = noScoreVerdict
		}
	}
	vs := pr.vs
	for i := range vs {
		if s := pr.score[i]; s != nil {
			vs[i] = verdict{allowed: true, score: s.score, reasons: s.reasons}
		} else {
			vs[i] = verdict{reasons: pr.reasons[i]}
		}
	}
	d := rankByName(c.version, candidates, vs, e.names.of(candidates), pr.ukeys, pr.keys)
	pr.allowedN = len(allowed)
	if cached {
		s := &recentShape{req: req, reqTerm: pr.reqTerm, denyReq: dp.req, pool: pr.pool, scoreReq: sp.req}
		if others := c.recent.note(s); len(others) > 0 && len(changed) > 0 {
			slices.Sort(changed)
			changed = slices.Compact(changed)
			peers := make([]registry.Peer, len(changed))
			for j, i := range changed {
				peers[j] = candidates[i]
			}
			e.bg.schedule(e, refresh{c: c, peers: peers, shapes: others})
		}
	}
	return run{d: d, peer: pr}, nil
}

// requestDeny is request_deny's reasons for the request term, sorted:
// from the cache when verdicts may be cached (a function of the values
// at the request paths its rules read), else evaluated.
func (c *compiled) requestDeny(sc *scope, cached bool, reqTerm *ast.Term, buf *[]byte) ([]string, error) {
	if !c.plan.requestDeny {
		return nil, nil
	}
	if cached {
		*buf = appendReads((*buf)[:0], reqTerm, c.plan.requestDenyReads.request)
		if rs, ok := c.denials.get(*buf); ok {
			return rs, nil
		}
	}
	rs, err := sc.eval(&c.requestQuery, ast.NewObject([2]*ast.Term{requestKeyTerm, reqTerm}))
	if err != nil {
		return nil, err
	}
	var reasons []string
	if len(rs) == 1 {
		if t, ok := rs[0].Bindings["request_deny"].(*ast.Term); ok {
			if a, ok := t.Value.(*ast.Array); ok && a.Len() == 1 {
				if reasons, err = stringsOf(a.Elem(0).Value); err != nil {
					return nil, fmt.Errorf("request_deny: %w", err)
				}
			}
		}
	}
	// Shared by every decision that hits the entry: an append copies.
	reasons = slices.Clip(reasons)
	if cached {
		c.denials.put(string(*buf), reasons)
	}
	return reasons, nil
}

// mergeReasons is the sorted union of the request's reasons and a
// peer's (each sorted already); either alone is returned as it is.
func mergeReasons(a, b []string) []string {
	switch {
	case len(a) == 0:
		return b
	case len(b) == 0:
		return a
	}
	out := make([]string, 0, len(a)+len(b))
	out = append(append(out, a...), b...)
	slices.Sort(out)
	return slices.Clip(slices.Compact(out))
}
