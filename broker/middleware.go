package broker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// ctxKey is the type of the broker's context keys, so no other package can
// collide with them.
type ctxKey int

const (
	principalKey ctxKey = iota
	loggerKey
)

var errNotFoundPath = fmt.Errorf("%w: no such API path", registry.ErrNotFound)

// PrincipalFrom returns the authenticated principal of a request.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey).(Principal)
	return p, ok
}

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
		ww.Header().Set("X-Openstack-Request-Id", "req-"+middleware.GetReqID(r.Context()))
		next.ServeHTTP(ww, r.WithContext(context.WithValue(r.Context(), loggerKey, log)))
		route := chi.RouteContext(r.Context()).RoutePattern()
		if route == "" {
			route = "unmatched"
		}
		elapsed := time.Since(start)
		status := ww.Status()
		if status == 0 {
			status = http.StatusOK
		}
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

// authenticate requires a valid token and puts the principal in the context.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.Tokens.Validate(r.Context(), tokenFrom(r))
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		ctx := context.WithValue(r.Context(), principalKey, p)
		ctx = context.WithValue(ctx, loggerKey, logFrom(ctx, s.log).WithField("user", p.UserName))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// requireRole answers 403 unless the principal holds role.
func (s *Server) requireRole(role string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := PrincipalFrom(r.Context())
			if !p.HasRole(role) {
				s.writeError(w, r, fmt.Errorf("%w: this needs the %s role", ErrForbidden, role))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

type loginRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	// TTL is a Go duration ("8h"); default 24h, at most 7 days.
	TTL string `json:"ttl,omitempty"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var req loginRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	ttl := 24 * time.Hour
	var errs []error
	if req.Username == "" {
		errs = append(errs, &registry.FieldError{Field: "username", Reason: "is required"})
	}
	if req.Password == "" {
		errs = append(errs, &registry.FieldError{Field: "password", Reason: "is required"})
	}
	if req.TTL != "" {
		d, err := time.ParseDuration(req.TTL)
		if err != nil || d <= 0 || d > 7*24*time.Hour {
			errs = append(errs, &registry.FieldError{Field: "ttl", Reason: "must be a duration such as 8h, at most 168h"})
		}
		ttl = d
	}
	if err := errors.Join(errs...); err != nil {
		s.writeError(w, r, err)
		return
	}
	token, p, err := s.Tokens.Login(r.Context(), req.Username, req.Password, ttl)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("X-Subject-Token", token)
	writeJSON(w, http.StatusCreated, map[string]any{"token": token, "principal": p})
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) {
	p, _ := PrincipalFrom(r.Context())
	writeJSON(w, http.StatusOK, map[string]any{"principal": p})
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.Tokens.Revoke(r.Context(), tokenFrom(r)); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func itoa(n int) string { return strconv.Itoa(n) }
