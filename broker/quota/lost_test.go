package quota_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/registry"
)

// losingStore loses the answer of the next usage-record writes: applied
// ones (the leader committed, then died) or not (it died first), as
// Consul's backend reports both, ErrUnavailable.
type losingStore struct {
	*registry.Memory
	mu      sync.Mutex
	applied []bool // the next writes' fates, in order
	// late holds a lost write back until just after the next read of
	// its key: still queued in Consul when the writer read the record.
	late    bool
	pending func()
}

func (s *losingStore) Get(ctx context.Context, key string) (registry.KV, error) {
	kv, err := s.Memory.Get(ctx, key)
	s.mu.Lock()
	land := s.pending
	s.pending = nil
	s.mu.Unlock()
	if land != nil {
		land()
	}
	return kv, err
}

func (s *losingStore) CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error) {
	s.mu.Lock()
	var fate, lose bool
	if strings.HasPrefix(key, "quota-usage/") && len(s.applied) > 0 {
		fate, lose = s.applied[0], true
		s.applied = s.applied[1:]
	}
	s.mu.Unlock()
	if !lose {
		return s.Memory.CAS(ctx, key, value, index)
	}
	if fate {
		s.mu.Lock()
		late := s.late
		s.mu.Unlock()
		if late {
			s.mu.Lock()
			s.pending = func() { _, _ = s.Memory.CAS(ctx, key, value, index) }
			s.mu.Unlock()
		} else if _, err := s.Memory.CAS(ctx, key, value, index); err != nil {
			return 0, err
		}
	}
	return 0, fmt.Errorf("consul: cas %q: rpc error making call: EOF: %w", key, registry.ErrUnavailable)
}

// TestLostAnswersCountOnce: a usage write whose answer was lost is settled
// by reading the record back: a write that landed is not applied again (no
// double count), one that did not is applied (no lost count), and one
// that lands only after the writer's read back is found on its next read.
func TestLostAnswersCountOnce(t *testing.T) {
	tests := []struct {
		name  string
		fates []bool
		late  bool
	}{
		{name: "landed", fates: []bool{true}},
		{name: "did not land", fates: []bool{false}},
		{name: "did not land, then landed", fates: []bool{false, true}},
		{name: "landed just after the writer read the record back", fates: []bool{true}, late: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			store := &losingStore{Memory: registry.NewMemory(), late: tt.late}
			l := newLedger(store, "b1", nil)
			scope := quota.Scope{Project: "p1"}
			for _, step := range []struct {
				what string
				do   func() error
			}{
				{"reserve and commit", func() error {
					store.applied = append([]bool(nil), tt.fates...)
					r, err := l.Reserve(ctx, scope, quota.Amounts{"instances": 2}, "server s1")
					if err != nil {
						return err
					}
					store.applied = append([]bool(nil), tt.fates...)
					return r.Commit(ctx)
				}},
				{"free", func() error {
					store.applied = append([]bool(nil), tt.fates...)
					return l.Free(ctx, scope, quota.Amounts{"instances": 1})
				}},
			} {
				if err := step.do(); err != nil {
					t.Fatalf("%s: %v", step.what, err)
				}
			}
			used, reserved, err := l.Usage(ctx, scope)
			if err != nil {
				t.Fatal(err)
			}
			if used["instances"] != 1 || reserved["instances"] != 0 {
				t.Fatalf("used %v reserved %v, want 1 instance used and none reserved", used, reserved)
			}
		})
	}
}
