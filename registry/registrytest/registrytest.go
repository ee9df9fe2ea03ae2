// Package registrytest is the conformance suite every registry.Store backend
// passes, like Vault's physical.ExerciseBackend: the memory backend in unit
// tests, the Consul backend against a real Consul agent.
package registrytest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// Exercise runs the whole suite against store. Keys are written under a
// fresh prefix so a shared backend (one Consul agent) can host several runs.
func Exercise(t *testing.T, store registry.Store) {
	t.Helper()
	runSuite(t, store, "exercise", []suiteCase[registry.Store]{
		{"GetMissing", testGetMissing},
		{"PutGet", testPutGet},
		{"PutKeepsCreateIndex", testPutKeepsCreateIndex},
		{"CASCreateOnly", testCASCreateOnly},
		{"CASIndex", testCASIndex},
		{"Delete", testDelete},
		{"DeleteCAS", testDeleteCAS},
		{"ListPrefix", testListPrefix},
		{"InvalidKeys", testInvalidKeys},
		{"ContextCanceled", testContextCanceled},
		{"WatchFiresOnPut", testWatchFiresOnPut},
		{"WatchFiresOnDelete", testWatchFiresOnDelete},
		{"WatchIgnoresOtherPrefix", testWatchIgnoresOtherPrefix},
		{"WatchBehindReturnsAtOnce", testWatchBehind},
		{"ConcurrentCASLosesNoUpdate", testConcurrentCAS},
		{"Lock", testLock},
		{"DeletingLockedKeyEndsLease", testDeleteLockedKey},
		{"BinaryValues", testBinaryValues},
		{"UnchangedWriteKeepsIndex", testUnchangedWrite},
		{"ValueSizeLimit", testValueSizeLimit},
	})
}

// suiteCase is one test of a suite over stores of type S, run under its
// own prefix p.
type suiteCase[S any] struct {
	name string
	run  func(t *testing.T, s S, p string)
}

// runSuite runs each case under its own prefix below a fresh one named
// for the suite.
func runSuite[S any](t *testing.T, store S, suite string, tests []suiteCase[S]) {
	t.Helper()
	base := fmt.Sprintf("%s/%d/", suite, time.Now().UnixNano())
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.run(t, store, base+strconv.Itoa(i)+"/")
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustPut(t *testing.T, s registry.Store, key, val string) uint64 {
	t.Helper()
	idx, err := s.Put(ctxT(t), key, []byte(val))
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if idx == 0 {
		t.Fatalf("Put(%q) returned index 0", key)
	}
	return idx
}

func mustGet(t *testing.T, s registry.Store, key string) registry.KV {
	t.Helper()
	kv, err := s.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return kv
}

func testGetMissing(t *testing.T, s registry.Store, p string) {
	_, err := s.Get(ctxT(t), p+"missing")
	if !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Get(missing) = %v, want ErrNotFound", err)
	}
}

func testPutGet(t *testing.T, s registry.Store, p string) {
	idx := mustPut(t, s, p+"a", "one")
	kv := mustGet(t, s, p+"a")
	if string(kv.Value) != "one" || kv.Key != p+"a" {
		t.Fatalf("Get = %q %q, want %q %q", kv.Key, kv.Value, p+"a", "one")
	}
	if kv.ModifyIndex != idx || kv.CreateIndex != idx {
		t.Fatalf("indexes = create %d modify %d, want both %d", kv.CreateIndex, kv.ModifyIndex, idx)
	}
}

func testPutKeepsCreateIndex(t *testing.T, s registry.Store, p string) {
	first := mustPut(t, s, p+"k", "1")
	second := mustPut(t, s, p+"k", "2")
	if second <= first {
		t.Fatalf("second Put index %d not after first %d", second, first)
	}
	kv := mustGet(t, s, p+"k")
	if kv.CreateIndex != first || kv.ModifyIndex != second || string(kv.Value) != "2" {
		t.Fatalf("got create=%d modify=%d value=%q, want %d %d %q", kv.CreateIndex, kv.ModifyIndex, kv.Value, first, second, "2")
	}
}

