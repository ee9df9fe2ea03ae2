package image_test

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/internal/gctest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestDeactivationLeftovers: the deactivation record of an image no
// longer indexed is a leftover; a live image's is not.
func TestDeactivationLeftovers(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	idx := index.New(store)
	if err := idx.Put(ctx, index.Entry{Kind: image.Kind, ID: "live", Project: "p", PeerID: "peer", PeerResourceID: "live"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"live", "gone"} {
		if _, err := store.Put(ctx, image.DeactivationPrefix+id, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	s := &image.Service{Index: idx, Store: store}
	if got := gctest.Leftovers(t, store, []string{image.DeactivationPrefix}, s.DeactivationLeftovers); got != image.DeactivationPrefix+"gone" {
		t.Fatalf("leftovers %q, want only the unindexed image's", got)
	}
}

// TestMemberLeftovers: the member records of an image no longer indexed
// are leftovers; a live image's are not.
func TestMemberLeftovers(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	idx := index.New(store)
	if err := idx.Put(ctx, index.Entry{Kind: image.Kind, ID: "live", Project: "p", PeerID: "peer", PeerResourceID: "live"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"live", "gone"} {
		if _, err := store.Put(ctx, image.MembersPrefix+"proj-b/"+id, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	s := &image.Service{Index: idx, Store: store}
	if got := gctest.Leftovers(t, store, []string{image.MembersPrefix}, s.MemberLeftovers); got != image.MembersPrefix+"proj-b/gone" {
		t.Fatalf("leftovers %q, want only the unindexed image's", got)
	}
}
