package index

import (
	"context"
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/registry"
)

// TestSharedAndOnPeer: Shared finds the entries marked shared of every
// project, OnPeer a project's entries on one peer, the same from memory
// and from the Store; OnPeer reads the primary entries, so an entry whose
// project copy a cut delete removed is still found, and a removed entry
// leaves the shared ones.
func TestSharedAndOnPeer(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := registry.NewMemory()
	entries := []Entry{
		{Kind: "network", ID: "n1", Project: "p1", PeerID: "a", PeerResourceID: "x1"},
		{Kind: "network", ID: "n2", Project: "p2", PeerID: "b", PeerResourceID: "x2", Shared: true},
		{Kind: "network", ID: "n3", Project: "p1", PeerID: "b", PeerResourceID: "x3", Shared: true},
		{Kind: "subnet", ID: "s1", Project: "p1", PeerID: "a", PeerResourceID: "y1"},
		{Kind: "subnet", ID: "s2", Project: "p1", PeerID: "b", PeerResourceID: "y2"},
		{Kind: "subnet", ID: "s3", Project: "p2", PeerID: "a", PeerResourceID: "y3"},
	}
	writer := running(t, ctx, store)
	for _, e := range entries {
		if err := writer.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	// A delete cut after the project's copy went: the primary stays.
	if err := store.Delete(ctx, projectKey("subnet", "p1", "s1")); err != nil {
		t.Fatal(err)
	}
	ids := func(es []Entry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		x    *Index
	}{
		{"memory", running(t, ctx, store)},
		{"store", New(store)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := tc.x.Shared(ctx, "network"); err != nil || !slices.Equal(ids(got), []string{"n2", "n3"}) {
				t.Fatalf("Shared = %v, %v; want n2 n3", ids(got), err)
			}
			if got, err := tc.x.OnPeer(ctx, "subnet", "p1", "a"); err != nil || !slices.Equal(ids(got), []string{"s1"}) {
				t.Fatalf("OnPeer(p1, a) = %v, %v; want s1", ids(got), err)
			}
			if got, err := tc.x.OnPeer(ctx, "subnet", "p2", "b"); err != nil || len(got) != 0 {
				t.Fatalf("OnPeer(p2, b) = %v, %v; want none", ids(got), err)
			}
		})
	}
	if err := writer.Delete(ctx, entries[1]); err != nil {
		t.Fatal(err)
	}
	if got, err := writer.Shared(ctx, "network"); err != nil || !slices.Equal(ids(got), []string{"n3"}) {
		t.Fatalf("Shared after a delete = %v, %v; want n3", ids(got), err)
	}
}
