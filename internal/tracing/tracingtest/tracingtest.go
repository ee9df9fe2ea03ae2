// Package tracingtest records cloudmux's spans in memory for tests.
package tracingtest

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/cloudmux/cloudmux/internal/tracing"
)

// Record makes an in-memory exporter the global provider's, synchronously
// (a span is in the exporter when End returns), until the test ends.
// Spans of every goroutine in the process land in it: tests that record
// must not run in parallel with others of their package that make spans,
// or must filter by trace ID.
func Record(t testing.TB) *tracetest.InMemoryExporter {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	prev := otel.GetTracerProvider()
	tracing.SetProvider(tp)
	t.Cleanup(func() {
		tracing.SetProvider(prev)
		_ = tp.Shutdown(context.Background())
	})
	return exp
}

// Named returns the recorded spans called name.
func Named(exp *tracetest.InMemoryExporter, name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range exp.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}
