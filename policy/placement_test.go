package policy_test

import (
	"context"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

func peer(name string, status registry.Status, freeRAM, totalRAM int64, labels map[string]string) registry.Peer {
	return registry.Peer{Name: name, Status: status, Labels: labels,
		Capacity: registry.Capacity{RAMMiB: registry.Resource{Total: totalRAM, Used: totalRAM - freeRAM}, VCPUs: registry.Resource{Total: 8}}}
}

func TestDefaultPlacement(t *testing.T) {
	pool := []registry.Peer{
		peer("big", registry.StatusUp, 8000, 10000, map[string]string{"tier": "private"}),
		peer("small", registry.StatusUp, 1000, 10000, map[string]string{"tier": "public"}),
		peer("sick", registry.StatusDown, 10000, 10000, nil),
		peer("maint", registry.StatusMaintenance, 10000, 10000, nil),
	}
	tests := []struct {
		name     string
		req      policy.Request
		allowed  string            // allowed peers, best first
		rejected map[string]string // peer -> a reason it must give
	}{
		{"most free memory first", policy.Request{Kind: "server", RAMMiB: 512}, "big,small",
			map[string]string{"sick": "status is down", "maint": "status is maintenance"}},
		{"too big for small", policy.Request{Kind: "server", RAMMiB: 2048}, "big",
			map[string]string{"small": "needs 2048 RAM MiB, 1000 free"}},
		{"zone pins a peer", policy.Request{AvailabilityZone: "small"}, "small",
			map[string]string{"big": `not availability zone "small"`}},
		{"required label", policy.Request{RequiredLabels: map[string]string{"tier": "public"}}, "small",
			map[string]string{"big": "lacks required label tier=public"}},
		{"preferred labels count, memory dominates", policy.Request{PreferredLabels: map[string]string{"tier": "public"}, RAMMiB: 0}, "big,small", nil},
		{"nothing fits", policy.Request{Kind: "server", RAMMiB: 99999}, "", map[string]string{"big": "needs 99999"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := policy.Default{}.Place(context.Background(), tc.req, pool)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range d.Allowed() {
				names = append(names, p.Name)
			}
			if strings.Join(names, ",") != tc.allowed {
				t.Fatalf("allowed = %v, want %s\n%+v", names, tc.allowed, d.Verdicts)
			}
			for _, v := range d.Verdicts {
				if want, ok := tc.rejected[v.Peer.Name]; ok && !strings.Contains(strings.Join(v.Reasons, ";"), want) {
					t.Errorf("%s reasons %v lack %q", v.Peer.Name, v.Reasons, want)
				}
				if v.Allowed && (v.Score < 0 || v.Score > 100) {
					t.Errorf("%s score %d outside 0-100", v.Peer.Name, v.Score)
				}
				if !v.Allowed && len(v.Reasons) == 0 {
					t.Errorf("%s rejected without a reason", v.Peer.Name)
				}
			}
		})
	}
}

func TestScoring(t *testing.T) {
	disky := peer("disky", registry.StatusUp, 100, 10000, nil)
	disky.Capacity.DiskGiB = registry.Resource{Total: 1000}
	roomy := peer("roomy", registry.StatusUp, 9000, 10000, nil)
	roomy.Capacity.DiskGiB = registry.Resource{Total: 100, Used: 90}
	sickly := peer("sickly", registry.StatusDegraded, 9000, 10000, nil)
	unknown := registry.Peer{Name: "unknown", Status: registry.StatusUp}
	odd := peer("odd", registry.StatusUp, 20000, 10000, nil) // used < 0: a peer misreporting
	tests := []struct {
		name    string
		req     policy.Request
		pool    []registry.Peer
		allowed string
	}{
		{"volumes score on disk, not memory", policy.Request{Kind: "volume", DiskGiB: 5}, []registry.Peer{roomy, disky}, "disky,roomy"},
		{"degraded ranks below up", policy.Request{Kind: "server", RAMMiB: 512}, []registry.Peer{sickly, roomy}, "roomy,sickly"},
		{"unknown capacity is neutral, not best", policy.Request{Kind: "server", RAMMiB: 512}, []registry.Peer{unknown, roomy}, "roomy,unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := policy.Default{}.Place(context.Background(), tc.req, tc.pool)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, p := range d.Allowed() {
				names = append(names, p.Name)
			}
			if strings.Join(names, ",") != tc.allowed {
				t.Fatalf("allowed = %v, want %s\n%+v", names, tc.allowed, d.Verdicts)
			}
		})
	}
	d, _ := policy.Default{}.Place(context.Background(), policy.Request{Kind: "server"}, []registry.Peer{odd})
	if s := d.Verdicts[0].Score; s < 0 || s > 100 {
		t.Fatalf("a misreporting peer scored %d, outside 0-100", s)
	}
}

// TestVerdictsPointAtCandidates checks every placer's verdicts point at
// the candidates they were decided over, one each, not at copies: the
// callers rely on it (a decision over many peers no longer copies them).
func TestVerdictsPointAtCandidates(t *testing.T) {
	ctx := context.Background()
	e, err := policy.NewEngine(ctx, policy.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	candidates := []registry.Peer{
		peer("big", registry.StatusUp, 8000, 10000, map[string]string{"tier": "private"}),
		peer("small", registry.StatusUp, 1000, 10000, map[string]string{"tier": "public"}),
		peer("sick", registry.StatusDown, 10000, 10000, nil),
	}
	for i := range candidates {
		candidates[i].ID = "id-" + candidates[i].Name
	}
	for _, c := range []struct {
		name   string
		placer policy.Placer
	}{{"default", policy.Default{}}, {"engine", e}} {
		t.Run(c.name, func(t *testing.T) {
			d, err := c.placer.Place(ctx, policy.Request{Kind: "server", RAMMiB: 512}, candidates)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[*registry.Peer]bool{}
			for _, v := range d.Verdicts {
				if seen[v.Peer] {
					t.Fatalf("%s has two verdicts", v.Peer.Name)
				}
				seen[v.Peer] = true
			}
			for i := range candidates {
				if !seen[&candidates[i]] {
					t.Errorf("no verdict points at candidate %s", candidates[i].Name)
				}
			}
		})
	}
}
