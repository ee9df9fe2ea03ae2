package index_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/registry"
)

// TestIndex holds the index to its contract both served from memory (as
// brokers run it) and read from the Store (not running).
func TestIndex(t *testing.T) {
	for _, mode := range []struct {
		name    string
		running bool
	}{{"in memory", true}, {"from the store", false}} {
		t.Run(mode.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			x := index.New(registry.NewMemory())
			if mode.running {
				go func() { _ = x.Run(ctx) }()
				if err := x.WaitReady(ctx); err != nil {
					t.Fatal(err)
				}
			}
			exerciseIndex(t, x)
		})
	}
}

func exerciseIndex(t *testing.T, x *index.Index) {
	ctx := context.Background()
	a := index.Entry{Kind: "volume", ID: "v1", Project: "pa", PeerID: "peer1", PeerResourceID: "p-v1"}
	b := index.Entry{Kind: "volume", ID: "v2", Project: "pb", PeerID: "peer2", PeerResourceID: "p-v2"}
	for _, e := range []index.Entry{a, b} {
		if err := x.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Put(ctx, a); err != nil {
		t.Fatalf("a second Put of the same resource = %v, want success", err)
	}
	clash := a
	clash.PeerResourceID = "p-other"
	if err := x.Put(ctx, clash); !errors.Is(err, registry.ErrConflict) {
		t.Fatalf("Put of a taken ID for another resource = %v, want ErrConflict", err)
	}
	tests := []struct {
		name, id, project string
		found             bool
	}{
		{"own", "v1", "pa", true},
		{"any project (admin)", "v1", "", true},
		{"another project's is not found", "v1", "pb", false},
		{"missing", "nope", "pa", false},
		{"path-like id", "../v1", "pa", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e, err := x.Get(ctx, "volume", tc.id, tc.project)
			if tc.found && (err != nil || e.PeerResourceID != "p-v1") {
				t.Fatalf("Get = %+v, %v", e, err)
			}
			if !tc.found && !errors.Is(err, index.ErrNotFound) {
				t.Fatalf("Get = %+v, %v; want ErrNotFound", e, err)
			}
		})
	}
	mine, err := x.List(ctx, "volume", "pa")
	if err != nil || len(mine) != 1 || mine[0].ID != "v1" {
		t.Fatalf("List(pa) = %+v, %v", mine, err)
	}
	all, err := x.List(ctx, "volume", "")
	if err != nil || len(all) != 2 {
		t.Fatalf("List(all) = %+v, %v", all, err)
	}
	if err := x.Delete(ctx, a); err != nil {
		t.Fatal(err)
	}
	if mine, _ := x.List(ctx, "volume", "pa"); len(mine) != 0 {
		t.Fatalf("List after Delete = %+v", mine)
	}
}
