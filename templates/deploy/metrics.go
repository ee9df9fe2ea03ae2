package deploy

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the deployment engine's metrics: how long each step takes
// (a resource's create, update or delete, settling included) and how many
// deployments are in each state.
type Metrics struct {
	steps *prometheus.HistogramVec
}

// NewMetrics registers the engine's metrics with reg. The per-state gauge
// is counted from records at scrape time (nil records: no gauge), so it is
// never stale and costs nothing between scrapes.
func NewMetrics(reg prometheus.Registerer, records *Records) *Metrics {
	m := &Metrics{steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "cloudmux", Subsystem: "deploy", Name: "step_seconds",
		Help: "Deployment step duration (the resource made, changed or deleted and settled), by resource kind, action and outcome.",
		// Steps run from milliseconds (a port) to minutes (a server
		// booting on a slow peer).
		Buckets: prometheus.ExponentialBuckets(0.005, 2.5, 14),
	}, []string{"kind", "action", "outcome"})}
	reg.MustRegister(m.steps)
	if records != nil {
		reg.MustRegister(stateCollector{records: records, desc: prometheus.NewDesc("cloudmux_deployments",
			"Deployments this broker's memory holds, by status.", []string{"status"}, nil)})
	}
	return m
}

func (m *Metrics) observeStep(kind, action string, err error, elapsed time.Duration) {
	if m == nil {
		return
	}
	outcome := "ok"
	if err != nil {
		outcome = "error"
	}
	m.steps.WithLabelValues(kind, action, outcome).Observe(elapsed.Seconds())
}

type stateCollector struct {
	records *Records
	desc    *prometheus.Desc
}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	for status, n := range c.records.countByStatus() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(status))
	}
}
