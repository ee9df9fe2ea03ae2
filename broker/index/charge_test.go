package index_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// freer records what is freed, as "project resource=n".
type freer struct {
	mu    sync.Mutex
	freed []string
}

func (f *freer) Free(_ context.Context, s quota.Scope, a quota.Amounts) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for k, v := range a {
		f.freed = append(f.freed, fmt.Sprintf("%s %s=%d", s.Project, k, v))
	}
	slices.Sort(f.freed)
	return nil
}

// TestPutAfterAdoptionKeepsCharge: a Rebuild that adopts a fresh resource
// before its creator indexes it writes an entry without a charge; the
// creator's Put, which succeeds on the same resource, must leave the
// entry carrying its charge, or the delete frees nothing and the
// project's quota stays taken for good.
func TestPutAfterAdoptionKeepsCharge(t *testing.T) {
	ctx := context.Background()
	x := index.New(registry.NewMemory())
	adopted := index.Entry{Kind: "server", ID: "s1", Project: "p", PeerID: "peer", PeerResourceID: "r1"}
	if err := x.Put(ctx, adopted); err != nil {
		t.Fatal(err)
	}
	created := adopted
	created.Charge = quota.Amounts{quota.Instances: 1, quota.Cores: 2}
	if err := x.Put(ctx, created); err != nil {
		t.Fatal(err)
	}
	for _, project := range []string{"", "p"} {
		got, err := x.Get(ctx, "server", "s1", project)
		if err != nil || got.Charge[quota.Cores] != 2 {
			t.Fatalf("entry read with project %q = %+v, %v; want the creator's charge", project, got, err)
		}
	}
	list, err := x.List(ctx, "server", "p")
	if err != nil || len(list) != 1 || list[0].Charge[quota.Cores] != 2 {
		t.Fatalf("project's copy = %+v, %v; want the creator's charge", list, err)
	}
	gone, removed, err := x.Remove(ctx, created)
	if err != nil || !removed || gone.Charge[quota.Instances] != 1 {
		t.Fatalf("remove = %+v, %v, %v; want the charge back", gone, removed, err)
	}
}

// TestPutAfterAdoptionKeepsShared: a network created shared that a
// Rebuild adopted first (its entry unmarked) is marked by its creator's
// Put, in both copies, and listed as shared.
func TestPutAfterAdoptionKeepsShared(t *testing.T) {
	ctx := context.Background()
	x := index.New(registry.NewMemory())
	adopted := index.Entry{Kind: "network", ID: "n1", Project: "p", PeerID: "peer", PeerResourceID: "r1"}
	if err := x.Put(ctx, adopted); err != nil {
		t.Fatal(err)
	}
	created := adopted
	created.Shared = true
	if err := x.Put(ctx, created); err != nil {
		t.Fatal(err)
	}
	if got, err := x.Get(ctx, "network", "n1", ""); err != nil || !got.Shared {
		t.Fatalf("entry = %+v, %v; want it shared", got, err)
	}
	if list, err := x.List(ctx, "network", "p"); err != nil || len(list) != 1 || !list[0].Shared {
		t.Fatalf("project's copy = %+v, %v; want it shared", list, err)
	}
	if shared, err := x.Shared(ctx, "network"); err != nil || len(shared) != 1 || shared[0].ID != "n1" {
		t.Fatalf("Shared = %+v, %v; want n1", shared, err)
	}
}

// TestRebuildFreesWhatItRemoves: an entry whose resource its peer no
// longer holds is removed by Rebuild, and what it counted is freed once
// in its project.
func TestRebuildFreesWhatItRemoves(t *testing.T) {
	ctx := context.Background()
	f := &freer{}
	x := index.New(registry.NewMemory()).WithFreer(f)
	a := newCloud(t, "a")
	members := []*peers.Member{{Peer: registry.Peer{ID: "peer-a", Name: "a"}, Cloud: a}}
	old := time.Now().Add(-time.Hour)
	if err := x.Put(ctx, index.Entry{Kind: "server", ID: "gone", Project: "p", PeerID: "peer-a", PeerResourceID: "no-such",
		IndexedAt: old, Charge: quota.Amounts{quota.Instances: 1, quota.RAM: 512}}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := x.Rebuild(ctx, members, "me", 10*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	if want := []string{"p instances=1", "p ram=512"}; !slices.Equal(f.freed, want) {
		t.Fatalf("freed %v; want %v", f.freed, want)
	}
}

// TestFreeCharges: the gc's removal of the entries of a removed peer
// frees each resource's charge once (its primary entry), not once per
// copy.
func TestFreeCharges(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	x := index.New(store)
	if err := x.Put(ctx, index.Entry{Kind: "volume", ID: "v1", Project: "q", PeerID: "removed", PeerResourceID: "r",
		Charge: quota.Amounts{quota.Volumes: 1, quota.Gigabytes: 10}}); err != nil {
		t.Fatal(err)
	}
	f := &freer{}
	removed := index.FreeCharges(f)
	for _, prefix := range index.LeftoverPrefixes {
		kvs, _, err := store.List(ctx, prefix)
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range kvs {
			if err := removed(ctx, kv); err != nil {
				t.Fatal(err)
			}
		}
	}
	if want := []string{"q gigabytes=10", "q volumes=1"}; !slices.Equal(f.freed, want) {
		t.Fatalf("freed %v; want %v", f.freed, want)
	}
}
