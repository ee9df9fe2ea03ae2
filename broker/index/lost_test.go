package index_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/registry"
)

// losingStore loses the answer of the next writes to keys under a prefix:
// applied ones (the Consul leader committed, then died) or not (it died
// first); the backend reports both as ErrUnavailable.
type losingStore struct {
	*registry.Memory
	mu     sync.Mutex
	prefix string
	fates  []bool // the next writes' fates, in order: applied or not
}

func (s *losingStore) lose(key string) (lose, applied bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.fates) == 0 || !strings.HasPrefix(key, s.prefix) {
		return false, false
	}
	applied = s.fates[0]
	s.fates = s.fates[1:]
	return true, applied
}

func lostErr(op, key string) error {
	return fmt.Errorf("consul: %s %q: rpc error making call: EOF: %w", op, key, registry.ErrUnavailable)
}

func (s *losingStore) CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error) {
	lose, applied := s.lose(key)
	if !lose {
		return s.Memory.CAS(ctx, key, value, index)
	}
	if applied {
		if _, err := s.Memory.CAS(ctx, key, value, index); err != nil {
			return 0, err
		}
	}
	return 0, lostErr("cas", key)
}

func (s *losingStore) DeleteCAS(ctx context.Context, key string, index uint64) error {
	lose, applied := s.lose(key)
	if !lose {
		return s.Memory.DeleteCAS(ctx, key, index)
	}
	if applied {
		if err := s.Memory.DeleteCAS(ctx, key, index); err != nil {
			return err
		}
	}
	return lostErr("delete-cas", key)
}

// TestLostAnswersSettle: index writes whose answers a Consul election
// lost are settled by reading their keys back: an entry written or
// removed once, never failed for a write that landed, never left half
// done for one that did not; a removal that landed still tells its caller
// it removed the entry (and so frees its quota), exactly once.
func TestLostAnswersSettle(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		fates  []bool
	}{
		{"put: primary landed", "index/", []bool{true}},
		{"put: primary not landed", "index/", []bool{false}},
		{"put: primary lost twice, then landed", "index/", []bool{false, false, true}},
		{"put: project copy landed", "index-by-project/", []bool{true}},
		{"put: project copy not landed", "index-by-project/", []bool{false}},
		{"remove: claim landed", index.ClaimPrefix, []bool{true}},
		{"remove: claim not landed", index.ClaimPrefix, []bool{false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			st := &losingStore{Memory: registry.NewMemory(), prefix: tt.prefix, fates: tt.fates}
			x := index.New(st)
			e := index.Entry{Kind: "network", ID: "n1", Project: "p1", PeerID: "east", PeerResourceID: "pn1", CreatedAt: time.Now()}
			if err := x.Put(ctx, e); err != nil {
				t.Fatalf("put: %v", err)
			}
			for _, key := range []string{"index/network/n1", "index-by-project/network/p1/n1"} {
				if _, err := st.Memory.Get(ctx, key); err != nil {
					t.Fatalf("after put, %s: %v", key, err)
				}
			}
			_, removed, err := x.Remove(ctx, e)
			if err != nil || !removed {
				t.Fatalf("remove = %t, %v; want removed", removed, err)
			}
			kvs, _, _ := st.Memory.List(ctx, "")
			if len(kvs) != 0 {
				t.Fatalf("left after remove: %v", kvs)
			}
		})
	}
	for _, applied := range []bool{true, false} {
		t.Run(fmt.Sprintf("remove: delete lost, applied %t", applied), func(t *testing.T) {
			ctx := context.Background()
			st := &losingStore{Memory: registry.NewMemory(), prefix: "index/"}
			x := index.New(st)
			e := index.Entry{Kind: "network", ID: "n1", Project: "p1", PeerID: "east", PeerResourceID: "pn1", CreatedAt: time.Now()}
			if err := x.Put(ctx, e); err != nil {
				t.Fatal(err)
			}
			st.fates = []bool{applied}
			_, removed, err := x.Remove(ctx, e)
			if err != nil || !removed {
				t.Fatalf("remove = %t, %v; want removed", removed, err)
			}
			if _, removed, err := x.Remove(ctx, e); err != nil || removed {
				t.Fatalf("a second remove = %t, %v; want not removed", removed, err)
			}
			if kvs, _, _ := st.Memory.List(ctx, ""); len(kvs) != 0 {
				t.Fatalf("left after remove: %v", kvs)
			}
		})
	}
}

