package registry

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
)

// mapSink is a Sink over a plain map.
type mapSink struct {
	mu sync.Mutex
	m  map[string]string
}

func (s *mapSink) Set(key, v string) { s.mu.Lock(); s.m[key] = v; s.mu.Unlock() }
func (s *mapSink) Unset(key string)  { s.mu.Lock(); delete(s.m, key); s.mu.Unlock() }
func (s *mapSink) snapshot() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

func decodeString(kv KV) (string, error) {
	if string(kv.Value) == "corrupt" {
		return "", errors.New("corrupt record")
	}
	return string(kv.Value), nil
}

func newTestMirror(store MirrorStore) (*Mirror[string], *mapSink) {
	sink := &mapSink{m: map[string]string{}}
	return NewMirror(store, "p/", decodeString, Sink[string](sink), nil), sink
}

// testStore is a memory Store a test may replace with a fresh one, as a
// store whose state was rebuilt (its index goes backwards).
type testStore struct {
	mu  sync.Mutex
	cur *Memory
}

func (s *testStore) mem() *Memory {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// rebuild replaces the store with a fresh one holding kvs.
func (s *testStore) rebuild(t *testing.T, kvs map[string]string) {
	t.Helper()
	m := NewMemory()
	for _, k := range slices.Sorted(maps.Keys(kvs)) {
		if _, err := m.Put(context.Background(), k, []byte(kvs[k])); err != nil {
			t.Fatal(err)
		}
	}
	s.mu.Lock()
	s.cur = m
	s.mu.Unlock()
}

func (s *testStore) Get(ctx context.Context, key string) (KV, error) { return s.mem().Get(ctx, key) }
func (s *testStore) List(ctx context.Context, prefix string) ([]KV, uint64, error) {
	return s.mem().List(ctx, prefix)
}
func (s *testStore) Watch(ctx context.Context, prefix string, index uint64) ([]KV, uint64, error) {
	return s.mem().Watch(ctx, prefix, index)
}
func (s *testStore) WatchChanges(ctx context.Context, prefix string, index uint64) ([]Change, uint64, error) {
	return s.mem().WatchChanges(ctx, prefix, index)
}

// wholeStore hides a store's WatchChanges: a Mirror over it reads whole
// prefixes, as over Consul.
type wholeStore struct{ MirrorStore }

// mirrorPaths are the two ways a Mirror follows its prefix; every Mirror
// guarantee is tested over both.
var mirrorPaths = []struct {
	name string
	// changes says whether the Mirror reads changes (ChangeWatcher).
	changes bool
	store   func(MirrorStore) MirrorStore
}{
	{"whole prefix", false, func(s MirrorStore) MirrorStore { return wholeStore{s} }},
	{"changes", true, func(s MirrorStore) MirrorStore { return s }},
}

// mirrorRig drives a Mirror by hand, as Run would but in the order a test
// picks: another replica's writes go to the store only; local writes go to
// the store and are reported to the Mirror; answers are fetched and
// applied separately, so an answer can land after writes newer than it.
type mirrorRig struct {
	t       *testing.T
	ctx     context.Context
	store   *testStore
	changes bool
	m       *Mirror[string]
	sink    *mapSink
	f       *follow
	queued  []answer
}

func newMirrorRig(t *testing.T, changes bool, wrap func(MirrorStore) MirrorStore) *mirrorRig {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	store := &testStore{cur: NewMemory()}
	m, sink := newTestMirror(wrap(store))
	return &mirrorRig{t: t, ctx: ctx, store: store, changes: changes, m: m, sink: sink, f: &follow{seen: map[string]uint64{}}}
}

// put is another replica's write.
func (r *mirrorRig) put(key, value string) uint64 {
	r.t.Helper()
	idx, err := r.store.mem().Put(r.ctx, key, []byte(value))
	if err != nil {
		r.t.Fatal(err)
	}
	return idx
}

// del is another replica's delete.
func (r *mirrorRig) del(key string) {
	r.t.Helper()
	if err := r.store.mem().Delete(r.ctx, key); err != nil {
		r.t.Fatal(err)
	}
}

func (r *mirrorRig) get(key string) KV {
	r.t.Helper()
	kv, err := r.store.mem().Get(r.ctx, key)
	if err != nil {
		r.t.Fatal(err)
	}
	return kv
}

// wrote is a write of this process.
func (r *mirrorRig) wrote(key, value string) {
	r.m.Wrote(key, value, r.put(key, value))
}

// deleted is a delete of this process of the version of key it holds.
func (r *mirrorRig) deleted(key string) {
	r.t.Helper()
	kv := r.get(key)
	if err := r.store.mem().DeleteCAS(r.ctx, key, kv.ModifyIndex); err != nil {
		r.t.Fatal(err)
	}
	r.m.Deleted(key, kv.ModifyIndex)
}

// fetch takes the Mirror's next answer from the store, to apply later.
func (r *mirrorRig) fetch() {
	r.t.Helper()
	a, err := r.m.fetch(r.ctx, r.f)
	if err != nil {
		r.t.Fatal(err)
	}
	r.queued = append(r.queued, a)
}

// apply applies the oldest answer fetched.
func (r *mirrorRig) apply() {
	a := r.queued[0]
	r.queued = r.queued[1:]
	r.m.applyAnswer(r.f, a)
}

// sync fetches an answer and applies it.
func (r *mirrorRig) sync() {
	r.t.Helper()
	r.fetch()
	r.apply()
}

// settle has another replica write, then takes one answer, and checks that
// the Mirror then holds exactly what the store does (corrupt records
// aside), at the store's versions, with no local write left pending, and
// that the answer came the path's way.
func (r *mirrorRig) settle() {
	r.t.Helper()
	idx := r.put("p/~settle", "settled")
	r.fetch()
	a := r.queued[len(r.queued)-1]
	r.apply()
	if a.whole == r.changes {
		r.t.Fatalf("the settling answer was whole=%v, want whole=%v", a.whole, !r.changes)
	}
	kvs, _, err := r.store.mem().List(r.ctx, "p/")
	if err != nil {
		r.t.Fatal(err)
	}
	want := map[string]string{}
	for _, kv := range kvs {
		if v, err := decodeString(kv); err == nil {
			want[kv.Key] = v
			if got, ok := r.m.Version(kv.Key); !ok || got != kv.ModifyIndex {
				r.t.Errorf("Version(%s) = %d, %v; the store holds %d", kv.Key, got, ok, kv.ModifyIndex)
			}
		}
	}
	if got := r.sink.snapshot(); !maps.Equal(got, want) {
		r.t.Fatalf("settled sink = %v, the store holds %v", got, want)
	}
	r.m.mu.Lock()
	defer r.m.mu.Unlock()
	if len(r.m.pending) != 0 {
		r.t.Errorf("settled with local writes pending: %v", r.m.pending)
	}
	if r.m.index < idx {
		r.t.Errorf("settled at index %d, before the write at %d", r.m.index, idx)
	}
}
