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
	kind         string // "lose-answer", "drop", "no-leader"
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

// TestWritesSurviveLostAnswers: a write whose answer is lost after Consul
// applied it is reported as the success it was (never a conflict with
// itself, never applied twice); one lost before it reached Consul is
// retried; reads ride out a leaderless moment.
func TestWritesSurviveLostAnswers(t *testing.T) {
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

	tests := []struct {
		name, kind string
		write      func() (uint64, error)
		key, want  string
	}{
		{"create-only CAS, answer lost", "lose-answer", func() (uint64, error) { return s.CAS(ctx, "c1", []byte("one"), 0) }, "c1", "one"},
		{"create-only CAS, dropped before Consul", "drop", func() (uint64, error) { return s.CAS(ctx, "c2", []byte("two"), 0) }, "c2", "two"},
		{"put, answer lost", "lose-answer", func() (uint64, error) { return s.Put(ctx, "p1", []byte("three")) }, "p1", "three"},
		{"put during an election", "no-leader", func() (uint64, error) { return s.Put(ctx, "p2", []byte("four")) }, "p2", "four"},
		{"CAS at an index, answer lost", "lose-answer", func() (uint64, error) {
			kv, err := direct.Get(ctx, "p1")
			if err != nil {
				return 0, err
			}
			return s.CAS(ctx, "p1", []byte("five"), kv.ModifyIndex)
		}, "p1", "five"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := proxy.seenTxn()
			proxy.inject(http.MethodPut, "/v1/txn", tc.kind, 1)
			idx, err := tc.write()
			if err != nil {
				t.Fatalf("write: %v", err)
			}
			kv, err := direct.Get(ctx, tc.key)
			if err != nil || string(kv.Value) != tc.want || kv.ModifyIndex != idx {
				t.Fatalf("stored %q at %d (%v), want %q at the index the write returned, %d", kv.Value, kv.ModifyIndex, err, tc.want, idx)
			}
			// A lost answer is not retried (the read showed it applied);
			// a request that never reached Consul is sent once more.
			want := map[string]int{"lose-answer": 1, "drop": 1, "no-leader": 1}[tc.kind]
			if got := proxy.seenTxn() - before; got != want {
				t.Fatalf("%d transactions reached Consul, want %d", got, want)
			}
		})
	}

	t.Run("a CAS overtaken while its answer was lost is a conflict", func(t *testing.T) {
		kv, err := direct.Get(ctx, "c1")
		if err != nil {
			t.Fatal(err)
		}
		proxy.inject(http.MethodPut, "/v1/txn", "drop", 1)
		if _, err := direct.Put(ctx, "c1", []byte("someone else")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CAS(ctx, "c1", []byte("mine"), kv.ModifyIndex); !errorsIsConflict(err) {
			t.Fatalf("CAS over another writer: %v, want ErrConflict", err)
		}
	})
	t.Run("delete-cas, answer lost", func(t *testing.T) {
		kv, err := direct.Get(ctx, "c2")
		if err != nil {
			t.Fatal(err)
		}
		proxy.inject(http.MethodPut, "/v1/txn", "lose-answer", 1)
		if err := s.DeleteCAS(ctx, "c2", kv.ModifyIndex); err != nil {
			t.Fatalf("DeleteCAS whose answer was lost: %v", err)
		}
		if _, err := direct.Get(ctx, "c2"); !errorsIsNotFound(err) {
			t.Fatalf("the key after the delete: %v", err)
		}
	})
	t.Run("reads ride out a leaderless moment", func(t *testing.T) {
		proxy.inject(http.MethodGet, "/v1/kv/", "no-leader", 3)
		if kv, err := s.Get(ctx, "p2"); err != nil || string(kv.Value) != "four" {
			t.Fatalf("Get: %q, %v", kv.Value, err)
		}
		proxy.inject(http.MethodGet, "/v1/kv/", "drop", 2)
		if kvs, _, err := s.List(ctx, ""); err != nil || len(kvs) != 3 { // c1, p1, p2
			t.Fatalf("List: %d keys, %v", len(kvs), err)
		}
	})
}

func (p *faultyProxy) seenTxn() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seen["PUT /v1/txn"]
}

func errorsIsConflict(err error) bool { return errors.Is(err, registry.ErrConflict) }
func errorsIsNotFound(err error) bool { return errors.Is(err, registry.ErrNotFound) }
