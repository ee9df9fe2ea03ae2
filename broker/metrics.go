package broker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// peerCollector reports the pool from the snapshot at scrape time, so the
// gauge is never stale and costs nothing between scrapes.
type peerCollector struct {
	snap PeerView
	desc *prometheus.Desc
}

func (c peerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c peerCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[[2]string]int{}
	for _, p := range c.snap.View().List() {
		counts[[2]string{string(p.Kind), string(p.Status)}]++
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), k[0], k[1])
	}
}

func newMetrics(reg *prometheus.Registry, snap PeerView) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudmux", Name: "http_requests_total", Help: "HTTP requests by method, route and status.",
		}, []string{"method", "route", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cloudmux", Name: "http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route"}),
	}
	reg.MustRegister(m.requests, m.duration,
		peerCollector{snap: snap, desc: prometheus.NewDesc("cloudmux_peers", "Peers in the pool by kind and status.", []string{"kind", "status"}, nil)},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) observe(method, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(method, route, itoa(status)).Inc()
	m.duration.WithLabelValues(method, route).Observe(d.Seconds())
}
