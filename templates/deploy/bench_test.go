package deploy

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/internal/deploytest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// staticPool builds seeded fake-driver local clouds, each behind a
// hookCloud, as a fixed pool (peer IDs "id-NAME").
func staticPool(tb testing.TB, names ...string) (staticPeers, map[string]*hookCloud) {
	log := logrus.New()
	log.SetOutput(io.Discard)
	ctx := context.Background()
	var pool staticPeers
	hooks := map[string]*hookCloud{}
	for _, name := range names {
		cfg := localcloud.DevDefaults(tb.TempDir())
		cfg.Name = name
		c, err := localcloud.New(cfg, fake.New(cfg.Hosts...), log)
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { _ = c.Close() })
		if _, err := c.Seed(ctx); err != nil {
			tb.Fatal(err)
		}
		capacity, err := c.Capacity(ctx)
		if err != nil {
			tb.Fatal(err)
		}
		h := &hookCloud{Cloud: c}
		hooks[name] = h
		pool = append(pool, &peers.Member{Cloud: h, Peer: registry.Peer{ID: "id-" + name, Name: name, Kind: registry.KindLocal,
			Status: registry.StatusUp, Capacity: capacity}})
	}
	return pool, hooks
}

// staticPeers is a fixed pool, for benchmarks (brokertest wants a *testing.T).
type staticPeers []*peers.Member

func (s staticPeers) Members() []*peers.Member { return s }
func (s staticPeers) Get(id string) (*peers.Member, bool) {
	for _, m := range s {
		if m.Peer.ID == id {
			return m, true
		}
	}
	return nil, false
}

// bench50 is 50 template resources, four levels deep: a network and a
// subnet (copied to both peers), 16 servers spread over the peers, 16
// volumes and 16 attachments, each volume following its server.
const bench50 = `eve_template_version: 1
resources:
  net: {type: Network}
  subnet: {type: Subnet, properties: {network: {get_resource: net}, cidr: 10.40.0.0/24}}
  web:
    type: Server
    count: 16
    placement: {spread: true}
    properties:
      flavor: m1.nano
      image: ` + localcloud.SeedImageName + `
      networks: [{network: {get_resource: net}}]
    depends_on: [subnet]
  data: {type: Volume, count: 16, properties: {size: 1}}
  attach:
    type: VolumeAttachment
    count: 16
    properties:
      server: {get_attr: [web, id, "%index%"]}
      volume: {get_attr: [data, id, "%index%"]}
`

// BenchmarkApply50 deploys bench50 with a fixed latency injected into
// every create call and reports two ratios (averaged over iterations):
//
//   - wall/critical: wall time over the DAG's critical path weighted by
//     each step's measured duration (create call with its latency, then
//     the peer settling it), i.e. what perfect scheduling would take;
//   - wall/latency-path: wall time over depth x latency, which also
//     charges the fake cloud's own settle time (boot, disk I/O) to the
//     engine.
func BenchmarkApply50(b *testing.B) {
	const latency = 250 * time.Millisecond
	log := logrus.New()
	log.SetOutput(io.Discard)
	ctx := context.Background()
	pool, hooks := staticPool(b, "local", "remote")
	for _, h := range hooks {
		h.set(func(ctx context.Context, _ string) error {
			t := time.NewTimer(latency)
			defer t.Stop()
			select {
			case <-t.C:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}, nil)
	}
	store := registry.NewMemory()
	svc := deploytest.New(store, pool, policy.Default{}, "bench", log)
	svc.Unlimited()
	e := &Engine{Store: store, Resources: svc.Adapter, Peers: svc.Adapter, Placer: policy.Default{}, Holder: "bench", PerPeer: 16,
		PollInterval: 10 * time.Millisecond, Log: log}
	var ratio, naive float64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		d, plan, err := e.Create(ctx, fmt.Sprintf("bench-%d", i), owner("p1"), Spec{Source: bench50})
		if err != nil {
			b.Fatal(err)
		}
		latencyPath := time.Duration(depth(plan, nil)) * latency
		b.StartTimer()
		start := time.Now()
		if err := e.Run(ctx, d.ID); err != nil {
			b.Fatal(err)
		}
		wall := time.Since(start)
		b.StopTimer()
		if got, _ := e.Get(ctx, d.ID); got.Status != StatusComplete {
			b.Fatalf("%s: %s", got.Status, got.Error)
		}
		evs, _, err := e.Events(ctx, d.ID, 0)
		if err != nil {
			b.Fatal(err)
		}
		critical := time.Duration(depth(plan, stepDurations(evs)))
		ratio += wall.Seconds() / critical.Seconds() / float64(b.N)
		naive += wall.Seconds() / latencyPath.Seconds() / float64(b.N)
		if _, err := e.Delete(ctx, d.ID); err != nil {
			b.Fatal(err)
		}
		if err := e.Run(ctx, d.ID); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(ratio, "wall/critical")
	b.ReportMetric(naive, "wall/latency-path")
}

// stepDurations measures each step from its first IN_PROGRESS event to its
// COMPLETE event.
func stepDurations(evs []Event) map[string]time.Duration {
	start, out := map[string]time.Time{}, map[string]time.Duration{}
	for _, ev := range evs {
		switch {
		case ev.Resource == "":
		case ev.Status == "IN_PROGRESS":
			if _, ok := start[ev.Resource]; !ok {
				start[ev.Resource] = ev.Time
			}
		case ev.Status == "COMPLETE":
			out[ev.Resource] = ev.Time.Sub(start[ev.Resource])
		}
	}
	return out
}

// depth is the length of the plan's longest dependency chain: in steps
// when cost is nil, else in the steps' costs.
func depth(p *Plan, cost map[string]time.Duration) int64 {
	deps := map[string][]string{}
	for _, s := range p.Steps {
		deps[s.Key] = s.Deps
	}
	memo := map[string]int64{}
	var d func(k string) int64
	d = func(k string) int64 {
		if v, ok := memo[k]; ok {
			return v
		}
		var best int64
		for _, x := range deps[k] {
			best = max(best, d(x))
		}
		self := int64(1)
		if cost != nil {
			self = int64(cost[k])
		}
		memo[k] = best + self
		return best + self
	}
	var out int64
	for k := range deps {
		out = max(out, d(k))
	}
	return out
}
