package consul_test

import (
	"context"
	"testing"

	"github.com/hashicorp/consul/api"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// TestLivenessEndsLeases: once a broker runs its liveness check, its
// sessions are bound to it, so the check turning critical (what a killed
// broker's check does within consul.LivenessTTL) ends every lease it holds
// at once, instead of one to two session TTLs later; a clean stop
// deregisters the broker's instance.
func TestLivenessEndsLeases(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	s := newStore(t, a, "liveness/")
	raw := a.Client()
	ctx := ctxT(t)
	liveCtx, stop := context.WithCancel(ctx)
	done := s.StartLiveness(liveCtx, "b1")

	svcs, err := raw.Agent().ServicesWithFilter(`Service == "` + consul.BrokerServiceName + `"`)
	if err != nil || svcs[consul.BrokerServiceID("b1")] == nil {
		t.Fatalf("broker instance not registered: %v %v", svcs, err)
	}
	lease, err := s.TryLock(ctx, "job/1", []byte("b1"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := s.Get(ctx, "job/1")
	if err != nil {
		t.Fatal(err)
	}
	info, _, err := raw.Session().Info(kv.Session, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil || info == nil {
		t.Fatalf("session info: %v %v", info, err)
	}
	if len(info.ServiceChecks) != 1 || info.ServiceChecks[0].ID != consul.BrokerCheckID("b1") {
		t.Fatalf("session service checks %+v, want the broker's liveness check", info.ServiceChecks)
	}
	if len(info.NodeChecks) != 1 || info.NodeChecks[0] != "serfHealth" {
		t.Fatalf("session node checks %v, want serfHealth kept", info.NodeChecks)
	}

	// What a dead broker's check does once its TTL runs out.
	if err := raw.Agent().UpdateTTL(consul.BrokerCheckID("b1"), "test: the broker died", api.HealthCritical); err != nil {
		t.Fatal(err)
	}
	select {
	case <-lease.Lost():
	case <-ctx.Done():
		t.Fatal("the lease outlived its broker's critical liveness check")
	}
	other, err := s.TryLock(ctx, "job/1", []byte("b2"), registry.MinLockTTL)
	if err != nil {
		t.Fatalf("the lock is not free after the broker's check went critical: %v", err)
	}
	_ = other.Release(ctx)

	stop()
	<-done
	svcs, err = raw.Agent().ServicesWithFilter(`Service == "` + consul.BrokerServiceName + `"`)
	if err != nil || len(svcs) != 0 {
		t.Fatalf("after a clean stop the broker is still registered: %v %v", svcs, err)
	}
	// Sessions made after the stop are not bound to a check that is gone.
	l, err := s.TryLock(ctx, "job/2", []byte("b1"), registry.MinLockTTL)
	if err != nil {
		t.Fatalf("TryLock after liveness stopped: %v", err)
	}
	_ = l.Release(ctx)
}
