package peers_test

import (
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

func TestCandidatesAndNamed(t *testing.T) {
	var cloud *localcloud.Cloud // in an interface, even a nil pointer marks the member connected
	members := []*peers.Member{
		{Peer: registry.Peer{ID: "a", Name: "east"}, Cloud: cloud},
		{Peer: registry.Peer{ID: "b", Name: "west"}},
	}
	connected, disconnected := peers.Candidates(members)
	if len(connected) != 1 || connected[0].ID != "a" || !slices.Equal(disconnected, []string{"west"}) {
		t.Fatalf("Candidates = %v, %v; want [a] connected, [west] not", connected, disconnected)
	}
	tests := []struct {
		name string
		want bool
	}{{"east", true}, {"west", true}, {"north", false}, {"", false}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := peers.Named(members, tc.name); got != tc.want {
				t.Fatalf("Named(%q) = %v, want %v", tc.name, got, tc.want)
			}
		})
	}
}
