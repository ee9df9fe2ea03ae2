package compute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// The microversion range this API really implements. Raise MaxVersion only
// with the behaviour the new version requires.
const (
	MinVersion = "2.1"
	MaxVersion = "2.1"
)

// PartialHeader names the peers a merged list is missing because they did
// not answer in time.
const PartialHeader = "X-Cloudmux-Partial-Peers"

// Members is the part of peers.Pool the API reads.
type Members interface {
	Members() []*peers.Member
}

// Nova serves /compute.
type Nova struct {
	Pool     Members
	Keypairs *KeypairStore
	Auth     func(http.Handler) http.Handler // Keystone token validation
	Log      logrus.FieldLogger
	// PeerTimeout bounds each peer's part of a fan-out; default 10s.
	PeerTimeout time.Duration
}

// Routes mounts the API on r (at /compute).
func (n *Nova) Routes(r chi.Router) {
	r.Get("/", n.versions)
	r.Route("/v2.1", func(r chi.Router) {
		r.Use(microversion)
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			writeFault(w, r, http.StatusNotFound, "The resource could not be found.")
		})
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			writeFault(w, r, http.StatusMethodNotAllowed, "The method "+r.Method+" is not allowed for this resource.")
		})
		r.Get("/", n.version)
		r.Group(func(r chi.Router) {
			r.Use(n.Auth, requireProject)
			r.Route("/flavors", func(r chi.Router) {
				r.Get("/", n.listFlavors(false))
				r.Get("/detail", n.listFlavors(true))
				r.Get("/{id}", n.showFlavor)
				r.Get("/{id}/os-extra_specs", n.flavorExtraSpecs)
			})
			r.Route("/os-availability-zone", func(r chi.Router) {
				r.Get("/", n.zones(false))
				r.With(identity.RequireRole(identity.RoleAdmin)).Get("/detail", n.zones(true))
			})
			r.Route("/os-keypairs", func(r chi.Router) {
				r.Get("/", n.listKeypairs)
				r.Post("/", n.createKeypair)
				r.Get("/{name}", n.showKeypair)
				r.Delete("/{name}", n.deleteKeypair)
			})
		})
	})
}

func versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": MaxVersion, "min_version": MinVersion,
		"updated": "2013-07-23T11:33:21Z",
		"links":   []map[string]string{{"rel": "self", "href": identity.BaseURL(r) + "/compute/v2.1/"}},
	}
}

func (n *Nova) versions(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"versions": []any{versionDoc(r)}})
}

func (n *Nova) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"version": versionDoc(r)})
}

// microversion negotiates the compute API version from either header Nova
// clients send. Only versions this API implements are accepted: anything
// newer is 406, as Nova answers, so a client never believes it got a
// behaviour it did not.
func microversion(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		asked := r.Header.Get("X-OpenStack-Nova-API-Version")
		if v, ok := strings.CutPrefix(strings.TrimSpace(r.Header.Get("OpenStack-API-Version")), "compute "); ok {
			asked = strings.TrimSpace(v)
		}
		if asked != "" && asked != "latest" && !supported(asked) {
			writeFault(w, r, http.StatusNotAcceptable, fmt.Sprintf("Version %s is not supported by the API. Minimum is %s and maximum is %s.", asked, MinVersion, MaxVersion))
			return
		}
		w.Header().Set("OpenStack-API-Version", "compute "+MaxVersion)
		w.Header().Set("X-OpenStack-Nova-API-Version", MaxVersion)
		w.Header().Set("Vary", "OpenStack-API-Version, X-OpenStack-Nova-API-Version")
		next.ServeHTTP(w, r)
	})
}

func supported(v string) bool {
	major, minor, ok := strings.Cut(v, ".")
	if !ok || major != "2" {
		return false
	}
	m, err := strconv.Atoi(minor)
	lo, _ := strconv.Atoi(strings.TrimPrefix(MinVersion, "2."))
	hi, _ := strconv.Atoi(strings.TrimPrefix(MaxVersion, "2."))
	return err == nil && m >= lo && m <= hi
}

// requireProject refuses unscoped tokens: every compute resource belongs
// to a project.
func requireProject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, _ := identity.TokenFrom(r.Context()); !t.Scoped() {
			writeFault(w, r, http.StatusForbidden, "a project-scoped token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// faultNames are Nova's error body keys by status.
var faultNames = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
	409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
	501: "notImplemented", 503: "serviceUnavailable",
}

func writeFault(w http.ResponseWriter, r *http.Request, code int, msg string) {
	name, ok := faultNames[code]
	if !ok {
		name = "computeFault"
	}
	w.Header().Set("X-Openstack-Request-Id", "req-"+middleware.GetReqID(r.Context()))
	writeJSON(w, code, map[string]any{name: map[string]any{"code": code, "message": msg}})
}

// writeError maps sentinels to Nova faults. Internal errors are logged,
// not echoed.
func (n *Nova) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, peers.ErrNotFound), errors.Is(err, registry.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, peers.ErrInvalid), errors.Is(err, registry.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, peers.ErrConflict), errors.Is(err, registry.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, peers.ErrCapacity):
		code = http.StatusForbidden // Nova's quota refusals are 403
	case errors.Is(err, peers.ErrNotSupported):
		code = http.StatusNotImplemented
	case errors.Is(err, peers.ErrUnavailable), errors.Is(err, registry.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		n.Log.WithError(err).WithField("request_id", middleware.GetReqID(r.Context())).Error("compute: internal error")
		msg = "internal error; see the broker log for request " + middleware.GetReqID(r.Context())
	}
	writeFault(w, r, code, msg)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// connected lists the members this broker can talk to.
func (n *Nova) connected() []*peers.Member {
	var out []*peers.Member
	for _, m := range n.Pool.Members() {
		if m.Cloud != nil {
			out = append(out, m)
		}
	}
	return out
}

func (n *Nova) peerTimeout() time.Duration {
	if n.PeerTimeout > 0 {
		return n.PeerTimeout
	}
	return 10 * time.Second
}

// flagPartial names the peers that did not answer, in a header and a log
// line, so a client can tell a short list from a complete one.
func (n *Nova) flagPartial(w http.ResponseWriter, r *http.Request, what string, failed []string, errs []error) {
	if len(failed) == 0 {
		return
	}
	w.Header().Set(PartialHeader, strings.Join(failed, ","))
	n.Log.WithError(errors.Join(errs...)).WithFields(logrus.Fields{"list": what, "peers": failed,
		"request_id": middleware.GetReqID(r.Context())}).Warn("compute: partial list; peers did not answer")
}
