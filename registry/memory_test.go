package registry_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/registrytest"
)

func TestMemoryConformance(t *testing.T) {
	registrytest.Exercise(t, registry.NewMemory())
}

func TestMemoryInjectFault(t *testing.T) {
	m := registry.NewMemory()
	ctx := context.Background()
	boom := errors.New("disk on fire")
	m.InjectFault(func(op registry.Op, key string) error {
		if op == registry.OpPut && key == "broken" {
			return boom
		}
		return nil
	})
	if _, err := m.Put(ctx, "broken", []byte("x")); !errors.Is(err, boom) {
		t.Fatalf("Put(broken) = %v, want injected fault", err)
	}
	if _, err := m.Get(ctx, "broken"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("a faulted Put wrote anyway: %v", err)
	}
	if _, err := m.Put(ctx, "fine", []byte("x")); err != nil {
		t.Fatalf("unfaulted Put: %v", err)
	}
	m.InjectFault(nil)
	if _, err := m.Put(ctx, "broken", []byte("x")); err != nil {
		t.Fatalf("Put after clearing the fault: %v", err)
	}
}

func TestMemoryExpireLeases(t *testing.T) {
	m := registry.NewMemory()
	ctx := context.Background()
	lease, err := m.TryLock(ctx, "deployments/d1/owner", []byte("a"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	m.ExpireLeases()
	select {
	case <-lease.Lost():
	default:
		t.Fatal("Lost not closed after the lease expired")
	}
	if _, err := m.TryLock(ctx, "deployments/d1/owner", []byte("b"), time.Minute); err != nil {
		t.Fatalf("lock not free after its lease expired: %v", err)
	}
}

func TestMemoryChangesConformance(t *testing.T) {
	registrytest.ExerciseChanges(t, registry.NewMemory())
}
