package index_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/internal/metricstest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestSizeCollector: the gauges follow the in-memory index as entries come
// and go, per kind, with projects counted once.
func TestSizeCollector(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	x := index.New(registry.NewMemory())
	go func() { _ = x.Run(ctx) }()
	if err := x.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(x.Collector())
	entries := []index.Entry{
		{Kind: "server", ID: "s1", Project: "pa", PeerID: "p1", PeerResourceID: "r1"},
		{Kind: "server", ID: "s2", Project: "pa", PeerID: "p1", PeerResourceID: "r2"},
		{Kind: "server", ID: "s3", Project: "pb", PeerID: "p2", PeerResourceID: "r3"},
		{Kind: "volume", ID: "v1", Project: "pb", PeerID: "p2", PeerResourceID: "r4"},
	}
	for _, e := range entries {
		if err := x.Put(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := x.Delete(ctx, entries[2]); err != nil {
		t.Fatal(err)
	}
	got := metricstest.Values(t, reg)
	tests := []struct {
		name string
		want float64
	}{
		{`cloudmux_index_entries{kind="server"}`, 2},
		{`cloudmux_index_projects{kind="server"}`, 1},
		{`cloudmux_index_entries{kind="volume"}`, 1},
		{`cloudmux_index_projects{kind="volume"}`, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got[tc.name] != tc.want {
				t.Fatalf("%s = %v, want %v (all %v)", tc.name, got[tc.name], tc.want, got)
			}
		})
	}
}
