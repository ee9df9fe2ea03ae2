package index_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// TestMarked: of the networks carrying a caller's marks, those the index
// holds for the project come back by broker ID; one no entry names (a
// create whose broker died before indexing it) is deleted from its peer;
// other projects', other installations' and unmarked ones are left alone.
func TestMarked(t *testing.T) {
	ctx := context.Background()
	x := index.New(registry.NewMemory())
	a, b := newCloud(t, "a"), newCloud(t, "b")
	members := []*peers.Member{{Peer: registry.Peer{ID: "peer-a", Name: "a"}, Cloud: a}, {Peer: registry.Peer{ID: "peer-b", Name: "b"}, Cloud: b}}
	tag := map[string]string{"cloudmux_deployment": "d1"}
	create := func(c peers.Cloud, broker, project, id string, extra map[string]string) peers.Network {
		t.Helper()
		meta := marks(broker, project, id)
		maps.Copy(meta, extra)
		n, err := c.CreateNetwork(ctx, peers.NetworkSpec{Name: id, Project: project, Metadata: meta})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	put := func(member, project, id string, n peers.Network) {
		t.Helper()
		if err := x.Put(ctx, index.Entry{Kind: "network", ID: id, Project: project, PeerID: member, PeerResourceID: n.ID, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	put("peer-a", "p1", "net-1", create(a, "me", "p1", "net-1", tag))
	put("peer-b", "p1", "net-2", create(b, "me", "p1", "net-2", tag))
	orphan := create(a, "me", "p1", "net-orphan", tag)
	untagged := create(a, "me", "p1", "net-untagged", nil)
	put("peer-a", "p1", "net-untagged", untagged)
	other := create(b, "me", "p2", "net-other", tag)
	put("peer-b", "p2", "net-other", other)
	foreign := create(b, "them", "p1", "net-foreign", tag)

	got, err := x.Marked(ctx, members, "me", "network", "p1", tag, time.Second)
	if err != nil || !slices.Equal(got, []string{"net-1", "net-2"}) {
		t.Fatalf("Marked = %v, %v", got, err)
	}
	tests := []struct {
		name  string
		cloud peers.Cloud
		id    string
		gone  bool
	}{
		{"the unindexed one is deleted", a, orphan.ID, true},
		{"an unmarked one stays", a, untagged.ID, false},
		{"another project's stays", b, other.ID, false},
		{"another installation's stays", b, foreign.ID, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.cloud.GetNetwork(ctx, tc.id)
			if gone := errors.Is(err, peers.ErrNotFound); gone != tc.gone {
				t.Fatalf("gone = %v (%v), want %v", gone, err, tc.gone)
			}
		})
	}

	// A peer that cannot be listed is an error, never "none there".
	down := append(slices.Clone(members), &peers.Member{Peer: registry.Peer{ID: "peer-c", Name: "c"}, Cloud: failing{}})
	if _, err := x.Marked(ctx, down, "me", "network", "p1", tag, time.Second); !errors.Is(err, peers.ErrUnavailable) {
		t.Fatalf("with a peer down: %v", err)
	}
}

// failing is a peer whose lists fail.
type failing struct{ peers.Cloud }

func (failing) ListNetworks(context.Context, peers.ListOptions) ([]peers.Network, error) {
	return nil, peers.ErrUnavailable
}
