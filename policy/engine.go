package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cloudmux/cloudmux/internal/tracing"
	"github.com/cloudmux/cloudmux/registry"
)

// DefaultTimeout bounds one decision. The stock policy decides for 100
// peers in a few milliseconds and for 1,000 in tens; a policy that takes a
// second is broken (or looping), and placement fails closed rather than
// waiting on it.
const DefaultTimeout = time.Second

// recordTimeout bounds writing a decision record.
const recordTimeout = 2 * time.Second

// EngineConfig wires an Engine.
type EngineConfig struct {
	// Versions is where policy versions live; nil runs the stock policy
	// only (and Run returns at once).
	Versions *Versions
	// Decisions records every real decision; nil records none.
	Decisions *Decisions
	// Log receives the decision log (one JSON entry per decision, in OPA's
	// decision log shape) and reload events.
	Log logrus.FieldLogger
	// Labels are the decision log's labels (e.g. the broker's ID).
	Labels map[string]string
	// Timeout bounds each evaluation; DefaultTimeout when zero.
	Timeout time.Duration
	// NoVerdictCache evaluates every peer on every decision, for a policy
	// in the per-peer form too: the reference the cached engine is
	// compared with (tests, benchmarks).
	NoVerdictCache bool
	// Metrics, when set, receives the placement metrics
	// (cloudmux_placement_*).
	Metrics prometheus.Registerer
}

// Engine places with admin-written Rego: the active policy version,
// compiled once, evaluated per decision. It follows the active version in
// the store (Run) so every broker replica switches when an admin activates
// or rolls back.
type Engine struct {
	cfg EngineConfig
	cur atomic.Pointer[compiled]

	mu      sync.Mutex
	changed chan struct{}        // closed and replaced on every switch
	cache   map[string]*compiled // recently used versions, for explain
	peers   peerCache
	reqs    requestMemo
	bg      refresher
	names   nameOrders
	metrics *engineMetrics
}

var _ Placer = (*Engine)(nil)

// NewEngine returns an engine running the stock policy until Run loads
// the active version.
func NewEngine(ctx context.Context, cfg EngineConfig) (*Engine, error) {
	if cfg.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		cfg.Log = l
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	e := &Engine{cfg: cfg, changed: make(chan struct{}), cache: map[string]*compiled{}}
	if cfg.Metrics != nil {
		e.metrics = newEngineMetrics(cfg.Metrics)
	}
	c, err := compile(ctx, StockVersion, Stock())
	if err != nil {
		return nil, fmt.Errorf("the stock policy: %w", err)
	}
	e.cur.Store(c)
	e.cache[StockVersion] = c
	return e, nil
}

// Active is the version deciding now.
func (e *Engine) Active() string { return e.cur.Load().version }

