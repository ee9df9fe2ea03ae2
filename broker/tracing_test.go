package broker_test

import (
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cloudmux/cloudmux/internal/tracing/tracingtest"
)

// TestRequestSpans: every request is one server span named by its route,
// joined to the caller's trace when it sends a traceparent.
func TestRequestSpans(t *testing.T) {
	exp := tracingtest.Record(t)
	e := newEnv(t)
	const traceID, parentID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/peers/nope", nil)
	req.Header.Set("X-Auth-Token", e.adminToken)
	req.Header.Set("traceparent", "00-"+traceID+"-"+parentID+"-01")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if code, _ := e.call(t, http.MethodGet, "/v1/peers", e.adminToken, ""); code != http.StatusOK {
		t.Fatalf("list peers: %d", code)
	}

	joined := tracingtest.Named(exp, "GET /v1/peers/{peer}")
	fresh := tracingtest.Named(exp, "GET /v1/peers")
	if len(joined) != 1 || len(fresh) != 1 {
		t.Fatalf("spans: %d for the show, %d for the list; want 1 and 1", len(joined), len(fresh))
	}
	tests := []struct {
		name string
		ok   bool
		got  any
	}{
		{"joined the caller's trace", joined[0].SpanContext.TraceID().String() == traceID, joined[0].SpanContext.TraceID()},
		{"child of the caller's span", joined[0].Parent.SpanID().String() == parentID, joined[0].Parent.SpanID()},
		{"server kind", joined[0].SpanKind == trace.SpanKindServer, joined[0].SpanKind},
		{"a 404 is no span error", joined[0].Status.Code != codes.Error, joined[0].Status},
		{"a request without traceparent starts a trace", fresh[0].SpanContext.TraceID().String() != traceID && !fresh[0].Parent.IsValid(), fresh[0].Parent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ok {
				t.Fatalf("got %v", tc.got)
			}
		})
	}
	attrs := map[string]string{}
	for _, a := range joined[0].Attributes {
		attrs[string(a.Key)] = a.Value.String()
	}
	if attrs["http.route"] != "/v1/peers/{peer}" || attrs["http.response.status_code"] != "404" || attrs["http.request.method"] != "GET" {
		t.Fatalf("attributes %v", attrs)
	}
}
