package registry_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/registrytest"
)

// BenchmarkPeerLookup measures the request hot path: resolving a peer by
// name from the watch-fed snapshot. It reports store_calls/op, which must be
// 0: the hot path never reaches the store (Consul, in production).
func BenchmarkPeerLookup(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	counting := registrytest.NewCountingStore(registry.NewMemory())
	reg := registry.NewPeerRegistry(counting)
	const n = 200
	var last uint64
	for i := range n {
		p, err := reg.Create(ctx, registry.Peer{Name: fmt.Sprintf("peer-%03d", i), Kind: registry.KindLocal}, nil)
		if err != nil {
			b.Fatal(err)
		}
		last = p.Revision
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	snap := registry.NewPeerSnapshot(counting, log)
	go func() { _ = snap.Run(ctx) }()
	if err := snap.WaitIndex(ctx, last); err != nil {
		b.Fatal(err)
	}
	// The snapshot's own watch is one long-lived call, already counted;
	// from here every counted call would be the hot path's.
	counting.Reset()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, ok := snap.View().Lookup(fmt.Sprintf("peer-%03d", i%n)); !ok {
			b.Fatal("lookup missed")
		}
		i++
	}
	b.ReportMetric(float64(counting.Calls())/float64(b.N), "store_calls/op")
	if counting.Calls() != 0 {
		b.Fatalf("the hot path made %d store calls", counting.Calls())
	}
}