func testCASCreateOnly(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	idx, err := s.CAS(ctx, p+"c", []byte("first"), 0)
	if err != nil || idx == 0 {
		t.Fatalf("create-only CAS on a new key = %d, %v", idx, err)
	}
	if _, err := s.CAS(ctx, p+"c", []byte("second"), 0); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("create-only CAS on an existing key = %v, want ErrConflict", err)
	}
	if kv := mustGet(t, s, p+"c"); string(kv.Value) != "first" {
		t.Fatalf("losing CAS changed the value to %q", kv.Value)
	}
}

func testCASIndex(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	idx := mustPut(t, s, p+"c", "v1")
	next, err := s.CAS(ctx, p+"c", []byte("v2"), idx)
	if err != nil {
		t.Fatalf("CAS at current index: %v", err)
	}
	if _, err := s.CAS(ctx, p+"c", []byte("stale"), idx); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("CAS at stale index = %v, want ErrConflict", err)
	}
	if kv := mustGet(t, s, p+"c"); string(kv.Value) != "v2" || kv.ModifyIndex != next {
		t.Fatalf("after stale CAS: %q@%d, want v2@%d", kv.Value, kv.ModifyIndex, next)
	}
	if _, err := s.CAS(ctx, p+"gone", []byte("x"), idx); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("CAS with an index on a missing key = %v, want ErrConflict", err)
	}
}

func testDelete(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	mustPut(t, s, p+"d", "x")
	if err := s.Delete(ctx, p+"d"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, p+"d"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, p+"d"); err != nil {
		t.Fatalf("Delete of a missing key = %v, want nil", err)
	}
}

func testDeleteCAS(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	first := mustPut(t, s, p+"d", "1")
	second := mustPut(t, s, p+"d", "2")
	if err := s.DeleteCAS(ctx, p+"d", first); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("DeleteCAS at stale index = %v, want ErrConflict", err)
	}
	mustGet(t, s, p+"d")
	if err := s.DeleteCAS(ctx, p+"d", second); err != nil {
		t.Fatalf("DeleteCAS at current index: %v", err)
	}
	if _, err := s.Get(ctx, p+"d"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("Get after DeleteCAS = %v, want ErrNotFound", err)
	}
}

func testListPrefix(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	mustPut(t, s, p+"list/b", "2")
	mustPut(t, s, p+"list/a", "1")
	last := mustPut(t, s, p+"list/c/deep", "3")
	mustPut(t, s, p+"listx", "outside")
	kvs, idx, err := s.List(ctx, p+"list/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	var keys []string
	for _, kv := range kvs {
		keys = append(keys, kv.Key)
	}
	want := []string{p + "list/a", p + "list/b", p + "list/c/deep"}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("List keys = %v, want %v (sorted, prefix only)", keys, want)
	}
	if idx < last {
		t.Fatalf("List index %d is behind the last write under the prefix (%d)", idx, last)
	}
	empty, _, err := s.List(ctx, p+"nothing-here/")
	if err != nil || len(empty) != 0 {
		t.Fatalf("List of an empty prefix = %v, %v; want none, nil", empty, err)
	}
}

func testInvalidKeys(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	for _, tc := range []struct{ name, key string }{
		{"empty", ""},
		{"leading slash", "/" + p + "x"},
		{"empty segment", p + "a//b"},
		{"control character", p + "a\nb"},
		{"dot segment", p + "a/./b"},
		{"dot-dot segment", p + "a/../b"},
		{"invalid utf-8", p + "a\xffb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s.Put(ctx, tc.key, []byte("x")); !errors.Is(err, registry.ErrInvalidKey) {
				t.Fatalf("Put(%q) = %v, want ErrInvalidKey", tc.key, err)
			}
			if _, err := s.Get(ctx, tc.key); !errors.Is(err, registry.ErrInvalidKey) {
				t.Fatalf("Get(%q) = %v, want ErrInvalidKey", tc.key, err)
			}
		})
	}
}

func testContextCanceled(t *testing.T, s registry.Store, p string) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, p+"x", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a canceled context = %v, want context.Canceled", err)
	}
	if _, err := s.Get(context.Background(), p+"x"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("a canceled Put wrote anyway: Get = %v", err)
	}
}

// watchAsync starts a Watch and returns a channel with its outcome.
type watchResult struct {
	kvs []registry.KV
	idx uint64
	err error
}

func watchAsync(ctx context.Context, s registry.Store, prefix string, idx uint64) <-chan watchResult {
	ch := make(chan watchResult, 1)
	go func() {
		kvs, i, err := s.Watch(ctx, prefix, idx)
		ch <- watchResult{kvs, i, err}
	}()
	return ch
}

