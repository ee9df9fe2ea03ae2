package peers

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ProbeMetrics are the prober's: each probe's latency and result, and the
// status it concluded, by peer.
type ProbeMetrics struct {
	seconds *prometheus.HistogramVec
	results *prometheus.CounterVec
}

// NewProbeMetrics registers the probe metrics with reg
// (cloudmux_peer_probe_seconds, cloudmux_peer_probes_total).
func NewProbeMetrics(reg prometheus.Registerer) *ProbeMetrics {
	m := &ProbeMetrics{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cloudmux", Subsystem: "peer", Name: "probe_seconds",
			Help:    "Peer probe latency (a capacity read), by peer.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"peer"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudmux", Subsystem: "peer", Name: "probes_total",
			Help: "Peer probes by peer, result (ok, failed) and the status the prober concluded (with hysteresis).",
		}, []string{"peer", "result", "status"}),
	}
	reg.MustRegister(m.seconds, m.results)
	return m
}

func (m *ProbeMetrics) observe(peer string, err error, status string, elapsed time.Duration) {
	if m == nil {
		return
	}
	result := "ok"
	if err != nil {
		result = "failed"
	}
	m.seconds.WithLabelValues(peer).Observe(elapsed.Seconds())
	m.results.WithLabelValues(peer, result, status).Inc()
}