// WaitActive blocks until version decides on this engine (Run has loaded
// it) or ctx ends: the broker that activates a version answers once its
// own placements use it.
func (e *Engine) WaitActive(ctx context.Context, version string) error {
	for {
		changed := e.Changed()
		if e.Active() == version {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Changed is closed at the next switch of version. Take it before reading
// Active, or a switch in between is missed.
func (e *Engine) Changed() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

func (e *Engine) use(c *compiled) {
	e.cur.Store(c)
	e.mu.Lock()
	close(e.changed)
	e.changed = make(chan struct{})
	e.mu.Unlock()
}

// compiledVersion returns version compiled, from the cache or the store.
func (e *Engine) compiledVersion(ctx context.Context, version string) (*compiled, error) {
	e.mu.Lock()
	c := e.cache[version]
	e.mu.Unlock()
	if c != nil {
		return c, nil
	}
	if e.cfg.Versions == nil {
		return nil, fmt.Errorf("%w: version %s (this engine has only the stock policy)", ErrNotFound, version)
	}
	v, err := e.cfg.Versions.Get(ctx, version)
	if err != nil {
		return nil, err
	}
	if c, err = compile(ctx, v.ID, v.Bundle); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.cache) >= 8 { // a handful: the active one and those explained against
		for k := range e.cache {
			if k != StockVersion && k != e.cur.Load().version {
				delete(e.cache, k)
				break
			}
		}
	}
	e.cache[version] = c
	return c, nil
}

// Run follows the active version in the store until ctx ends: it loads
// the active version at once and again whenever it changes, compiling
// each version once. A version that fails to load leaves the current one
// deciding (logged); a store error is retried.
func (e *Engine) Run(ctx context.Context) error {
	if e.cfg.Versions == nil {
		return nil
	}
	var idx uint64
	backoff := 100 * time.Millisecond
	for {
		a, next, err := e.cfg.Versions.watchActive(ctx, idx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			e.cfg.Log.WithError(err).Warn("policy: watching the active version failed; retrying")
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return ctx.Err()
			}
			backoff = min(2*backoff, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		idx = next
		if a.Version == e.Active() {
			continue
		}
		c, err := e.compiledVersion(ctx, a.Version)
		if err != nil {
			e.cfg.Log.WithError(err).WithField("version", a.Version).Error("policy: the active version does not load; the previous one still decides")
			continue
		}
		e.use(c)
		e.cfg.Log.WithFields(logrus.Fields{"version": a.Version, "activated_by": a.ActivatedBy}).Info("policy: version active")
	}
}

// Place implements Placer: it evaluates the active policy, records the
// decision and writes the decision log. Evaluation errors and timeouts
// fail closed: an error, no decision.
func (e *Engine) Place(ctx context.Context, req Request, candidates []registry.Peer) (_ Decision, err error) {
	c := e.cur.Load()
	ctx, span := tracing.Tracer().Start(ctx, "placement", trace.WithAttributes(attribute.String("cloudmux.kind", req.Kind),
		attribute.Int("cloudmux.candidates", len(candidates)), attribute.String("cloudmux.policy", c.version)))
	defer func() { tracing.End(span, err) }()
	start := time.Now()
	r, err := e.decide(ctx, c, req, candidates)
	elapsed := time.Since(start)
	if err != nil {
		e.metrics.observe(req.Kind, Decision{}, err, elapsed)
		e.cfg.Log.WithError(err).WithFields(logrus.Fields{"policy": c.version, "resource": req.ResourceID}).Error("policy: placement failed closed")
		return Decision{}, err
	}
	// The policy's order, for the log: the gates reorder the verdicts in
	// place.
	ord := r.res.Order
	if r.peer != nil {
		ord = order(r.d, r.peer.allowedN)
	}
	d := groupGate(gate(r.d), req.Group)
	d.ID = uuid.NewString()
	e.metrics.observe(req.Kind, d, nil, elapsed)
	span.SetAttributes(attribute.Int("cloudmux.allowed", len(d.Allowed())), attribute.String("cloudmux.decision_id", d.ID))
	e.logDecision(d, r, ord, elapsed, start)
	r.release()
	if e.cfg.Decisions != nil {
		// Bounded: a slow store delays a placement by at most this much.
		rctx, cancel := context.WithTimeout(ctx, recordTimeout)
		err := e.cfg.Decisions.Record(rctx, NewRecord(d, req, start))
		cancel()
		if err != nil {
			// The decision stands: a lost record must not fail a placement.
			e.cfg.Log.WithError(err).WithField("decision_id", d.ID).Warn("policy: decision not recorded")
		}
	}
	return d, nil
}

// Explain is Place without consequences: no record, no decision log. An
// empty version uses the active one.
func (e *Engine) Explain(ctx context.Context, version string, req Request, candidates []registry.Peer) (Decision, error) {
	c := e.cur.Load()
	if version != "" && version != c.version {
		var err error
		if c, err = e.compiledVersion(ctx, version); err != nil {
			return Decision{}, err
		}
	}
	r, err := e.decide(ctx, c, req, candidates)
	r.release()
	return groupGate(gate(r.d), req.Group), err
}

// Evaluate runs one decision on the active policy without recording or
// logging it: the hot path alone, for benchmarks.
func (e *Engine) Evaluate(ctx context.Context, req Request, candidates []registry.Peer) (Decision, error) {
	r, err := e.decide(ctx, e.cur.Load(), req, candidates)
	r.release()
	return r.d, err
}

// run is one evaluation: the decision (before the health gate) and what
// the decision log shows of it.
type run struct {
	d     Decision
	input ast.Value // pool form: the input evaluated
	res   result    // pool form: the policy's answer
	peer  *peerRun  // per-peer form: what the log is built from
}

// release returns what the run pooled; the decision stays.
func (r run) release() {
	if r.peer != nil {
		r.peer.release()
	}
}

// decide evaluates c in its form under the engine's deadline.
func (e *Engine) decide(ctx context.Context, c *compiled, req Request, candidates []registry.Peer) (run, error) {
	sc := newScope(ctx, time.Now().Add(e.cfg.Timeout))
	defer sc.release()
	if c.plan.perPeer {
		return e.evalPerPeer(&sc, c, req, candidates)
	}
	input := e.peers.input(req, candidates)
	d, res, err := e.eval(&sc, c, input, candidates)
	return run{d: d, input: input, res: res}, err
}

// evalError wraps an evaluation failure, naming a deadline as such.
func (e *Engine) evalError(ctx context.Context, c *compiled, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%w: policy %s did not decide within %s: %w", ErrEvaluation, c.version, e.cfg.Timeout, ctx.Err())
	}
	return fmt.Errorf("%w: policy %s: %v", ErrEvaluation, c.version, err)
}

// result is what the policy answered, for the decision log.
type result struct {
	Deny  *ast.Term `json:"-"`
	Score *ast.Term `json:"-"`
	Order []string  `json:"order"`
}

// MarshalJSON renders the policy's answer as OPA would log it.
func (r result) MarshalJSON() ([]byte, error) {
	out := map[string]any{"order": r.Order}
	if r.Deny != nil {
		out["deny"] = mustJSON(r.Deny.Value)
	}
	if r.Score != nil {
		out["score"] = mustJSON(r.Score.Value)
	}
	return json.Marshal(out)
}

// eval evaluates a pool-form policy: the whole pool at once.
func (e *Engine) eval(sc *scope, c *compiled, input ast.Value, candidates []registry.Peer) (Decision, result, error) {
	rs, err := sc.eval(&c.query, input)
	if err != nil {
		return Decision{}, result{}, e.evalError(sc.context(), c, err)
	}
	if len(rs) != 1 {
		return Decision{}, result{}, fmt.Errorf("%w: policy %s: deny or score is undefined for this input", ErrEvaluation, c.version)
	}
	fail := func(format string, args ...any) (Decision, result, error) {
		return Decision{}, result{}, fmt.Errorf("%w: policy %s: %s", ErrEvaluation, c.version, fmt.Sprintf(format, args...))
	}
	var res result
	var deny, score ast.Object
	if t, ok := rs[0].Bindings["deny"].(*ast.Term); ok {
		if deny, ok = t.Value.(ast.Object); !ok {
			return fail("deny is %s, not an object of peer ID to reasons", ast.ValueName(t.Value))
		}
		res.Deny = t
	}
	if t, ok := rs[0].Bindings["score"].(*ast.Term); ok {
		if score, ok = t.Value.(ast.Object); !ok {
			return fail("score is %s, not an object of peer ID to score", ast.ValueName(t.Value))
		}
		res.Score = t
	}
	vs := make([]verdict, len(candidates))
	for i, p := range candidates {
		v := &vs[i]
		key := ast.StringTerm(p.ID)
		var reasons *ast.Term
		if deny != nil {
			reasons = deny.Get(key)
		}
		if reasons != nil {
			if v.reasons, err = stringsOf(reasons.Value); err != nil {
				return fail("deny[%q]: %v", p.ID, err)
			}
			if len(v.reasons) == 0 {
				v.reasons = []string{"denied by policy " + c.version}
			}
			continue
		}
		v.allowed = true
		var s *ast.Term
		if score != nil {
			s = score.Get(key)
		}
		if s == nil {
			v.reasons = []string{noScore}
		} else if v.score, v.reasons, err = scoreOf(s.Value); err != nil {
			return fail("score[%q]: %v", p.ID, err)
		}
	}
	d := rank(c.version, candidates, vs, nil)
	res.Order = order(d, len(d.Verdicts))
	return d, res, nil
}

// noScore is the reason of an allowed peer the policy gave no score.
const noScore = "the policy gave no score"

// verdict is a peer's verdict worked out without its peer.
type verdict struct {
	allowed bool
	score   int
	reasons []string
}

// order is the allowed peers' IDs, best first, as the decision log
// shows; n is at most how many there are.
func order(d Decision, n int) []string {
	out := make([]string, 0, n)
	for _, v := range d.Verdicts {
		if v.Allowed {
			out = append(out, v.Peer.ID)
		}
	}
	return out
}

// stringsOf reads a set (or array) of reasons, sorted.
func stringsOf(v ast.Value) ([]string, error) {
	var out []string
	add := func(t *ast.Term) {
		if s, ok := t.Value.(ast.String); ok {
			out = append(out, string(s))
		} else {
			out = append(out, t.String())
		}
	}
	switch x := v.(type) {
	case ast.Set:
		out = make([]string, 0, x.Len())
		x.Foreach(add)
	case *ast.Array:
		out = make([]string, 0, x.Len())
		x.Foreach(add)
	default:
		return nil, fmt.Errorf("%s is not a set of strings", ast.ValueName(v))
	}
	slices.Sort(out)
	return out, nil
}

var (
	scoreKey   = ast.StringTerm("score")
	reasonsKey = ast.StringTerm("reasons")
	partsKey   = ast.StringTerm("parts")
)

// scoreOf reads a score: a number, or {"score": n, "reasons": [...],
// "parts": {name: points}}; without "score", the score is the sum of the
// parts (adding them here saves the policy an arithmetic builtin call per
// part per peer, a good part of scoring many peers in Rego). Scores are
// clamped to 0-100.
func scoreOf(v ast.Value) (int, []string, error) {
	var n float64
	var reasons []string
	switch s := v.(type) {
	case ast.Number:
		f, ok := s.Float64()
		if !ok {
			return 0, nil, fmt.Errorf("%s is not a number", s)
		}
		n = f
	case ast.Object:
		var parts ast.Object
		if t := s.Get(partsKey); t != nil {
			parts, _ = t.Value.(ast.Object)
		}
		if t := s.Get(scoreKey); t != nil {
			num, _ := t.Value.(ast.Number)
			f, ok := num.Float64()
			if !ok {
				return 0, nil, errors.New(`an object score's "score" must be a number`)
			}
			n = f
		} else if parts != nil {
			var bad *ast.Term
			parts.Foreach(func(k, v *ast.Term) {
				num, _ := v.Value.(ast.Number)
				f, ok := num.Float64()
				if !ok && bad == nil {
					bad = k
				}
				n += f
			})
			if bad != nil {
				return 0, nil, fmt.Errorf("score part %s is not a number", bad)
			}
		} else {
			return 0, nil, errors.New(`an object score needs a numeric "score" or numeric "parts"`)
		}
		if rs := s.Get(reasonsKey); rs != nil {
			var err error
			if reasons, err = stringsOf(rs.Value); err != nil {
				return 0, nil, err
			}
		}
		if parts != nil && parts.Len() > 0 {
			var b strings.Builder
			b.Grow(16 + 16*parts.Len())
			b.WriteString("score ")
			b.WriteString(strconv.Itoa(clamp(n)))
			b.WriteString(" =")
			// Object keys iterate sorted.
			i := 0
			parts.Foreach(func(k, v *ast.Term) {
				if i > 0 {
					b.WriteString(" +")
				}
				i++
				b.WriteByte(' ')
				if ks, ok := k.Value.(ast.String); ok {
					b.WriteString(string(ks))
				} else {
					b.WriteString(k.String())
				}
				b.WriteByte(' ')
				if num, ok := v.Value.(ast.Number); ok {
					b.WriteString(string(num))
				} else {
					b.WriteString(v.String())
				}
			})
			reasons = append(reasons, b.String())
		}
	default:
		return 0, nil, fmt.Errorf("%s is neither a number nor an object", ast.ValueName(v))
	}
	if len(reasons) == 0 {
		reasons = []string{"score " + strconv.Itoa(clamp(n))}
	}
	return clamp(n), reasons, nil
}

func clamp(f float64) int { return int(min(max(f, 0), 100) + 0.5) }

// logDecision writes one decision log entry in OPA's shape.
func (e *Engine) logDecision(d Decision, r run, ord []string, elapsed time.Duration, at time.Time) {
	input, res := r.input, r.res
	if r.peer != nil {
		input, res = r.peer.log(ord)
	}
	in := mustJSON(input)
	labels := map[string]string{"app": "cloudmux"}
	maps.Copy(labels, e.cfg.Labels)
	e.cfg.Log.WithFields(logrus.Fields{
		"type":        "openpolicyagent.org/decision_logs",
		"decision_id": d.ID,
		"path":        Path,
		"input":       in,
		"result":      res,
		"timestamp":   at.UTC().Format(time.RFC3339Nano),
		"metrics":     map[string]int64{"timer_rego_query_eval_ns": elapsed.Nanoseconds()},
		"labels":      labels,
		"bundles":     map[string]any{"cloudmux": map[string]string{"revision": d.Policy}},
	}).Info("Decision Log")
}
