package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// errGoalChanged: someone changed the deployment's goal (a delete while
// applying); the run stops its current work and starts over.
var errGoalChanged = errors.New("deploy: the deployment's goal changed")

// errRetryLater: the run cannot progress now (its peers are not back);
// the deployment stays in progress for the next Resume.
var errRetryLater = errors.New("deploy: postponed until the peers are back")

// run is one engine's work on one deployment while it holds the lease.
type run struct {
	e     *Engine
	id    string
	mu    sync.Mutex // guards d, index, seq
	d     *Deployment
	index uint64
	goal  string
	seq   int64
	// render is the evaluated template of the current apply, for
	// resolving references; nil outside apply.
	render *rendered
}

func (r *run) reload(ctx context.Context) error {
	d, index, err := r.e.load(ctx, r.id)
	if err != nil {
		return err
	}
	kvs, _, err := r.e.Store.List(ctx, eventPrefix+r.id+"/")
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.d, r.index, r.goal = d, index, d.Goal
	if n := len(kvs); n > 0 {
		var ev Event
		if json.Unmarshal(kvs[n-1].Value, &ev) == nil {
			r.seq = ev.Seq
		}
	}
	return nil
}

// save applies fn to the record and writes it with CAS. A conflict (a
// user's Delete landed) reloads the record and applies fn again, so no
// step's result is lost; a changed goal is reported after the write.
func (r *run) save(ctx context.Context, fn func(d *Deployment)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for range 10 {
		fn(r.d)
		r.d.UpdatedAt = r.e.now()
		b, err := json.Marshal(r.d)
		if err != nil {
			return err
		}
		idx, err := r.e.Store.CAS(ctx, recordKey(r.id), b, r.index)
		if errors.Is(err, registry.ErrConflict) {
			d, index, err := r.e.load(ctx, r.id)
			if err != nil {
				return err
			}
			r.d, r.index = d, index
			continue
		}
		if err != nil {
			return err
		}
		r.e.Records.wrote(r.id, b, idx)
		r.index = idx
		if r.d.Goal != r.goal {
			return errGoalChanged
		}
		return nil
	}
	return fmt.Errorf("%w: the record of %s keeps changing", ErrBusy, r.id)
}

// view runs fn on the record under the lock (for reads).
func (r *run) view(fn func(d *Deployment)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.d)
}

// resource returns a copy of an instance (from Resources, or Retired for
// a "retired:" key), or nil.
func (r *run) resource(key string) *Resource {
	var out *Resource
	r.view(func(d *Deployment) {
		if res := lookup(d, key); res != nil {
			c := *res
			c.Attrs = maps.Clone(res.Attrs)
			out = &c
		}
	})
	return out
}

const retiredPrefix = "retired:"

func lookup(d *Deployment, key string) *Resource {
	if k, ok := cutPrefix(key, retiredPrefix); ok {
		return d.Retired[k]
	}
	return d.Resources[key]
}

func cutPrefix(s, p string) (string, bool) {
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):], true
	}
	return s, false
}

// event appends to the deployment's event log. Events are history, not
// state: a failed write is logged, not fatal.
func (r *run) event(ctx context.Context, ev Event) {
	r.mu.Lock()
	r.seq++
	ev.Seq, ev.Time = r.seq, r.e.now()
	if r.d != nil {
		ev.Attempt = r.d.Attempt
	}
	r.mu.Unlock()
	b, _ := json.Marshal(ev)
	if _, err := r.e.Store.Put(ctx, fmt.Sprintf("%s%s/%012d", eventPrefix, r.id, ev.Seq), b); err != nil && ctx.Err() == nil {
		r.e.log().WithError(err).WithField("deployment", r.id).Warn("writing an event failed")
	}
}

// settle saves the run's outcome, then writes its last event, marked
// Final: in that order, a follower that has read the final event and
// reads a settled status knows no event of this run is still to come,
// and one that reads a settled status before the final event waits for
// it rather than ending the stream without it.
func (r *run) settle(ctx context.Context, fn func(d *Deployment), ev Event) error {
	if err := r.save(ctx, fn); err != nil {
		return err
	}
	ev.Final = true
	r.event(ctx, ev)
	return nil
}

