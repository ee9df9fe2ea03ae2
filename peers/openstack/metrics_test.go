package openstack_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cloudmux/cloudmux/internal/tracing/tracingtest"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/peers/openstack"
)

// TestPeerRequestMetrics: calls through a metered driver are timed by
// peer, service and an operation whose IDs are {id}, and failures count
// under their status (or "transport" when the connection broke).
func TestPeerRequestMetrics(t *testing.T) {
	s := newAPIServer(t, 79)
	s.objectStore = true
	s.script("GET", "/compute/v2.1/flavors/1", reply{status: 200, body: `{"flavor": {"id": "1", "name": "m1", "vcpus": 1, "ram": 64, "disk": 1}}`})
	s.script("GET", "/compute/v2.1/servers/0c5e9a52-3b1f-4d59-9f1e-6c2b8a9d1e11", reply{status: 404, body: novaFault("itemNotFound", 404, "no such server")})
	s.script("GET", "/compute/v2.1/servers/7d2b1c1e-0000-4000-8000-000000000001", reply{hangup: true})
	reg := prometheus.NewRegistry()
	spans := tracingtest.Record(t)
	cfg := apiConfig(s, openstack.RetryPolicy{MaxRetries: -1})
	cfg.Metrics = openstack.NewMetrics(reg)
	c, err := openstack.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })

	if _, err := c.GetFlavor(t.Context(), "1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetServer(t.Context(), "0c5e9a52-3b1f-4d59-9f1e-6c2b8a9d1e11"); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("GetServer of a missing server: %v", err)
	}
	if _, err := c.GetServer(t.Context(), "7d2b1c1e-0000-4000-8000-000000000001"); err == nil {
		t.Fatal("a hung-up call succeeded")
	}

	seconds := map[[3]string]uint64{}
	failures := map[[4]string]float64{}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, p := range m.GetLabel() {
				l[p.GetName()] = p.GetValue()
			}
			switch f.GetName() {
			case "cloudmux_peer_request_seconds":
				seconds[[3]string{l["peer"], l["service"], l["op"]}] += m.GetHistogram().GetSampleCount()
			case "cloudmux_peer_request_errors_total":
				failures[[4]string{l["peer"], l["service"], l["op"], l["code"]}] += m.GetCounter().GetValue()
			}
		}
	}
	tests := []struct {
		name string
		got  float64
		want float64
	}{
		{"authentication", float64(seconds[[3]string{"fake", "identity", "POST /auth/tokens"}]), 1},
		{"flavor show", float64(seconds[[3]string{"fake", "compute", "GET /flavors/{id}"}]), 1},
		{"server shows", float64(seconds[[3]string{"fake", "compute", "GET /servers/{id}"}]), 2},
		{"the 404", failures[[4]string{"fake", "compute", "GET /servers/{id}", "404"}], 1},
		{"the hang-up", failures[[4]string{"fake", "compute", "GET /servers/{id}", "transport"}], 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %v, want %v (timed: %v; failed: %v)", tc.got, tc.want, seconds, failures)
			}
		})
	}
	for k := range seconds {
		if k[1] == "other" {
			t.Errorf("a call no service claimed: %v", k)
		}
	}
	// A client span per call; the broken connection's is failed.
	shows := tracingtest.Named(spans, "peer GET /servers/{id}")
	if len(shows) != 2 || shows[0].SpanKind != trace.SpanKindClient {
		t.Fatalf("%d server show spans, want 2 client spans", len(shows))
	}
	failed := 0
	for _, sp := range shows {
		if sp.Status.Code == codes.Error {
			failed++
		}
	}
	if failed != 1 {
		t.Fatalf("%d failed show spans, want 1 (the hang-up; a 404 is an answer)", failed)
	}
}
