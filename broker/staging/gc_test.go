package staging_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/internal/gctest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestLeftovers: released lock keys and the replica records of unindexed
// images or removed peers are leftovers; a held lock and a live replica
// are not.
func TestLeftovers(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	put := func(r staging.Replica) {
		raw, _ := json.Marshal(r)
		if _, err := store.Put(ctx, "staging/replicas/"+r.ImageID+"/"+r.PeerID, raw); err != nil {
			t.Fatal(err)
		}
	}
	put(staging.Replica{ImageID: "img", PeerID: "p1"})
	put(staging.Replica{ImageID: "img", PeerID: "removed-peer"})
	put(staging.Replica{ImageID: "deleted-img", PeerID: "p1"})
	held, err := store.TryLock(ctx, "staging/locks/img/p1", []byte("b1"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Release(ctx) }()
	released, err := store.TryLock(ctx, "staging/locks/img/p2", []byte("b1"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	if err := released.Release(ctx); err != nil {
		t.Fatal(err)
	}
	live := func(context.Context) (map[string]bool, map[string]bool, error) {
		return map[string]bool{"img": true}, map[string]bool{"p1": true, "p2": true}, nil
	}
	got := gctest.Leftovers(t, store, staging.LeftoverPrefixes, staging.Leftovers(live))
	if want := "staging/locks/img/p2 staging/replicas/deleted-img/p1 staging/replicas/img/removed-peer"; got != want {
		t.Fatalf("leftovers %q, want %q", got, want)
	}
	// Without the live set, nothing is judged.
	kvs, _, err := store.List(ctx, "staging/replicas/")
	if err != nil {
		t.Fatal(err)
	}
	unknown := func(context.Context) (map[string]bool, map[string]bool, error) {
		return nil, nil, errors.New("index unavailable")
	}
	if left, err := staging.Leftovers(unknown)(ctx, kvs); err == nil || len(left) != 0 {
		t.Fatalf("with the index unavailable: %v, %v; want an error and nothing", left, err)
	}
}
