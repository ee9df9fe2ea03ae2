package quota_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// clock is a settable time source shared by the ledgers of a test, so
// expiry is tested without sleeping.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func quiet() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func newLedger(store quota.Store, holder string, clk *clock) *quota.Ledger {
	l := &quota.Ledger{Store: store, Limits: &quota.Limits{Store: store}, Holder: holder, Log: quiet()}
	if clk != nil {
		l.Now = clk.Now
	}
	return l
}

// stores are the backends the ledger is held to: the memory Store, and a
// Consul agent (two clients, as two brokers have) unless -short.
func stores(t *testing.T) map[string][2]quota.Store {
	mem := registry.NewMemory()
	out := map[string][2]quota.Store{"memory": {mem, mem}}
	if testing.Short() {
		return out
	}
	agent := consultest.Start(t)
	open := func() quota.Store {
		s, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: "quotatest/"}, quiet())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	out["consul"] = [2]quota.Store{open(), open()}
	return out
}

func TestReserveNeverPassesTheLimit(t *testing.T) {
	for name, pair := range stores(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			a, b := newLedger(pair[0], "broker-a", nil), newLedger(pair[1], "broker-b", nil)
			if _, err := a.Limits.(*quota.Limits).Set(ctx, "p1", quota.Amounts{quota.Instances: 5, quota.Cores: -1}); err != nil {
				t.Fatal(err)
			}
			var ok, refused atomic.Int32
			var wg sync.WaitGroup
			for i := range 24 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					l := a
					if i%2 == 1 {
						l = b // half through the other broker
					}
					r, err := l.Reserve(ctx, quota.Scope{Project: "p1"}, quota.Amounts{quota.Instances: 1, quota.Cores: 4}, "server")
					switch {
					case errors.Is(err, quota.ErrOverQuota):
						refused.Add(1)
						return
					case err != nil:
						t.Error(err)
						return
					}
					ok.Add(1)
					if i%3 == 0 {
						if err := r.Release(ctx); err != nil {
							t.Error(err)
						}
						return
					}
					if err := r.Commit(ctx); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			used, reserved, err := a.Usage(ctx, quota.Scope{Project: "p1"})
			if err != nil {
				t.Fatal(err)
			}
			if used[quota.Instances] > 5 || len(reserved) != 0 {
				t.Fatalf("used %v reserved %v: over the limit of 5 or reservations left", used, reserved)
			}
			if int(ok.Load())+int(refused.Load()) != 24 || ok.Load() < 5 {
				t.Fatalf("%d reserved, %d refused", ok.Load(), refused.Load())
			}
			if used[quota.Cores] != 4*used[quota.Instances] {
				t.Fatalf("cores %d for %d instances", used[quota.Cores], used[quota.Instances])
			}
		})
	}
}

