package consul_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus/hooks/test"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
	"github.com/cloudmux/cloudmux/registry/registrytest"
)

// newStore returns a Store on agent a under prefix.
func newStore(t *testing.T, a *consultest.Agent, prefix string) *consul.Store {
	t.Helper()
	log, _ := test.NewNullLogger()
	s, err := consul.New(consul.Config{Address: a.Addr, KeyPrefix: prefix}, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// ctxT bounds a test's calls generously: it turns a hang into a failure,
// it is not a timing assertion.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestConformance(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	registrytest.Exercise(t, newStore(t, a, "conformance/"))
}

// TestConformanceDefaultPrefix runs the suite through a Store built the
// way the broker builds one: the default prefix, instrumented.
func TestConformanceDefaultPrefix(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	s, err := consul.New(consul.Config{Address: "http://" + a.Addr}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Instrument(prometheus.NewRegistry())
	registrytest.Exercise(t, s)
	pairs, _, err := a.Client().KV().List("", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pairs {
		if !strings.HasPrefix(p.Key, consul.DefaultKeyPrefix) {
			t.Fatalf("key %q written outside %q", p.Key, consul.DefaultKeyPrefix)
		}
	}
}

func TestPrefixIsolation(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	ctx := ctxT(t)
	one, two := newStore(t, a, "one/"), newStore(t, a, "two/")

	if _, err := one.Put(ctx, "shared/k", []byte("from one")); err != nil {
		t.Fatal(err)
	}
	if _, err := two.Put(ctx, "shared/k", []byte("from two")); err != nil {
		t.Fatal(err)
	}
	if _, err := two.Put(ctx, "only-two", []byte("x")); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		store    *consul.Store
		wantVal  string
		wantKeys []string
	}{
		{"one", one, "from one", []string{"shared/k"}},
		{"two", two, "from two", []string{"only-two", "shared/k"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kv, err := tc.store.Get(ctx, "shared/k")
			if err != nil || string(kv.Value) != tc.wantVal || kv.Key != "shared/k" {
				t.Fatalf("Get = %q %q, %v; want key shared/k value %q", kv.Key, kv.Value, err, tc.wantVal)
			}
			kvs, _, err := tc.store.List(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, kv := range kvs {
				keys = append(keys, kv.Key)
			}
			if len(keys) != len(tc.wantKeys) {
				t.Fatalf("List(\"\") = %v, want %v (own keys, without the prefix)", keys, tc.wantKeys)
			}
			for i := range keys {
				if keys[i] != tc.wantKeys[i] {
					t.Fatalf("List(\"\") = %v, want %v (own keys, without the prefix)", keys, tc.wantKeys)
				}
			}
		})
	}

	if _, err := one.Get(ctx, "only-two"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatalf("store one sees store two's key: %v", err)
	}
	// The raw view shows where the keys really are.
	pair, _, err := a.Client().KV().Get("two/only-two", nil)
	if err != nil || pair == nil {
		t.Fatalf("raw Get(two/only-two) = %v, %v; want the prefixed key", pair, err)
	}
}

// TestDeleteCASOnMissingKeyConflicts covers where the backend departs from
// Consul's raw delete-cas (which succeeds on a missing key) to keep the
// contract: the caller's view is stale, so it is a conflict.
func TestDeleteCASOnMissingKeyConflicts(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	s := newStore(t, a, "delcas/")
	ctx := ctxT(t)
	idx, err := s.Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	for _, index := range []uint64{idx, 0} {
		if err := s.DeleteCAS(ctx, "k", index); !errors.Is(err, registry.ErrConflict) {
			t.Fatalf("DeleteCAS(missing, %d) = %v, want ErrConflict", index, err)
		}
	}
}

func TestPing(t *testing.T) {
	t.Parallel()
	a := consultest.Start(t)
	if err := newStore(t, a, "ping/").Ping(ctxT(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}
