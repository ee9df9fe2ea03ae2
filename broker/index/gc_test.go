package index_test

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/internal/gctest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestDangling: both copies of the entries on a removed peer, and a
// project copy without its entry, are leftovers; entries on registered
// peers are not.
func TestDangling(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	x := index.New(store)
	for _, e := range []index.Entry{
		{Kind: "server", ID: "s1", Project: "p", PeerID: "live", PeerResourceID: "r1"},
		{Kind: "server", ID: "s2", Project: "p", PeerID: "removed", PeerResourceID: "r2"},
		{Kind: "volume", ID: "v1", Project: "q", PeerID: "removed", PeerResourceID: "r3"},
		{Kind: "server", ID: "s3", Project: "p", PeerID: "live", PeerResourceID: "r4"},
	} {
		if err := x.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// A delete cut between the entry and its project copy.
	if err := store.Delete(ctx, "index/server/s3"); err != nil {
		t.Fatal(err)
	}
	got := gctest.Leftovers(t, store, index.LeftoverPrefixes, index.Dangling(func(context.Context) (map[string]bool, error) {
		return map[string]bool{"live": true}, nil
	}))
	want := "index-by-project/server/p/s2 index-by-project/server/p/s3 index-by-project/volume/q/v1 index/server/s2 index/volume/v1"
	if got != want {
		t.Fatalf("leftovers %s, want %s", got, want)
	}
}
