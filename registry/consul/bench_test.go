package consul_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
	"github.com/cloudmux/cloudmux/registry/registrytest"
)

func quietLog() logrus.FieldLogger {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return l
}

func newBroker(b *testing.B, agent *consultest.Agent, prefix string) registry.Store {
	s, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: prefix}, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkPeerChangePropagation measures how long a peer change made on one
// broker takes to be visible in another broker's snapshot through Consul:
// the clock starts before the write (a CAS through Consul's transaction API)
// and stops when the other side's blocking query has delivered it. The two brokers use separate Consul clients, as two
// processes would. Goal: under 100 ms.
func BenchmarkPeerChangePropagation(b *testing.B) {
	agent := consultest.Start(b)
	prefix := fmt.Sprintf("bench-%d/", time.Now().UnixNano())
	writer := registry.NewPeerRegistry(newBroker(b, agent, prefix))
	readerStore := newBroker(b, agent, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	snap := registry.NewPeerSnapshot(readerStore, quietLog())
	go func() { _ = snap.Run(ctx) }()

	p, err := writer.Create(ctx, registry.Peer{Name: "bench", Kind: registry.KindLocal}, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := snap.WaitIndex(ctx, p.Revision); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		p.Labels = map[string]string{"round": fmt.Sprint(i)}
		i++
		start := time.Now()
		p, err = writer.Update(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		if err := snap.WaitIndex(ctx, p.Revision); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
		if got, _ := snap.View().Get(p.ID); got.Labels["round"] != p.Labels["round"] {
			b.Fatalf("snapshot at the new index shows round %q, want %q", got.Labels["round"], p.Labels["round"])
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(lat[len(lat)/2]), "p50-propagation-ms")
	b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-propagation-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-propagation-ms")
}

// BenchmarkPeerLookupConsul is the hot-path lookup with the snapshot fed by
// Consul: store_calls/op must be 0.
func BenchmarkPeerLookupConsul(b *testing.B) {
	agent := consultest.Start(b)
	counting := registrytest.NewCountingStore(newBroker(b, agent, fmt.Sprintf("lookup-%d/", time.Now().UnixNano())))
	reg := registry.NewPeerRegistry(counting)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const n = 50
	var last uint64
	for i := range n {
		p, err := reg.Create(ctx, registry.Peer{Name: fmt.Sprintf("peer-%02d", i), Kind: registry.KindLocal}, nil)
		if err != nil {
			b.Fatal(err)
		}
		last = p.Revision
	}
	snap := registry.NewPeerSnapshot(counting, quietLog())
	go func() { _ = snap.Run(ctx) }()
	if err := snap.WaitIndex(ctx, last); err != nil {
		b.Fatal(err)
	}
	counting.Reset()
	i := 0
	b.ResetTimer()
	for b.Loop() {
		if _, ok := snap.View().Lookup(fmt.Sprintf("peer-%02d", i%n)); !ok {
			b.Fatal("lookup missed")
		}
		i++
	}
	b.ReportMetric(float64(counting.Calls())/float64(b.N), "store_calls/op")
	if counting.Calls() != 0 {
		b.Fatalf("the hot path made %d Consul calls", counting.Calls())
	}
}
