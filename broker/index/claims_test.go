package index_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/registry"
)

// queuedDeleteStore loses the answer of the first compare-and-delete of an
// entry with the write still queued in Consul: it is not applied when the
// remover reads the key back, and it commits just before the remover's
// resend (the old leader's log entry is committed by the new leader ahead
// of the resend).
type queuedDeleteStore struct {
	*registry.Memory
	mu      sync.Mutex
	armed   bool
	pending func()
}

func (s *queuedDeleteStore) DeleteCAS(ctx context.Context, key string, index uint64) error {
	s.mu.Lock()
	if s.pending != nil {
		land := s.pending
		s.pending = nil
		s.mu.Unlock()
		land()
		return s.Memory.DeleteCAS(ctx, key, index)
	}
	if s.armed && strings.HasPrefix(key, "index/") {
		s.armed = false
		s.pending = func() { _ = s.Memory.DeleteCAS(context.Background(), key, index) }
		s.mu.Unlock()
		return lostErr("delete-cas", key)
	}
	s.mu.Unlock()
	return s.Memory.DeleteCAS(ctx, key, index)
}

// TestLostDeleteLandingBeforeItsResend: the remover's own delete lands
// between its read-back and its resend; the resend's conflict is taken
// for another remover's, so nobody learns removed=true and the charge is
// never freed.
func TestLostDeleteLandingBeforeItsResend(t *testing.T) {
	ctx := context.Background()
	st := &queuedDeleteStore{Memory: registry.NewMemory()}
	x := index.New(st)
	e := index.Entry{Kind: "volume", ID: "v1", Project: "p1", PeerID: "east", PeerResourceID: "pv1", CreatedAt: time.Now()}
	if err := x.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	st.armed = true
	_, removed, err := x.Remove(ctx, e)
	if _, gerr := st.Memory.Get(ctx, "index/volume/v1"); !errors.Is(gerr, registry.ErrNotFound) {
		t.Fatalf("entry still there: %v", gerr)
	}
	if err != nil || !removed {
		t.Fatalf("Remove = removed %t, %v; the entry is gone by this remover's own delete, want removed=true (else its charge is never freed)", removed, err)
	}
}

// failingClaimRelease: the remover's compare-and-delete fails (its caller
// gave up) and dropping its claim fails too (Consul electing a leader).
type failingClaimRelease struct {
	*registry.Memory
	mu      sync.Mutex
	cancel  context.CancelFunc
	failDel bool
	failCAS bool
}

func (s *failingClaimRelease) DeleteCAS(ctx context.Context, key string, index uint64) error {
	s.mu.Lock()
	fail := s.failCAS && strings.HasPrefix(key, "index/")
	s.failCAS = false
	s.mu.Unlock()
	if fail {
		s.cancel()
		return context.Canceled
	}
	return s.Memory.DeleteCAS(ctx, key, index)
}

func (s *failingClaimRelease) Delete(ctx context.Context, key string) error {
	s.mu.Lock()
	fail := s.failDel && strings.HasPrefix(key, index.ClaimPrefix)
	s.failDel = false
	s.mu.Unlock()
	if fail {
		return lostErr("delete", key)
	}
	return s.Memory.Delete(ctx, key)
}

// TestLeftClaimIsNotReportedRemoved: a remover that failed (its caller
// gave up) and could not drop its claim (Consul electing a leader) must
// not make a retried remove answer "removed by another" while the entry
// stays: the retry removes it, or says it could not.
func TestLeftClaimIsNotReportedRemoved(t *testing.T) {
	st := &failingClaimRelease{Memory: registry.NewMemory()}
	x := index.New(st)
	e := index.Entry{Kind: "volume", ID: "v1", Project: "p1", PeerID: "east", PeerResourceID: "pv1", CreatedAt: time.Now()}
	if err := x.Put(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	st.cancel, st.failCAS, st.failDel = cancel, true, true
	if _, removed, err := x.Remove(ctx, e); err == nil || removed {
		t.Fatalf("first remove = %t, %v; want its error", removed, err)
	}
	_, removed, err := x.Remove(context.Background(), e)
	_, gerr := st.Memory.Get(context.Background(), "index/volume/v1")
	if err == nil && !removed && gerr == nil {
		t.Fatalf("retried remove = (false, nil) with the entry still there and no remover at work")
	}
}
