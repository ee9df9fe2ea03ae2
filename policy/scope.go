package policy

import (
	"context"
	"sync"

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
type scope struct {
	ctx    context.Context
	cancel topdown.Cancel
}

var noMetrics = metrics.NoOp()

// newScope returns the scope of ctx and the function that releases it.
func newScope(ctx context.Context) (scope, func()) {
	c := topdown.NewCancel()
	stop := context.AfterFunc(ctx, c.Cancel)
	return scope{ctx: ctx, cancel: c}, func() { stop() }
}

// eval evaluates q with input within the scope.
func (s scope) eval(q *rego.PreparedEvalQuery, input ast.Value) (rego.ResultSet, error) {
	return q.Eval(s.ctx, rego.EvalParsedInput(input), rego.EvalMetrics(noMetrics), rego.EvalExternalCancel(s.cancel))
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

func (r *requestDenials) get(key string) ([]string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rs, ok := r.m[key]
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
