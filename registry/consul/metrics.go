package consul

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/cloudmux/cloudmux/internal/tracing"
	"github.com/cloudmux/cloudmux/registry"
)

// storeMetrics time every Store call against Consul: the latency a
// broker's every write and cold read pays, and the first place to look
// when requests slow down together.
type storeMetrics struct {
	seconds *prometheus.HistogramVec
	watches *prometheus.CounterVec
}

// Instrument registers the store's metrics with reg
// (cloudmux_store_operation_seconds, cloudmux_store_watch_answers_total).
// Call it once, before the store is used.
func (s *Store) Instrument(reg prometheus.Registerer) {
	m := &storeMetrics{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cloudmux", Subsystem: "store", Name: "operation_seconds",
			Help: "Consul store call latency by operation (get, list, put, cas, delete, delete_cas, lock) and outcome (ok, not_found, conflict, canceled, error).",
			// A local agent answers in ~100 µs; a Raft write over a WAN
			// link takes tens of milliseconds.
			Buckets: prometheus.ExponentialBuckets(50e-6, 2.5, 14),
		}, []string{"op", "outcome"}),
		// A watch blocks for minutes by design: its latency says nothing,
		// so only its answers are counted.
		watches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudmux", Subsystem: "store", Name: "watch_answers_total",
			Help: "Consul blocking queries (watches) answered, by outcome; errors here mean watch-fed memory is falling behind.",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.seconds, m.watches)
	s.metrics = m
}

// track times one call and traces it as a span ("consul get"); use as
// defer s.track(ctx, "get")(&err). Not-found and conflict are answers,
// not failures, so they do not mark the span failed.
func (s *Store) track(ctx context.Context, op string) func(*error) {
	start := time.Now()
	_, span := tracing.Tracer().Start(ctx, "consul "+op, trace.WithSpanKind(trace.SpanKindClient))
	return func(err *error) {
		o := outcome(*err)
		span.SetAttributes(attribute.String("cloudmux.outcome", o))
		if o == "error" {
			tracing.End(span, *err)
		} else {
			span.End()
		}
		if s.metrics != nil {
			s.metrics.seconds.WithLabelValues(op, o).Observe(time.Since(start).Seconds())
		}
	}
}

// trackWatch counts a watch's answer. A watch blocks for minutes by
// design, so it is neither timed nor a span.
func (s *Store) trackWatch(context.Context) func(*error) {
	return func(err *error) {
		if s.metrics != nil {
			s.metrics.watches.WithLabelValues(outcome(*err)).Inc()
		}
	}
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, registry.ErrNotFound):
		return "not_found"
	case errors.Is(err, registry.ErrConflict), errors.Is(err, registry.ErrLockHeld):
		return "conflict"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return "canceled"
	}
	return "error"
}
