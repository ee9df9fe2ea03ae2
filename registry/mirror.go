package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
)

// Sink receives a Mirror's records as they change. The Mirror calls it
// with its own lock held, one call at a time, so a sink only guards its
// maps against its readers.
type Sink[T any] interface {
	Set(key string, v T)
	Unset(key string)
}

// MirrorStore is the part of Store a Mirror reads. One that is also a
// ChangeWatcher is followed by its changes.
type MirrorStore interface {
	Get(ctx context.Context, key string) (KV, error)
	List(ctx context.Context, prefix string) ([]KV, uint64, error)
	Watch(ctx context.Context, prefix string, index uint64) ([]KV, uint64, error)
}

// ChangeWatcher is what a Store may offer beyond Watch: a watch answered
// with the keys that changed instead of the whole prefix. The memory Store
// offers it, from a bounded log of its latest writes; Consul does not (a
// blocking query answers the whole prefix), and a Mirror over a Store
// without it reads whole prefixes.
type ChangeWatcher interface {
	// WatchChanges blocks until a key under prefix changes after index (a
	// List's index of prefix, or a previous answer's next), then returns
	// every key under prefix changed after index, sorted by key, as it now
	// is, and next: the store's index at the answer, which covers every
	// write up to it under any prefix (unlike a List's or Watch's index,
	// which is the prefix's). Pass next to the following call.
	//
	// When it cannot say what changed after index (its log no longer
	// reaches back that far, or index is ahead of the store, which was
	// rebuilt), it returns at once an error wrapping ErrChangesGone: the
	// caller lists the prefix and goes on from List's index. It returns
	// ctx.Err() when ctx ends first.
	WatchChanges(ctx context.Context, prefix string, index uint64) (changes []Change, next uint64, err error)
}

// Change is one key in a ChangeWatcher's answer: the key as it now is or,
// when Deleted, its Key and the index of its deletion (ModifyIndex).
type Change struct {
	KV
	Deleted bool
}

// Mirror keeps every record under a prefix in memory, fed by one Store
// watch, so requests read maps instead of the Store.
//
// A Store's watch answer is the whole prefix (Consul's blocking queries
// answer that way), so the Mirror decodes only the keys whose modify index
// moved, and waits between answers in proportion to what a full list costs
// (coalescing: writes landing meanwhile arrive together in the next
// answer), so a busy prefix is not fetched whole once per write. A Store
// that is a ChangeWatcher (the memory Store) is asked for the changed keys
// instead, and listed whole only when it no longer knows them; both kinds
// of answer are applied by the same rules.
//
// The broker that writes a record tells the Mirror (Wrote, Deleted), which
// applies it at once: a writer reads its own write. A watch answer older
// than such a write does not undo it (Store indexes order every write
// across keys). Another replica's write is seen when the watch delivers
// it; until then Fetch reads one key from the Store, for callers that must
// not mistake a fresh record for a missing one.
type Mirror[T any] struct {
	store  MirrorStore
	prefix string
	decode func(KV) (T, error)
	sink   Sink[T]
	log    logrus.FieldLogger

	mu      sync.Mutex
	applied map[string]uint64  // key -> modify index of the version the sink holds
	pending map[string]pending // local writes no answer has covered yet
	index   uint64             // the last answer's prefix index
	changed chan struct{}      // closed and replaced after each answer
	ready   chan struct{}
	once    sync.Once
}

// pending is a local write: a put at index, or the deletion of the version
// at index.
type pending struct {
	index   uint64
	deleted bool
}

// Coalescing: the wait between two watch answers is twice what a full
// list of the prefix cost when last measured (so the watch keeps the Store
// busy a third of the time at most, however often the prefix changes),
// within these bounds. Consul took ~3 s to list 10,000 index entries on a
// busy 2-core machine: remote replicas then see a busy prefix's changes
// within ~5 s, its writer at once.
const (
	mirrorMinWait = 20 * time.Millisecond
	mirrorMaxWait = 5 * time.Second
	// mirrorRemeasure is how often the cost is measured again.
	mirrorRemeasure = time.Minute
	// mirrorResync is how long after recovering from a Store error the
	// prefix is listed whole once more, whatever the watch says. The
	// first answers after a Consul leader dies may come from the new
	// leader before it applied every committed write (Consul serves
	// default-consistency reads before its leadership barrier), and a
	// watch based on such an answer was seen to miss writes for minutes.
	mirrorResync = 3 * time.Second
)

