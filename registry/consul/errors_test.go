package consul_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// fakeConsul answers every request with code and body, standing in for a
// Consul that is failing in a particular way.
func fakeConsul(t *testing.T, code int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// hangingConsul accepts requests and answers none until the test ends.
func hangingConsul(t *testing.T) string {
	t.Helper()
	stop := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		// Reading the body lets the server notice the client hanging up;
		// stop frees handlers whose client has not, since srv.Close waits
		// for every handler.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(stop) }) // runs first: cleanups are LIFO
	return srv.Listener.Addr().String()
}

// storeOp is one Store or catalog operation, run for its error.
type storeOp struct {
	name string
	run  func(context.Context, *consul.Store) error
}

var allOps = []storeOp{
	{"Get", func(ctx context.Context, s *consul.Store) error { _, err := s.Get(ctx, "k"); return err }},
	{"Put", func(ctx context.Context, s *consul.Store) error { _, err := s.Put(ctx, "k", []byte("v")); return err }},
	{"CAS", func(ctx context.Context, s *consul.Store) error {
		_, err := s.CAS(ctx, "k", []byte("v"), 7)
		return err
	}},
	{"Delete", func(ctx context.Context, s *consul.Store) error { return s.Delete(ctx, "k") }},
	{"DeleteCAS", func(ctx context.Context, s *consul.Store) error { return s.DeleteCAS(ctx, "k", 7) }},
	{"List", func(ctx context.Context, s *consul.Store) error { _, _, err := s.List(ctx, "p/"); return err }},
	{"Watch", func(ctx context.Context, s *consul.Store) error { _, _, err := s.Watch(ctx, "p/", 0); return err }},
	{"TryLock", func(ctx context.Context, s *consul.Store) error {
		_, err := s.TryLock(ctx, "lock", []byte("me"), 0)
		return err
	}},
	{"RegisterPeer", func(ctx context.Context, s *consul.Store) error {
		return s.RegisterPeer(ctx, registry.Peer{ID: "p1", Name: "one", Kind: registry.KindLocal})
	}},
	{"SetHealth", func(ctx context.Context, s *consul.Store) error {
		return s.SetHealth(ctx, "p1", registry.StatusUp, "fine")
	}},
	{"DeregisterPeer", func(ctx context.Context, s *consul.Store) error { return s.DeregisterPeer(ctx, "p1") }},
	{"Ping", func(ctx context.Context, s *consul.Store) error { return s.Ping(ctx) }},
}

func TestErrorTranslation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		cfg         func(t *testing.T) consul.Config
		unavailable bool // every op must wrap ErrUnavailable, or none may
	}{
		{"connection refused", func(t *testing.T) consul.Config {
			return consul.Config{Address: closedAddr(t)}
		}, true},
		{"500 no cluster leader", func(t *testing.T) consul.Config {
			return consul.Config{Address: fakeConsul(t, http.StatusInternalServerError, "No cluster leader")}
		}, true},
		{"503 unavailable", func(t *testing.T) consul.Config {
			return consul.Config{Address: fakeConsul(t, http.StatusServiceUnavailable, "")}
		}, true},
		{"429 rate limited", func(t *testing.T) consul.Config {
			return consul.Config{Address: fakeConsul(t, http.StatusTooManyRequests, "rate limit exceeded")}
		}, true},
		{"403 ACL denied", func(t *testing.T) consul.Config {
			return consul.Config{Address: fakeConsul(t, http.StatusForbidden, "Permission denied")}
		}, false},
		{"https against an http server", func(t *testing.T) consul.Config {
			return consul.Config{Address: fakeConsul(t, http.StatusOK, ""), Scheme: "https"}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			// Retries ride out a short outage; a lasting one still ends in
			// the translated error once the budget is spent.
			cfg := tc.cfg(t)
			cfg.RetryBudget = 300 * time.Millisecond
			s, err := consul.New(cfg, nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range allOps {
				err := op.run(ctxT(t), s)
				switch {
				case err == nil:
					t.Errorf("%s succeeded", op.name)
				case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
					t.Errorf("%s = %v: a backend failure reported as a context error", op.name, err)
				case errors.Is(err, registry.ErrUnavailable) != tc.unavailable:
					t.Errorf("%s = %v; errors.Is(err, ErrUnavailable) = %t, want %t",
						op.name, err, !tc.unavailable, tc.unavailable)
				case errors.Is(err, registry.ErrNotFound) || errors.Is(err, registry.ErrConflict):
					t.Errorf("%s = %v: a backend failure reported as a data outcome", op.name, err)
				}
			}
		})
	}
}

// TestContextErrorsStayContextErrors: when the caller's context ends while
// Consul is slow, the error is the context's, not ErrUnavailable.
func TestContextErrorsStayContextErrors(t *testing.T) {
	t.Parallel()
	s, err := consul.New(consul.Config{Address: hangingConsul(t)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range allOps {
		t.Run(op.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			err := op.run(ctx, s)
			if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, registry.ErrUnavailable) {
				t.Fatalf("%s with an expiring context = %v, want context.DeadlineExceeded only", op.name, err)
			}
			canceled, cancelNow := context.WithCancel(context.Background())
			cancelNow()
			if err := op.run(canceled, s); !errors.Is(err, context.Canceled) {
				t.Fatalf("%s with a canceled context = %v, want context.Canceled", op.name, err)
			}
		})
	}
}
