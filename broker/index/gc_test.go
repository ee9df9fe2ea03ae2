package index_test

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/internal/gctest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestOnRemovedPeers: both copies of the entries on a removed peer are
// leftovers; entries on registered peers are not.
func TestOnRemovedPeers(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	x := index.New(store)
	for _, e := range []index.Entry{
		{Kind: "server", ID: "s1", Project: "p", PeerID: "live", PeerResourceID: "r1"},
		{Kind: "server", ID: "s2", Project: "p", PeerID: "removed", PeerResourceID: "r2"},
		{Kind: "volume", ID: "v1", Project: "q", PeerID: "removed", PeerResourceID: "r3"},
	} {
		if err := x.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	got := gctest.Leftovers(t, store, index.LeftoverPrefixes, index.OnRemovedPeers(func(context.Context) (map[string]bool, error) {
		return map[string]bool{"live": true}, nil
	}))
	want := "index-by-project/server/p/s2 index-by-project/volume/q/v1 index/server/s2 index/volume/v1"
	if got != want {
		t.Fatalf("leftovers %s, want %s", got, want)
	}
}
