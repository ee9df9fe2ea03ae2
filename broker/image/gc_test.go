package image_test

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/internal/gctest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestLeftovers: an image's deactivation, member and import records are
// leftovers once the image is no longer indexed; a live image's are not.
func TestLeftovers(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, group string
		judge               func(*image.Service) func(context.Context, []registry.KV) ([]registry.KV, error)
	}{
		{"deactivations", image.DeactivationPrefix, "", func(s *image.Service) func(context.Context, []registry.KV) ([]registry.KV, error) {
			return s.DeactivationLeftovers
		}},
		{"members", image.MembersPrefix, "proj-b/", func(s *image.Service) func(context.Context, []registry.KV) ([]registry.KV, error) {
			return s.MemberLeftovers
		}},
		{"imports", image.ImportPrefix, "", func(s *image.Service) func(context.Context, []registry.KV) ([]registry.KV, error) {
			return s.ImportLeftovers
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			store := registry.NewMemory()
			idx := index.New(store)
			if err := idx.Put(ctx, index.Entry{Kind: image.Kind, ID: "live", Project: "p", PeerID: "peer", PeerResourceID: "live"}); err != nil {
				t.Fatal(err)
			}
			for _, id := range []string{"live", "gone"} {
				if _, err := store.Put(ctx, tc.prefix+tc.group+id, []byte("{}")); err != nil {
					t.Fatal(err)
				}
			}
			s := &image.Service{Index: idx, Store: store}
			if got := gctest.Leftovers(t, store, []string{tc.prefix}, tc.judge(s)); got != tc.prefix+tc.group+"gone" {
				t.Fatalf("leftovers %q, want only the unindexed image's", got)
			}
		})
	}
}
