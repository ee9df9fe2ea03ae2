package quota

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// Writes to one usage record are combined. Every create of a project
// reserves and commits on the project's one record, by compare-and-swap:
// with N requests of one broker racing on it, each write lost to another
// is read and tried again, and under load (or through a Consul election)
// some requests lost race after race for many seconds. So the changes
// waiting for a record's write are applied together, in arrival order,
// and written at once: one compare-and-swap per batch, one writer per
// record per broker, and races only between brokers.

// maxBatch bounds the changes written at once (each reservation adds to
// the record; registry.MaxValueSize caps it).
const maxBatch = 64

// batchTimeout bounds one batch's reads and writes, whatever its callers'
// contexts: a change taken into a batch is settled (written, refused or
// failed), never abandoned half-way because the caller that happened to
// come first gave up.
const batchTimeout = 2 * time.Minute

// pendingChange is one caller's change waiting in its record's queue.
type pendingChange struct {
	ctx    context.Context
	change func(rec *record, now time.Time) error
	done   chan error // buffered: the batch never waits for its caller
}

// keyQueue is one record's waiting changes; running says a goroutine is
// writing them (at most one per record).
type keyQueue struct {
	waiting []*pendingChange
	running bool
}

// update applies change to the scope's record atomically, with whatever
// other changes to the record are waiting: read, apply each, one
// compare-and-swap, again on a lost race. Expired reservations are dropped
// on the way. change must either refuse (return an error) before
// touching rec, or change it and return nil; errSkip is a refusal that is
// no failure (nothing to change).
func (l *Ledger) update(ctx context.Context, s Scope, change func(rec *record, now time.Time) error) error {
	key, err := s.key()
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	c := &pendingChange{ctx: ctx, change: change, done: make(chan error, 1)}
	l.qmu.Lock()
	if l.queues == nil {
		l.queues = map[string]*keyQueue{}
	}
	q := l.queues[key]
	if q == nil {
		q = &keyQueue{}
		l.queues[key] = q
	}
	q.waiting = append(q.waiting, c)
	start := !q.running
	q.running = true
	l.qmu.Unlock()
	if start {
		l.drain(key, q)
	}
	return <-c.done
}

// drain writes one batch of q's changes, then hands the rest (those that
// arrived meanwhile) to another goroutine, so the caller that started it
// returns with its own answer.
func (l *Ledger) drain(key string, q *keyQueue) {
	l.qmu.Lock()
	n := min(len(q.waiting), maxBatch)
	batch := slices.Clone(q.waiting[:n])
	q.waiting = q.waiting[n:]
	l.qmu.Unlock()

	l.writeBatchSafely(key, batch)

	l.qmu.Lock()
	if len(q.waiting) == 0 {
		q.running = false
		delete(l.queues, key)
		l.qmu.Unlock()
		return
	}
	l.qmu.Unlock()
	go l.drain(key, q)
}

// writeBatchSafely is writeBatch, with a panic (a record that decodes to
// something a change cannot handle) answered to every caller not yet
// answered as an error, so the record's queue goes on and no caller waits
// for good; it is logged with the key.
func (l *Ledger) writeBatchSafely(key string, batch []*pendingChange) {
	defer func() {
		if p := recover(); p != nil {
			l.log().WithField("key", key).Errorf("quota: a change of the record panicked: %v", p)
			for _, c := range batch {
				select {
				case c.done <- fmt.Errorf("quota: updating %s failed: %w", key, ErrInvalid):
				default: // answered already
				}
			}
		}
	}()
	l.writeBatch(key, batch)
}

// attempt is one write of a batch: its op name and what each change said.
type attempt struct {
	op      string
	results []error
}

