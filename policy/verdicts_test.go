package policy

import (
	"context"
	"fmt"
	"testing"

	"github.com/cloudmux/cloudmux/registry"
)

func cachePool(n int) []registry.Peer {
	ps := make([]registry.Peer, n)
	for i := range ps {
		ps[i] = registry.Peer{ID: fmt.Sprintf("id-%d", i), Name: fmt.Sprintf("p%d", i), Kind: registry.KindOpenStack,
			Status: registry.StatusUp, Revision: uint64(i + 1), Labels: map[string]string{"tier": "public"},
			Capacity: registry.Capacity{VCPUs: registry.Resource{Total: 64}, RAMMiB: registry.Resource{Total: 65536, Used: int64(i) * 1024}},
			Cost:     registry.Cost{VCPUHour: 0.01 * float64(1+i%3)}}
	}
	return ps
}

// TestVerdictCacheHits: a decision like an earlier one evaluates no
// peer; a capacity report that changes no coarse fact evaluates none
// either; one that changes a fact evaluates that peer alone; a change of
// usage (read once per decision by request_deny) evaluates none.
func TestVerdictCacheHits(t *testing.T) {
	ctx := context.Background()
	e, err := NewEngine(ctx, EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := e.cur.Load()
	ps := cachePool(20)
	req := Request{Kind: "server", VCPUs: 2, RAMMiB: 2048, Usage: &Usage{VCPUs: 1}, Quota: &Usage{VCPUs: 100, RAMMiB: -1, DiskGiB: -1, Instances: -1, Volumes: -1}}
	decide := func() int64 {
		t.Helper()
		before := c.evaluated.Load()
		if _, err := e.Evaluate(ctx, req, ps); err != nil {
			t.Fatal(err)
		}
		e.bg.idle.Wait()
		return c.evaluated.Load() - before
	}
	if n := decide(); n != 40 {
		t.Fatalf("first decision evaluated %d peer passes, want 40 (deny and score for 20 peers)", n)
	}
	tests := []struct {
		name   string
		change func()
		want   int64
	}{
		{"the same decision", func() {}, 0},
		{"usage changes", func() { req.Usage = &Usage{VCPUs: 7} }, 0},
		{"a capacity report within the same tenth", func() { ps[3].Capacity.RAMMiB.Used += 10; ps[3].Revision += 100 }, 0},
		{"a capacity report that changes the room", func() { ps[3].Capacity.RAMMiB.Used += 20000; ps[3].Revision += 100 }, 1},
		{"a peer goes down", func() { ps[5].Status = registry.StatusDown; ps[5].Revision += 100 }, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.change()
			if n := decide(); n != tc.want {
				t.Fatalf("evaluated %d peer passes, want %d", n, tc.want)
			}
		})
	}
}

// TestVerdictCacheRefresh: a peer that changes in a decision of one
// flavor is evaluated in the background for the other flavors decided
// recently, so their next decision evaluates nothing.
func TestVerdictCacheRefresh(t *testing.T) {
	ctx := context.Background()
	e, err := NewEngine(ctx, EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c := e.cur.Load()
	ps := cachePool(10)
	small := Request{Kind: "server", VCPUs: 1, RAMMiB: 1024}
	big := Request{Kind: "server", VCPUs: 8, RAMMiB: 16384}
	for _, r := range []Request{small, big, small} {
		if _, err := e.Evaluate(ctx, r, ps); err != nil {
			t.Fatal(err)
		}
	}
	e.bg.idle.Wait()
	ps[2].Capacity.RAMMiB.Used = 60000 // short for big, no room for small
	ps[2].Revision += 100
	if _, err := e.Evaluate(ctx, small, ps); err != nil {
		t.Fatal(err)
	}
	e.bg.idle.Wait()
	before := c.evaluated.Load()
	d, err := e.Evaluate(ctx, big, ps)
	if err != nil {
		t.Fatal(err)
	}
	if n := c.evaluated.Load() - before; n != 0 {
		t.Fatalf("the big flavor evaluated %d peer passes after the background refresh, want 0", n)
	}
	for _, v := range d.Verdicts {
		if v.Peer.ID == "id-2" && (v.Allowed || v.Reasons[0] != "needs 16384 MiB of RAM, 5536 free") {
			t.Fatalf("the changed peer's verdict for the big flavor = %+v", v)
		}
	}
}
