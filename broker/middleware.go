package broker

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/cloudmux/cloudmux/internal/tracing"
)

// ctxKey is the type of the broker's context keys, so no other package can
// collide with them.
type ctxKey int

const loggerKey ctxKey = 0

func logFrom(ctx context.Context, fallback logrus.FieldLogger) logrus.FieldLogger {
	if l, ok := ctx.Value(loggerKey).(logrus.FieldLogger); ok {
		return l
	}
	return fallback
}

// requestLogger logs one line per request with fields, and records metrics.
func (s *Server) requestLogger(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		log := s.log.WithField("request_id", middleware.GetReqID(r.Context()))
		ww := middleware.NewWrapResponseWriter(w, r.ProtoMajor)
		// A span per request, joined to the caller's trace when it sent a
		// traceparent; named once routing knows the route.
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracing.Tracer().Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method), attribute.String("cloudmux.request_id", middleware.GetReqID(r.Context()))))
		next.ServeHTTP(ww, r.WithContext(context.WithValue(ctx, loggerKey, log)))
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
		span.SetName(r.Method + " " + route)
		span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
		if status >= 500 {
			span.SetStatus(codes.Error, http.StatusText(status))
		}
		span.End()
		s.metrics.observe(r.Method, route, status, elapsed)
		entry := log.WithFields(logrus.Fields{
			"method": r.Method, "path": r.URL.Path, "route": route, "status": status,
			"bytes": ww.BytesWritten(), "duration_ms": float64(elapsed.Microseconds()) / 1000, "remote": r.RemoteAddr,
		})
		if status >= 500 {
			entry.Warn("request")
		} else {
			entry.Info("request")
		}
	})
}

func itoa(n int) string { return strconv.Itoa(n) }

// Streaming reports whether a request moves a body of unbounded length or
// duration: image data (Glance's /file, EC2's upload) and event streams. Those run
// without the request timeout and body deadline; the client going away
// still cancels them.
func Streaming(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/image/") && strings.HasSuffix(p, "/file"), p == "/ec2/upload":
		return true
	case strings.HasPrefix(p, "/swift/v1/") && strings.Count(p, "/") >= 5 && r.Method != http.MethodHead:
		// An object's data (PUT, GET, COPY) streams as long as it takes.
		return true
	case r.Method == http.MethodGet && strings.HasSuffix(p, "/events") && strings.Contains(r.Header.Get("Accept"), "text/event-stream"):
		return true
	}
	return false
}

// deadlines bounds every ordinary request: its body must arrive and its
// handler must answer within RequestTimeout. The server itself sets no
// ReadTimeout, since one would cut image uploads short.
func (s *Server) deadlines(next http.Handler) http.Handler {
	bounded := middleware.Timeout(s.RequestTimeout)(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Streaming(r) {
			next.ServeHTTP(w, r)
			return
		}
		// Not every ResponseWriter (httptest's recorder) can; then only
		// the handler timeout applies.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(s.RequestTimeout))
		bounded.ServeHTTP(w, r)
	})
}
