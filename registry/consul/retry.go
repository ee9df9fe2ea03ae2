package consul

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
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
	r := s.retrier()
	for {
		err := call()
		if !r.again(ctx, err) {
			return err
		}
	}
}

// writeOutcome is what a write whose answer was lost did, read back from
// the key: applied (with the key's index), not applied (try again), or
// overtaken by another writer.
type writeOutcome int

const (
	notApplied writeOutcome = iota
	applied
	overtaken
)

// settle decides what became of a set or check-and-set whose answer was
// lost (the connection broke after the request left, or the leader died
// while applying it): Consul may or may not have applied it. Reading the
// key tells: our value there, at an index other than the one we checked
// against, is our write; the key as we expected it means nothing happened;
// anything else is another writer's.
func (s *Store) settle(ctx context.Context, kvOp *api.KVTxnOp) (writeOutcome, uint64, error) {
	var pair *api.KVPair
	err := s.retry(ctx, func() (err error) {
		pair, _, err = s.kv.Get(kvOp.Key, readOpts(ctx))
		return err
	})
	if err != nil {
		return notApplied, 0, err
	}
	switch {
	case pair != nil && bytes.Equal(pair.Value, kvOp.Value) && (kvOp.Verb == api.KVSet || pair.ModifyIndex != kvOp.Index):
		return applied, pair.ModifyIndex, nil
	case kvOp.Verb == api.KVSet:
		return notApplied, 0, nil // unconditional: just write it again
	case kvOp.Index == 0 && pair == nil, pair != nil && pair.ModifyIndex == kvOp.Index:
		return notApplied, 0, nil
	}
	return overtaken, 0, nil
}

// settleDelete is settle for a delete-cas: the key gone means it was ours
// to delete and is deleted; still at the checked index, nothing happened.
func (s *Store) settleDelete(ctx context.Context, full string, index uint64) (writeOutcome, error) {
	var pair *api.KVPair
	err := s.retry(ctx, func() (err error) {
		pair, _, err = s.kv.Get(full, readOpts(ctx))
		return err
	})
	switch {
	case err != nil:
		return notApplied, err
	case pair == nil:
		return applied, nil
	case pair.ModifyIndex == index:
		return notApplied, nil
	}
	return overtaken, nil
}

// errOvertaken marks a write that lost its answer and then found another
// writer's value: the caller's view is stale, as after a lost CAS.
var errOvertaken = errors.New("another writer changed the key while the answer to this write was lost")
