package ec2

import (
	"context"
	"sync"
	"testing"

	"github.com/google/uuid"

	"github.com/cloudmux/cloudmux/registry"
)

// TestIDsCollisionAndReplicas: an EC2 ID another resource holds is never
// shared (the next candidate is taken), and replicas mapping the same UUID
// at once agree on one ID.
func TestIDsCollisionAndReplicas(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	a, b := uuid.NewString(), uuid.NewString()
	// Another resource already holds b's first candidate.
	if _, err := store.CAS(ctx, "ec2/ids/"+candidate(prefixInstance, b, 0), []byte(a), 0); err != nil {
		t.Fatal(err)
	}
	// Shown before any pair is recorded, by a loaded replica and by one
	// reading the Store, b's ID is the candidate nobody holds, and showing
	// it writes nothing.
	loaded := newIDs(store, nil)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _ = loaded.mirror.Run(runCtx) }()
	if err := loaded.mirror.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	_, before, _ := store.List(ctx, "ec2/")
	for name, m := range map[string]*ids{"loaded": loaded, "reading the store": newIDs(store, nil)} {
		if got, err := m.shown(ctx, prefixInstance, b); err != nil || got != candidate(prefixInstance, b, 1) {
			t.Fatalf("%s: shown = %s, %v; want the second candidate", name, got, err)
		}
	}
	if _, after, _ := store.List(ctx, "ec2/"); after != before {
		t.Fatalf("showing an ID wrote to the Store (index %d -> %d)", before, after)
	}
	m := newIDs(store, nil)
	got, err := m.assign(ctx, prefixInstance, b)
	if err != nil {
		t.Fatal(err)
	}
	if got != candidate(prefixInstance, b, 1) {
		t.Fatalf("assign = %s; want the second candidate %s", got, candidate(prefixInstance, b, 1))
	}
	if back, err := newIDs(store, nil).resolve(ctx, prefixInstance, got); err != nil || back != b {
		t.Fatalf("resolve(%s) = %s, %v; want %s", got, back, err, b)
	}
	if _, err := m.resolve(ctx, prefixInstance, "i-0123456789abcdef0"); err != errUnknownID {
		t.Fatalf("resolve of an unmapped ID = %v", err)
	}
	if _, err := m.resolve(ctx, prefixVolume, got); err != errUnknownID {
		t.Fatalf("an instance ID resolved as a volume: %v", err)
	}

	c := uuid.NewString()
	const replicas = 8
	ids := make([]string, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := newIDs(store, nil).assign(ctx, prefixVolume, c)
			if err != nil {
				t.Error(err)
			}
			ids[i] = id
		}()
	}
	wg.Wait()
	for _, id := range ids {
		if id != ids[0] || len(id) != len("vol-")+17 {
			t.Fatalf("replicas disagree: %v", ids)
		}
	}
}
