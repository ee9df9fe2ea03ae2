package tracing

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Instrumentation is the instrumentation scope every cloudmux span carries.
const Instrumentation = "github.com/cloudmux/cloudmux"

// Config is the `tracing` section of the broker's config.
type Config struct {
	// OTLPEndpoint is the collector's OTLP/HTTP base URL
	// (http://127.0.0.1:4318); empty: tracing is off.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// SampleRatio is the share of traces kept, 0 to 1; unset is 1. It
	// applies to requests that arrive with a traceparent too: a caller's
	// "sampled" flag is not trusted (any client, even unauthenticated,
	// could otherwise force every request of theirs into the collector),
	// though a kept span still joins the caller's trace.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// Headers are sent with every export (a collector's API key).
	Headers map[string]string `yaml:"headers"`
}

// Enabled reports whether spans are exported.
func (c Config) Enabled() bool { return c.OTLPEndpoint != "" }

// Problems names each invalid field (under tracing.) with why, so a
// config loader reports them with its others.
func (c Config) Problems() map[string]string {
	out := map[string]string{}
	if c.OTLPEndpoint != "" {
		u, err := url.Parse(c.OTLPEndpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			out["tracing.otlp_endpoint"] = fmt.Sprintf("%q is not an http(s) URL (the collector's OTLP/HTTP base, e.g. http://127.0.0.1:4318)", c.OTLPEndpoint)
		}
	}
	if r := c.SampleRatio; r != nil && (*r < 0 || *r > 1) {
		out["tracing.sample_ratio"] = fmt.Sprintf("%v is outside 0..1", *r)
	}
	return out
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	problems := c.Problems()
	for _, field := range slices.Sorted(maps.Keys(problems)) {
		errs = append(errs, fmt.Errorf("%s: %s", field, problems[field]))
	}
	return errors.Join(errs...)
}

// Setup installs the global tracer provider and W3C trace-context
// propagation for cfg. The returned function flushes and stops the
// exporter; call it at shutdown. With tracing off it does nothing.
func Setup(ctx context.Context, cfg Config, service, instance, version string) (shutdown func(context.Context) error, err error) {
	nop := func(context.Context) error { return nil }
	if !cfg.Enabled() {
		return nop, nil
	}
	if err := cfg.Validate(); err != nil {
		return nop, err
	}
	u, _ := url.Parse(cfg.OTLPEndpoint)
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(u.JoinPath("v1", "traces").String()), otlptracehttp.WithHeaders(cfg.Headers)}
	exp, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nop, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	ratio := 1.0
	if cfg.SampleRatio != nil {
		ratio = *cfg.SampleRatio
	}
	res := resource.NewSchemaless(attribute.String("service.name", service),
		attribute.String("service.instance.id", instance), attribute.String("service.version", version))
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(5*time.Second)),
		sdktrace.WithResource(res), sdktrace.WithSampler(sampler(ratio)))
	SetProvider(tp)
	return tp.Shutdown, nil
}

// sampler keeps ratio of traces whatever a remote caller's traceparent
// says, and follows the local parent span inside the broker (so a trace is
// kept or dropped whole).
func sampler(ratio float64) sdktrace.Sampler {
	byRatio := sdktrace.TraceIDRatioBased(ratio)
	return sdktrace.ParentBased(byRatio, sdktrace.WithRemoteParentSampled(byRatio), sdktrace.WithRemoteParentNotSampled(byRatio))
}

// SetProvider makes tp the global provider with W3C trace-context
// propagation (tests pass one over an in-memory exporter).
func SetProvider(tp trace.TracerProvider) {
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
}

// Tracer is cloudmux's tracer from the current global provider.
func Tracer() trace.Tracer { return otel.Tracer(Instrumentation) }

// End ends span, marking it failed when err is set (the error's text is
// recorded: spans go to the operator's collector, not to API clients).
func End(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}
