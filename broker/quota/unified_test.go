package quota_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/registry"
)

// newReplica starts memory-backed limits over store, as one broker.
func newReplica(t *testing.T, store registry.Store) *quota.Limits {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	l := quota.NewLimits(store, quiet())
	go func() { _ = l.Run(ctx) }()
	if err := l.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return l
}

// waitFor polls cond on another replica until the watch delivers a write.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; !cond(); i++ {
		if i > 5000 {
			t.Fatalf("another replica never saw %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestUnifiedLimitRecords: limits served from memory read the records of
// older brokers (a bare amounts object), defaults an admin set overlay
// the built-in ones for every project without its own, limits carry
// descriptions and stable IDs, and another replica sees every write.
func TestUnifiedLimitRecords(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	if _, err := store.Put(ctx, "quotas/old", []byte(`{"instances":2}`)); err != nil {
		t.Fatal(err)
	}
	a, b := newReplica(t, store), newReplica(t, store)
	if q, err := a.Get(ctx, "old"); err != nil || q[quota.Instances] != 2 || q[quota.Cores] != 20 {
		t.Fatalf("old record = %v, %v", q, err)
	}

	seven, desc := 7, "seven"
	if _, err := a.SetDefault(ctx, quota.Networks, &seven, &desc, true); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetDefault(ctx, quota.Networks, &seven, nil, true); !errors.Is(err, quota.ErrExists) {
		t.Fatalf("second create = %v, want ErrExists", err)
	}
	if q, _ := a.Get(ctx, "old"); q[quota.Networks] != 7 {
		t.Fatalf("the new default did not reach a project: %v", q)
	}
	waitFor(t, "the default", func() bool { return b.Defaults()[quota.Networks] == 7 })

	three, why := 3, "three"
	l, err := a.SetLimit(ctx, "p", quota.Volumes, &three, &why, true)
	if err != nil || l.ID != quota.LimitID("p", quota.Volumes) || l.Description != "three" {
		t.Fatalf("SetLimit = %+v, %v", l, err)
	}
	if _, err := a.SetLimit(ctx, "p", quota.Snapshots, &three, nil, false); !errors.Is(err, quota.ErrNotSet) {
		t.Fatalf("update of an unset limit = %v, want ErrNotSet", err)
	}
	// os-quota-sets' write keeps the description of a limit it sets.
	if _, err := a.Set(ctx, "p", quota.Amounts{quota.Volumes: 4, quota.Instances: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the limit", func() bool {
		got, err := b.LimitByID(ctx, quota.LimitID("p", quota.Volumes))
		return err == nil && got.Limit == 4 && got.Description == "three"
	})
	ls, err := b.ProjectLimits(ctx, "p")
	if err != nil || len(ls) != 2 || ls[0].Resource != quota.Instances || ls[1].Resource != quota.Volumes {
		t.Fatalf("ProjectLimits = %+v, %v", ls, err)
	}
	if _, err := a.Unset(ctx, "p", quota.Volumes); err != nil {
		t.Fatal(err)
	}
	if _, err := a.LimitByID(ctx, quota.LimitID("p", quota.Volumes)); !errors.Is(err, quota.ErrNotSet) {
		t.Fatalf("unset limit by ID = %v, want ErrNotSet", err)
	}
	waitFor(t, "the unset", func() bool {
		q, _ := b.Get(ctx, "p")
		return q[quota.Volumes] == quota.Defaults[quota.Volumes]
	})
	if err := a.UnsetDefault(ctx, quota.Networks); err != nil {
		t.Fatal(err)
	}
	if err := a.UnsetDefault(ctx, quota.Networks); !errors.Is(err, quota.ErrNotSet) {
		t.Fatalf("unset of a built-in default = %v, want ErrNotSet", err)
	}
	waitFor(t, "the default's delete", func() bool { return b.Defaults()[quota.Networks] == 100 })
	all, err := b.AllLimits(ctx)
	if err != nil || len(all) != 2 { // old's instances, p's instances
		t.Fatalf("AllLimits = %+v, %v", all, err)
	}
}
