package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/templatesapi"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/deploytest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/focus"
)

const cliTemplate = `eve_template_version: 1
description: one server on a new network
parameters:
  flavor: {type: string, default: m1.nano}
  secret: {type: string, default: cli-s3cret-value, hidden: true}
resources:
  net: {type: Network}
  subnet: {type: Subnet, properties: {network: {get_resource: net}, cidr: 10.60.0.0/24}}
  web:
    type: Server
    depends_on: [subnet]
    placement: {peer: remote}
    properties: {flavor: {get_param: flavor}, image: ` + localcloud.SeedImageName + `, networks: [{network: {get_resource: net}}]}
outputs:
  ip: {value: {get_attr: [web, first_address]}}
  secret: {value: {get_param: secret}}
`

// TestTemplateAndDeployCLI drives the built binary against the template
// API mounted over two fake-driver local clouds.
func TestTemplateAndDeployCLI(t *testing.T) {
	var ps []brokertest.Peer
	for _, name := range []string{"local", "remote"} {
		ps = append(ps, brokertest.Peer{Name: name, Wrap: func(c *localcloud.Cloud) peers.Cloud {
			if _, err := c.Seed(context.Background()); err != nil {
				t.Fatal(err)
			}
			return c
		}})
	}
	var api *templatesapi.API
	env := brokertest.New(t, ps, func(e *brokertest.Env, r chi.Router) {
		cat := &focus.Catalog{Store: e.Store}
		api = &templatesapi.API{Catalog: cat, Engine: &deploy.Engine{Store: e.Store, Placer: policy.Default{}, Resolver: cat, Uses: cat,
			Holder: "cli-test", PollInterval: 20 * time.Millisecond}}
		r.Route("/v1", func(r chi.Router) {
			r.Use(e.Keystone.Authenticate)
			r.Route("/templates", api.TemplateRoutes)
			r.Route("/bindings", api.BindingRoutes)
			r.Route("/deployments", api.DeploymentRoutes)
		})
	})
	svc := deploytest.New(env.Store, env.Pool, policy.Default{}, "test-broker", env.Log)
	api.Engine.Resources, api.Engine.Peers = svc.Adapter, svc.Adapter
	go func() { _ = api.Engine.Serve(env.Ctx) }()
	pw := env.Member(t, "carol", "web", identity.RoleMember)
	token := env.Provider(t, "carol", pw, "web").Token()
	pw = env.Member(t, "root", identity.AdminProjectName, identity.RoleAdmin)
	adminToken := env.Provider(t, "root", pw, identity.AdminProjectName).Token()
	asAdmin := false

	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tfile := write("web.yaml", cliTemplate)
	cli := func(args ...string) (string, string, int) {
		cmd := exec.CommandContext(env.Ctx, cloudmuxBin, args...)
		tok := token
		if asAdmin {
			tok = adminToken
		}
		cmd.Env = append(os.Environ(), "CLOUDMUX_ADDR="+env.Server.URL, "CLOUDMUX_TOKEN="+tok)
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), errb.String(), code
	}
	for _, tc := range []struct {
		name  string
		args  []string
		want  []string // substrings of stdout
		code  int
		admin bool
	}{
		{"push", []string{"template", "push", "web", tfile}, []string{"web@1 (new version)"}, 0, false},
		{"push again", []string{"template", "push", "web", tfile}, []string{"web@1 (unchanged"}, 0, false},
		{"push v2", []string{"template", "push", "web", write("v2.yaml", strings.Replace(cliTemplate, "m1.nano", "m1.tiny", 1))}, []string{"web@2"}, 0, false},
		{"list", []string{"template", "list"}, []string{"web", "2", "one server on a new network"}, 0, false},
		{"show", []string{"template", "show", "web@1"}, []string{"web@1", "format:  eve", "eve_template_version", "******"}, 0, false},
		{"publish, not an admin", []string{"template", "publish", "web@1"}, nil, 1, false},
		{"publish a name", []string{"template", "publish", "web"}, nil, 2, false},
		{"admin pushes", []string{"template", "push", "base", write("base.yaml", "eve_template_version: 1\nresources: {n: {type: Network}}\n")}, []string{"base@1"}, 0, true},
		{"admin publishes", []string{"template", "publish", "base@1"}, []string{"base@1 is public"}, 0, true},
		{"others list it", []string{"template", "list"}, []string{"base", "yes"}, 0, false},
		{"others show it", []string{"template", "show", "base"}, []string{"public:  yes"}, 0, false},
		{"diff", []string{"template", "diff", "web", "1", "2"}, []string{"~ parameters.flavor (default)"}, 0, false},
		{"binding", []string{"binding", "push", "prod", write("prod.yaml", "template: web@1\nparameters: {flavor: m1.tiny, secret: cli-s3cret-value}\n")}, []string{"prod@1 -> web@1"}, 0, false},
		{"binding show", []string{"binding", "show", "prod"}, []string{`"secret": "******"`}, 0, false},
		{"plan", []string{"deploy", "plan", "-binding", "prod"}, []string{"web", "create", "remote", "plan: 3 to create"}, 0, false},
		{"apply", []string{"deploy", "apply", "-binding", "prod", "-name", "shop"}, []string{"complete", "COMPLETE", "ip = \"10.60.0.", `secret = "******"`}, 0, false},
		{"list deployments", []string{"deploy", "list"}, []string{"shop", "COMPLETE", "web@1"}, 0, false},
		{"used-by", []string{"template", "used-by", "web@1"}, []string{"binding prod@1", "deployment "}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			asAdmin = tc.admin
			out, errOut, code := cli(tc.args...)
			if strings.Contains(out+errOut, "cli-s3cret-value") {
				t.Fatalf("the hidden value is shown:\n%s\n%s", out, errOut)
			}
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Fatalf("stdout lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// The invalid template's problems, one per line, exit 1.
	_, errOut, code := cli("template", "push", "web", write("bad.yaml", "eve_template_version: 1\nresources: {a: {type: Server, properties: {flavour: x}}}\n"))
	if code != 1 || !strings.Contains(errOut, "  - resources.a.properties.flavor: required for a Server") {
		t.Fatalf("bad push: %d\n%s", code, errOut)
	}
	ds, err := api.Engine.List(env.Ctx, "")
	if err != nil || len(ds) != 1 {
		t.Fatalf("deployments %v %v", ds, err)
	}
	id := ds[0].ID
	out, errOut, code := cli("deploy", "plan", "-id", id, "-template", "web@2", "-p", "flavor=m1.small")
	if code != 0 || !strings.Contains(out, "changes flavor") || !strings.Contains(out, "1 to replace, 0 to delete, 2 unchanged") {
		t.Fatalf("update plan: %d\n%s\n%s", code, out, errOut)
	}
	out, errOut, code = cli("deploy", "delete", id)
	if code != 0 || !strings.Contains(out, "deleted") || !strings.Contains(out, "DELETED") {
		t.Fatalf("delete: %d\n%s\n%s", code, out, errOut)
	}
	out, _, _ = cli("deploy", "events", id)
	if !strings.Contains(out, "apply") || !strings.Contains(out, "deleted") {
		t.Fatalf("events:\n%s", out)
	}
}

// TestProgressRedrawsOneLinePerResource checks the terminal display: one
// line per resource, redrawn in place (cursor up, clear line), a spinner
// while in progress and a mark when done or failed.
func TestProgressRedrawsOneLinePerResource(t *testing.T) {
	var b strings.Builder
	p := &progress{w: &b, state: map[string]*progressLine{}}
	p.event(deploy.Event{Resource: "net@local", Peer: "local", Action: "create", Status: "IN_PROGRESS"})
	p.event(deploy.Event{Resource: "web", Peer: "remote", Action: "create", Status: "IN_PROGRESS"})
	p.event(deploy.Event{Resource: "net@local", Peer: "local", Action: "create", Status: "COMPLETE"})
	p.event(deploy.Event{Resource: "web", Peer: "remote", Action: "create", Status: "FAILED", Message: "no room"})
	out := b.String()
	frames := strings.Split(out, "\x1b[2A") // each redraw of two lines starts by going up two
	last := frames[len(frames)-1]
	lines := strings.Split(strings.TrimSuffix(last, "\n"), "\n")
	if len(frames) != 3 || len(lines) != 2 {
		t.Fatalf("%d frames, last has %d lines: %q", len(frames), len(lines), out)
	}
	if !strings.Contains(lines[0], "✓ net@local") || !strings.Contains(lines[0], "local") ||
		!strings.Contains(lines[1], "✗ web") || !strings.Contains(lines[1], "remote") || !strings.Contains(lines[1], "no room") {
		t.Fatalf("last frame %q", last)
	}
	if !strings.ContainsAny(frames[0]+frames[1], strings.Join(spinner, "")) {
		t.Fatalf("no spinner while in progress: %q", out)
	}
}
