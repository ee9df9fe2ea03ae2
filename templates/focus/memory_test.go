package focus

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/cloudmux/cloudmux/registry"
)

// TestCatalogInMemory runs the catalog's tests again with its Memory
// running: the answers are the same as from the Store.
func TestCatalogInMemory(t *testing.T) {
	inMemory = true
	t.Cleanup(func() { inMemory = false })
	for _, tc := range []struct {
		name string
		test func(*testing.T)
	}{
		{"push", TestPushIsContentAddressed},
		{"concurrent pushes", TestConcurrentPushes},
		{"diff and relationships", TestDiffAndRelationships},
		{"bindings", TestBindings},
		{"projects and public", TestProjectsAndPublic},
	} {
		t.Run(tc.name, tc.test)
	}
}

// listCounter counts the List calls that reach a Store.
type listCounter struct {
	registry.Store
	lists atomic.Int64
}

func (c *listCounter) List(ctx context.Context, prefix string) ([]registry.KV, uint64, error) {
	c.lists.Add(1)
	return c.Store.List(ctx, prefix)
}

// TestMemoryListsNothing: with Memory running, listing templates (the
// project's and the public ones) and bindings, and reading a template's
// latest version, list no Store prefix; a version pushed through another
// replica is the latest here at once (before the watch brings it), and
// shows in the list once the watch has.
func TestMemoryListsNothing(t *testing.T) {
	ctx := context.Background()
	store := &listCounter{Store: registry.NewMemory()}
	c := &Catalog{Store: store}
	c.Memory = runMemory(t, store)
	other := &Catalog{Store: store.Store} // a replica without memory
	if _, _, err := c.Push(ctx, "admin-p", "net", []byte(netV1), "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Publish(ctx, "admin-p", "net", "1", "root"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Push(ctx, "p1", "web", []byte(webV1), "alice"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.PushBinding(ctx, "p1", "prod", BindingSpec{Template: "web"}, "alice"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		read  func() (any, error)
		check func(any) bool
	}{
		{"templates", func() (any, error) { return c.List(ctx, "p1") }, func(v any) bool {
			l := v.([]Summary)
			return len(l) == 2 && l[0].Name == "net" && l[0].Public && l[1].Name == "web" && l[1].Latest == 1
		}},
		{"bindings", func() (any, error) { return c.Bindings(ctx, "p1") }, func(v any) bool {
			l := v.([]Binding)
			return len(l) == 1 && l[0].Name == "prod" && l[0].Template == "web@1" && l[0].Project == "p1"
		}},
		{"latest", func() (any, error) { return c.Get(ctx, "p1", "web", "latest") }, func(v any) bool {
			got := v.(Version)
			return got.Version == 1 && got.Source == webV1
		}},
		{"public latest", func() (any, error) { return c.Get(ctx, "p1", "net", "") }, func(v any) bool {
			got := v.(Version)
			return got.Version == 1 && got.Public && got.Project == "admin-p"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store.lists.Store(0)
			got, err := tt.read()
			if err != nil || !tt.check(got) {
				t.Fatalf("got %+v, %v", got, err)
			}
			if n := store.lists.Load(); n != 0 {
				t.Fatalf("%d Store lists, want 0", n)
			}
		})
	}

	// Another replica pushes version 2: the latest here at once.
	v2, _, err := other.Push(ctx, "p1", "web", []byte(webV2), "bob")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "p1", "web", "latest"); err != nil || got.Version != v2.Version || got.Source != webV2 {
		t.Fatalf("latest after another replica's push: %+v, %v; want version %d", got, err, v2.Version)
	}
	_, at, err := store.Store.List(ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Memory.mirror.WaitIndex(ctx, at); err != nil {
		t.Fatal(err)
	}
	store.lists.Store(0)
	if l, err := c.List(ctx, "p1"); err != nil || len(l) != 2 || l[1].Latest != 2 || store.lists.Load() != 0 {
		t.Fatalf("list once the watch brought version 2: %+v, %v, %d Store lists", l, err, store.lists.Load())
	}
}
