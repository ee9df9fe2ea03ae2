package ec2_test

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/broker/ec2"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/gctest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestVPCCIDRLeftovers: the block of a VPC whose network is no longer
// indexed (deleted through Neutron) is a leftover; a live VPC's is not.
func TestVPCCIDRLeftovers(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	idx := index.New(store)
	if err := idx.Put(ctx, index.Entry{Kind: network.KindNetwork, ID: "live", Project: "p", PeerID: "peer", PeerResourceID: "n"}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"live", "gone"} {
		if _, err := store.Put(ctx, ec2.VPCCIDRPrefix+id, []byte(`"10.0.0.0/16"`)); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := gctest.Leftovers(t, store, []string{ec2.VPCCIDRPrefix}, ec2.VPCCIDRLeftovers(idx)), ec2.VPCCIDRPrefix+"gone"; got != want {
		t.Fatalf("leftovers %q, want %q", got, want)
	}
}
