package compute_test

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/internal/gctest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestAttrsLeftovers: the attributes of a server no longer indexed are
// leftovers; a live server's are not.
func TestAttrsLeftovers(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	idx := index.New(store)
	if err := idx.Put(ctx, index.Entry{Kind: compute.KindServer, ID: "live", Project: "p", PeerID: "peer", PeerResourceID: "r"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"live", "gone"} {
		if _, err := store.Put(ctx, compute.AttrsPrefix+"p/"+id, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	s := &compute.Servers{Index: idx, Store: store}
	if got := gctest.Leftovers(t, store, []string{compute.AttrsPrefix}, s.AttrsLeftovers); got != compute.AttrsPrefix+"p/gone" {
		t.Fatalf("leftovers %q, want only the unindexed server's", got)
	}
}
