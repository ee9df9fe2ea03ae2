package registry

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"
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

func kv(key, value string, index uint64) KV {
	return KV{Key: key, Value: []byte(value), ModifyIndex: index}
}

// TestMirrorApply drives watch answers and local writes in every order
// that matters: an answer older than a local write must not undo it, and
// one newer must win.
func TestMirrorApply(t *testing.T) {
	tests := []struct {
		name  string
		steps func(m *Mirror[string], answer func(kvs []KV, idx uint64))
		want  map[string]string
	}{
		{"an answer loads and replaces", func(m *Mirror[string], answer func([]KV, uint64)) {
			answer([]KV{kv("p/a", "1", 1), kv("p/b", "1", 2)}, 2)
			answer([]KV{kv("p/a", "2", 3)}, 4)
		}, map[string]string{"p/a": "2"}},
		{"a local write outlives an older answer", func(m *Mirror[string], answer func([]KV, uint64)) {
			answer([]KV{kv("p/a", "1", 1)}, 1)
			m.Wrote("p/b", "mine", 5)
			answer([]KV{kv("p/a", "1", 1)}, 3)
		}, map[string]string{"p/a": "1", "p/b": "mine"}},
		{"a newer answer overrides a local write", func(m *Mirror[string], answer func([]KV, uint64)) {
			m.Wrote("p/b", "mine", 5)
			answer([]KV{kv("p/b", "theirs", 7)}, 7)
		}, map[string]string{"p/b": "theirs"}},
		{"a local write deleted elsewhere goes", func(m *Mirror[string], answer func([]KV, uint64)) {
			m.Wrote("p/b", "mine", 5)
			answer(nil, 6)
		}, map[string]string{}},
		{"a local delete outlives an older answer", func(m *Mirror[string], answer func([]KV, uint64)) {
			answer([]KV{kv("p/a", "1", 1)}, 1)
			m.Deleted("p/a", 0)
			answer([]KV{kv("p/a", "1", 1), kv("p/c", "1", 2)}, 2)
		}, map[string]string{"p/c": "1"}},
		{"a delete of a key never delivered hides it", func(m *Mirror[string], answer func([]KV, uint64)) {
			m.Deleted("p/a", 4)
			answer([]KV{kv("p/a", "1", 4)}, 4)
		}, map[string]string{}},
		{"a key recreated after a local delete shows", func(m *Mirror[string], answer func([]KV, uint64)) {
			answer([]KV{kv("p/a", "1", 1)}, 1)
			m.Deleted("p/a", 0)
			answer([]KV{kv("p/a", "2", 9)}, 9)
		}, map[string]string{"p/a": "2"}},
		{"a read from before a local delete does not resurrect", func(m *Mirror[string], answer func([]KV, uint64)) {
			m.Deleted("p/a", 4)
			m.Wrote("p/a", "stale", 4)
		}, map[string]string{}},
		{"a write older than the last answer is not applied", func(m *Mirror[string], answer func([]KV, uint64)) {
			answer(nil, 8)
			m.Wrote("p/a", "gone since", 5)
		}, map[string]string{}},
		{"a corrupt record is left out", func(m *Mirror[string], answer func([]KV, uint64)) {
			answer([]KV{kv("p/a", "corrupt", 1), kv("p/b", "1", 2)}, 2)
		}, map[string]string{"p/b": "1"}},
		{"an index reset overrides local writes", func(m *Mirror[string], answer func([]KV, uint64)) {
			answer([]KV{kv("p/a", "1", 10)}, 10)
			m.Wrote("p/b", "mine", 12)
			answer([]KV{kv("p/c", "1", 2)}, 2)
		}, map[string]string{"p/c": "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, sink := newTestMirror(NewMemory())
			seen := map[string]uint64{}
			var last uint64
			tc.steps(m, func(kvs []KV, idx uint64) {
				seen = m.apply(kvs, idx, idx < last, seen)
				last = idx
			})
			if got := sink.snapshot(); !maps.Equal(got, tc.want) {
				t.Fatalf("sink = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestMirrorReplicas: two mirrors of one store, as two brokers. A write
// through one is read back at once there, and reaches the other through
// the watch; Fetch finds it before that.
func TestMirrorReplicas(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	store := NewMemory()
	if _, err := store.Put(ctx, "p/old", []byte("1")); err != nil {
		t.Fatal(err)
	}
	a, sinkA := newTestMirror(store)
	b, sinkB := newTestMirror(store)
	for _, m := range []*Mirror[string]{a, b} {
		go func() { _ = m.Run(ctx) }()
		if err := m.WaitReady(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := sinkB.snapshot(); got["p/old"] != "1" {
		t.Fatalf("loaded %v", got)
	}
	idx, err := store.Put(ctx, "p/new", []byte("2"))
	if err != nil {
		t.Fatal(err)
	}
	a.Wrote("p/new", "2", idx)
	if got := sinkA.snapshot(); got["p/new"] != "2" {
		t.Fatalf("the writer does not read its write: %v", got)
	}
	if v, err := b.Fetch(ctx, "p/new"); err != nil || v != "2" {
		t.Fatalf("Fetch on the other = %q, %v", v, err)
	}
	if err := b.WaitIndex(ctx, idx); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, "p/old"); err != nil {
		t.Fatal(err)
	}
	b.Deleted("p/old", 0)
	if got := sinkB.snapshot(); got["p/old"] != "" || got["p/new"] != "2" {
		t.Fatalf("after the delete: %v", got)
	}
	idx, err = store.Put(ctx, "p/last", []byte("3"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.WaitIndex(ctx, idx); err != nil {
		t.Fatal(err)
	}
	if got := sinkA.snapshot(); !maps.Equal(got, map[string]string{"p/new": "2", "p/last": "3"}) {
		t.Fatalf("the other replica holds %v", got)
	}
	if _, err := a.Fetch(ctx, "p/none"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Fetch of a missing key = %v", err)
	}
}
