package deploy

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestStepMetrics: a deployment's create and delete time every step under
// its kind and action, and the state gauge follows the records.
func TestStepMetrics(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	e := env.engine("broker-1")
	e.Records = NewRecords(env.Store, nil)
	go func() { _ = e.Records.Run(ctx) }()
	if err := e.Records.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e.Metrics = NewMetrics(reg, e.Records)

	d, _, err := e.Create(ctx, "web", owner("p1"), Spec{Source: webV1})
	if err != nil {
		t.Fatal(err)
	}
	if d = runToEnd(t, e, ctx, d.ID); d.Status != StatusComplete {
		t.Fatalf("status %s: %s", d.Status, d.Error)
	}
	count := func(kind, action string) int {
		t.Helper()
		fams, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, f := range fams {
			if f.GetName() != "cloudmux_deploy_step_seconds" {
				continue
			}
			for _, m := range f.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				if labels["kind"] == kind && labels["action"] == action && labels["outcome"] == "ok" {
					n += int(m.GetHistogram().GetSampleCount())
				}
			}
		}
		return n
	}
	if got := gauge(t, reg, "cloudmux_deployments", "COMPLETE"); got != 1 {
		t.Errorf("cloudmux_deployments{status=COMPLETE} = %v, want 1", got)
	}
	// webV1: a network and subnet on each peer, two servers, a volume and
	// its attachment.
	for _, tc := range []struct {
		name, kind string
		want       int
	}{
		{"networks", "Network", 2}, {"subnets", "Subnet", 2}, {"servers", "Server", 2},
		{"volumes", "Volume", 1}, {"attachments", "VolumeAttachment", 1},
	} {
		t.Run("create "+tc.name, func(t *testing.T) {
			if got := count(tc.kind, "create"); got != tc.want {
				t.Fatalf("%d create steps timed, want %d", got, tc.want)
			}
		})
	}
	if _, err := e.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	runToEnd(t, e, ctx, d.ID)
	if got := count("Server", "delete"); got != 2 {
		t.Fatalf("%d server delete steps timed, want 2", got)
	}
}

// gauge reads one status's value of a gauge family, as a scrape would.
func gauge(t *testing.T, reg *prometheus.Registry, name, status string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "status" && l.GetValue() == status {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}