// writeBatch applies batch to the record at key and writes it, telling
// each change's caller its outcome. Once an attempt's answer was lost, it
// may land at any later moment (still queued in Consul) until a later
// attempt lands instead: every attempt is a CAS on the index it read, so
// at most one of them ever does. Each attempt names itself in the
// record's mark of this writer, and this writer writes the record only
// here, one batch at a time: so every read from then on tells exactly
// whether one landed (the mark names it) and which, and the batch answers
// with what that attempt's changes said.
func (l *Ledger) writeBatch(key string, batch []*pendingChange) {
	live := batch[:0:0]
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.done <- err // never applied
			continue
		}
		live = append(live, c)
	}
	if len(live) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(live[0].ctx), batchTimeout)
	defer cancel()
	answer := func(results []error, failed error) {
		for i, c := range live {
			switch {
			case results != nil && results[i] != nil:
				c.done <- results[i]
			default:
				c.done <- failed
			}
		}
	}

	writer := l.writerID()
	var base string // this writer's mark when the first uncertain attempt was made
	var lost error
	var lostAttempts []attempt
	var settleBy time.Time // a lost write is settled within lostSettle
	pause := 50 * time.Millisecond
	for {
		rec, index, err := l.read(ctx, key)
		if err != nil {
			if lost == nil {
				answer(nil, err)
				return
			}
			if ctx.Err() != nil || !time.Now().Before(settleBy) {
				answer(nil, lost)
				return
			}
			pause = settlePause(ctx, pause) // the Store is still away: read again
			continue
		}
		last := rec.Marks[writer].Op
		if lost != nil {
			if i := slices.IndexFunc(lostAttempts, func(a attempt) bool { return a.op == last }); i >= 0 {
				answer(lostAttempts[i].results, nil)
				return
			}
			if last != base || (index != 0 && len(rec.Marks) == 0) {
				// Only this writer moves its mark, and every write leaves
				// its writer's: a writer that does not keep marks (an older
				// broker) rewrote the record, so whether ours landed is
				// unknown.
				answer(nil, lost)
				return
			}
			// Not landed, or not yet (a read from before the election:
			// Consul's default reads are stale across a leader change);
			// a new attempt's CAS settles which, as it can land only on
			// the record as read.
		}
		now := l.now()
		changed := rec.dropExpired(now)
		results := make([]error, len(live))
		for i, c := range live {
			err := c.change(rec, now)
			switch {
			case err == nil:
				changed = true
			case errors.Is(err, errSkip):
			default:
				results[i] = err
			}
		}
		if !changed {
			answer(results, nil)
			return
		}
		op := rand.Text()[:12]
		rec.mark(writer, op, now)
		b, err := json.Marshal(rec)
		if err != nil {
			answer(results, err)
			return
		}
		_, werr := l.Store.CAS(ctx, key, b, index)
		switch {
		case errors.Is(werr, registry.ErrConflict):
			if ctx.Err() != nil {
				answer(results, ctx.Err())
				return
			}
			continue
		case errors.Is(werr, registry.ErrUnavailable) && ctx.Err() == nil && (settleBy.IsZero() || time.Now().Before(settleBy)):
			if settleBy.IsZero() {
				settleBy = time.Now().Add(lostSettle)
			}
			// The answer may have been lost with the write applied: the
			// records read from now on say whether it landed.
			if lost == nil {
				base = last
			}
			lost = fmt.Errorf("writing %s: %w", key, werr)
			lostAttempts = append(lostAttempts, attempt{op: op, results: results})
			// A Consul election can fail several attempts in a row.
			pause = settlePause(ctx, pause)
			continue
		case werr != nil:
			answer(results, fmt.Errorf("writing %s: %w", key, werr))
			return
		}
		answer(results, nil)
		return
	}
}

// writerID names this Ledger in the records it writes.
func (l *Ledger) writerID() string {
	l.writerOnce.Do(func() { l.writer = rand.Text()[:16] })
	return l.writer
}

// mark records op as writer's last write, dropping the marks of writers
// silent for markTTL.
func (r *record) mark(writer, op string, now time.Time) {
	if r.Marks == nil {
		r.Marks = map[string]mark{}
	}
	maps.DeleteFunc(r.Marks, func(_ string, m mark) bool { return now.Sub(m.At) > markTTL })
	r.Marks[writer] = mark{Op: op, At: now}
}
