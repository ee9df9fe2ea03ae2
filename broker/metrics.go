package broker

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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

// MetricsHandler serves reg's metrics in the Prometheus text format. With
// a token, only to requests with "Authorization: Bearer TOKEN" (what
// Prometheus' authorization/bearer_token_file settings send); others get
// 401. The comparison is of SHA-256 digests in constant time, so neither
// the token's bytes nor its length leak through timing.
func MetricsHandler(reg *prometheus.Registry, token string) http.Handler {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
	if token == "" {
		return h
	}
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(strings.TrimSpace(got)))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="cloudmux metrics"`)
			http.Error(w, "401 Unauthorized: /metrics needs the metrics bearer token (Authorization: Bearer TOKEN)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
