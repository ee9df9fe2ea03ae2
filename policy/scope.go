package policy

import (
	"context"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// scope is what the OPA evaluations of one decision (or one background
// refresh) share. OPA's defaults for an evaluation cost about as much as
// evaluating a per-peer rule for one peer: a fresh metrics registry (maps
// and a timer per phase, which placement never reads) and a goroutine
// watching the context to cancel the query (a thread woken per
// evaluation). Here metrics are a no-op and one cancellation, hooked to
// the context without a goroutine, stops every evaluation of the scope.
// The deadline's context and the hook are made at the first evaluation:
// most decisions under a per-peer policy find every verdict cached and
// evaluate nothing, and they cost a few allocations each.
type scope struct {
	parent   context.Context
	deadline time.Time
	ctx      context.Context // nil until the first evaluation
	done     context.CancelFunc
	cancel   topdown.Cancel
	stop     func() bool
}

var noMetrics = metrics.NoOp()

// newScope returns the scope of ctx, its evaluations bounded by deadline;
// release it once done.
func newScope(ctx context.Context, deadline time.Time) scope {
	return scope{parent: ctx, deadline: deadline}
}

// context is the scope's context, the deadline applied.
func (s *scope) context() context.Context {
	if s.ctx == nil {
		s.ctx, s.done = context.WithDeadline(s.parent, s.deadline)
		s.cancel = topdown.NewCancel()
		s.stop = context.AfterFunc(s.ctx, s.cancel.Cancel)
	}
	return s.ctx
}

// release frees what the scope's evaluations held.
func (s *scope) release() {
	if s.ctx != nil {
		s.stop()
		s.done()
	}
}

// eval evaluates q with input within the scope.
func (s *scope) eval(q *rego.PreparedEvalQuery, input ast.Value) (rego.ResultSet, error) {
	ctx := s.context()
	return q.Eval(ctx, rego.EvalParsedInput(input), rego.EvalMetrics(noMetrics), rego.EvalExternalCancel(s.cancel))
}

// maxRequestDenials bounds the request_deny cache; it starts over when
// full (request shapes seen long ago go with it).
const maxRequestDenials = 4096

// requestDenials caches request_deny's reasons under a compiled policy by
// the values at the request paths its rules read: a function of them, for
// a policy whose verdicts may be cached at all. A decision then evaluates
// no Rego when nothing it reads changed.
type requestDenials struct {
	mu sync.Mutex
	m  map[string][]string
}

func (r *requestDenials) get(key []byte) ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs, ok := r.m[string(key)]
	return rs, ok
}

func (r *requestDenials) put(key string, reasons []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil || len(r.m) >= maxRequestDenials {
		r.m = map[string][]string{}
	}
	r.m[key] = reasons
}
