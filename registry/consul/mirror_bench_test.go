package consul_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
)

// countSink counts what a Mirror holds.
type countSink struct {
	mu sync.Mutex
	n  map[string]bool
}

func (s *countSink) Set(key string, _ []byte) { s.mu.Lock(); s.n[key] = true; s.mu.Unlock() }
func (s *countSink) Unset(key string)         { s.mu.Lock(); delete(s.n, key); s.mu.Unlock() }

func rawValue(kv registry.KV) ([]byte, error) { return kv.Value, nil }

// BenchmarkMirror10k: a Mirror of a prefix holding 10,000 records (the
// size of the resource index with 10,000 servers) on one broker, fed by
// Consul's blocking queries, each of which answers with the whole prefix.
// It reports how long a record another broker writes takes to reach the
// mirror: the write, the rest of the coalescing wait (which keeps a busy
// prefix from being fetched whole once per write), the answer and the
// apply.
func BenchmarkMirror10k(b *testing.B) {
	agent := consultest.Start(b)
	prefix := fmt.Sprintf("bench-mirror-%d/", time.Now().UnixNano())
	writer, readerStore := newBroker(b, agent, prefix), newBroker(b, agent, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	value := []byte(`{"kind":"server","id":"00000000-0000-0000-0000-000000000000","project":"0123456789abcdef0123456789abcdef","peer_id":"p","peer_resource_id":"r"}`)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for i := range work {
				if _, err := writer.Put(ctx, fmt.Sprintf("index/server/%05d", i), value); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range 10000 {
		work <- i
	}
	close(work)
	wg.Wait()
	listStart := time.Now()
	if kvs, _, err := readerStore.List(ctx, "index/"); err != nil || len(kvs) != 10000 {
		b.Fatalf("List = %d records, %v", len(kvs), err)
	}
	listTook := time.Since(listStart)
	sink := &countSink{n: map[string]bool{}}
	m := registry.NewMirror(readerStore, "index/", rawValue, registry.Sink[[]byte](sink), quietLog())
	go func() { _ = m.Run(ctx) }()
	if err := m.WaitReady(ctx); err != nil {
		b.Fatal(err)
	}
	lat := make([]time.Duration, 0, b.N)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		start := time.Now()
		idx, err := writer.Put(ctx, fmt.Sprintf("index/server/new-%d", i), value)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.WaitIndex(ctx, idx); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	sink.mu.Lock()
	held := len(sink.n)
	sink.mu.Unlock()
	if held != 10000+i {
		b.Fatalf("the mirror holds %d records, want %d", held, 10000+i)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "propagation-p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "propagation-p99-ms")
	b.ReportMetric(float64(listTook.Microseconds())/1000, "list-10k-ms")
}
