package consul_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/sirupsen/logrus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// TestLeaseLost covers the ways a lease ends behind its holder's back: each
// must close Lost (bounded only by the test's context, not a timer), leave
// the key lockable by someone else at once (no lock-delay), and leave
// Release harmless.
func TestLeaseLost(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	log, hook := test.NewNullLogger()
	s, err := consul.New(consul.Config{Address: a.Addr, KeyPrefix: "leases/"}, log)
	if err != nil {
		t.Fatal(err)
	}
	raw := a.Client()

	for _, tc := range []struct {
		name     string
		takeAway func(ctx context.Context, t *testing.T, key, session string)
	}{
		{"session destroyed", func(ctx context.Context, t *testing.T, _, session string) {
			if _, err := raw.Session().Destroy(session, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
				t.Fatalf("destroy session: %v", err)
			}
		}},
		{"key deleted", func(ctx context.Context, t *testing.T, key, _ string) {
			if _, err := raw.KV().Delete("leases/"+key, (&api.WriteOptions{}).WithContext(ctx)); err != nil {
				t.Fatalf("delete key: %v", err)
			}
		}},
		{"key released by another client", func(ctx context.Context, t *testing.T, key, session string) {
			ok, _, err := raw.KV().Release(&api.KVPair{Key: "leases/" + key, Session: session}, (&api.WriteOptions{}).WithContext(ctx))
			if err != nil || !ok {
				t.Fatalf("release key = %t, %v", ok, err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			key := "job/" + t.Name()
			lease, err := s.TryLock(ctx, key, []byte("broker-a"), registry.MinLockTTL)
			if err != nil {
				t.Fatalf("TryLock: %v", err)
			}
			kv, err := s.Get(ctx, key)
			if err != nil || kv.Session == "" {
				t.Fatalf("locked key = %+v, %v; want a session", kv, err)
			}
			info, _, err := raw.Session().Info(kv.Session, (&api.QueryOptions{}).WithContext(ctx))
			if err != nil || info == nil {
				t.Fatalf("session info = %v, %v", info, err)
			}
			if info.LockDelay != 0 || info.Behavior != api.SessionBehaviorRelease || info.TTL != "10s" {
				t.Fatalf("session = lock-delay %s behavior %s ttl %s; want 0, release, 10s",
					info.LockDelay, info.Behavior, info.TTL)
			}

			tc.takeAway(ctx, t, key, kv.Session)

			select {
			case <-lease.Lost():
			case <-ctx.Done():
				t.Fatal("Lost not closed after the lock was taken away")
			}
			// The loss is logged (before Lost closes) with structured fields.
			if !slices.ContainsFunc(hook.AllEntries(), func(e *logrus.Entry) bool {
				return e.Level == logrus.WarnLevel && e.Message == "consul: lease lost" &&
					e.Data["key"] == key && e.Data["session"] == kv.Session && e.Data["reason"] != nil
			}) {
				t.Errorf("no warning with key, session and reason fields for the lost lease")
			}
			other, err := s.TryLock(ctx, key, []byte("broker-b"), registry.MinLockTTL)
			if err != nil {
				t.Fatalf("TryLock after the lease was lost: %v", err)
			}
			if err := lease.Release(ctx); err != nil {
				t.Fatalf("Release of a lost lease: %v", err)
			}
			// The lost lease's Release must not free the new holder's lock.
			if kv, err := s.Get(ctx, key); err != nil || string(kv.Value) != "broker-b" || kv.Session == "" {
				t.Fatalf("after the old holder's Release: %q session %q, %v; want broker-b still holding", kv.Value, kv.Session, err)
			}
			if err := other.Release(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestReleaseDestroysSession(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	s := newStore(t, a, "release/")
	ctx := ctxT(t)

	lease, err := s.TryLock(ctx, "k", []byte("me"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	if err := lease.Release(ctx); err != nil {
		t.Fatal(err)
	}
	info, _, err := a.Client().Session().Info(kv.Session, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil || info != nil {
		t.Fatalf("session after Release = %+v, %v; want gone", info, err)
	}
	after, err := s.Get(ctx, "k")
	if err != nil || after.Session != "" || string(after.Value) != "me" {
		t.Fatalf("key after Release = %+v, %v; want it kept, value intact, no session", after, err)
	}
}

// TestReleaseWithEndedContext: Release deferred on a shutdown path whose
// context is gone still frees the lock, and reports the context's error as
// the memory backend does.
func TestReleaseWithEndedContext(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	s := newStore(t, a, "release-ended/")
	ctx := ctxT(t)

	lease, err := s.TryLock(ctx, "k", []byte("me"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	ended, cancel := context.WithCancel(context.Background())
	cancel()
	if err := lease.Release(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Release(canceled ctx) = %v, want context.Canceled", err)
	}
	other, err := s.TryLock(ctx, "k", []byte("next"), registry.MinLockTTL)
	if err != nil {
		t.Fatalf("TryLock after a Release with an ended context: %v", err)
	}
	if err := other.Release(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestTryLockHeldLeavesNoSession: a failed TryLock must not leak its
// session (each would otherwise linger for two TTLs).
func TestTryLockHeldLeavesNoSession(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	s := newStore(t, a, "held/")
	ctx := ctxT(t)

	lease, err := s.TryLock(ctx, "k", []byte("first"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lease.Release(ctx) }()
	for range 3 {
		if _, err := s.TryLock(ctx, "k", []byte("second"), registry.MinLockTTL); !errors.Is(err, registry.ErrLockHeld) {
			t.Fatalf("TryLock on a held key = %v, want ErrLockHeld", err)
		}
	}
	sessions, _, err := a.Client().Session().List((&api.QueryOptions{}).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	if len(sessions) != 1 {
		t.Fatalf("%d sessions exist, want only the holder's", len(sessions))
	}
}

// TestLeaseOutlivesTTL holds a lease for longer than Consul would keep an
// unrenewed session (twice the TTL) and checks the renewer kept it. It is
// the one test that must wait in real time, so -short skips it.
func TestLeaseOutlivesTTL(t *testing.T) {
	if testing.Short() {
		t.Skip("waits 2×MinLockTTL in real time")
	}
	t.Parallel()
	a := consultest.Start(t)
	s := newStore(t, a, "renew/")
	ctx := ctxT(t)

	lease, err := s.TryLock(ctx, "k", []byte("me"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = lease.Release(ctx) }()
	kv, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	wait := time.NewTimer(2*registry.MinLockTTL + 2*time.Second)
	defer wait.Stop()
	select {
	case <-lease.Lost():
		t.Fatal("lease lost while its holder was renewing it")
	case <-wait.C:
	}
	info, _, err := a.Client().Session().Info(kv.Session, (&api.QueryOptions{}).WithContext(ctx))
	if err != nil || info == nil {
		t.Fatalf("session after 2×TTL = %v, %v; want renewed", info, err)
	}
	if kv, err := s.Get(ctx, "k"); err != nil || kv.Session != info.ID {
		t.Fatalf("key after 2×TTL = %+v, %v; want still held", kv, err)
	}
}

// TestLeaseLostWhenConsulStalls freezes the agent so the renew call hangs:
// Lost must still close by the TTL (Consul may free the lock from then on,
// and with zero lock-delay another broker could take it), not wait for the
// hung call.
func TestLeaseLostWhenConsulStalls(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a TTL in real time")
	}
	t.Parallel()
	a := consultest.Start(t)
	s := newStore(t, a, "stall/")
	ctx := ctxT(t)
	lease, err := s.TryLock(ctx, "k", []byte("me"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	taken := time.Now()
	thaw := a.Freeze(t)
	select {
	case <-lease.Lost():
		if held := time.Since(taken); held > registry.MinLockTTL {
			t.Fatalf("Lost closed %v after the lock was taken, later than its TTL %v", held, registry.MinLockTTL)
		}
	case <-ctx.Done():
		t.Fatal("Lost never closed while Consul was frozen")
	}
	thaw()
	_ = lease.Release(ctx)
}
