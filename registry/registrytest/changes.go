package registrytest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// ChangeStore is a Store that also answers watches with changes.
type ChangeStore interface {
	registry.Store
	registry.ChangeWatcher
}

// ExerciseChanges holds a ChangeWatcher to its contract, beyond Exercise:
// what a Mirror relies on when it follows a prefix by changes. How far
// back a store remembers is its own; that it says ErrChangesGone rather
// than answer wrong is the store's own tests' to show.
func ExerciseChanges(t *testing.T, store ChangeStore) {
	t.Helper()
	runSuite(t, store, "changes", []suiteCase[ChangeStore]{
		{"SinceIndex", testChangesSinceIndex},
		{"FromListIndex", testChangesFromListIndex},
		{"WakeOnWrite", testChangesWake},
		{"IgnoreOtherPrefix", testChangesIgnoreOtherPrefix},
		{"IndexAheadIsGone", testChangesAhead},
		{"ContextCanceled", testChangesCanceled},
	})
}

// changeResult is a WatchChanges outcome.
type changeResult struct {
	changes []registry.Change
	next    uint64
	err     error
}

func watchChangesAsync(ctx context.Context, s ChangeStore, prefix string, idx uint64) <-chan changeResult {
	ch := make(chan changeResult, 1)
	go func() {
		changes, next, err := s.WatchChanges(ctx, prefix, idx)
		ch <- changeResult{changes, next, err}
	}()
	return ch
}

// describe renders changes as "key=value@index" or "key deleted".
func describe(changes []registry.Change) []string {
	var out []string
	for _, c := range changes {
		if c.Deleted {
			out = append(out, c.Key+" deleted")
		} else {
			out = append(out, fmt.Sprintf("%s=%s@%d", c.Key, c.Value, c.ModifyIndex))
		}
	}
	return out
}

func mustDelete(t *testing.T, s registry.Store, key string) {
	t.Helper()
	if err := s.Delete(ctxT(t), key); err != nil {
		t.Fatalf("Delete(%q): %v", key, err)
	}
}

// testChangesSinceIndex: every key under the prefix changed after the
// index, once, as it now is, sorted; deletes carry their index; keys
// outside (one sharing the string prefix) and changes before the index
// are left out.
func testChangesSinceIndex(t *testing.T, s ChangeStore, p string) {
	ctx := ctxT(t)
	mustPut(t, s, p+"c/before", "0")
	since := mustPut(t, s, p+"c/gone", "0")
	mustPut(t, s, p+"c/b", "1")
	b := mustPut(t, s, p+"c/b", "2")
	outside := mustPut(t, s, p+"cc", "outside")
	mustDelete(t, s, p+"c/gone")
	a := mustPut(t, s, p+"c/a", "1")
	mustPut(t, s, p+"other/x", "outside")
	changes, next, err := s.WatchChanges(ctx, p+"c/", since)
	if err != nil {
		t.Fatalf("WatchChanges: %v", err)
	}
	want := []string{
		fmt.Sprintf("%sc/a=1@%d", p, a),
		fmt.Sprintf("%sc/b=2@%d", p, b),
		p + "c/gone deleted",
	}
	if got := describe(changes); !slices.Equal(got, want) {
		t.Fatalf("WatchChanges after %d = %v, want %v", since, got, want)
	}
	if d := changes[2].ModifyIndex; d <= outside || d >= a {
		t.Fatalf("the delete's index %d is not between the writes around it (%d, %d)", d, outside, a)
	}
	if latest := mustGet(t, s, p+"other/x").ModifyIndex; next < latest {
		t.Fatalf("next = %d, before the store's last write at %d", next, latest)
	}
}

// testChangesFromListIndex: a List's index is a valid starting point, and
// an answer's next the following one.
func testChangesFromListIndex(t *testing.T, s ChangeStore, p string) {
	mustPut(t, s, p+"l/a", "1")
	idx := prefixIndex(t, s, p+"l/")
	b := mustPut(t, s, p+"l/b", "1")
	next := mustChanges(t, s, p+"l/", idx, fmt.Sprintf("%sl/b=1@%d", p, b))
	c := mustPut(t, s, p+"l/c", "1")
	mustChanges(t, s, p+"l/", next, fmt.Sprintf("%sl/c=1@%d", p, c))
}

// prefixIndex is List's index of prefix.
func prefixIndex(t *testing.T, s registry.Store, prefix string) uint64 {
	t.Helper()
	_, idx, err := s.List(ctxT(t), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return idx
}

// mustChanges checks WatchChanges's answer after idx, described, and
// returns its next.
func mustChanges(t *testing.T, s ChangeStore, prefix string, idx uint64, want ...string) uint64 {
	t.Helper()
	changes, next, err := s.WatchChanges(ctxT(t), prefix, idx)
	if err != nil {
		t.Fatalf("WatchChanges(%q, %d): %v", prefix, idx, err)
	}
	if got := describe(changes); !slices.Equal(got, want) {
		t.Fatalf("WatchChanges(%q, %d) = %v, want %v", prefix, idx, got, want)
	}
	return next
}

// testChangesWake: a call with nothing new blocks until a write under the
// prefix, then answers it alone.
func testChangesWake(t *testing.T, s ChangeStore, p string) {
	ctx := ctxT(t)
	mustPut(t, s, p+"w/a", "1")
	ch := watchChangesAsync(ctx, s, p+"w/", prefixIndex(t, s, p+"w/"))
	settle()
	mustPut(t, s, p+"other", "1")
	mustDelete(t, s, p+"w/a")
	r := <-ch
	if r.err != nil {
		t.Fatalf("WatchChanges: %v", r.err)
	}
	if len(r.changes) != 1 || !r.changes[0].Deleted || r.changes[0].Key != p+"w/a" {
		t.Fatalf("woken by a delete: %v", describe(r.changes))
	}
	if r.next < r.changes[0].ModifyIndex {
		t.Fatalf("next %d is behind the change it answers (%d)", r.next, r.changes[0].ModifyIndex)
	}
}

func testChangesIgnoreOtherPrefix(t *testing.T, s ChangeStore, p string) {
	mustPut(t, s, p+"mine/a", "0")
	idx := prefixIndex(t, s, p+"mine/")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	ch := watchChangesAsync(ctx, s, p+"mine/", idx)
	settle()
	mustPut(t, s, p+"other/a", "1")
	mustPut(t, s, p+"minefield", "1")
	mustPut(t, s, p+"mine/a", "0") // unchanged: no change (Consul's rule)
	if r := <-ch; !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("WatchChanges woke for no change under its prefix: %v at %d, err %v", describe(r.changes), r.next, r.err)
	}
}

// testChangesAhead: an index the store has not reached is from another
// history of it (rebuilt): the answer is ErrChangesGone, at once.
func testChangesAhead(t *testing.T, s ChangeStore, p string) {
	idx := mustPut(t, s, p+"a/x", "1")
	if _, _, err := s.WatchChanges(ctxT(t), p+"a/", idx+1_000_000); !errors.Is(err, registry.ErrChangesGone) {
		t.Fatalf("WatchChanges ahead of the store = %v, want ErrChangesGone", err)
	}
}

func testChangesCanceled(t *testing.T, s ChangeStore, p string) {
	idx := mustPut(t, s, p+"x/a", "1")
	ctx, cancel := context.WithCancel(context.Background())
	ch := watchChangesAsync(ctx, s, p+"x/", idx)
	settle()
	cancel()
	if r := <-ch; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("WatchChanges after cancel = %v, want context.Canceled", r.err)
	}
}
