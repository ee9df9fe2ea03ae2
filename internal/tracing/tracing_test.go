package tracing_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"

	"github.com/cloudmux/cloudmux/internal/tracing"
)

// TestSetupExportsOverOTLP: with an endpoint, spans reach the collector's
// /v1/traces as OTLP protobuf, with the configured headers; flushed at
// shutdown.
func TestSetupExportsOverOTLP(t *testing.T) {
	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got, bodies = append(got, r), append(bodies, body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer collector.Close()
	prev := otel.GetTracerProvider()
	defer tracing.SetProvider(prev)

	shutdown, err := tracing.Setup(context.Background(), tracing.Config{OTLPEndpoint: collector.URL, Headers: map[string]string{"X-Api-Key": "k1"}},
		"cloudmux", "broker-1", "test")
	if err != nil {
		t.Fatal(err)
	}
	_, span := tracing.Tracer().Start(context.Background(), "a span worth exporting")
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("nothing reached the collector")
	}
	r := got[0]
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" || r.Header.Get("X-Api-Key") != "k1" {
		t.Fatalf("export request %s %s %v", r.Method, r.URL.Path, r.Header)
	}
	if !contains(bodies[0], "a span worth exporting") || !contains(bodies[0], "broker-1") {
		t.Fatal("the export does not carry the span and the broker's resource")
	}
}

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

// TestConfigProblems: each bad field named, every one at once.
func TestConfigProblems(t *testing.T) {
	tests := []struct {
		name string
		cfg  tracing.Config
		want []string
	}{
		{"off", tracing.Config{}, nil},
		{"good", tracing.Config{OTLPEndpoint: "https://otel.example:4318", SampleRatio: ratio(0.25)}, nil},
		{"never", tracing.Config{OTLPEndpoint: "https://otel.example:4318", SampleRatio: ratio(0)}, nil},
		{"no scheme, ratio too big", tracing.Config{OTLPEndpoint: "otel:4318", SampleRatio: ratio(1.5)}, []string{"tracing.otlp_endpoint", "tracing.sample_ratio"}},
		{"negative ratio", tracing.Config{SampleRatio: ratio(-0.1)}, []string{"tracing.sample_ratio"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.cfg.Problems()
			if len(p) != len(tc.want) {
				t.Fatalf("problems %v, want fields %v", p, tc.want)
			}
			for _, f := range tc.want {
				if p[f] == "" {
					t.Fatalf("no problem for %s: %v", f, p)
				}
			}
			if (tc.cfg.Validate() != nil) != (len(tc.want) > 0) {
				t.Fatalf("Validate() = %v with problems %v", tc.cfg.Validate(), p)
			}
		})
	}
}

func ratio(r float64) *float64 { return &r }

// TestRemoteSampledFlagNotTrusted: at ratio 0 nothing is exported, even
// for a request whose traceparent says "sampled".
func TestRemoteSampledFlagNotTrusted(t *testing.T) {
	var mu sync.Mutex
	exports := 0
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		exports++
		mu.Unlock()
	}))
	defer collector.Close()
	prev := otel.GetTracerProvider()
	defer tracing.SetProvider(prev)
	shutdown, err := tracing.Setup(context.Background(), tracing.Config{OTLPEndpoint: collector.URL, SampleRatio: ratio(0)}, "cloudmux", "b1", "test")
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	ctx := otel.GetTextMapPropagator().Extract(context.Background(), propagation.HeaderCarrier(h))
	_, span := tracing.Tracer().Start(ctx, "forced?")
	if span.SpanContext().IsSampled() {
		t.Fatal("a caller's sampled flag forced the span into the trace")
	}
	span.End()
	if err := shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if exports != 0 {
		t.Fatalf("%d exports at ratio 0", exports)
	}
}
