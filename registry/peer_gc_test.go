package registry_test

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/internal/gctest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestPeerLeftovers: the records a removed or renamed peer left behind
// are leftovers; a live peer's name, health and credentials are not.
func TestPeerLeftovers(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	reg := registry.NewPeerRegistry(store)
	live, err := reg.Create(ctx, osPeer("live"), osCreds())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.ReportHealth(ctx, live.ID, registry.Health{Status: registry.StatusUp}); err != nil {
		t.Fatal(err)
	}
	for key, value := range map[string]string{
		"peers/names/old":        live.ID, // a rename whose cleanup failed
		"peers/names/ghost":      "gone",  // a removed peer's
		"peers/health/gone":      "{}",    // a probe that raced the removal
		"credentials/peers/gone": "{}",
	} {
		if _, err := store.Put(ctx, key, []byte(value)); err != nil {
			t.Fatal(err)
		}
	}
	got := gctest.Leftovers(t, store, registry.PeerLeftoverPrefixes, reg.Leftovers)
	if got != "credentials/peers/gone peers/health/gone peers/names/ghost peers/names/old" {
		t.Fatalf("leftovers %s", got)
	}
}