// Events returns the deployment's events after seq, and the index to
// watch for more.
func (e *Engine) Events(ctx context.Context, id string, after int64) ([]Event, uint64, error) {
	kvs, index, err := e.Store.List(ctx, eventPrefix+id+"/")
	if err != nil {
		return nil, 0, err
	}
	return decodeEvents(kvs, after), index, nil
}

// WatchEvents blocks until events after index exist (or ctx ends) and
// returns those after seq.
func (e *Engine) WatchEvents(ctx context.Context, id string, after int64, index uint64) ([]Event, uint64, error) {
	kvs, index, err := e.Store.Watch(ctx, eventPrefix+id+"/", index)
	if err != nil {
		return nil, 0, err
	}
	return decodeEvents(kvs, after), index, nil
}

func decodeEvents(kvs []registry.KV, after int64) []Event {
	var out []Event
	for _, kv := range kvs {
		var ev Event
		if json.Unmarshal(kv.Value, &ev) == nil && ev.Seq > after {
			out = append(out, ev)
		}
	}
	return out
}

// sem returns the per-peer call limiter.
func (e *Engine) sem(peerID string) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.sems == nil {
		e.sems = map[string]chan struct{}{}
	}
	s, ok := e.sems[peerID]
	if !ok {
		n := e.PerPeer
		if n <= 0 {
			n = 8
		}
		s = make(chan struct{}, n)
		e.sems[peerID] = s
	}
	return s
}

// call runs fn holding one of peerID's call slots.
func (e *Engine) call(ctx context.Context, peerID string, fn func() error) error {
	s := e.sem(peerID)
	select {
	case s <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-s }()
	return fn()
}

// poll calls check until it reports done, backing off from 5ms to
// PollInterval, for at most SettleTimeout.
func (e *Engine) poll(ctx context.Context, what string, check func() (bool, error)) error {
	limit := e.PollInterval
	if limit <= 0 {
		limit = 2 * time.Second
	}
	timeout := e.SettleTimeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not settled after %s", what, timeout)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
		wait = min(wait*2, limit)
	}
}

// dag runs fn for every key once all its deps (restricted to keys) are
// done, in parallel. With keepGoing a failure only skips what depends on
// the failed key; without, no new key starts after the first failure.
// It returns the failures joined.
func dag(ctx context.Context, keys []string, deps map[string][]string, fn func(ctx context.Context, key string) error, keepGoing bool) error {
	in := map[string]bool{}
	for _, k := range keys {
		in[k] = true
	}
	waiting := map[string]int{}
	dependents := map[string][]string{}
	for _, k := range keys {
		for _, d := range slices.Compact(slices.Sorted(slices.Values(deps[k]))) {
			if in[d] && d != k {
				waiting[k]++
				dependents[d] = append(dependents[d], k)
			}
		}
	}
	type result struct {
		key string
		err error
	}
	results := make(chan result)
	running := 0
	var errs []error
	stopped := false
	failed := map[string]bool{}
	launch := func(k string) {
		running++
		go func() { results <- result{k, fn(ctx, k)} }()
	}
	for _, k := range keys {
		if waiting[k] == 0 {
			launch(k)
		}
	}
	var skip func(k string)
	skip = func(k string) {
		for _, dep := range dependents[k] {
			if !failed[dep] {
				failed[dep] = true
				errs = append(errs, fmt.Errorf("%s: skipped: %s failed", dep, k))
				skip(dep)
			}
		}
	}
	for running > 0 {
		res := <-results
		running--
		if res.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", res.key, res.err))
			failed[res.key] = true
			if !keepGoing || ctx.Err() != nil || errors.Is(res.err, errGoalChanged) {
				stopped = true
			}
			skip(res.key)
			continue
		}
		if stopped {
			continue
		}
		for _, dep := range dependents[res.key] {
			waiting[dep]--
			if waiting[dep] == 0 && !failed[dep] {
				launch(dep)
			}
		}
	}
	return errors.Join(errs...)
}
