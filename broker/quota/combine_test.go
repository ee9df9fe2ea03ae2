package quota_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/registry"
)

// TestPanickingBatchDoesNotWedgeItsRecord: a record holding a null
// reservation (a hand edit, a bug) once made its batch panic, and the
// record's queue stayed running: every later update of the project hung.
// The null is dropped on read now (and a batch that panics answers its
// callers with an error, its queue going on).
func TestPanickingBatchDoesNotWedgeItsRecord(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	if _, err := store.Put(ctx, "quota-usage/p1", []byte(`{"used":{"instances":1},"reservations":{"x":null}}`)); err != nil {
		t.Fatal(err)
	}
	l := newLedger(store, "b", nil)
	s := quota.Scope{Project: "p1"}
	func() {
		defer func() { _ = recover() }() // as net/http does for a handler
		_ = l.Free(ctx, s, quota.Amounts{quota.Instances: 1})
	}()
	// The admin repairs the record.
	if err := store.Delete(ctx, "quota-usage/p1"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Add(ctx, s, quota.Amounts{quota.Instances: 1}) }()
	select {
	case err := <-done:
		t.Logf("add after repair: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatalf("an update of the repaired record still hangs after 5 s: the panicked batch left its queue running for good")
	}
}

// strippingStore: a usage write's answer is lost although it landed, and
// before the writer reads the record back another writer that does not
// know the marks field (an older broker: record with seq/ops) rewrites the
// record, dropping the marks.
type strippingStore struct {
	*registry.Memory
	mu    sync.Mutex
	armed bool
}

func (s *strippingStore) CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error) {
	s.mu.Lock()
	armed := s.armed && strings.HasPrefix(key, "quota-usage/")
	s.armed = false
	s.mu.Unlock()
	if !armed {
		return s.Memory.CAS(ctx, key, value, index)
	}
	at, err := s.Memory.CAS(ctx, key, value, index)
	if err != nil {
		return 0, err
	}
	var old map[string]json.RawMessage
	if err := json.Unmarshal(value, &old); err != nil {
		return 0, err
	}
	delete(old, "marks")
	b, _ := json.Marshal(old)
	if _, err := s.Memory.CAS(ctx, key, b, at); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("consul: cas %q: rpc error making call: EOF: %w", key, registry.ErrUnavailable)
}

// TestMarksDroppedByAnotherWriterAreUnknown: a lost write that landed,
// then a rewrite that dropped the marks, is reported unknown, never
// applied a second time.
func TestMarksDroppedByAnotherWriterAreUnknown(t *testing.T) {
	ctx := context.Background()
	store := &strippingStore{Memory: registry.NewMemory(), armed: true}
	l := newLedger(store, "b", nil)
	s := quota.Scope{Project: "p1"}
	err := l.Add(ctx, s, quota.Amounts{quota.Instances: 1})
	used, _, uerr := l.Usage(ctx, s)
	if uerr != nil {
		t.Fatal(uerr)
	}
	if err == nil && used[quota.Instances] != 1 {
		t.Fatalf("Add answered nil and usage is %d; want 1 (applied twice)", used[quota.Instances])
	}
}
