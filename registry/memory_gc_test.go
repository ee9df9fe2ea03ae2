package registry_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// TestMemoryTombstonesReaped: the memory store forgets deletions beyond a
// bound, as Consul's tombstone GC does, without a prefix's index ever
// moving backwards.
func TestMemoryTombstonesReaped(t *testing.T) {
	ctx := context.Background()
	m, last := keepOne(ctx, t)
	for i := range 3 * registry.MaxTombstones {
		churn(ctx, t, m, i)
		kvs, idx, err := m.List(ctx, "keep/")
		if err != nil {
			t.Fatal(err)
		}
		if len(kvs) != 1 || idx < last {
			t.Fatalf("after %d deletes: keep/ lists %d keys at index %d (was %d)", i+1, len(kvs), idx, last)
		}
		last = idx
	}
	if n := registry.Tombstones(m); n > registry.MaxTombstones {
		t.Fatalf("%d tombstones remembered, want at most %d", n, registry.MaxTombstones)
	}
}

// TestMemoryReapWakesWatchers: a reap may raise an untouched prefix's
// index; a watcher blocked on that prefix answers with the new index, as
// a fresh Watch or List would, rather than sleeping through it.
func TestMemoryReapWakesWatchers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, idx := keepOne(ctx, t)
	type answer struct {
		idx uint64
		err error
	}
	got := make(chan answer, 1)
	go func() {
		_, next, err := m.Watch(ctx, "keep/", idx)
		got <- answer{next, err}
	}()
	for i := range registry.MaxTombstones + 1 {
		churn(ctx, t, m, i)
	}
	_, want, err := m.List(ctx, "keep/")
	if err != nil {
		t.Fatal(err)
	}
	if want == idx {
		t.Fatalf("the reap left keep/ at index %d; the test needs it to move", idx)
	}
	a := <-got
	if a.err != nil {
		t.Fatalf("Watch(keep/, %d) = %v, want woken by the reap", idx, a.err)
	}
	if a.idx != want {
		t.Fatalf("Watch(keep/, %d) answered index %d, List answers %d", idx, a.idx, want)
	}
}

// churn writes and deletes churn/i, leaving one tombstone.
func churn(ctx context.Context, t *testing.T, m *registry.Memory, i int) {
	t.Helper()
	key := fmt.Sprintf("churn/%d", i)
	if _, err := m.Put(ctx, key, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := m.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
}

// keepOne returns a memory store holding keep/a, and keep/'s index.
func keepOne(ctx context.Context, t *testing.T) (*registry.Memory, uint64) {
	t.Helper()
	m := registry.NewMemory()
	if _, err := m.Put(ctx, "keep/a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	_, idx, err := m.List(ctx, "keep/")
	if err != nil {
		t.Fatal(err)
	}
	return m, idx
}
