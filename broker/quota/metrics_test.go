package quota_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/internal/metricstest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestLedgerMetrics: reservations count under their outcome, refusals
// under each limit that refused, and ends under commit or release.
func TestLedgerMetrics(t *testing.T) {
	ctx := context.Background()
	l := newLedger(registry.NewMemory(), "b", nil)
	reg := prometheus.NewRegistry()
	l.Metrics = quota.NewMetrics(reg)
	p := quota.Scope{Project: "p1"}
	if _, err := l.Limits.(*quota.Limits).Set(ctx, p.Project, quota.Amounts{quota.Cores: 4, quota.RAM: 1024}); err != nil {
		t.Fatal(err)
	}
	committed, err := l.Reserve(ctx, p, quota.Amounts{quota.Instances: 1, quota.Cores: 2, quota.RAM: 512}, "s1")
	if err != nil {
		t.Fatal(err)
	}
	released, err := l.Reserve(ctx, p, quota.Amounts{quota.Instances: 1, quota.Cores: 1}, "s2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, p, quota.Amounts{quota.Cores: 2, quota.RAM: 1024}, "s3"); err == nil {
		t.Fatal("a reservation over two limits passed")
	}
	if _, err := l.Reserve(ctx, p, quota.Amounts{"floppies": 1}, "s4"); err == nil {
		t.Fatal("an unknown resource was reserved")
	}
	if err := committed.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := committed.Commit(ctx); err != nil { // twice: counted once
		t.Fatal(err)
	}
	if err := released.Release(ctx); err != nil {
		t.Fatal(err)
	}

	got := metricstest.Values(t, reg)
	tests := []struct {
		name string
		want float64
	}{
		{`cloudmux_quota_reservations_total{outcome="reserved"}`, 2},
		{`cloudmux_quota_reservations_total{outcome="refused"}`, 1},
		{`cloudmux_quota_refusals_total{resource="cores"}`, 1},
		{`cloudmux_quota_refusals_total{resource="ram"}`, 1},
		{`cloudmux_quota_reservations_ended_total{how="commit"}`, 1},
		{`cloudmux_quota_reservations_ended_total{how="release"}`, 1},
		// A request naming no known resource never reached the ledger.
		{`cloudmux_quota_reservations_total{outcome="error"}`, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got[tc.name] != tc.want {
				t.Fatalf("%s = %v, want %v (all %v)", tc.name, got[tc.name], tc.want, got)
			}
		})
	}
}
