package templatesapi

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/deploytest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/focus"
)

const webTemplate = `eve_template_version: 1
parameters:
  flavor: {type: string, default: m1.nano}
  secret: {type: string, default: s3cret, hidden: true}
resources:
  net: {type: Network}
  subnet: {type: Subnet, properties: {network: {get_resource: net}, cidr: 10.50.0.0/24}}
  web:
    type: Server
    depends_on: [subnet]
    properties:
      flavor: {get_param: flavor}
      image: ` + localcloud.SeedImageName + `
      networks: [{network: {get_resource: net}}]
      metadata: {role: web}
outputs:
  ip: {value: {get_attr: [web, first_address]}}
`

type apiEnv struct {
	*brokertest.Env
	api *API
	svc *deploytest.Services
}

func newAPIEnv(t *testing.T) *apiEnv {
	var ps []brokertest.Peer
	for _, name := range []string{"local", "remote"} {
		ps = append(ps, brokertest.Peer{Name: name, Wrap: func(c *localcloud.Cloud) peers.Cloud {
			if _, err := c.Seed(context.Background()); err != nil {
				t.Fatal(err)
			}
			return c
		}})
	}
	ae := &apiEnv{}
	ae.Env = brokertest.New(t, ps, func(e *brokertest.Env, r chi.Router) {
		cat := &focus.Catalog{Store: e.Store}
		eng := &deploy.Engine{Store: e.Store, Placer: policy.Default{}, Resolver: cat, Uses: cat,
			Holder: "broker-test", PollInterval: 20 * time.Millisecond}
		ae.api = &API{Catalog: cat, Engine: eng}
		r.Route("/v1", func(r chi.Router) {
			r.Use(e.Keystone.Authenticate)
			r.Route("/templates", ae.api.TemplateRoutes)
			r.Route("/bindings", ae.api.BindingRoutes)
			r.Route("/deployments", ae.api.DeploymentRoutes)
		})
	})
	ae.svc = deploytest.New(ae.Store, ae.Pool, policy.Default{}, "test-broker", ae.Log)
	ae.api.Engine.Resources, ae.api.Engine.Peers = ae.svc.Adapter, ae.svc.Adapter
	go func() { _ = ae.api.Engine.Serve(ae.Ctx) }()
	return ae
}

// token logs user in on project with role and returns the token.
func (ae *apiEnv) token(t *testing.T, user, project, role string) string {
	pw := ae.Member(t, user, project, role)
	return ae.Provider(t, user, pw, project).Token()
}

func (ae *apiEnv) do(t *testing.T, token, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ae.Ctx, method, ae.Server.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
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
	return resp.StatusCode
}

// stream reads the deployment's event stream until its end event and
// returns the actions seen and the final status.
func (ae *apiEnv) stream(t *testing.T, token, id string) ([]string, string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ae.Ctx, http.MethodGet, ae.Server.URL+"/v1/deployments/"+id+"/events", nil)
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var actions []string
	sc := bufio.NewScanner(resp.Body)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "end":
			var end struct{ Status string }
			_ = json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &end)
			return actions, end.Status
		case strings.HasPrefix(line, "data: "):
			actions = append(actions, event)
		}
	}
	t.Fatalf("the stream ended without an end event: %v", sc.Err())
	return nil, ""
}