// settle gives a just-started watch time to block on the backend before the
// test writes, so the test checks the wake-up path and not the
// "already behind" path. It is not a correctness timer: the assertions hold
// either way.
func settle() { time.Sleep(50 * time.Millisecond) }

func testWatchFiresOnPut(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	mustPut(t, s, p+"w/seed", "0")
	_, idx, err := s.List(ctx, p+"w/")
	if err != nil {
		t.Fatal(err)
	}
	ch := watchAsync(ctx, s, p+"w/", idx)
	settle()
	wrote := mustPut(t, s, p+"w/new", "1")
	r := <-ch
	if r.err != nil {
		t.Fatalf("Watch: %v", r.err)
	}
	if r.idx < wrote {
		t.Fatalf("Watch index %d is behind the write that woke it (%d)", r.idx, wrote)
	}
	if len(r.kvs) != 2 {
		t.Fatalf("Watch returned %d keys, want 2", len(r.kvs))
	}
}

func testWatchFiresOnDelete(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	mustPut(t, s, p+"w/a", "0")
	mustPut(t, s, p+"w/b", "0")
	_, idx, err := s.List(ctx, p+"w/")
	if err != nil {
		t.Fatal(err)
	}
	ch := watchAsync(ctx, s, p+"w/", idx)
	settle()
	if err := s.Delete(ctx, p+"w/b"); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatalf("Watch: %v", r.err)
	}
	if r.idx <= idx || len(r.kvs) != 1 {
		t.Fatalf("Watch after delete = %d keys at %d; want 1 key after %d", len(r.kvs), r.idx, idx)
	}
}

func testWatchIgnoresOtherPrefix(t *testing.T, s registry.Store, p string) {
	mustPut(t, s, p+"mine/a", "0")
	_, idx, err := s.List(ctxT(t), p+"mine/")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	ch := watchAsync(ctx, s, p+"mine/", idx)
	settle()
	mustPut(t, s, p+"other/a", "1")
	mustPut(t, s, p+"minefield", "1") // shares the string prefix without the slash
	r := <-ch
	if !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("Watch woke for writes outside its prefix: %d keys at %d, err %v", len(r.kvs), r.idx, r.err)
	}
}

func testWatchBehind(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	first := mustPut(t, s, p+"b/a", "0")
	mustPut(t, s, p+"b/a", "1")
	kvs, idx, err := s.Watch(ctx, p+"b/", first)
	if err != nil {
		t.Fatalf("Watch with a stale index: %v", err)
	}
	if idx <= first || len(kvs) != 1 || string(kvs[0].Value) != "1" {
		t.Fatalf("Watch with a stale index = %v at %d; want the current value after %d", kvs, idx, first)
	}
	if _, _, err := s.Watch(ctx, p+"b/", 0); err != nil {
		t.Fatalf("Watch from index 0: %v", err)
	}
}

