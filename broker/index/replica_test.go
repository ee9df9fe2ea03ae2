package index

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cloudmux/cloudmux/registry"
)

func running(t testing.TB, ctx context.Context, store Store) *Index {
	t.Helper()
	x := New(store)
	go func() { _ = x.Run(ctx) }()
	if err := x.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return x
}

// TestReplicas: two brokers' indexes over one store. The writer reads its
// writes at once; the other finds a fresh entry by ID before its watch
// delivers it (one key read), and lists it once delivered; deletes go the
// same way.
func TestReplicas(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()
	store := registry.NewMemory()
	a, b := running(t, ctx, store), running(t, ctx, store)
	e := Entry{Kind: "server", ID: "s1", Project: "p1", PeerID: "peer", PeerResourceID: "ps1"}
	if err := a.Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	if got, err := a.List(ctx, "server", "p1"); err != nil || len(got) != 1 {
		t.Fatalf("the writer's list = %+v, %v", got, err)
	}
	if got, err := b.Get(ctx, "server", "s1", "p1"); err != nil || got.PeerResourceID != "ps1" {
		t.Fatalf("the other's Get = %+v, %v", got, err)
	}
	if _, err := b.Get(ctx, "server", "s1", "p2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("another project's Get = %v", err)
	}
	kv, err := store.Get(ctx, primaryKey("server", "s1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.mirror.WaitIndex(ctx, kv.ModifyIndex); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.List(ctx, "server", "p1"); len(got) != 1 || got[0].ID != "s1" {
		t.Fatalf("the other's list = %+v", got)
	}
	if err := b.Delete(ctx, e); err != nil {
		t.Fatal(err)
	}
	if got, _ := b.List(ctx, "server", "p1"); len(got) != 0 {
		t.Fatalf("the deleter's list = %+v", got)
	}
	marker := Entry{Kind: "server", ID: "s2", Project: "p2", PeerID: "peer", PeerResourceID: "ps2"}
	if err := b.Put(ctx, marker); err != nil {
		t.Fatal(err)
	}
	kv, err = store.Get(ctx, primaryKey("server", "s2"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.mirror.WaitIndex(ctx, kv.ModifyIndex); err != nil {
		t.Fatal(err)
	}
	if got, _ := a.List(ctx, "server", ""); len(got) != 1 || got[0].ID != "s2" {
		t.Fatalf("the first's list after the other's delete = %+v", got)
	}
	if _, err := a.Get(ctx, "server", "s1", ""); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of the deleted entry = %v", err)
	}
}

// BenchmarkProjectList10k: a project's list and a broker's Get with
// 10,000 other projects' entries in the index, and the time for an entry
// another broker writes to reach this one's memory (Store write, watch
// answer of the whole prefix, apply).
func BenchmarkProjectList10k(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store := registry.NewMemory()
	writer := New(store)
	for i := range 10000 {
		if err := writer.Put(ctx, Entry{Kind: "server", ID: fmt.Sprintf("s%05d", i), Project: fmt.Sprintf("p%d", i), PeerID: "peer"}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 5 {
		if err := writer.Put(ctx, Entry{Kind: "server", ID: fmt.Sprintf("mine%d", i), Project: "mine", PeerID: "peer"}); err != nil {
			b.Fatal(err)
		}
	}
	x := running(b, ctx, store)
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			if got, _ := x.List(ctx, "server", "mine"); len(got) != 5 {
				b.Fatalf("got %d", len(got))
			}
		}
	})
	b.Run("get", func(b *testing.B) {
		for b.Loop() {
			if _, err := x.Get(ctx, "server", "mine3", "mine"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("propagation", func(b *testing.B) {
		i := 0
		for b.Loop() {
			i++
			id := fmt.Sprintf("new%d", i)
			if err := writer.Put(ctx, Entry{Kind: "server", ID: id, Project: "other", PeerID: "peer"}); err != nil {
				b.Fatal(err)
			}
			kv, err := store.Get(ctx, primaryKey("server", id))
			if err != nil {
				b.Fatal(err)
			}
			if err := x.mirror.WaitIndex(ctx, kv.ModifyIndex); err != nil {
				b.Fatal(err)
			}
		}
	})
}
