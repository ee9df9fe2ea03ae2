package policy_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cloudmux/cloudmux/internal/tracing/tracingtest"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// TestPlacementMetrics: every Place counts once under its outcome and
// observes its latency; each rejected peer counts under its reason, with
// numbers folded so reasons do not multiply series.
func TestPlacementMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	spans := tracingtest.Record(t)
	e := newEngine(t, policy.EngineConfig{Metrics: reg})
	ctx := context.Background()
	place := func(req policy.Request, peers ...registry.Peer) {
		t.Helper()
		if _, err := e.Place(ctx, req, peers); err != nil {
			t.Fatal(err)
		}
	}
	place(policy.Request{Kind: "server", VCPUs: 4, RAMMiB: 512}, privateRoomy, privateFull, down)
	place(policy.Request{Kind: "server", VCPUs: 4, RAMMiB: 512}, privateFull, down)
	place(policy.Request{Kind: "volume", DiskGiB: 1}, privateRoomy)
	// A tenant's hints in a reason do not make series of their own.
	for _, zone := range []string{"east", "west", "north"} {
		place(policy.Request{Kind: "server", RAMMiB: 512, RequiredLabels: map[string]string{"zone": zone}}, privateRoomy)
	}

	// One span per decision, with what it decided over and what it allowed.
	placed := tracingtest.Named(spans, "placement")
	if len(placed) != 6 {
		t.Fatalf("%d placement spans, want 6", len(placed))
	}
	attrs := map[string]string{}
	for _, a := range placed[1].Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	if attrs["cloudmux.kind"] != "server" || attrs["cloudmux.candidates"] != "2" || attrs["cloudmux.allowed"] != "0" || attrs["cloudmux.decision_id"] == "" {
		t.Fatalf("the second decision's span: %v", attrs)
	}
	text := gather(t, reg)
	for _, want := range []string{
		`cloudmux_placement_rejections_total{reason="status is down"} 2`,
		`cloudmux_placement_rejections_total{reason="needs N vCPUs, N free"} 2`,
		`cloudmux_placement_decisions_total{kind="server",outcome="placed"} 1`,
		`cloudmux_placement_decisions_total{kind="server",outcome="no_peer"} 4`,
		`cloudmux_placement_rejections_total{reason="lacks required label N"} 3`,
		`cloudmux_placement_decisions_total{kind="volume",outcome="placed"} 1`,
		`cloudmux_placement_decision_seconds_count{kind="server",outcome="placed"} 1`,
		`cloudmux_placement_decision_seconds_count{kind="server",outcome="no_peer"} 4`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s:\n%s", want, text)
		}
	}
}

func gather(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	var b strings.Builder
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			name := f.GetName()
			switch {
			case m.GetCounter() != nil:
				b.WriteString(name + "{" + strings.Join(labels, ",") + "} " + trimFloat(m.GetCounter().GetValue()) + "\n")
			case m.GetHistogram() != nil:
				b.WriteString(name + "_count{" + strings.Join(labels, ",") + "} " + trimFloat(float64(m.GetHistogram().GetSampleCount())) + "\n")
			}
		}
	}
	return b.String()
}

func trimFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