// testConcurrentCAS runs read-modify-CAS increments from several goroutines:
// with correct CAS no increment is lost.
func testConcurrentCAS(t *testing.T, s registry.Store, p string) {
	const workers, perWorker = 4, 10
	ctx := ctxT(t)
	key := p + "counter"
	mustPut(t, s, key, "0")
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perWorker {
				for {
					kv, err := s.Get(ctx, key)
					if err != nil {
						errs <- err
						return
					}
					n, _ := strconv.Atoi(string(kv.Value))
					_, err = s.CAS(ctx, key, []byte(strconv.Itoa(n+1)), kv.ModifyIndex)
					if err == nil {
						break
					}
					if !errors.Is(err, registry.ErrConflict) {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := string(mustGet(t, s, key).Value); got != strconv.Itoa(workers*perWorker) {
		t.Fatalf("counter = %s after %d increments: CAS lost updates", got, workers*perWorker)
	}
}

func testLock(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	key := p + "lock"
	lease, err := s.TryLock(ctx, key, []byte("broker-a"), registry.MinLockTTL)
	if err != nil {
		t.Fatalf("TryLock on a free key: %v", err)
	}
	if lease.Key() != key {
		t.Fatalf("lease.Key() = %q, want %q", lease.Key(), key)
	}
	kv := mustGet(t, s, key)
	if string(kv.Value) != "broker-a" || kv.Session == "" {
		t.Fatalf("locked key = %q session %q; want holder broker-a and a session", kv.Value, kv.Session)
	}
	if _, err := s.TryLock(ctx, key, []byte("broker-b"), registry.MinLockTTL); !errors.Is(err, registry.ErrLockHeld) {
		t.Fatalf("second TryLock = %v, want ErrLockHeld", err)
	}
	select {
	case <-lease.Lost():
		t.Fatal("Lost closed while the lease is held")
	default:
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatalf("Release: %v", err)
	}
	select {
	case <-lease.Lost():
	case <-ctx.Done():
		t.Fatal("Lost not closed after Release")
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatalf("second Release: %v", err)
	}
	if kv := mustGet(t, s, key); string(kv.Value) != "broker-a" || kv.Session != "" {
		t.Fatalf("after Release the key is %q session %q; want the holder's value kept and no session", kv.Value, kv.Session)
	}
	other, err := s.TryLock(ctx, key, []byte("broker-b"), registry.MinLockTTL)
	if err != nil {
		t.Fatalf("TryLock after Release: %v", err)
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

func testBinaryValues(t *testing.T, s registry.Store, p string) {
	val := []byte{0, 1, 2, 0xff, '\n', 0}
	if _, err := s.Put(ctxT(t), p+"bin", val); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, p+"bin").Value; string(got) != string(val) {
		t.Fatalf("binary value = %v, want %v", got, val)
	}
	empty := mustPut(t, s, p+"empty", "")
	if kv := mustGet(t, s, p+"empty"); len(kv.Value) != 0 || kv.ModifyIndex != empty {
		t.Fatalf("empty value = %q@%d", kv.Value, kv.ModifyIndex)
	}
}

// testDeleteLockedKey: deleting a locked key ends the lease (Lost closes),
// so no two holders ever believe they hold the lock.
func testDeleteLockedKey(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	key := p + "lock"
	lease, err := s.TryLock(ctx, key, []byte("a"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lease.Release(context.Background()) })
	if err := s.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lease.Lost():
	case <-ctx.Done():
		t.Fatal("Lost not closed after the locked key was deleted")
	}
	other, err := s.TryLock(ctx, key, []byte("b"), registry.MinLockTTL)
	if err != nil {
		t.Fatalf("TryLock after the key was deleted: %v", err)
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// testUnchangedWrite pins Consul's rule: writing the value a key already
// holds keeps its modify index and wakes no watcher.
func testUnchangedWrite(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	first := mustPut(t, s, p+"u/k", "same")
	if again := mustPut(t, s, p+"u/k", "same"); again != first {
		t.Fatalf("rewriting the same value moved the index %d -> %d", first, again)
	}
	if idx, err := s.CAS(ctx, p+"u/k", []byte("same"), first); err != nil || idx != first {
		t.Fatalf("same-value CAS = %d, %v; want %d, nil", idx, err, first)
	}
	_, idx, err := s.List(ctx, p+"u/")
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	ch := watchAsync(wctx, s, p+"u/", idx)
	settle()
	mustPut(t, s, p+"u/k", "same")
	if r := <-ch; !errors.Is(r.err, context.DeadlineExceeded) {
		t.Fatalf("an unchanged write woke a watcher: %d keys at %d, %v", len(r.kvs), r.idx, r.err)
	}
}

func testValueSizeLimit(t *testing.T, s registry.Store, p string) {
	ctx := ctxT(t)
	if _, err := s.Put(ctx, p+"max", make([]byte, registry.MaxValueSize)); err != nil {
		t.Fatalf("Put of exactly MaxValueSize: %v", err)
	}
	big := make([]byte, registry.MaxValueSize+1)
	if _, err := s.Put(ctx, p+"big", big); !errors.Is(err, registry.ErrValueTooLarge) {
		t.Fatalf("Put over MaxValueSize = %v, want ErrValueTooLarge", err)
	}
	if _, err := s.CAS(ctx, p+"big", big, 0); !errors.Is(err, registry.ErrValueTooLarge) {
		t.Fatalf("CAS over MaxValueSize = %v, want ErrValueTooLarge", err)
	}
	if _, err := s.Get(ctx, p+"big"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("a refused value was stored: %v", err)
	}
}