// TestRemoveClaims: of removers racing on one entry exactly one removes
// it; a claim held by a live remover keeps others off; a claim its holder
// left long ago (it died mid-remove) is taken over; the gc judge picks
// claims whose entry is gone.
func TestRemoveClaims(t *testing.T) {
	ctx := context.Background()
	st := registry.NewMemory()
	x := index.New(st)
	e := index.Entry{Kind: "volume", ID: "v1", Project: "p1", PeerID: "east", PeerResourceID: "pv1", CreatedAt: time.Now()}
	if err := x.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, removed, err := x.Remove(ctx, e)
			if err != nil {
				t.Error(err)
			}
			if removed {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d removers removed it; want 1", wins)
	}

	// A live claim (just written) keeps a remover off.
	if err := x.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	claimKey := index.ClaimPrefix + "volume/v1"
	fresh := fmt.Sprintf(`{"op":"other","at":%q}`, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := st.Put(ctx, claimKey, []byte(fresh)); err != nil {
		t.Fatal(err)
	}
	// It waits for the holder: while the entry stays, it cannot say it
	// is removed (its caller must not answer "deleted").
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, removed, err := x.Remove(short, e)
	cancel()
	if err == nil || removed {
		t.Fatalf("remove under another's live claim, the entry staying = %t, %v; want an error", removed, err)
	}
	if _, err := x.Get(ctx, "volume", "v1", ""); err != nil {
		t.Fatalf("the entry under a live claim: %v", err)
	}
	// The holder finishing (entry, then claim gone) ends the wait: removed
	// by the other, not by this caller.
	waited := make(chan error, 1)
	go func() {
		_, removed, err := x.Remove(ctx, e)
		if err == nil && removed {
			err = errors.New("removed by the waiter")
		}
		waited <- err
	}()
	time.Sleep(100 * time.Millisecond)
	for _, k := range []string{"index/volume/v1", "index-by-project/volume/p1/v1", claimKey} {
		if err := st.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-waited; err != nil {
		t.Fatalf("the waiting remover once the holder finished: %v", err)
	}
	if err := x.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	if judged, err := x.StaleClaims(ctx, []registry.KV{{Key: claimKey}}); err != nil || len(judged) != 0 {
		t.Fatalf("the gc judges a claim whose entry is there: %v, %v", judged, err)
	}
	// A claim left 4 minutes ago is taken over.
	old := fmt.Sprintf(`{"op":"dead","at":%q}`, time.Now().Add(-4*time.Minute).UTC().Format(time.RFC3339Nano))
	if _, err := st.Put(ctx, claimKey, []byte(old)); err != nil {
		t.Fatal(err)
	}
	if _, removed, err := x.Remove(ctx, e); err != nil || !removed {
		t.Fatalf("remove over a stale claim = %t, %v; want removed", removed, err)
	}
	if _, err := st.Get(ctx, claimKey); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("the claim after the remove: %v", err)
	}
	// A claim left behind once its entry is gone is the gc's.
	if _, err := st.Put(ctx, claimKey, []byte(old)); err != nil {
		t.Fatal(err)
	}
	if judged, err := x.StaleClaims(ctx, []registry.KV{{Key: claimKey}}); err != nil || len(judged) != 1 {
		t.Fatalf("the gc's judge of a claim whose entry is gone: %v, %v", judged, err)
	}
}
