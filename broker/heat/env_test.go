package heat

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/cloudmux/cloudmux/broker/templatesapi"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/deploytest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/focus"
)

// webHOT is a plain HOT template (as Heat's guide writes them): a network,
// a subnet and a server on it, an output, a hidden parameter.
const webHOT = `heat_template_version: 2018-08-31
description: A web server on its own network
parameters:
  flavor:
    type: string
    default: m1.nano
  secret:
    type: string
    hidden: true
    default: s3cr3t-value
resources:
  net:
    type: OS::Neutron::Net
    properties: {name: web-net}
  sub:
    type: OS::Neutron::Subnet
    properties:
      network_id: {get_resource: net}
      cidr: 10.40.0.0/24
  web:
    type: OS::Nova::Server
    metadata: {role: frontend}
    depends_on: sub
    properties:
      flavor: {get_param: flavor}
      image: ` + localcloud.SeedImageName + `
      networks: [{network: {get_resource: net}}]
outputs:
  ip:
    description: the server's address
    value: {get_attr: [web, first_address]}
`

// gate holds every server create on its peer until opened, so a test can
// act while an apply is in progress without timing anything.
type gate struct {
	mu     sync.Mutex
	closed bool
	ch     chan struct{}
	// failing makes server creates fail (the peer refuses them).
	failing bool
}

func (g *gate) fail(on bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.failing = on
}

func newGate() *gate { return &gate{ch: make(chan struct{})} }

// hold makes the next creates wait (a gate starts open).
func (g *gate) hold() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.ch, g.closed = make(chan struct{}), true
}

func (g *gate) open() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		close(g.ch)
		g.closed = false
	}
}

func (g *gate) wait(ctx context.Context) error {
	g.mu.Lock()
	ch, closed, failing := g.ch, g.closed, g.failing
	g.mu.Unlock()
	if failing {
		return errors.New("the peer refused the server")
	}
	if !closed {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type gatedCloud struct {
	*localcloud.Cloud
	g *gate
}

func (c gatedCloud) CreateServer(ctx context.Context, s peers.ServerSpec) (peers.Server, error) {
	if err := c.g.wait(ctx); err != nil {
		return peers.Server{}, err
	}
	return c.Cloud.CreateServer(ctx, s)
}

type heatEnv struct {
	*brokertest.Env
	api  *API
	gate *gate
}

func newHeatEnv(t *testing.T) *heatEnv {
	he := &heatEnv{gate: newGate()}
	he.gate.open()
	seeded := func(c *localcloud.Cloud) peers.Cloud {
		if _, err := c.Seed(context.Background()); err != nil {
			t.Fatal(err)
		}
		return gatedCloud{c, he.gate}
	}
	he.Env = brokertest.New(t, []brokertest.Peer{{Name: "local", Wrap: seeded}}, func(e *brokertest.Env, r chi.Router) {
		cat := &focus.Catalog{Store: e.Store}
		eng := &deploy.Engine{Store: e.Store, Placer: policy.Default{}, Resolver: cat, Uses: cat,
			Holder: "broker-test", PollInterval: 20 * time.Millisecond}
		he.api = &API{Engine: eng, Templates: &templatesapi.API{Catalog: cat, Engine: eng}, Auth: e.Keystone.Authenticate}
		r.Route("/orchestration", he.api.Routes)
	})
	svc := deploytest.New(he.Store, he.Pool, policy.Default{}, "test-broker", he.Log)
	he.api.Engine.Resources, he.api.Engine.Peers = svc.Adapter, svc.Adapter
	go func() { _ = he.api.Engine.Serve(he.Ctx) }()
	return he
}

// client logs user in on project with role and returns an orchestration
// client found through the catalog, as gophercloud users get one.
func (he *heatEnv) client(t *testing.T, user, project, role string) *gophercloud.ServiceClient {
	t.Helper()
	pw := he.Member(t, user, project, role)
	c, err := openstack.NewOrchestrationV1(he.Provider(t, user, pw, project), gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// do sends a raw request with c's token to c's endpoint + path and
// decodes the answer into out.
func do(t *testing.T, c *gophercloud.ServiceClient, method, path, body string, out any) (int, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, strings.TrimSuffix(c.Endpoint, "/")+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", c.Token())
	req.Header.Set("Content-Type", "application/json")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return resp.StatusCode, resp.Header
}
