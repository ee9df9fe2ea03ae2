package registry_test

import (
	"context"
	"errors"
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
	ctx, cancel := context.WithCancel(context.Background())
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

// TestMemoryChangesBeyondLog: WatchChanges from an index its log of
// recent writes no longer reaches answers ErrChangesGone only when the
// prefix did change since; a quiet prefix in a busy store blocks as usual.
func TestMemoryChangesBeyondLog(t *testing.T) {
	tests := []struct {
		name string
		// before and after run before and after the writes that push the
		// index out of the log.
		before, after func(ctx context.Context, t *testing.T, m *registry.Memory)
		gone          bool
	}{
		{"a change the log forgot", func(ctx context.Context, t *testing.T, m *registry.Memory) {
			mustPut(ctx, t, m, "keep/b")
		}, nil, true},
		{"a change after the log's start", nil, func(ctx context.Context, t *testing.T, m *registry.Memory) {
			mustPut(ctx, t, m, "keep/b")
		}, true},
		{"a delete the log forgot", func(ctx context.Context, t *testing.T, m *registry.Memory) {
			if err := m.Delete(ctx, "keep/a"); err != nil {
				t.Fatal(err)
			}
		}, nil, true},
		{"no change", nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m, idx := keepOne(ctx, t)
			if tc.before != nil {
				tc.before(ctx, t, m)
			}
			for i := range 2 * registry.RecentWrites {
				mustPut(ctx, t, m, fmt.Sprintf("busy/%d", i))
			}
			if tc.after != nil {
				tc.after(ctx, t, m)
			}
			// A blocked call ends with its context: a short one shows it
			// blocked rather than answered, whatever the machine's speed.
			wctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			defer cancel()
			changes, _, err := m.WatchChanges(wctx, "keep/", idx)
			switch {
			case tc.gone && !errors.Is(err, registry.ErrChangesGone):
				t.Fatalf("WatchChanges = %d changes, %v; want ErrChangesGone", len(changes), err)
			case !tc.gone && !errors.Is(err, context.DeadlineExceeded):
				t.Fatalf("WatchChanges on a quiet prefix = %d changes, %v; want it to block", len(changes), err)
			}
		})
	}
}

func mustPut(ctx context.Context, t *testing.T, m *registry.Memory, key string) uint64 {
	t.Helper()
	idx, err := m.Put(ctx, key, []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	return idx
}