// NewMirror returns a mirror of prefix feeding sink with decoded records;
// call Run to fill it. A record decode refuses is logged and left out. A
// nil log discards.
func NewMirror[T any](store MirrorStore, prefix string, decode func(KV) (T, error), sink Sink[T], log logrus.FieldLogger) *Mirror[T] {
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	return &Mirror[T]{store: store, prefix: prefix, decode: decode, sink: sink, log: log,
		applied: map[string]uint64{}, pending: map[string]pending{}, changed: make(chan struct{}), ready: make(chan struct{})}
}

// Loaded reports whether the first full load has landed: until then the
// sink holds only local writes, and readers must ask the Store.
func (m *Mirror[T]) Loaded() bool {
	select {
	case <-m.ready:
		return true
	default:
		return false
	}
}

// WaitReady blocks until the first load or ctx's end.
func (m *Mirror[T]) WaitReady(ctx context.Context) error {
	select {
	case <-m.ready:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("mirror of %s not loaded yet: %w", m.prefix, ctx.Err())
	}
}

// WaitIndex blocks until a watch answer at store index idx or later has
// been applied: every write up to idx, by any replica, is then in the sink.
func (m *Mirror[T]) WaitIndex(ctx context.Context, idx uint64) error {
	for {
		m.mu.Lock()
		at, ch := m.index, m.changed
		m.mu.Unlock()
		if at >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Version returns the modify index of the version of key the sink holds.
func (m *Mirror[T]) Version(key string) (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.applied[key]
	return v, ok
}

// Wrote applies a write this process made: v stored at key, at modify
// index idx (what Put or CAS returned, or a Get's ModifyIndex).
func (m *Mirror[T]) Wrote(key string, v T, idx uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cur, ok := m.applied[key]; ok && cur >= idx {
		return // the watch already delivered this version or a later one
	}
	if p, ok := m.pending[key]; ok && p.deleted && p.index >= idx {
		return // a read from before our own delete
	}
	if idx <= m.index {
		return // an answer at or after idx lacked the key: deleted since
	}
	m.sink.Set(key, v)
	m.applied[key] = idx
	m.pending[key] = pending{index: idx}
}

// Deleted applies a delete this process made of the version of key at
// modify index idx (0: the version the sink holds, if any).
func (m *Mirror[T]) Deleted(key string, idx uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if idx == 0 {
		idx = m.applied[key]
	}
	if _, ok := m.applied[key]; ok {
		m.sink.Unset(key)
		delete(m.applied, key)
	}
	m.pending[key] = pending{index: idx, deleted: true}
}

// Fetch reads one key from the Store, for a reader that found nothing in
// the sink and must not take a write the watch has not delivered yet for
// a missing record. What it finds is applied as if written here. A missing
// key is ErrNotFound.
func (m *Mirror[T]) Fetch(ctx context.Context, key string) (T, error) {
	var zero T
	kv, err := m.store.Get(ctx, key)
	if err != nil {
		return zero, err
	}
	v, err := m.decode(kv)
	if err != nil {
		return zero, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	m.Wrote(key, v, kv.ModifyIndex)
	return v, nil
}

// follow is Run's place in the Store: what the next watch passes and
// what the last answer left.
type follow struct {
	// index is passed to the next watch: the last answer's index.
	index uint64
	// floor is the highest prefix index or version answered so far: a
	// whole answer below it means the Store's index went backwards (its
	// state was rebuilt). A ChangeWatcher's index is the store's, which a
	// later List's prefix index may be below without any reset.
	floor uint64
	// seen are the prefix's keys and versions as of the last answer.
	seen map[string]uint64
	// perRecord is a full list's cost per record, measured again every
	// mirrorRemeasure (a watch answer's time includes its blocking).
	perRecord time.Duration
	measured  time.Time
	// resyncAt, when set, is when to list the prefix whole once more
	// after recovering from a Store error (see mirrorResync).
	resyncAt time.Time
}

// answer is one reply of the Store: the whole prefix (List, Watch) or the
// keys changed since the previous answer (WatchChanges).
type answer struct {
	whole   bool
	kvs     []KV
	changes []Change
	index   uint64
}

// size is how many records the answer carries.
func (a answer) size() int { return len(a.kvs) + len(a.changes) }

// Run loads the prefix and follows the watch until ctx ends. Store errors
// are logged and retried with capped backoff, keeping what the sink holds.
func (m *Mirror[T]) Run(ctx context.Context) error {
	f := &follow{seen: map[string]uint64{}}
	backoff := 100 * time.Millisecond
	recovering := false
	for {
		a, err := m.fetch(ctx, f)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			m.log.WithError(err).WithFields(logrus.Fields{"prefix": m.prefix, "retry_in": backoff}).Warn("mirror: store watch failed")
			if !sleep(ctx, backoff) {
				return ctx.Err()
			}
			backoff = min(backoff*2, 10*time.Second)
			f.index = 0 // start over with a full list
			f.resyncAt = time.Time{}
			recovering = true
			continue
		}
		if recovering {
			recovering = false
			f.resyncAt = time.Now().Add(mirrorResync)
		}
		backoff = 100 * time.Millisecond
		if !m.applyAnswer(f, a) {
			continue
		}
		if !sleep(ctx, min(max(mirrorMinWait, 2*f.perRecord*time.Duration(a.size())), mirrorMaxWait)) {
			return ctx.Err()
		}
	}
}

// fetch asks the Store for the next answer: a full list to start, after
// an error or every mirrorRemeasure, else the changes from a
// ChangeWatcher (a full list when it no longer knows them) or the whole
// prefix from Watch.
func (m *Mirror[T]) fetch(ctx context.Context, f *follow) (answer, error) {
	if f.index != 0 && time.Since(f.measured) <= mirrorRemeasure {
		wctx := ctx
		if !f.resyncAt.IsZero() {
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, f.resyncAt)
			defer cancel()
		}
		a, err := m.watch(wctx, f)
		if ctx.Err() == nil && wctx.Err() != nil {
			err = nil // the resync is due: list the prefix below
		} else if !errors.Is(err, ErrChangesGone) {
			return a, err
		}
	}
	f.resyncAt = time.Time{}
	start := time.Now()
	kvs, next, err := m.store.List(ctx, m.prefix)
	f.perRecord, f.measured = time.Since(start)/time.Duration(max(len(kvs), 1)), time.Now()
	return answer{whole: true, kvs: kvs, index: next}, err
}

// watch waits for the next answer after f.index: the changes from a
// ChangeWatcher, else the whole prefix from Watch.
func (m *Mirror[T]) watch(ctx context.Context, f *follow) (answer, error) {
	cw, ok := m.store.(ChangeWatcher)
	if !ok {
		kvs, next, err := m.store.Watch(ctx, m.prefix, f.index)
		return answer{whole: true, kvs: kvs, index: next}, err
	}
	changes, next, err := cw.WatchChanges(ctx, m.prefix, f.index)
	return answer{changes: changes, index: next}, err
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// change is one key an answer changed.
type change[T any] struct {
	key     string
	version uint64
	value   T
}

// update is an answer made ready to apply: the records it sets (decoded),
// the keys it deletes, and the prefix's versions as of the answer.
type update[T any] struct {
	set   []change[T]
	gone  []string
	now   map[string]uint64
	reset bool
}

// applyAnswer brings the sink to answer a and moves f past it, and
// reports whether a was news: an answer at the index f holds changes
// nothing. Only keys whose version moved since the previous answer are
// decoded.
func (m *Mirror[T]) applyAnswer(f *follow, a answer) bool {
	if a.index == f.index {
		return false
	}
	var u update[T]
	var bad []error
	if a.whole {
		u, bad = m.wholeUpdate(a.kvs, f.seen, a.index < f.floor)
		f.floor = a.index
	} else {
		u, bad = m.changesUpdate(a.changes, f.seen)
		for _, c := range a.changes {
			f.floor = max(f.floor, c.ModifyIndex)
		}
	}
	if len(bad) > 0 {
		// A corrupt record is left out, not fatal: the rest keeps working.
		m.log.WithError(errors.Join(bad...)).WithField("prefix", m.prefix).Error("mirror: skipping undecodable records")
	}
	m.apply(u, a.index)
	f.seen, f.index = u.now, a.index
	return true
}

// wholeUpdate reads a whole-prefix answer against seen, the previous
// answer's versions. reset says the Store's index went backwards: seen is
// of another history, so everything is decoded.
func (m *Mirror[T]) wholeUpdate(kvs []KV, seen map[string]uint64, reset bool) (update[T], []error) {
	if reset {
		seen = nil
	}
	u := update[T]{now: make(map[string]uint64, len(kvs)), reset: reset}
	var bad []error
	for _, kv := range kvs {
		u.now[kv.Key] = kv.ModifyIndex
		if seen[kv.Key] == kv.ModifyIndex {
			continue
		}
		if c, err := m.decodeChange(kv); err != nil {
			bad = append(bad, err)
		} else {
			u.set = append(u.set, c)
		}
	}
	for key := range seen {
		if _, ok := u.now[key]; !ok {
			u.gone = append(u.gone, key)
		}
	}
	return u, bad
}

// changesUpdate reads a ChangeWatcher's answer, bringing seen (which it
// updates in place) to the answer's versions.
func (m *Mirror[T]) changesUpdate(changes []Change, seen map[string]uint64) (update[T], []error) {
	u := update[T]{now: seen}
	var bad []error
	for _, c := range changes {
		if c.Deleted {
			delete(seen, c.Key)
			u.gone = append(u.gone, c.Key)
			continue
		}
		if seen[c.Key] == c.ModifyIndex {
			continue
		}
		seen[c.Key] = c.ModifyIndex
		if ch, err := m.decodeChange(c.KV); err != nil {
			bad = append(bad, err)
		} else {
			u.set = append(u.set, ch)
		}
	}
	return u, bad
}

func (m *Mirror[T]) decodeChange(kv KV) (change[T], error) {
	v, err := m.decode(kv)
	if err != nil {
		return change[T]{}, fmt.Errorf("%s: %w", kv.Key, err)
	}
	return change[T]{key: kv.Key, version: kv.ModifyIndex, value: v}, nil
}

// apply brings the sink to an answer at idx. A reset answer (the store's
// index went backwards: its state was rebuilt) overrides every local
// write.
func (m *Mirror[T]) apply(u update[T], idx uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if u.reset {
		clear(m.pending)
		for key := range m.applied {
			if _, ok := u.now[key]; !ok {
				m.sink.Unset(key)
				delete(m.applied, key)
			}
		}
	}
	for _, c := range u.set {
		if p, ok := m.pending[c.key]; ok {
			if !p.deleted && p.index > idx || p.deleted && c.version <= p.index {
				continue // our own later write, or the version we deleted
			}
			delete(m.pending, c.key)
		}
		m.sink.Set(c.key, c.value)
		m.applied[c.key] = c.version
	}
	for _, key := range u.gone {
		m.unsetAnswered(key, idx)
	}
	for key, p := range m.pending {
		if _, ok := u.now[key]; !ok && (p.deleted || p.index <= idx) {
			m.unsetAnswered(key, idx) // written here, deleted elsewhere before idx
		} else if !p.deleted && p.index <= idx {
			delete(m.pending, key)
		}
	}
	m.index = idx
	close(m.changed)
	m.changed = make(chan struct{})
	m.once.Do(func() { close(m.ready) })
}

// unsetAnswered removes a key an answer at idx lacks, unless this process
// wrote it after idx.
func (m *Mirror[T]) unsetAnswered(key string, idx uint64) {
	if p, ok := m.pending[key]; ok && !p.deleted && p.index > idx {
		return
	}
	delete(m.pending, key)
	if _, ok := m.applied[key]; ok {
		m.sink.Unset(key)
		delete(m.applied, key)
	}
}
