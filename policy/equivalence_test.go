package policy_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// customPerPeer is a per-peer policy that reads what the stock one does
// not: raw capacity, the project's usage in a per-peer rule, every pool
// fact, so the cache keys on those too.
const customPerPeer = `package cloudmux.placement

deny contains sprintf("only %d MiB free", [input.peer.capacity.ram_mib.free]) if {
	input.peer.capacity.ram_mib.total > 0
	input.peer.capacity.ram_mib.free < input.request.resources.ram_mib * 2
}

deny contains "busy project" if {
	input.request.usage.instances > 40
	input.peer.private == false
}

score := {"parts": {"cost": c, "free": f, "pool": p}} if {
	c := 50 - ((input.peer.cost - object.get(input.pool.cost, "min", 0)) % 50)
	f := input.peer.capacity.vcpus.free % 20
	p := (input.pool.allowed + input.pool.private) + input.pool.spread_min
}
`

// guardedPerPeer is a per-peer policy whose rules begin with tests of the
// request alone (guards: a volume's rules, a gpu hint's, a dimension
// chosen by kind), so the cache narrows what it keys on of the peer by
// the request: a verdict keyed without a field it does read would show
// here as a difference.
const guardedPerPeer = `package cloudmux.placement

deny contains sprintf("volume needs %d GiB, %d free", [input.request.resources.disk_gib, input.peer.capacity.disk_gib.free]) if {
	input.request.kind == "volume"
	input.peer.capacity.disk_gib.total > 0
	input.peer.capacity.disk_gib.free < input.request.resources.disk_gib
}

deny contains "no gpu" if {
	input.request.hints.required_labels.gpu
	not input.peer.labels.gpu
}

dim := "disk_gib" if input.request.kind == "volume"

dim := "ram_mib" if input.request.kind != "volume"

free := input.peer.capacity.disk_gib.free if dim == "disk_gib"

free := input.peer.capacity.ram_mib.free if dim == "ram_mib"

region_points := 7 if {
	input.request.hints.preferred_labels.region
	input.peer.labels.region == input.request.hints.preferred_labels.region
} else := 1

score := {"parts": {"free": free % 40, "labels": count(input.peer.labels), "region": region_points}}
`

// TestVerdictCacheEquivalence drives random pools through random
// requests with churn (peers' capacity, status and labels change, usage
// changes, flavors mix) and checks that every decision of the cached
// engine is the uncached engine's, and that the stock policy in its
// per-peer form decides as it did in the pool form (kept in
// testdata/pool): same peers allowed, in the same order, same scores,
// same reasons.
func TestVerdictCacheEquivalence(t *testing.T) {
	ctx := context.Background()
	vs := policy.NewVersions(registry.NewMemory())
	poolV := uploadPoolForm(t, vs)
	customV, _, err := vs.Upload(ctx, policy.Bundle{Modules: map[string]string{"custom.rego": customPerPeer}}, "t", "")
	if err != nil {
		t.Fatal(err)
	}
	guardedV, _, err := vs.Upload(ctx, policy.Bundle{Modules: map[string]string{"guarded.rego": guardedPerPeer}}, "t", "")
	if err != nil {
		t.Fatal(err)
	}
	cached := newEngine(t, policy.EngineConfig{Versions: vs, Timeout: time.Minute})
	uncached := newEngine(t, policy.EngineConfig{Versions: vs, Timeout: time.Minute, NoVerdictCache: true})
	seeds := 16
	if testing.Short() {
		seeds = 5
	}
	for seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(seed), 21))
			ps := randomPool(rng, 1+rng.IntN(30))
			for step := range 25 {
				req := randomRequest(rng, ps, step)
				stock, err := uncached.Explain(ctx, "", req, ps)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range []struct {
					name    string
					e       *policy.Engine
					version string
					want    policy.Decision
				}{
					{"cached stock", cached, "", stock},
					{"pool-form stock", uncached, poolV.ID, stock},
				} {
					got, err := c.e.Explain(ctx, c.version, req, ps)
					if err != nil {
						t.Fatal(err)
					}
					if diff := diffDecisions(got, c.want); diff != "" {
						t.Fatalf("step %d: %s differs from the uncached stock engine: %s\nrequest %+v", step, c.name, diff, req)
					}
				}
				for _, v := range []policy.Version{customV, guardedV} {
					want, err := uncached.Explain(ctx, v.ID, req, ps)
					if err != nil {
						t.Fatal(err)
					}
					got, err := cached.Explain(ctx, v.ID, req, ps)
					if err != nil {
						t.Fatal(err)
					}
					if diff := diffDecisions(got, want); diff != "" {
						t.Fatalf("step %d: the cached policy %s differs from the uncached one: %s\nrequest %+v", step, slices.Sorted(maps.Keys(v.Modules)), diff, req)
					}
				}
				churnRandom(rng, ps)
			}
		})
	}
}

// uploadPoolForm uploads the stock policy as it was in the pool form
// (testdata/pool; its Rego tests run on upload).
func uploadPoolForm(tb testing.TB, vs *policy.Versions) policy.Version {
	tb.Helper()
	b, err := policy.LoadDir(os.DirFS("testdata/pool"))
	if err != nil {
		tb.Fatal(err)
	}
	v, _, err := vs.Upload(context.Background(), b, "t", "")
	if err != nil {
		tb.Fatal(err)
	}
	return v
}