func TestTemplatesBindingsDeployments(t *testing.T) {
	ae := newAPIEnv(t)
	alice := ae.token(t, "alice", "shop", identity.RoleMember)
	reader := ae.token(t, "rita", "shop", identity.RoleReader)
	mallory := ae.token(t, "mallory", "other", identity.RoleMember)

	var pushed struct {
		Template focus.Version
		Created  bool
	}
	if code := ae.do(t, alice, "POST", "/v1/templates/web/versions", webTemplate, &pushed); code != 201 || pushed.Template.Version != 1 {
		t.Fatalf("push: %d %+v", code, pushed)
	}
	if code := ae.do(t, alice, "POST", "/v1/templates/web/versions", webTemplate, &pushed); code != 200 || pushed.Created {
		t.Fatalf("same push: %d %+v", code, pushed)
	}
	if code := ae.do(t, reader, "POST", "/v1/templates/web/versions", webTemplate+"\n", nil); code != 403 {
		t.Fatalf("reader push: %d", code)
	}
	var bad struct {
		BadRequest struct {
			Problems []struct{ Path, Reason string }
		}
	}
	code := ae.do(t, alice, "POST", "/v1/templates/web/versions", "eve_template_version: 1\nresources:\n  a: {type: Server, properties: {flavour: x}}\n", &bad)
	if code != 400 || len(bad.BadRequest.Problems) < 2 || bad.BadRequest.Problems[0].Path != "resources.a.properties.flavor" {
		t.Fatalf("bad push: %d %+v", code, bad)
	}
	v2 := strings.Replace(webTemplate, "default: m1.nano", "default: m1.tiny", 1)
	ae.do(t, alice, "POST", "/v1/templates/web/versions", v2, nil)
	var diff struct {
		Changes []struct{ Section, Name, Op string }
	}
	if code := ae.do(t, reader, "GET", "/v1/templates/web/diff?from=1&to=2", "", &diff); code != 200 || len(diff.Changes) != 1 || diff.Changes[0].Name != "flavor" {
		t.Fatalf("diff: %d %+v", code, diff)
	}

	if code := ae.do(t, alice, "POST", "/v1/bindings/prod/versions", "template: web@1\nparameters: {flavor: m1.tiny}\nplacement: {web: {peer: remote}}\n", nil); code != 201 {
		t.Fatalf("binding: %d", code)
	}
	var planned struct{ Plan deploy.Plan }
	if code := ae.do(t, alice, "POST", "/v1/deployments", `{"binding": "prod@1", "dry_run": true}`, &planned); code != 200 || len(planned.Plan.Steps) != 3 {
		t.Fatalf("dry run: %d %+v", code, planned)
	}
	for _, s := range planned.Plan.Steps {
		if s.PeerName != "remote" || s.Action != deploy.ActCreate {
			t.Fatalf("planned %+v", s)
		}
	}
	var created struct{ Deployment deploymentView }
	if code := ae.do(t, alice, "POST", "/v1/deployments", `{"name": "shop-web", "binding": "prod@1"}`, &created); code != 202 {
		t.Fatalf("create: %d", code)
	}
	id := created.Deployment.ID
	actions, status := ae.stream(t, alice, id)
	if status != "COMPLETE" || actions[0] != "apply" || actions[len(actions)-1] != "complete" {
		t.Fatalf("stream: %s %v", status, actions)
	}
	var shown struct{ Deployment deploymentView }
	if code := ae.do(t, reader, "GET", "/v1/deployments/"+id, "", &shown); code != 200 || shown.Deployment.Outputs["ip"] == nil ||
		shown.Deployment.Parameters["flavor"] != "m1.tiny" || len(shown.Deployment.Resources) != 3 {
		t.Fatalf("show: %d %+v", code, shown.Deployment)
	}
	if code := ae.do(t, mallory, "GET", "/v1/deployments/"+id, "", nil); code != 404 {
		t.Fatalf("another project's deployment: %d", code)
	}
	if code := ae.do(t, mallory, "DELETE", "/v1/deployments/"+id, "", nil); code != 404 {
		t.Fatalf("another project's delete: %d", code)
	}
	var uses struct {
		UsedBy []focus.Use `json:"used_by"`
	}
	ae.do(t, alice, "GET", "/v1/templates/web/versions/1/used-by", "", &uses)
	if len(uses.UsedBy) != 2 { // the binding and the deployment
		t.Fatalf("used by %+v", uses)
	}
	if code := ae.do(t, mallory, "GET", "/v1/templates/web/versions/1/used-by", "", nil); code != 404 {
		t.Fatalf("used by, seen from another project: %d", code)
	}
	if code := ae.do(t, alice, "POST", "/v1/deployments/"+id+"/retry", "", nil); code != 409 {
		t.Fatalf("retry of a complete deployment: %d", code)
	}
	if code := ae.do(t, alice, "DELETE", "/v1/deployments/"+id, "", nil); code != 202 {
		t.Fatalf("delete: %d", code)
	}
	if _, status := ae.stream(t, alice, id); status != "DELETED" {
		t.Fatalf("after delete: %s", status)
	}
	var evs struct{ Events []deploy.Event }
	if code := ae.do(t, alice, "GET", "/v1/deployments/"+id+"/events?after=3", "", &evs); code != 200 || len(evs.Events) == 0 || evs.Events[0].Seq != 4 {
		t.Fatalf("events: %d %+v", code, evs)
	}
}
