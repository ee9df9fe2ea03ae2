package registry

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"
)

// TestMirrorApply drives store writes, local writes and answers in every
// order that matters, over both ways a Mirror follows its prefix (whole
// answers as from Consul, changes from a ChangeWatcher): an answer older
// than a local write must not undo it, one newer must win, and after one
// more answer the Mirror holds exactly what the store does.
func TestMirrorApply(t *testing.T) {
	tests := []struct {
		name  string
		steps func(r *mirrorRig)
		want  map[string]string
	}{
		{"an answer loads and replaces", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.put("p/b", "1")
			r.sync()
			r.put("p/a", "2")
			r.del("p/b")
			r.sync()
		}, map[string]string{"p/a": "2"}},
		{"a delete elsewhere goes", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.put("p/b", "1")
			r.sync()
			r.del("p/b")
			r.sync()
		}, map[string]string{"p/a": "1"}},
		{"a key written and deleted between answers stays out", func(r *mirrorRig) {
			r.sync()
			r.put("p/a", "1")
			r.del("p/a")
			r.put("p/b", "1")
			r.sync()
		}, map[string]string{"p/b": "1"}},
		{"a local write outlives an older answer", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.sync()
			r.put("p/c", "1")
			r.fetch()
			r.wrote("p/b", "mine")
			r.apply()
		}, map[string]string{"p/a": "1", "p/b": "mine", "p/c": "1"}},
		{"a newer answer overrides a local write", func(r *mirrorRig) {
			r.sync()
			r.wrote("p/b", "mine")
			r.put("p/b", "theirs")
			r.sync()
		}, map[string]string{"p/b": "theirs"}},
		{"a local write deleted elsewhere goes", func(r *mirrorRig) {
			r.sync()
			r.wrote("p/b", "mine")
			r.del("p/b")
			r.sync()
		}, map[string]string{}},
		{"a local delete outlives an older answer", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.sync()
			r.put("p/c", "1")
			r.fetch()
			r.deleted("p/a")
			r.apply()
		}, map[string]string{"p/c": "1"}},
		{"a delete of a key never delivered hides it", func(r *mirrorRig) {
			r.sync()
			r.put("p/a", "1")
			r.fetch()
			r.deleted("p/a")
			r.apply()
		}, map[string]string{}},
		{"a local delete answered before it was reported", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.sync()
			kv := r.get("p/a")
			r.del("p/a")
			r.sync()
			r.m.Deleted("p/a", kv.ModifyIndex)
		}, map[string]string{}},
		{"a key recreated after a local delete shows", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.sync()
			r.deleted("p/a")
			r.put("p/a", "2")
			r.sync()
		}, map[string]string{"p/a": "2"}},
		{"a read from before a local delete does not resurrect", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.sync()
			kv := r.get("p/a")
			r.deleted("p/a")
			r.m.Wrote("p/a", "stale", kv.ModifyIndex)
		}, map[string]string{}},
		{"a write older than the last answer is not applied", func(r *mirrorRig) {
			idx := r.put("p/a", "gone since")
			r.del("p/a")
			r.sync()
			r.m.Wrote("p/a", "gone since", idx)
		}, map[string]string{}},
		{"a corrupt record is left out", func(r *mirrorRig) {
			r.put("p/a", "corrupt")
			r.put("p/b", "1")
			r.sync()
			r.put("p/c", "corrupt")
			r.put("p/d", "1")
			r.sync()
		}, map[string]string{"p/b": "1", "p/d": "1"}},
		{"an index reset overrides local writes", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.put("p/a", "2")
			r.put("p/a", "3")
			r.sync()
			r.wrote("p/b", "mine")
			r.store.rebuild(r.t, map[string]string{"p/c": "1"})
			r.sync()
		}, map[string]string{"p/c": "1"}},
		{"an index reset after changes", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.sync()
			r.put("p/a", "2")
			r.put("p/a", "3")
			r.put("p/a", "4")
			r.sync()
			r.wrote("p/b", "mine")
			r.store.rebuild(r.t, map[string]string{"p/c": "1", "p/d": "1", "p/e": "1"})
			r.sync()
		}, map[string]string{"p/c": "1", "p/d": "1", "p/e": "1"}},
		{"a periodic full list is no reset", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.sync()
			r.put("p/b", "1")
			r.put("q/x", "1") // a ChangeWatcher answers at the store's index, past the prefix's
			r.sync()
			r.f.measured = time.Time{} // due to list again
			r.fetch()
			r.wrote("p/c", "mine")
			r.apply()
		}, map[string]string{"p/a": "1", "p/b": "1", "p/c": "mine"}},
		{"writes beyond the store's change log", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.sync()
			r.put("p/b", "1")
			r.put("p/c", "1")
			r.sync()
			r.put("p/c", "2")
			for i := range 2 * recentWrites {
				r.put(fmt.Sprintf("q/%d", i), "x")
			}
			r.del("p/b")
			r.put("p/d", "1")
			r.sync()
		}, map[string]string{"p/a": "1", "p/c": "2", "p/d": "1"}},
		{"deletes beyond the store's tombstones", func(r *mirrorRig) {
			r.put("p/a", "1")
			r.sync()
			for i := range maxTombstones + 1 {
				key := fmt.Sprintf("p/churn/%d", i)
				r.put(key, "x")
				r.del(key)
			}
			r.sync()
		}, map[string]string{"p/a": "1"}},
	}
	for _, path := range mirrorPaths {
		for _, tc := range tests {
			t.Run(path.name+"/"+tc.name, func(t *testing.T) {
				r := newMirrorRig(t, path.changes, path.store)
				if r.m.Loaded() {
					t.Fatal("Loaded before any answer")
				}
				tc.steps(r)
				if got := r.sink.snapshot(); !maps.Equal(got, tc.want) {
					t.Fatalf("sink = %v, want %v", got, tc.want)
				}
				r.settle()
				if !r.m.Loaded() {
					t.Fatal("not Loaded after answers")
				}
			})
		}
	}
}

// TestMirrorReplicas: two mirrors of one store, as two brokers, over both
// ways of following. A write through one is read back at once there, and
// reaches the other through the watch; Fetch finds it before that.
func TestMirrorReplicas(t *testing.T) {
	for _, path := range mirrorPaths {
		t.Run(path.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store := NewMemory()
			if _, err := store.Put(ctx, "p/old", []byte("1")); err != nil {
				t.Fatal(err)
			}
			a, sinkA := newTestMirror(path.store(store))
			b, sinkB := newTestMirror(path.store(store))
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
		})
	}
}
