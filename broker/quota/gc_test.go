package quota_test

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/internal/gctest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestLeftovers: the limits and usage of deleted projects and users are
// leftovers; those of live ones are not.
func TestLeftovers(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	keys := []string{"quotas/live", "quotas/gone", "quota-usage/live", "quota-usage/gone",
		"quota-usage/user:alice", "quota-usage/user:bob"}
	for _, k := range keys {
		if _, err := store.Put(ctx, k, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	got := gctest.Leftovers(t, store, quota.LeftoverPrefixes, quota.Leftovers(func(context.Context) (map[string]bool, map[string]bool, error) {
		return map[string]bool{"live": true}, map[string]bool{"alice": true}, nil
	}))
	if want := "quota-usage/gone quota-usage/user:bob quotas/gone"; got != want {
		t.Fatalf("leftovers %v, want %s", got, want)
	}
}
