package consul_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/internal/tracing/tracingtest"
	"github.com/cloudmux/cloudmux/registry"
)

// TestStoreMetrics: each call against a real agent is timed once under
// its operation and outcome.
func TestStoreMetrics(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Consul agent")
	}
	a := consultest.Start(t)
	s := newStore(t, a, "metrics/")
	reg := prometheus.NewRegistry()
	s.Instrument(reg)
	spans := tracingtest.Record(t)
	ctx := ctxT(t)

	if _, err := s.Get(ctx, "missing"); !errors.Is(err, registry.ErrNotFound) {
		t.Fatal(err)
	}
	idx, err := s.Put(ctx, "k", []byte("v"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CAS(ctx, "k", []byte("w"), idx+1000); !errors.Is(err, registry.ErrConflict) {
		t.Fatal(err)
	}
	if _, err := s.CAS(ctx, "k", []byte("w"), idx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.List(ctx, ""); err != nil {
		t.Fatal(err)
	}
	_, idx2, _ := s.List(ctx, "")
	if _, _, err := s.Watch(ctx, "", idx2-1); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}

	counts := map[[2]string]uint64{}
	var answers float64
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
			case "cloudmux_store_operation_seconds":
				counts[[2]string{l["op"], l["outcome"]}] += m.GetHistogram().GetSampleCount()
			case "cloudmux_store_watch_answers_total":
				if l["outcome"] == "ok" {
					answers += m.GetCounter().GetValue()
				}
			}
		}
	}
	tests := []struct {
		name        string
		op, outcome string
		want        uint64
	}{
		{"get of a missing key", "get", "not_found", 1},
		{"put", "put", "ok", 1},
		{"cas at a stale index", "cas", "conflict", 1},
		{"cas", "cas", "ok", 1},
		{"lists", "list", "ok", 2},
		{"delete", "delete", "ok", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := counts[[2]string{tc.op, tc.outcome}]; got != tc.want {
				t.Fatalf("%s/%s timed %d times, want %d (all: %v)", tc.op, tc.outcome, got, tc.want, counts)
			}
		})
	}
	if answers != 1 {
		t.Fatalf("%v watch answers counted, want 1", answers)
	}
	// A span per call; not-found and conflict are answers, not failures.
	for _, tc := range []struct {
		name, span, outcome string
		n                   int
	}{
		{"get", "consul get", "not_found", 1}, {"puts", "consul put", "ok", 1}, {"cas", "consul cas", "", 2}, {"lists", "consul list", "ok", 2},
	} {
		t.Run("span "+tc.name, func(t *testing.T) {
			got := tracingtest.Named(spans, tc.span)
			if len(got) != tc.n {
				t.Fatalf("%d %q spans, want %d", len(got), tc.span, tc.n)
			}
			for _, sp := range got {
				if sp.Status.Code == codes.Error {
					t.Fatalf("%s marked failed: %v", tc.span, sp.Status)
				}
				for _, a := range sp.Attributes {
					if string(a.Key) == "cloudmux.outcome" && tc.outcome != "" && a.Value.String() != tc.outcome {
						t.Fatalf("%s outcome %s, want %s", tc.span, a.Value.String(), tc.outcome)
					}
				}
			}
		})
	}
	if n := len(tracingtest.Named(spans, "consul watch")); n != 0 {
		t.Fatalf("%d watch spans: a watch blocks by design and is no span", n)
	}
}
