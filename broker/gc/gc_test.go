package gc_test

import (
	"context"
	"errors"
	"io"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/gc"
	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// fake is a collector that reports what it is told and records the
// instants it was run at.
type fake struct {
	name    string
	removed int
	err     error
	mu      sync.Mutex
	at      []time.Time
}

func (f *fake) Name() string { return f.name }

func (f *fake) Collect(_ context.Context, now time.Time) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.at = append(f.at, now)
	return f.removed, f.err
}

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

// TestPass: a pass runs every collector at the runner's clock, a failing
// one does not stop the others, and the metrics count what each removed.
func TestPass(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	boom := errors.New("boom")
	a, b, c := &fake{name: "a", removed: 3}, &fake{name: "b", err: boom}, &fake{name: "c"}
	reg := prometheus.NewRegistry()
	r, err := gc.New(gc.Config{Locker: registry.NewMemory(), Holder: "b1", Collectors: []gc.Collector{a, b, c},
		Log: quiet(), Metrics: reg, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		ran, err := r.Pass(context.Background())
		if !ran || !errors.Is(err, boom) {
			t.Fatalf("Pass = %t, %v; want it run and b's error", ran, err)
		}
	}
	for _, f := range []*fake{a, b, c} {
		if len(f.at) != 2 || !f.at[0].Equal(now) {
			t.Errorf("%s ran at %v, want twice at %v", f.name, f.at, now)
		}
	}
	for _, tc := range []struct {
		name, collector string
		want            float64
	}{
		{"cloudmux_gc_removed_total", "a", 6},
		{"cloudmux_gc_removed_total", "b", 0},
		{"cloudmux_gc_errors_total", "b", 2},
	} {
		if got := counter(t, reg, tc.name, tc.collector); got != tc.want {
			t.Errorf("%s{collector=%q} = %v, want %v", tc.name, tc.collector, got, tc.want)
		}
	}
}

// counter reads one counter of the registry.
func counter(t *testing.T, reg *prometheus.Registry, name, collector string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "collector" && l.GetValue() == collector {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{collector=%q}", name, collector)
	return 0
}

// exclusive is a collector shared by several runners, as one record kind
// is shared by the brokers of an installation: it fails the test if two
// runners are inside Collect at once, and records who collected.
type exclusive struct {
	t      *testing.T
	inside atomic.Int32
	mu     sync.Mutex
	by     map[string]int
}

func (e *exclusive) runner(holder string) gc.Collector { return exclusiveAs{e, holder} }

type exclusiveAs struct {
	e      *exclusive
	holder string
}

func (x exclusiveAs) Name() string { return "exclusive" }

func (x exclusiveAs) Collect(context.Context, time.Time) (int, error) {
	if n := x.e.inside.Add(1); n != 1 {
		x.e.t.Errorf("%s collects while %d other runner(s) do", x.holder, n-1)
	}
	defer x.e.inside.Add(-1)
	runtime.Gosched() // give another runner the chance to be inside too
	x.e.mu.Lock()
	defer x.e.mu.Unlock()
	x.e.by[x.holder]++
	return 0, nil
}

// TestOneRunnerAtATime: two runners (two brokers) on one Store never both
// collect: the first to take the lease keeps it across passes while the
// other's passes do nothing, and the other takes over once it is let go.
func TestOneRunnerAtATime(t *testing.T) {
	tests := []struct {
		name string
		open func(t *testing.T) (registry.Locker, registry.Locker)
	}{
		{"memory", func(t *testing.T) (registry.Locker, registry.Locker) {
			m := registry.NewMemory()
			return m, m
		}},
		{"consul", func(t *testing.T) (registry.Locker, registry.Locker) {
			if testing.Short() {
				t.Skip("starts a Consul agent")
			}
			agent := consultest.Start(t)
			open := func() registry.Locker {
				s, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: "gctest/"}, quiet())
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			return open(), open() // one client each, as two processes have
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s1, s2 := tc.open(t)
			ex := &exclusive{t: t, by: map[string]int{}}
			newRunner := func(s registry.Locker, holder string) *gc.Runner {
				r, err := gc.New(gc.Config{Locker: s, Holder: holder, Collectors: []gc.Collector{ex.runner(holder)}, Log: quiet()})
				if err != nil {
					t.Fatal(err)
				}
				return r
			}
			r1, r2 := newRunner(s1, "b1"), newRunner(s2, "b2")
			if ran, err := r1.Pass(ctx); !ran || err != nil {
				t.Fatalf("first runner's pass = %t, %v; want it to collect", ran, err)
			}
			// Both pass concurrently, many times: only the holder collects.
			var wg sync.WaitGroup
			for _, r := range []*gc.Runner{r1, r2} {
				wg.Go(func() {
					for range 20 {
						if _, err := r.Pass(ctx); err != nil {
							t.Error(err)
						}
					}
				})
			}
			wg.Wait()
			if ex.by["b1"] != 21 || ex.by["b2"] != 0 {
				t.Fatalf("passes collected by holder %v, want all 21 by b1", ex.by)
			}
			if err := r1.Release(ctx); err != nil {
				t.Fatal(err)
			}
			if ran, err := r2.Pass(ctx); !ran || err != nil {
				t.Fatalf("second runner's pass after the release = %t, %v; want it to collect", ran, err)
			}
			if ran, err := r1.Pass(ctx); ran || err != nil {
				t.Fatalf("first runner's pass after handing over = %t, %v; want nothing", ran, err)
			}
			if err := r2.Release(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestLostLease: a runner whose lease expired (its broker stalled past
// the TTL) stops collecting, and the other broker takes over.
func TestLostLease(t *testing.T) {
	ctx := context.Background()
	m := registry.NewMemory()
	a, b := &fake{name: "a"}, &fake{name: "b"}
	r1, err := gc.New(gc.Config{Locker: m, Holder: "b1", Collectors: []gc.Collector{a}, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	r2, err := gc.New(gc.Config{Locker: m, Holder: "b2", Collectors: []gc.Collector{b}, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if ran, _ := r1.Pass(ctx); !ran {
		t.Fatal("r1 did not collect")
	}
	m.ExpireLeases()
	if ran, _ := r2.Pass(ctx); !ran {
		t.Fatal("r2 did not take over the expired lease")
	}
	if ran, _ := r1.Pass(ctx); ran {
		t.Fatal("r1 collected with its lease lost")
	}
	if len(a.at) != 1 || len(b.at) != 1 {
		t.Fatalf("a ran %d times, b %d; want once each", len(a.at), len(b.at))
	}
}

// TestLocalCollectors: a broker's own collectors run on every pass, the
// installation's only under the lease.
func TestLocalCollectors(t *testing.T) {
	ctx := context.Background()
	m := registry.NewMemory()
	holder, err := m.TryLock(ctx, gc.DefaultKey, []byte("other broker"), registry.MinLockTTL)
	if err != nil {
		t.Fatal(err)
	}
	local, shared := &fake{name: "local"}, &fake{name: "shared"}
	r, err := gc.New(gc.Config{Locker: m, Holder: "b1", Collectors: []gc.Collector{shared}, Local: []gc.Collector{local}, Log: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if ran, err := r.Pass(ctx); ran || err != nil {
		t.Fatalf("Pass with another broker holding the lease = %t, %v", ran, err)
	}
	if err := holder.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if ran, err := r.Pass(ctx); !ran || err != nil {
		t.Fatalf("Pass with the lease free = %t, %v", ran, err)
	}
	if len(local.at) != 2 || len(shared.at) != 1 {
		t.Fatalf("local ran %d times, shared %d; want 2 and 1", len(local.at), len(shared.at))
	}
}
