package swift_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/object"
	"github.com/cloudmux/cloudmux/broker/swift"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// namePlacer puts a container named "<peer>-..." on that peer, and any
// other where policy.Default would: tests choose where containers live.
type namePlacer struct{}

func (namePlacer) Place(ctx context.Context, req policy.Request, candidates []registry.Peer) (policy.Decision, error) {
	d, err := policy.Default{}.Place(ctx, req, candidates)
	if err != nil {
		return d, err
	}
	for i, v := range d.Verdicts {
		if v.Allowed && strings.HasPrefix(req.Name, v.Peer.Name+"-") {
			d.Verdicts[0], d.Verdicts[i] = d.Verdicts[i], d.Verdicts[0]
		}
	}
	return d, nil
}

// env is a broker serving Keystone and Swift over two local clouds, "p1"
// and "p2", each with object storage.
type env struct {
	*brokertest.Env
	svc *object.Service
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{}
	e.Env = brokertest.New(t, []brokertest.Peer{{Name: "p1"}, {Name: "p2"}}, func(be *brokertest.Env, r chi.Router) {
		e.svc = &object.Service{Pool: be.Pool, Placer: namePlacer{}, Store: be.Store, Log: be.Log,
			Containers: object.NewContainersMemory(be.Store, be.Log), Accounts: object.NewAccountsMemory(be.Store, be.Log)}
		api := &swift.API{Objects: e.svc, Tokens: be.Keystone.Tokens, Log: be.Log}
		r.Route("/swift", api.Routes)
		r.Get("/info", api.Info)
	})
	e.Start(t, e.svc.Containers, e.svc.Accounts)
	return e
}

// user is a logged-in user of a project: its token and its account's
// storage URL path.
type user struct {
	token, project, account string
}

func (e *env) login(t *testing.T, name, project, role string) user {
	t.Helper()
	password := brokertest.AdminPassword
	if name != "admin" {
		password = e.Member(t, name, project, role)
	}
	p, err := e.Dir.FindProject(e.Ctx, identity.DefaultDomainID, project)
	if err != nil {
		t.Fatal(err)
	}
	return user{token: e.Provider(t, name, password, project).Token(), project: p.ID, account: "/swift/v1/AUTH_" + p.ID}
}

// do sends one request with the user's token and returns the response
// with its body read.
func (e *env) do(t *testing.T, u user, method, path string, header http.Header, body io.Reader) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(e.Ctx, method, e.Server.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if u.token != "" {
		req.Header.Set("X-Auth-Token", u.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(raw)
}

// must is do that fails the test unless the status is want.
func (e *env) must(t *testing.T, u user, want int, method, path string, header http.Header, body string) (*http.Response, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	resp, got := e.do(t, u, method, path, header, r)
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %q; want %d", method, path, resp.StatusCode, got, want)
	}
	return resp, got
}

func hdr(kv ...string) http.Header {
	h := http.Header{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Set(kv[i], kv[i+1])
	}
	return h
}

// peerOf names the peer holding a container, from the service's record.
func (e *env) peerOf(t *testing.T, u user, container string) string {
	t.Helper()
	id, _, err := e.svc.PeerOf(e.Ctx, u.project, container)
	if err != nil {
		t.Fatal(err)
	}
	m, ok := e.Pool.Get(id)
	if !ok {
		t.Fatalf("peer %s of %s not in the pool", id, container)
	}
	return m.Peer.Name
}
