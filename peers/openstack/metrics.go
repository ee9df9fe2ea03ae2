package openstack

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/cloudmux/cloudmux/internal/tracing"
)

// Metrics time every HTTP call the driver makes to its peers, by peer,
// service and operation: where a slow or failing peer shows first. One
// Metrics serves every peer the broker connects (Config.Metrics).
type Metrics struct {
	seconds *prometheus.HistogramVec
	errors  *prometheus.CounterVec
}

// NewMetrics registers the peer call metrics with reg
// (cloudmux_peer_request_seconds, cloudmux_peer_request_errors_total).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "cloudmux", Subsystem: "peer", Name: "request_seconds",
			Help: "Calls to OpenStack peers until the response headers (streams excluded), by peer, service and operation (method and path with IDs as {id}).",
			// Nova answers a show in ~10 ms locally; a create through a
			// WAN to a busy cloud takes seconds.
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"peer", "service", "op"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "cloudmux", Subsystem: "peer", Name: "request_errors_total",
			Help: "Failed calls to OpenStack peers, by peer, service, operation and code (the HTTP status, or 'transport' when none came back).",
		}, []string{"peer", "service", "op", "code"}),
	}
	reg.MustRegister(m.seconds, m.errors)
	return m
}

// meteredTransport times calls through next. Calls under the auth URL are
// identity; which service another URL belongs to is learnt from the
// service catalog after authentication (setBases).
type meteredTransport struct {
	next http.RoundTripper
	m    *Metrics
	peer string
	// authURL is the identity service's base (Keystone's calls count as
	// identity until the catalog names the others).
	authURL string
	bases   atomic.Pointer[[]serviceBase]
}

type serviceBase struct {
	prefix, service string
}

func (t *meteredTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	start := time.Now()
	service, route := t.classify(req.URL)
	op := req.Method + " " + route
	// The span carries no trace headers to the peer: a foreign cloud's
	// tracing is not ours to join.
	_, span := tracing.Tracer().Start(req.Context(), "peer "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("cloudmux.peer", t.peer), attribute.String("cloudmux.service", service)))
	resp, err := t.next.RoundTrip(req)
	t.m.seconds.WithLabelValues(t.peer, service, op).Observe(time.Since(start).Seconds())
	switch {
	case err != nil:
		t.m.errors.WithLabelValues(t.peer, service, op, "transport").Inc()
		tracing.End(span, err)
	case resp.StatusCode >= 400:
		t.m.errors.WithLabelValues(t.peer, service, op, strconv.Itoa(resp.StatusCode)).Inc()
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
		if resp.StatusCode >= 500 {
			span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
		}
		span.End()
	default:
		span.SetAttributes(attribute.Int("http.response.status_code", resp.StatusCode))
		span.End()
	}
	return resp, err
}

// CloseIdleConnections lets http.Client.CloseIdleConnections reach the
// wrapped transport.
func (t *meteredTransport) CloseIdleConnections() {
	if c, ok := t.next.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

// setBases records where each service lives, longest prefix first so a
// base that extends another wins. It is called twice: with the catalog's
// endpoints right after authentication (version discovery calls them
// before the service clients exist), then with the service clients'
// versioned resource bases.
func (t *meteredTransport) setBases(add []serviceBase) {
	var bases []serviceBase
	if old := t.bases.Load(); old != nil {
		bases = append(bases, *old...)
	}
	for _, b := range add {
		if b.prefix = strings.TrimSuffix(b.prefix, "/"); b.prefix != "" {
			bases = append(bases, b)
		}
	}
	slices.SortStableFunc(bases, func(a, b serviceBase) int { return len(b.prefix) - len(a.prefix) })
	t.bases.Store(&bases)
}

// clientBases are the service clients' versioned resource bases.
func clientBases(clients map[string]*gophercloud.ServiceClient) []serviceBase {
	var out []serviceBase
	for service, sc := range clients {
		if sc != nil {
			out = append(out, serviceBase{prefix: sc.ResourceBaseURL(), service: service}, serviceBase{prefix: sc.Endpoint, service: service})
		}
	}
	return out
}

// catalogBases are the token catalog's endpoints for the services the
// driver uses.
func catalogBases(p *gophercloud.ProviderClient, eo gophercloud.EndpointOpts) []serviceBase {
	var out []serviceBase
	for _, service := range []string{"compute", "image", "network", "volumev3", "block-storage", "object-store"} {
		o := eo
		o.Type = service
		if u, err := p.EndpointLocator(o); err == nil {
			name := service
			if service == "volumev3" || service == "block-storage" {
				name = "volume"
			}
			out = append(out, serviceBase{prefix: u, service: name})
		}
	}
	return out
}

// classify names the service and a bounded route for u: path segments
// after the service's base alternate between collections (API names, kept)
// and IDs or user-chosen names (replaced by {id}), so no ID or name ever
// becomes a label value.
func (t *meteredTransport) classify(u *url.URL) (service, route string) {
	full := u.Scheme + "://" + u.Host + u.Path
	if rest, ok := strings.CutPrefix(full, t.authURL); ok && t.authURL != "" && (rest == "" || rest[0] == '/') {
		// The driver's identity calls are authentication and version
		// discovery: fixed API paths under the auth URL.
		segs := strings.Split(strings.Trim(rest, "/"), "/")
		for i, s := range segs {
			if len(s) >= 32 {
				segs[i] = "{id}"
			}
		}
		return "identity", "/" + strings.Join(segs, "/")
	}
	rest, service := u.Path, "other"
	if bases := t.bases.Load(); bases != nil {
		for _, b := range *bases {
			if r, ok := strings.CutPrefix(full, b.prefix); ok && (r == "" || r[0] == '/') {
				rest, service = r, b.service
				break
			}
		}
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	if len(segs) == 1 && segs[0] == "" {
		return service, "/"
	}
	if service == "object-store" {
		// Swift paths are the account's containers and objects: all
		// user-chosen names.
		return service, [...]string{"/", "/{container}", "/{container}/{object}"}[min(len(segs), 2)]
	}
	for i, s := range segs {
		if i%2 == 1 && !keptSegment[s] {
			segs[i] = "{id}"
		}
	}
	if len(segs) > 4 {
		segs = append(segs[:4], "...")
	}
	return service, "/" + strings.Join(segs, "/")
}

// keptSegment are API words that sit where an ID would (/servers/detail).
var keptSegment = map[string]bool{"detail": true, "action": true, "file": true, "stage": true, "import": true,
	"os-extra_specs": true, "extra_specs": true, "summary": true, "defaults": true}
