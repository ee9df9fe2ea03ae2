package network_test

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/gctest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestAttrsLeftovers: the attributes of a network, subnet or port no
// longer indexed are leftovers; a live one's are not, whatever its kind.
func TestAttrsLeftovers(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	idx := index.New(store)
	for _, kind := range []string{network.KindNetwork, network.KindSubnet, network.KindPort} {
		if err := idx.Put(ctx, index.Entry{Kind: kind, ID: "live", Project: "p", PeerID: "peer", PeerResourceID: kind}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"live", "gone"} {
			if _, err := store.Put(ctx, "neutron/attrs/"+kind+"/"+id, []byte("{}")); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A port a peer made for a server is indexed as such; its attributes
	// (a name, security groups a user set) are not leftovers.
	if err := idx.Put(ctx, index.Entry{Kind: "server_port", ID: "server-made", Project: "p", PeerID: "peer", PeerResourceID: "sp"}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Put(ctx, "neutron/attrs/port/server-made", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	s := &network.Service{Index: idx, Store: store}
	want := "neutron/attrs/network/gone neutron/attrs/port/gone neutron/attrs/subnet/gone"
	if got := gctest.Leftovers(t, store, network.AttrsPrefixes, s.AttrsLeftovers); got != want {
		t.Fatalf("leftovers %q, want %q", got, want)
	}
}