func TestReservationOfADeadBrokerExpires(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	clk := &clock{now: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	dead, live := newLedger(store, "dead", clk), newLedger(store, "live", clk)
	if _, err := live.Limits.(*quota.Limits).Set(ctx, "p1", quota.Amounts{quota.Volumes: 1}); err != nil {
		t.Fatal(err)
	}
	// The dead broker reserved and never came back (its Reservation is
	// dropped without Commit or Release; its keep-alive ticks on real time,
	// a minute apart, so it never runs in this test).
	if _, err := dead.Reserve(ctx, quota.Scope{Project: "p1"}, quota.Amounts{quota.Volumes: 1}, "volume"); err != nil {
		t.Fatal(err)
	}
	_, err := live.Reserve(ctx, quota.Scope{Project: "p1"}, quota.Amounts{quota.Volumes: 1}, "volume")
	if o, ok := quota.Overs(err); !ok || o[0] != (quota.Over{Resource: quota.Volumes, Requested: 1, Used: 1, Limit: 1}) {
		t.Fatalf("while the reservation lives: %v, want volumes over 1 used of 1", err)
	}
	clk.advance(quota.DefaultTTL)
	r, err := live.Reserve(ctx, quota.Scope{Project: "p1"}, quota.Amounts{quota.Volumes: 1}, "volume")
	if err != nil {
		t.Fatalf("after the TTL the dead broker's reservation still holds: %v", err)
	}
	if err := r.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	used, reserved, _ := live.Usage(ctx, quota.Scope{Project: "p1"})
	if used[quota.Volumes] != 1 || len(reserved) != 0 {
		t.Fatalf("used %v reserved %v", used, reserved)
	}
}

func TestLedger(t *testing.T) {
	ctx := context.Background()
	p := quota.Scope{Project: "p1"}
	tests := []struct {
		name   string
		limits quota.Amounts
		used   quota.Amounts
		want   quota.Amounts
		over   []quota.Over
		err    error
	}{
		{name: "defaults fit", want: quota.Amounts{quota.Instances: 1, quota.Cores: 2, quota.RAM: 512}},
		{name: "default instances", used: quota.Amounts{quota.Instances: 10}, want: quota.Amounts{quota.Instances: 1},
			over: []quota.Over{{Resource: quota.Instances, Requested: 1, Used: 10, Limit: 10}}},
		{name: "unlimited", limits: quota.Amounts{quota.Instances: -1}, used: quota.Amounts{quota.Instances: 1000}, want: quota.Amounts{quota.Instances: 1}},
		{name: "zero allows nothing", limits: quota.Amounts{quota.Ports: 0}, want: quota.Amounts{quota.Ports: 1},
			over: []quota.Over{{Resource: quota.Ports, Requested: 1, Limit: 0}}},
		{name: "zero request never refused", limits: quota.Amounts{quota.Gigabytes: 0}, want: quota.Amounts{quota.Gigabytes: 0, quota.Volumes: 1}},
		{name: "every limit named", limits: quota.Amounts{quota.Cores: 4, quota.RAM: 1024}, used: quota.Amounts{quota.Cores: 3},
			want: quota.Amounts{quota.Instances: 1, quota.Cores: 2, quota.RAM: 2048},
			over: []quota.Over{{Resource: quota.Cores, Requested: 2, Used: 3, Limit: 4}, {Resource: quota.RAM, Requested: 2048, Limit: 1024}}},
		{name: "unknown resource", want: quota.Amounts{"floppies": 1}, err: quota.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := registry.NewMemory()
			l := newLedger(store, "b", nil)
			if tt.limits != nil {
				if _, err := l.Limits.(*quota.Limits).Set(ctx, p.Project, tt.limits); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.SetUsage(ctx, p, tt.used); err != nil {
				t.Fatal(err)
			}
			checkErr := l.Check(ctx, p, tt.want)
			r, err := l.Reserve(ctx, p, tt.want, "x")
			switch {
			case tt.err != nil:
				if !errors.Is(err, tt.err) || !errors.Is(checkErr, tt.err) {
					t.Fatalf("Reserve %v, Check %v; want %v", err, checkErr, tt.err)
				}
				return
			case tt.over != nil:
				got, ok := quota.Overs(err)
				if !ok || !equalOvers(got, tt.over) {
					t.Fatalf("Reserve: %v, want over %v", err, tt.over)
				}
				if got, _ := quota.Overs(checkErr); !equalOvers(got, tt.over) {
					t.Fatalf("Check: %v, want over %v", checkErr, tt.over)
				}
				return
			case err != nil || checkErr != nil:
				t.Fatalf("Reserve %v, Check %v", err, checkErr)
			}
			wantLimits := quota.Defaults.Clone()
			for k, v := range tt.limits {
				wantLimits[k] = v
			}
			if seen := r.Seen(); !sameAmounts(seen.Limits, wantLimits) || len(seen.Reserved) != 0 || !sameAmounts(seen.Used, tt.used) {
				t.Fatalf("Seen = %+v; want the limits and %v used, nothing else reserved", seen, tt.used)
			}
			if err := r.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := r.Commit(ctx); err != nil { // twice: counted once
				t.Fatal(err)
			}
			used, _, _ := l.Usage(ctx, p)
			for k, v := range tt.want {
				if used[k] != tt.used[k]+v {
					t.Fatalf("%s used %d, want %d", k, used[k], tt.used[k]+v)
				}
			}
			if err := l.Free(ctx, p, tt.want); err != nil {
				t.Fatal(err)
			}
			used, _, _ = l.Usage(ctx, p)
			for k := range tt.want {
				if used[k] != tt.used[k] {
					t.Fatalf("after Free %s used %d, want %d", k, used[k], tt.used[k])
				}
			}
		})
	}
}

// sameAmounts compares amounts, a missing dimension being 0.
func sameAmounts(a, b quota.Amounts) bool {
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func equalOvers(a, b []quota.Over) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOverErrorSpeaksNova(t *testing.T) {
	err := &quota.OverError{Project: "p", Over: []quota.Over{{Resource: quota.Instances, Requested: 1, Used: 2, Limit: 2}}}
	if got, want := err.Error(), "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

func TestLimitsValidate(t *testing.T) {
	ctx := context.Background()
	l := &quota.Limits{Store: registry.NewMemory()}
	tests := []struct {
		name   string
		limits quota.Amounts
		ok     bool
	}{
		{name: "unlimited", limits: quota.Amounts{quota.Instances: -1}, ok: true},
		{name: "below -1", limits: quota.Amounts{quota.Instances: -2}},
		{name: "above max", limits: quota.Amounts{quota.RAM: quota.MaxLimit + 1}},
		{name: "unknown", limits: quota.Amounts{"floppies": 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := l.Set(ctx, "p", tt.limits)
			if (err == nil) != tt.ok || (!tt.ok && !errors.Is(err, quota.ErrInvalid)) {
				t.Fatalf("Set(%v) = %v", tt.limits, err)
			}
		})
	}
	if _, err := l.Set(ctx, "a/b", quota.Amounts{}); !errors.Is(err, quota.ErrInvalid) {
		t.Fatalf("project with a slash: %v", err)
	}
	got, err := l.Get(ctx, "p")
	if err != nil || got[quota.Instances] != -1 || got[quota.Cores] != quota.Defaults[quota.Cores] {
		t.Fatalf("Get = %v, %v", got, err)
	}
	if err := l.Reset(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if got, _ := l.Get(ctx, "p"); got[quota.Instances] != quota.Defaults[quota.Instances] {
		t.Fatalf("after Reset %v", got)
	}
}
