package consul

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/consul/api"
)

// DefaultRetryBudget is how long a store call rides out Consul being
// unreachable or leaderless before it reports registry.ErrUnavailable:
// long enough for a leader election (a few seconds with Consul's default
// raft_multiplier) or an agent restart, short enough that an API request
// waiting on it still answers.
const DefaultRetryBudget = 10 * time.Second

const (
	retryFirst = 25 * time.Millisecond
	retryMax   = time.Second
)

// retrier paces the retries of one call within its budget.
type retrier struct {
	deadline time.Time
	wait     time.Duration
}

func (s *Store) retrier() *retrier {
	return &retrier{deadline: time.Now().Add(s.retryBudget), wait: retryFirst}
}

// again reports whether err is worth another try, and sleeps before it:
// only transient errors (Consul unreachable, 5xx, 429), while the budget
// and ctx last.
func (r *retrier) again(ctx context.Context, err error) bool {
	if err == nil || !isTransient(err) || ctx.Err() != nil {
		return false
	}
	pause := r.wait/2 + rand.N(r.wait/2+1) // jittered: replicas do not retry in step
	if time.Now().Add(pause).After(r.deadline) {
		return false
	}
	r.wait = min(2*r.wait, retryMax)
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retry runs an idempotent call (a read, an unconditional delete) until it
// succeeds, fails for good, or the budget ends.
func (s *Store) retry(ctx context.Context, call func() error) error {
	return s.retryWith(ctx, s.retrier(), call)
}

// retryWith is retry within an existing retrier's budget.
func (s *Store) retryWith(ctx context.Context, r *retrier, call func() error) error {
	for {
		err := call()
		if !r.again(ctx, err) {
			return err
		}
	}
}

// notApplied reports whether a failed write certainly did not happen, so
// trying it again cannot apply it twice: the connection was refused
// (nothing was sent), Consul had no leader to apply it ("No cluster
// leader", after the server held it for rpc_hold_timeout), or it was rate
// limited. Any other failure after the request left (a broken connection,
// a timeout, another 5xx) leaves the outcome unknown: the write is not
// retried and the caller gets ErrUnavailable, never a success or a
// conflict it did not earn.
func notApplied(err error) bool {
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code == http.StatusTooManyRequests ||
			(se.Code == http.StatusInternalServerError && strings.Contains(se.Body, "No cluster leader"))
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
