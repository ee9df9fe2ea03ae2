package consul_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// faultyProxy stands between the store and a real Consul agent and, for
// the next requests matching a method and path, does one of: drop the
// connection after Consul applied the request (the answer is lost), drop
// it before forwarding (nothing happened), or answer 500 "No cluster
// leader" (as during an election).
type faultyProxy struct {
	*httptest.Server
	target *url.URL

	mu     sync.Mutex
	faults []fault
	seen   map[string]int // "METHOD /path" -> requests that reached Consul
}

type fault struct {
	method, path string
	kind         string // "lose-answer", "drop", "no-leader", "rate-limited"
}

func newFaultyProxy(t *testing.T, agent *consultest.Agent) *faultyProxy {
	target, _ := url.Parse("http://" + agent.Addr)
	p := &faultyProxy{target: target, seen: map[string]int{}}
	p.Server = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.Close)
	return p
}

func (p *faultyProxy) inject(method, path, kind string, times int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for range times {
		p.faults = append(p.faults, fault{method, path, kind})
	}
}

func (p *faultyProxy) next(r *http.Request) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, f := range p.faults {
		if f.method == r.Method && strings.HasPrefix(r.URL.Path, f.path) {
			p.faults = append(p.faults[:i], p.faults[i+1:]...)
			return f.kind
		}
	}
	return ""
}

func (p *faultyProxy) serve(w http.ResponseWriter, r *http.Request) {
	kind := p.next(r)
	switch kind {
	case "drop":
		hangUp(w)
		return
	case "no-leader":
		http.Error(w, "No cluster leader", http.StatusInternalServerError)
		return
	case "rate-limited":
		http.Error(w, "rate limit exceeded", http.StatusTooManyRequests)
		return
	}
	body, _ := io.ReadAll(r.Body)
	out, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target.String()+r.URL.RequestURI(), bytes.NewReader(body))
	out.Header = r.Header.Clone()
	resp, err := http.DefaultTransport.RoundTrip(out)
	if err != nil {
		hangUp(w)
		return
	}
	defer resp.Body.Close()
	p.mu.Lock()
	p.seen[r.Method+" "+r.URL.Path]++
	p.mu.Unlock()
	if kind == "lose-answer" {
		hangUp(w) // Consul did it; the store never hears
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, resp.Body)
}

func hangUp(w http.ResponseWriter) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = conn.Close()
	}
}

// TestWritesAcrossFaults: a write that certainly did not happen (Consul
// had no leader, or rate limited it, or the key read back shows no write
// since the CAS's index) is tried again and succeeds once; a plain put is
// settled by reading back; a CAS whose answer was lost and whose key moved
// is ErrUnavailable, never a success or a conflict it cannot know it
// earned (reading back cannot tell our write from an identical one of
// another broker); reads ride out both.
func TestWritesAcrossFaults(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Consul agent")
	}
	t.Parallel()
	a := consultest.Start(t)
	proxy := newFaultyProxy(t, a)
	s, err := consul.New(consul.Config{Address: proxy.URL, KeyPrefix: "faults/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	direct := newStore(t, a, "faults/")
	ctx := ctxT(t)
	base, err := direct.Put(ctx, "quota", []byte(`{"cores":4}`))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, kind  string
		write       func() (uint64, error)
		key, stored string // "" : absent
		retried     bool   // the write reached Consul twice
		unavailable bool
	}{
		{"put during an election", "no-leader", func() (uint64, error) { return s.Put(ctx, "p1", []byte("one")) }, "p1", "one", false, false},
		{"create-only CAS, rate limited", "rate-limited", func() (uint64, error) { return s.CAS(ctx, "c1", []byte("two"), 0) }, "c1", "two", false, false},
		{"create-only CAS, answer lost", "lose-answer", func() (uint64, error) { return s.CAS(ctx, "c2", []byte("three"), 0) }, "c2", "three", false, true},
		{"put, connection dropped", "drop", func() (uint64, error) { return s.Put(ctx, "p2", []byte("four")) }, "p2", "four", false, false},
		{"put, answer lost", "lose-answer", func() (uint64, error) { return s.Put(ctx, "p3", []byte("five")) }, "p3", "five", false, false},
		{"CAS, connection dropped before Consul saw it", "drop", func() (uint64, error) {
			kv, err := direct.Get(ctx, "p1")
			if err != nil {
				return 0, err
			}
			return s.CAS(ctx, "p1", []byte("one"), kv.ModifyIndex)
		}, "p1", "one", false, false},
		{"CAS whose twin another broker wrote first", "drop", func() (uint64, error) {
			if _, err := direct.CAS(ctx, "quota", []byte(`{"cores":3}`), base); err != nil {
				return 0, err
			}
			return s.CAS(ctx, "quota", []byte(`{"cores":3}`), base)
		}, "quota", `{"cores":3}`, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			proxy.inject(http.MethodPut, "/v1/txn", tc.kind, 1)
			idx, err := tc.write()
			switch {
			case tc.unavailable && !errors.Is(err, registry.ErrUnavailable):
				t.Fatalf("write: %v (index %d), want ErrUnavailable: its outcome is unknown", err, idx)
			case !tc.unavailable && err != nil:
				t.Fatalf("write: %v", err)
			}
			kv, err := direct.Get(ctx, tc.key)
			switch {
			case tc.stored == "" && !errors.Is(err, registry.ErrNotFound):
				t.Fatalf("the key: %q %v, want none", kv.Value, err)
			case tc.stored != "" && (err != nil || string(kv.Value) != tc.stored):
				t.Fatalf("the key: %q %v, want %q", kv.Value, err, tc.stored)
			case !tc.unavailable && kv.ModifyIndex != idx:
				t.Fatalf("stored at %d, the write returned %d", kv.ModifyIndex, idx)
			}
		})
	}
	t.Run("delete-cas of a key another broker deleted, answer lost", func(t *testing.T) {
		kv, err := direct.Put(ctx, "claim", []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		if err := direct.DeleteCAS(ctx, "claim", kv); err != nil {
			t.Fatal(err)
		}
		proxy.inject(http.MethodPut, "/v1/txn", "drop", 1)
		if err := s.DeleteCAS(ctx, "claim", kv); !errors.Is(err, registry.ErrUnavailable) {
			t.Fatalf("DeleteCAS: %v, want ErrUnavailable (it cannot know the delete was its own)", err)
		}
	})
	t.Run("delete-cas during an election", func(t *testing.T) {
		kv, err := direct.Put(ctx, "claim2", []byte("x"))
		if err != nil {
			t.Fatal(err)
		}
		proxy.inject(http.MethodPut, "/v1/txn", "no-leader", 2)
		if err := s.DeleteCAS(ctx, "claim2", kv); err != nil {
			t.Fatalf("DeleteCAS: %v", err)
		}
	})
	t.Run("reads ride out a leaderless moment and broken connections", func(t *testing.T) {
		proxy.inject(http.MethodGet, "/v1/kv/", "no-leader", 3)
		if kv, err := s.Get(ctx, "p1"); err != nil || string(kv.Value) != "one" {
			t.Fatalf("Get: %q, %v", kv.Value, err)
		}
		proxy.inject(http.MethodGet, "/v1/kv/", "drop", 2)
		if kvs, _, err := s.List(ctx, ""); err != nil || len(kvs) != 6 { // quota, p1, p2, p3, c1, c2
			t.Fatalf("List: %d keys, %v", len(kvs), err)
		}
	})
}
