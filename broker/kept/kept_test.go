package kept_test

import (
	"context"
	"errors"
	"maps"
	"testing"

	"github.com/cloudmux/cloudmux/broker/kept"
	"github.com/cloudmux/cloudmux/registry"
)

type note struct {
	Name string `json:"name"`
}

// TestAttrs: a write CASes on what Load read, a stale index loses, and
// View and Project show the writes and the delete, with the memory run
// (which holds this process's writes at once) and without it (which
// reads the Store).
func TestAttrs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		memory bool
	}{
		{name: "memory", memory: true},
		{name: "store only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			store := registry.NewMemory()
			a := kept.Attrs[note]{Store: store, Root: "test/attrs/"}
			if tc.memory {
				a.Memory = kept.NewMemory[note](store, a.Root, nil)
				go func() { _ = a.Memory.Run(ctx) }()
				if err := a.Memory.WaitReady(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if v, at, err := a.Load(ctx, "p1", "x"); err != nil || at != 0 || v != (note{}) {
				t.Fatalf("load of none: %+v at %d, %v", v, at, err)
			}
			if err := a.CAS(ctx, "p1", "x", note{Name: "one"}, 0); err != nil {
				t.Fatal(err)
			}
			if err := a.CAS(ctx, "p2", "y", note{Name: "other"}, 0); err != nil {
				t.Fatal(err)
			}
			v, at, err := a.Load(ctx, "p1", "x")
			if err != nil || v.Name != "one" || at == 0 {
				t.Fatalf("load: %+v at %d, %v", v, at, err)
			}
			if err := a.CAS(ctx, "p1", "x", note{Name: "two"}, at); err != nil {
				t.Fatal(err)
			}
			if err := a.CAS(ctx, "p1", "x", note{Name: "stale"}, at); !errors.Is(err, registry.ErrConflict) {
				t.Fatalf("a CAS at a stale index: %v, want ErrConflict", err)
			}
			if v, err := a.View(ctx, "p1", "x"); err != nil || v.Name != "two" {
				t.Fatalf("view: %+v, %v", v, err)
			}
			got, err := a.Project(ctx, "p1")
			if want := map[string]note{"x": {Name: "two"}}; err != nil || !maps.Equal(got, want) {
				t.Fatalf("project p1: %v, %v; want %v", got, err, want)
			}
			if all, err := a.Project(ctx, ""); err != nil || len(all) != 2 {
				t.Fatalf("every project: %v, %v", all, err)
			}
			for range 2 { // a second delete finds none: no error
				if err := a.Delete(ctx, "p1", "x"); err != nil {
					t.Fatal(err)
				}
			}
			if v, err := a.View(ctx, "p1", "x"); err != nil || v != (note{}) {
				t.Fatalf("view after the delete: %+v, %v", v, err)
			}
			if _, err := store.Get(ctx, a.Key("p1", "x")); !errors.Is(err, registry.ErrNotFound) {
				t.Fatalf("the record outlives its delete: %v", err)
			}
		})
	}
}
