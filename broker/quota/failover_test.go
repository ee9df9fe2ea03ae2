package quota_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry/consul"
)

type fixedLimits quota.Amounts

func (f fixedLimits) Get(context.Context, string) (quota.Amounts, error) {
	return quota.Amounts(f), nil
}

// TestLedgerThroughLeaderFailover: creates and deletes keep reserving,
// committing and freeing one project's quota through two Consul client
// agents while the Consul leader is SIGKILLed. Every call succeeds (a
// write whose answer the election lost is settled, not failed), and the
// record's usage is exactly what the calls made: nothing counted twice or
// lost.
func TestLedgerThroughLeaderFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-server Consul cluster")
	}
	cluster := consultest.StartCluster(t, 3, 2)
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	var ledgers []*quota.Ledger
	for i, c := range cluster.Clients {
		st, err := consul.New(consul.Config{Address: c.Addr, KeyPrefix: "failover/"}, log)
		if err != nil {
			t.Fatal(err)
		}
		ledgers = append(ledgers, &quota.Ledger{Store: st, Limits: fixedLimits{quota.Networks: 1 << 20}, Holder: fmt.Sprint("broker-", i), Log: log})
	}
	scope := quota.Scope{Project: "p1"}
	one := quota.Amounts{quota.Networks: 1}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	const workers = 32 // as many as the fault test's load generator
	stop := make(chan struct{})
	var made, freed atomic.Int64
	var mu sync.Mutex
	var failures []string
	var slowest []time.Duration
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := ledgers[w%len(ledgers)]
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				start := time.Now()
				err := func() error {
					res, err := l.Reserve(ctx, scope, one, "network")
					if err != nil {
						return fmt.Errorf("reserve: %w", err)
					}
					if err := res.Commit(ctx); err != nil {
						return fmt.Errorf("commit: %w", err)
					}
					made.Add(1)
					if i%2 == 1 { // every other one is deleted again
						if err := l.Free(ctx, scope, one); err != nil {
							return fmt.Errorf("free: %w", err)
						}
						freed.Add(1)
					}
					return nil
				}()
				mu.Lock()
				slowest = append(slowest, time.Since(start))
				if err != nil {
					failures = append(failures, fmt.Sprintf("%s: %v", time.Since(start).Round(time.Millisecond), err))
				}
				mu.Unlock()
			}
		}()
	}
	time.Sleep(3 * time.Second)
	leader, err := cluster.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := leader.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the leader %s", leader.NodeName)
	time.Sleep(15 * time.Second)
	close(stop)
	wg.Wait()

	sort.Slice(slowest, func(i, j int) bool { return slowest[i] > slowest[j] })
	t.Logf("%d calls made %d and freed %d; slowest %v", len(slowest), made.Load(), freed.Load(), slowest[:min(5, len(slowest))])
	if len(failures) > 0 {
		t.Errorf("%d calls failed:\n%v", len(failures), failures)
	}
	used, reserved, err := ledgers[0].Usage(ctx, scope)
	if err != nil {
		t.Fatal(err)
	}
	if want := int(made.Load() - freed.Load()); used[quota.Networks] != want || reserved[quota.Networks] != 0 {
		t.Errorf("usage %d, reserved %d; the calls made %d and freed %d (want %d used, none reserved)",
			used[quota.Networks], reserved[quota.Networks], made.Load(), freed.Load(), want)
	}
}
