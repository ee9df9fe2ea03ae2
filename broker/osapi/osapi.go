// Package osapi is the plumbing the broker's OpenStack service APIs share:
// Nova-family error bodies ({"itemNotFound": {...}}, as Nova and Cinder
// answer), microversion negotiation, the project-scope requirement, and the
// header that flags a list merged from peers as partial.
package osapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/identity"
)

// PartialHeader names the peers a merged list is missing because they did
// not answer in time.
const PartialHeader = "X-Cloudmux-Partial-Peers"

// faultNames are the error body keys Nova and Cinder use, by status.
var faultNames = map[int]string{
	400: "badRequest", 401: "unauthorized", 403: "forbidden", 404: "itemNotFound", 405: "badMethod",
	409: "conflictingRequest", 413: "overLimit", 415: "badMediaType", 429: "overLimit",
	501: "notImplemented", 503: "serviceUnavailable",
}

// Fault answers with a Nova-family error body, msg being the broker's own
// words. The body carries the request ID (also in X-Openstack-Request-Id)
// a tenant quotes to support.
func Fault(w http.ResponseWriter, r *http.Request, code int, msg string) {
	name, ok := faultNames[code]
	if !ok {
		name = "computeFault"
	}
	WriteJSON(w, code, map[string]any{name: map[string]any{"code": code, "message": msg,
		"request_id": middleware.GetReqID(r.Context())}})
}

// Error answers err with code in the Nova family's shape, telling the
// tenant only what faults.Message allows; the rest goes to the log.
func Error(w http.ResponseWriter, r *http.Request, log logrus.FieldLogger, code int, err error) {
	Fault(w, r, code, Tell(r, log, code, err))
}

// Tell is the boundary rule for every OpenStack-shaped API: the message a
// tenant reads for err answered with code (the broker's own words, or the
// status's generic text, or for a 500 the request ID to quote), and a log
// line under the request ID with the caller's project and the whole chain
// whenever the tenant was not told all of it.
func Tell(r *http.Request, log logrus.FieldLogger, code int, err error) string {
	id := middleware.GetReqID(r.Context())
	msg, ok := faults.Message(err, code)
	if !ok || code >= 500 || faults.Foreign(err) {
		t, _ := identity.TokenFrom(r.Context())
		faults.Log(log, id, code, err, logrus.Fields{"project": t.ProjectID, "user": t.UserName,
			"method": r.Method, "path": r.URL.Path})
	}
	if code == http.StatusInternalServerError {
		return faults.Internal(id)
	}
	return msg
}

// WriteJSON answers with v as JSON.
func WriteJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// RequestID gives every request an OpenStack-style ID, "req-" and a UUID,
// in the context (where chi's middleware.GetReqID finds it) and in the
// X-Openstack-Request-Id header clients quote. A client's own ID is not
// trusted: log lines must not be forgeable.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := "req-" + uuid.NewString()
		w.Header().Set("X-Openstack-Request-Id", id)
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), middleware.RequestIDKey, id)))
	})
}

// Internal logs err under the request ID and answers 500 without echoing
// it: internals stay in the broker's log.
func Internal(w http.ResponseWriter, r *http.Request, log logrus.FieldLogger, err error) {
	Error(w, r, log, http.StatusInternalServerError, err)
}

// RequireProject refuses unscoped tokens: every resource of these APIs
// belongs to a project.
func RequireProject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, _ := identity.TokenFrom(r.Context()); !t.Scoped() {
			Fault(w, r, http.StatusForbidden, "a project-scoped token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Microversion negotiates a service's API version from the
// OpenStack-API-Version header ("SERVICE X.Y") or the service's legacy
// header, when it has one. Only versions in [min, max] (or "latest") are
// accepted; anything else is 406, as the services answer, so a client never
// believes it got a behaviour it did not.
func Microversion(service, legacyHeader, min, max string) func(http.Handler) http.Handler {
	vary := "OpenStack-API-Version"
	if legacyHeader != "" {
		vary += ", " + legacyHeader
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var asked string
			if legacyHeader != "" {
				asked = strings.TrimSpace(r.Header.Get(legacyHeader))
			}
			if v, ok := strings.CutPrefix(strings.TrimSpace(r.Header.Get("OpenStack-API-Version")), service+" "); ok {
				asked = strings.TrimSpace(v)
			}
			if asked != "" && asked != "latest" && !inRange(asked, min, max) {
				Fault(w, r, http.StatusNotAcceptable, fmt.Sprintf("Version %s is not supported by the API. Minimum is %s and maximum is %s.", asked, min, max))
				return
			}
			// No header means the minimum, as the services answer: a client
			// that asks for nothing gets the oldest behaviour.
			effective := asked
			switch asked {
			case "":
				effective = min
			case "latest":
				effective = max
			}
			w.Header().Set("OpenStack-API-Version", service+" "+effective)
			if legacyHeader != "" {
				w.Header().Set(legacyHeader, effective)
			}
			w.Header().Set("Vary", vary)
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), versionKey{}, effective)))
		})
	}
}

type versionKey struct{}

// VersionAtLeast reports whether the request negotiated microversion v or
// later (through Microversion); a request that negotiated none is not.
func VersionAtLeast(r *http.Request, v string) bool {
	got, _ := r.Context().Value(versionKey{}).(string)
	return got != "" && inRange(got, v, "999999.0")
}

// inRange compares "X.Y" microversions numerically.
func inRange(v, min, max string) bool {
	parse := func(s string) (int, int, bool) {
		a, b, ok := strings.Cut(s, ".")
		x, err1 := strconv.Atoi(a)
		y, err2 := strconv.Atoi(b)
		return x, y, ok && err1 == nil && err2 == nil
	}
	vx, vy, ok := parse(v)
	lx, ly, _ := parse(min)
	hx, hy, _ := parse(max)
	if !ok {
		return false
	}
	return (vx > lx || (vx == lx && vy >= ly)) && (vx < hx || (vx == hx && vy <= hy))
}

// FlagPartial names the peers a merged list is missing, in PartialHeader
// and a log line, so a client can tell a short list from a complete one.
func FlagPartial(w http.ResponseWriter, r *http.Request, log logrus.FieldLogger, what string, failed []string, err error) {
	if len(failed) == 0 {
		return
	}
	w.Header().Set(PartialHeader, strings.Join(failed, ","))
	log.WithError(err).WithFields(logrus.Fields{"list": what, "peers": failed,
		"request_id": middleware.GetReqID(r.Context())}).Warn("partial list; peers did not answer")
}

// ParseBool reads a boolean query parameter as OpenStack services do
// (oslo.utils' bool_from_string, strict): 1, t, true, on, y, yes and 0,
// f, false, off, n, no in any case; ok is false for anything else, which
// the services refuse with a 400.
func ParseBool(s string) (value, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "t", "true", "on", "y", "yes":
		return true, true
	case "0", "f", "false", "off", "n", "no":
		return false, true
	}
	return false, false
}
