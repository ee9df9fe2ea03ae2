package index_test

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/registry"
)

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
