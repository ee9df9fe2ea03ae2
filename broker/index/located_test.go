package index_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// pool is a fixed set of members by peer ID.
type pool map[string]*peers.Member

func (p pool) Get(id string) (*peers.Member, bool) { m, ok := p[id]; return m, ok }

// TestLocateAndSpread: a project's entry is located with its connected
// peer, and not found for another project; an entry whose peer is not
// connected or has left the pool is ErrNotConnected. A list's spread asks
// only the connected peers holding some entries and names the others.
func TestLocateAndSpread(t *testing.T) {
	ctx := context.Background()
	x := index.New(registry.NewMemory())
	up := &peers.Member{Peer: registry.Peer{ID: "peer-up", Name: "up"}, Cloud: failing{}}
	down := &peers.Member{Peer: registry.Peer{ID: "peer-down", Name: "down"}}
	idle := &peers.Member{Peer: registry.Peer{ID: "peer-idle", Name: "idle"}, Cloud: failing{}}
	p := pool{up.Peer.ID: up, down.Peer.ID: down, idle.Peer.ID: idle}
	entries := []index.Entry{
		{Kind: "volume", ID: "v-up", Project: "p1", PeerID: "peer-up", PeerResourceID: "r1"},
		{Kind: "volume", ID: "v-down", Project: "p1", PeerID: "peer-down", PeerResourceID: "r2"},
		{Kind: "volume", ID: "v-gone", Project: "p1", PeerID: "peer-gone", PeerResourceID: "r3"},
	}
	for _, e := range entries {
		if err := x.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, id, project string
		want              error
		member            *peers.Member
	}{
		{name: "on a connected peer", id: "v-up", project: "p1", member: up},
		{name: "another project's", id: "v-up", project: "p2", want: index.ErrNotFound},
		{name: "no such entry", id: "v-none", project: "p1", want: index.ErrNotFound},
		{name: "on a peer not connected", id: "v-down", project: "p1", want: index.ErrNotConnected},
		{name: "on a peer gone from the pool", id: "v-gone", project: "p1", want: index.ErrNotConnected},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, m, err := x.Locate(ctx, p, "volume", tc.id, tc.project)
			if tc.want != nil {
				if !errors.Is(err, tc.want) || m != nil {
					t.Fatalf("Locate = %v, %v; want %v", m, err, tc.want)
				}
				return
			}
			if err != nil || m != tc.member || e.ID != tc.id {
				t.Fatalf("Locate = %+v, %v, %v", e, m, err)
			}
		})
	}

	s := index.SpreadOver(entries, p)
	if len(s.Members) != 1 || s.Members[0] != up {
		t.Errorf("members %v, want only %s", s.Members, up.Peer.Name)
	}
	if got := slices.Sorted(slices.Values(s.Failed)); !slices.Equal(got, []string{"down", "peer-gone"}) {
		t.Errorf("failed %v, want the not connected peer's name and the gone peer's ID", got)
	}
	if e, ok := s.Entry(up, "r1"); !ok || e.ID != "v-up" {
		t.Errorf("Entry(up, r1) = %+v, %v", e, ok)
	}
	if _, ok := s.Entry(up, "r2"); ok {
		t.Error("a resource of another peer matched by its peer ID alone")
	}
	want := map[string]string{"peer-up/r1": "v-up", "peer-down/r2": "v-down", "peer-gone/r3": "v-gone"}
	if got := index.BrokerIDs(entries); !maps.Equal(got, want) {
		t.Errorf("BrokerIDs = %v, want %v", got, want)
	}
}
