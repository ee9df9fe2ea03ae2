package policy_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// churnFlavors are the three flavors the churn benchmark mixes: a
// placement engine that keeps only the last request's shape per peer
// rebuilds every peer on every decision when flavors alternate.
var churnFlavors = []struct{ vcpus, ram, disk int }{{1, 2048, 20}, {2, 4096, 40}, {8, 16384, 80}}

// churnRequest is the i-th request of the churn benchmark: benchRequest
// (every stock rule that scores) in one of three flavors, with the
// project's usage changing every time, as it does when servers land.
func churnRequest(i int) policy.Request {
	r := benchRequest
	f := churnFlavors[i%len(churnFlavors)]
	r.VCPUs, r.RAMMiB, r.DiskGiB = f.vcpus, f.ram, f.disk
	r.Usage = &policy.Usage{VCPUs: 10 + i%50, RAMMiB: 4096 * (i % 50), Instances: i % 50}
	return r
}

// churn changes one peer's reported capacity (a server landed or left),
// with a new revision, as the pool does when capacity reports come in.
func churn(ps []registry.Peer, i int) {
	if len(ps) == 0 {
		return
	}
	p := &ps[(i*7919)%len(ps)]
	c := &p.Capacity
	c.VCPUs.Used = (c.VCPUs.Used + 1 + int64(i%3)) % c.VCPUs.Total
	c.RAMMiB.Used = (c.RAMMiB.Used + 2048*int64(1+i%3)) % c.RAMMiB.Total
	c.DiskGiB.Used = (c.DiskGiB.Used + 20*int64(1+i%3)) % c.DiskGiB.Total
	p.Revision += uint64(len(ps))
}

// BenchmarkPlacementChurn measures stock-policy decisions the way a busy
// broker makes them: before every decision one peer's capacity changes
// and the project's usage changes, and requests mix three flavors. It
// reports p50/p99 latency (wall clock, and the deciding thread's CPU
// time, which waiting for a core on a shared machine does not inflate) and
// decisions per CPU-second (per core: this process's user+system time,
// background work and the collector included; and per second of the
// deciding thread's CPU alone), at 10, 100 and 1,000 peers.
func BenchmarkPlacementChurn(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		for _, m := range churnEngines(b) {
			b.Run(fmt.Sprintf("peers=%d/%s", n, m.name), func(b *testing.B) {
				benchChurn(b, n, m.decide)
			})
		}
	}
}

type churnEngine struct {
	name   string
	decide func(context.Context, policy.Request, []registry.Peer) (policy.Decision, error)
}

// churnEngines are the engines the churn benchmark compares: the stock
// policy with per-peer verdicts cached, the same evaluated for every peer
// on every decision, and the stock policy in the pool form it had before
// (testdata/pool), evaluated over the whole pool at once.
func churnEngines(b *testing.B) []churnEngine {
	ctx := context.Background()
	vs := policy.NewVersions(registry.NewMemory())
	v := uploadPoolForm(b, vs)
	// A generous deadline: a benchmark on a loaded machine measures, it
	// does not fail closed.
	cached, err := policy.NewEngine(ctx, policy.EngineConfig{Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	uncached, err := policy.NewEngine(ctx, policy.EngineConfig{Timeout: 10 * time.Second, NoVerdictCache: true})
	if err != nil {
		b.Fatal(err)
	}
	pooled, err := policy.NewEngine(ctx, policy.EngineConfig{Versions: vs, Timeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	return []churnEngine{
		{"cached", cached.Evaluate},
		{"uncached", uncached.Evaluate},
		{"pool-form", func(ctx context.Context, req policy.Request, ps []registry.Peer) (policy.Decision, error) {
			return pooled.Explain(ctx, v.ID, req, ps)
		}},
	}
}

func benchChurn(b *testing.B, n int, decide func(context.Context, policy.Request, []registry.Peer) (policy.Decision, error)) {
	ps := pool(n)
	ctx := context.Background()
	// Warm up: every flavor once, as a running broker would have.
	for i := range churnFlavors {
		if _, err := decide(ctx, churnRequest(i), ps); err != nil {
			b.Fatal(err)
		}
	}
	// One thread, so its CPU clock times each decision: on a shared
	// machine wall-clock latency includes waiting for a core.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lat := make([]time.Duration, 0, b.N)
	cpus := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		i++
		churn(ps, i)
		req := churnRequest(i)
		t0, c0 := time.Now(), threadCPU()
		d, err := decide(ctx, req, ps)
		cpus = append(cpus, threadCPU()-c0)
		lat = append(lat, time.Since(t0))
		if err != nil || len(d.Verdicts) != n {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	cpu := cpuTime() - cpu0
	us := func(ds []time.Duration, q int) float64 { return float64(ds[len(ds)*q/100].Nanoseconds()) / 1e3 }
	slices.Sort(lat)
	slices.Sort(cpus)
	b.ReportMetric(us(lat, 50), "p50_us")
	b.ReportMetric(us(lat, 99), "p99_us")
	b.ReportMetric(us(cpus, 50), "cpu_p50_us")
	b.ReportMetric(us(cpus, 99), "cpu_p99_us")
	// Per core: decisions per second of this process's CPU time (every
	// thread's CPU time summed: the background refresh and the garbage
	// collector included).
	b.ReportMetric(float64(len(lat))/cpu.Seconds(), "decisions/s/core")
	// The deciding thread's alone, for comparison: what the background
	// work and the collector's own threads cost is the difference.
	var decider time.Duration
	for _, c := range cpus {
		decider += c
	}
	b.ReportMetric(float64(len(cpus))/decider.Seconds(), "decisions/s/decider-cpu")
}
