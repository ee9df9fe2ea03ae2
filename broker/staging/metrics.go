package staging

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the stager's: how many copies it makes or adopts, how many
// bytes it moves between peers and how long a copy takes.
type Metrics struct {
	copies  *prometheus.CounterVec
	bytes   prometheus.Counter
	seconds *prometheus.HistogramVec
}

// NewMetrics registers the staging metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		copies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudmux", Subsystem: "staging", Name: "copies_total",
			Help: "Image copies to peers by result: copied (bytes streamed), adopted (an intact copy was already there), error.",
		}, []string{"result"}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "cloudmux", Subsystem: "staging", Name: "bytes_total",
			Help: "Image bytes streamed from one peer to another (read from the source, failed copies included).",
		}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cloudmux", Subsystem: "staging", Name: "copy_seconds",
			Help: "Time to stream one image to a peer and check it, by outcome.",
			// A small image between local peers takes under a second, a
			// large one over a WAN link up to the hour CopyTimeout allows.
			Buckets: prometheus.ExponentialBuckets(0.1, 3, 11),
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.copies, m.bytes, m.seconds)
	return m
}

func (m *Metrics) adopted() {
	if m != nil {
		m.copies.WithLabelValues("adopted").Inc()
	}
}

func (m *Metrics) copied(n int64, elapsed time.Duration, err error) {
	if m == nil {
		return
	}
	result, outcome := "copied", "ok"
	if err != nil {
		result, outcome = "error", "error"
	}
	m.copies.WithLabelValues(result).Inc()
	m.bytes.Add(float64(n))
	m.seconds.WithLabelValues(outcome).Observe(elapsed.Seconds())
}