// diffDecisions says how two decisions differ, "" when they do not.
func diffDecisions(got, want policy.Decision) string {
	if len(got.Verdicts) != len(want.Verdicts) {
		return fmt.Sprintf("%d verdicts, want %d", len(got.Verdicts), len(want.Verdicts))
	}
	for i, g := range got.Verdicts {
		w := want.Verdicts[i]
		if g.Peer.ID != w.Peer.ID || g.Allowed != w.Allowed || g.Score != w.Score || !slices.Equal(g.Reasons, w.Reasons) {
			return fmt.Sprintf("verdict %d: got %s allowed=%v score=%d %q, want %s allowed=%v score=%d %q",
				i, g.Peer.ID, g.Allowed, g.Score, g.Reasons, w.Peer.ID, w.Allowed, w.Score, w.Reasons)
		}
	}
	return ""
}

func pick[T any](rng *rand.Rand, xs ...T) T { return xs[rng.IntN(len(xs))] }

func randomResource(rng *rand.Rand, scale int64) registry.Resource {
	if rng.IntN(5) == 0 {
		return registry.Resource{} // not reported
	}
	total := scale * (1 + rng.Int64N(8))
	return registry.Resource{Total: total, Used: rng.Int64N(total + total/8)} // sometimes over
}

func randomPool(rng *rand.Rand, n int) []registry.Peer {
	ps := make([]registry.Peer, n)
	for i := range ps {
		p := registry.Peer{ID: fmt.Sprintf("peer-%02d", i), Name: fmt.Sprintf("n%02d", (i*7)%n),
			Kind:   pick(rng, registry.KindLocal, registry.KindOpenStack, registry.KindOpenStack),
			Status: pick(rng, registry.StatusUp, registry.StatusUp, registry.StatusUp, registry.StatusDegraded, registry.StatusDown, registry.StatusMaintenance),
			Labels: map[string]string{},
			Capacity: registry.Capacity{VCPUs: randomResource(rng, 8), RAMMiB: randomResource(rng, 8192),
				DiskGiB: randomResource(rng, 200), Instances: randomResource(rng, 4)},
			Cost:     registry.Cost{VCPUHour: pick(rng, 0, 0.01, 0.02, 0.05), RAMGiBHour: pick(rng, 0, 0.002, 0.005), DiskGiBMonth: pick(rng, 0, 0.05)},
			Revision: uint64(rng.IntN(2) * (i + 1)), // half from a store, half built in memory
		}
		for k, vs := range map[string][]string{"tier": {"private", "public", "local"}, "region": {"r1", "r2"}, "gpu": {"a100", "none"},
			"arch": {"x86_64", "aarch64"}, "availability_zone": {"az1", "az2"}, "cost": {"0.5", "0.9", "x"}} {
			if rng.IntN(3) == 0 {
				p.Labels[k] = pick(rng, vs...)
			}
		}
		ps[i] = p
	}
	return ps
}

func randomRequest(rng *rand.Rand, ps []registry.Peer, step int) policy.Request {
	f := churnFlavors[step%len(churnFlavors)]
	req := policy.Request{Kind: pick(rng, "server", "server", "server", "volume", "image"), Project: "p",
		VCPUs: f.vcpus, RAMMiB: f.ram, DiskGiB: pick(rng, 0, f.disk)}
	if rng.IntN(4) == 0 {
		req.PreferredLabels = map[string]string{"region": "r1"}
		if rng.IntN(2) == 0 {
			req.PreferredLabels["gpu"] = "a100"
		}
	}
	if rng.IntN(6) == 0 {
		req.RequiredLabels = map[string]string{"gpu": pick(rng, "a100", "none")}
	}
	if rng.IntN(8) == 0 {
		req.AvailabilityZone = pick(rng, ps[rng.IntN(len(ps))].Name, "az1", "nowhere")
	}
	if rng.IntN(3) == 0 {
		img := &policy.Image{ID: "img-" + strconv.Itoa(rng.IntN(3)), MinRAMMiB: pick(rng, 0, 512, 4096), MinDiskGiB: pick(rng, 0, 10, 60)}
		if rng.IntN(2) == 0 {
			img.Properties = map[string]string{"architecture": pick(rng, "x86_64", "aarch64")}
		}
		for _, p := range ps {
			if rng.IntN(4) == 0 {
				img.Peers = append(img.Peers, p.ID)
			}
		}
		req.Image = img
	}
	if rng.IntN(3) == 0 {
		req.Deployment = &policy.Deployment{ID: "d1", Resource: "web", Replica: rng.IntN(4)}
		req.SpreadPeers = map[string]int{}
		for _, p := range ps {
			if rng.IntN(2) == 0 {
				req.SpreadPeers[p.ID] = rng.IntN(3)
			}
		}
	}
	req.Usage = &policy.Usage{VCPUs: rng.IntN(60), RAMMiB: rng.IntN(100000), DiskGiB: rng.IntN(1200), Instances: rng.IntN(50), Volumes: rng.IntN(10)}
	if rng.IntN(2) == 0 {
		req.Quota = &policy.Usage{VCPUs: pick(rng, -1, 64), RAMMiB: -1, DiskGiB: pick(rng, -1, 1000), Instances: pick(rng, -1, 45), Volumes: -1}
	}
	return req
}

// churnRandom changes a few peers as capacity reports, health checks and
// relabelling do.
func churnRandom(rng *rand.Rand, ps []registry.Peer) {
	for range 1 + rng.IntN(2) {
		p := &ps[rng.IntN(len(ps))]
		switch rng.IntN(4) {
		case 0:
			p.Status = pick(rng, registry.StatusUp, registry.StatusDegraded, registry.StatusDown)
		case 1:
			p.Labels = map[string]string{"tier": pick(rng, "private", "public"), "region": pick(rng, "r1", "r2")}
		default:
			c := &p.Capacity
			c.RAMMiB.Used += rng.Int64N(4096) - 2048
			c.VCPUs.Used += rng.Int64N(3) - 1
			c.Instances.Used += rng.Int64N(3) - 1
		}
		if p.Revision != 0 {
			p.Revision += 1000
		}
	}
}
