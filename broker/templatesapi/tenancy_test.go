package templatesapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
)

// Values that must never appear in a response body.
const (
	secretDefault = "HIDDEN-DEFAULT-7f3a"
	secretBinding = "HIDDEN-BINDING-91c2"
	secretPublic  = "HIDDEN-PUBLIC-DEFAULT-55e1"
)

// shopTemplate is webTemplate copying its hidden parameter into a
// server's metadata and an output, so the value travels through plan,
// record and outputs.
var shopTemplate = strings.NewReplacer("default: s3cret", "default: "+secretDefault,
	"metadata: {role: web}", "metadata: {role: web, token: {get_param: secret}}").Replace(webTemplate) +
	"  echo: {value: {get_param: secret}}\n"

// baseTemplate is what the cloud admin publishes.
const baseTemplate = `eve_template_version: 1
parameters:
  key: {type: string, default: ` + secretPublic + `, hidden: true}
resources:
  net: {type: Network, properties: {name: {get_param: key}}}
outputs:
  net: {value: {get_resource: net}}
`

// recorder keeps every response body, to grep for hidden values at the end.
type recorder struct {
	ae     *apiEnv
	bodies bytes.Buffer
}

func (rc *recorder) do(t *testing.T, token, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(rc.ae.Ctx, method, rc.ae.Server.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", token)
	if strings.HasSuffix(path, "/events?stream") {
		req.URL.RawQuery = ""
		req.Header.Set("Accept", "text/event-stream")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	rc.bodies.Write(b)
	rc.bodies.WriteByte('\n')
	return resp.StatusCode, b
}

// want asserts a status and decodes the body into out (when not nil).
func (rc *recorder) want(t *testing.T, code int, token, method, path, body string, out any) {
	t.Helper()
	got, b := rc.do(t, token, method, path, body)
	if got != code {
		t.Fatalf("%s %s: %d, want %d: %s", method, path, got, code, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

// settle follows a deployment's event stream to its end and returns the
// final status.
func (rc *recorder) settle(t *testing.T, token, id string) string {
	t.Helper()
	code, b := rc.do(t, token, "GET", "/v1/deployments/"+id+"/events?stream", "")
	if code != 200 {
		t.Fatalf("stream: %d %s", code, b)
	}
	_, end, _ := strings.Cut(string(b), "event: end\ndata: ")
	var st struct{ Status string }
	_ = json.Unmarshal([]byte(strings.SplitN(end, "\n", 2)[0]), &st)
	return st.Status
}

func TestCrossTenantMatrix(t *testing.T) {
	ae := newAPIEnv(t)
	rc := &recorder{ae: ae}
	alice := ae.token(t, "alice", "shop", identity.RoleMember)
	bob := ae.token(t, "bob", "other", identity.RoleMember)
	carol := ae.token(t, "carol", "third", identity.RoleMember)
	root := ae.token(t, "root", identity.AdminProjectName, identity.RoleAdmin)

	// Project shop's catalog and a deployment from its binding.
	var pushed struct {
		Template struct {
			Project string
			Version int
			Hash    string
			Source  string
		}
		Created bool
	}
	rc.want(t, 201, alice, "POST", "/v1/templates/web/versions", shopTemplate, &pushed)
	shopProject, hash := pushed.Template.Project, pushed.Template.Hash
	if !strings.Contains(pushed.Template.Source, Mask) {
		t.Fatalf("pushed source not masked: %s", pushed.Template.Source)
	}
	rc.want(t, 201, alice, "POST", "/v1/templates/web/versions", strings.Replace(shopTemplate, "m1.nano", "m1.tiny", 1), nil)
	rc.want(t, 201, alice, "POST", "/v1/templates/web-child/versions", "eve_template_version: 1\nextends: web@1\n", nil)
	rc.want(t, 201, alice, "POST", "/v1/bindings/prod/versions",
		"template: web@1\nparameters: {flavor: m1.tiny, secret: "+secretBinding+"}\nplacement: {web: {peer: remote}}\n", nil)
	var created struct{ Deployment deploymentView }
	rc.want(t, 202, alice, "POST", "/v1/deployments", `{"name": "shop-web", "binding": "prod"}`, &created)
	id := created.Deployment.ID
	if st := rc.settle(t, alice, id); st != "COMPLETE" {
		t.Fatalf("shop's deployment: %s", st)
	}

	// The binding's hidden value reached the engine and the peer.
	d, err := ae.api.Engine.Get(ae.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	web := d.Resources["web"]
	m, _ := ae.Pool.Get(web.PeerID)
	entry, err := ae.svc.Index.Get(ae.Ctx, "server", web.ID, "")
	if err != nil {
		t.Fatalf("the deployment's server is not in the index by its broker ID %s: %v", web.ID, err)
	}
	srv, err := m.Cloud.GetServer(ae.Ctx, entry.PeerResourceID)
	if err != nil || srv.Metadata["token"] != secretBinding {
		t.Fatalf("the server's token is %q (%v), want the binding's hidden value", srv.Metadata["token"], err)
	}

	// The owner's own views mask the hidden values too.
	var shown struct{ Deployment deploymentView }
	rc.want(t, 200, alice, "GET", "/v1/deployments/"+id, "", &shown)
	if shown.Deployment.Parameters["secret"] != Mask || shown.Deployment.Outputs["echo"] != Mask || shown.Deployment.Outputs["ip"] == nil {
		t.Fatalf("shop's view: parameters %v outputs %v", shown.Deployment.Parameters, shown.Deployment.Outputs)
	}
	var binding struct {
		Binding struct{ Parameters map[string]any }
	}
	rc.want(t, 200, alice, "GET", "/v1/bindings/prod/versions/1", "", &binding)
	if binding.Binding.Parameters["secret"] != Mask || binding.Binding.Parameters["flavor"] != "m1.tiny" {
		t.Fatalf("binding view: %v", binding.Binding.Parameters)
	}
	for _, path := range []string{"/v1/templates/", "/v1/templates/web", "/v1/templates/web/versions/1", "/v1/templates/web/versions/latest",
		"/v1/templates/web-child/versions/1", "/v1/templates/web/diff?from=1&to=2", "/v1/templates/web/versions/1/used-by",
		"/v1/bindings/", "/v1/bindings/prod", "/v1/bindings/prod/versions/latest",
		"/v1/deployments/", "/v1/deployments/" + id + "/events", "/v1/deployments/" + id + "/events?stream"} {
		rc.want(t, 200, alice, "GET", path, "", nil)
	}
	rc.want(t, 200, alice, "POST", "/v1/deployments", `{"binding": "prod", "dry_run": true}`, nil)
	rc.want(t, 200, alice, "PUT", "/v1/deployments/"+id, `{"binding": "prod", "parameters": {"secret": "`+secretBinding+`"}, "dry_run": true}`, nil)
	// A constraint's refusal quotes the value it refused: masked too.
	code, b := rc.do(t, alice, "POST", "/v1/deployments", `{"binding": "prod", "parameters": {"flavor": {"x": 1}}, "dry_run": true}`)
	if code != 400 {
		t.Fatalf("bad parameter: %d %s", code, b)
	}

	// Project other, by every reference, gets what a name that never
	// existed gets: nothing tells it shop's records exist.
	ghostOr := func(path string) string {
		return strings.NewReplacer("web-child", "ghost-child", "web", "ghost", "prod", "ghost", id, "00000000-0000-0000-0000-000000000000").Replace(path)
	}
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
	}{
		{"template versions", "GET", "/v1/templates/web", "", 404},
		{"template show", "GET", "/v1/templates/web/versions/1", "", 404},
		{"template latest", "GET", "/v1/templates/web/versions/latest", "", 404},
		{"template child", "GET", "/v1/templates/web-child/versions/1", "", 404},
		{"template used-by", "GET", "/v1/templates/web/versions/1/used-by", "", 404},
		{"template diff", "GET", "/v1/templates/web/diff?from=1&to=2", "", 404},
		{"template publish", "POST", "/v1/templates/web/versions/1/publish", "", 403},
		{"binding versions", "GET", "/v1/bindings/prod", "", 404},
		{"binding show", "GET", "/v1/bindings/prod/versions/1", "", 404},
		{"binding latest", "GET", "/v1/bindings/prod/versions/latest", "", 404},
		{"binding on its template", "POST", "/v1/bindings/mine/versions", "template: web@1\n", 404},
		{"deployment show", "GET", "/v1/deployments/" + id, "", 404},
		{"deployment events", "GET", "/v1/deployments/" + id + "/events", "", 404},
		{"deployment stream", "GET", "/v1/deployments/" + id + "/events?stream", "", 404},
		{"deployment update", "PUT", "/v1/deployments/" + id, `{"template": "web@1"}`, 404},
		{"deployment delete", "DELETE", "/v1/deployments/" + id, "", 404},
		{"deployment retry", "POST", "/v1/deployments/" + id + "/retry", "", 404},
		{"deploy its template", "POST", "/v1/deployments", `{"template": "web@1", "dry_run": true}`, 404},
		{"deploy its latest", "POST", "/v1/deployments", `{"template": "web"}`, 404},
		{"deploy its binding", "POST", "/v1/deployments", `{"binding": "prod@1"}`, 404},
		{"deploy its binding, dry run", "POST", "/v1/deployments", `{"binding": "prod", "dry_run": true}`, 404},
		{"extend it inline", "POST", "/v1/deployments", `{"source": "eve_template_version: 1\nextends: web@1\n", "dry_run": true}`, 404},
		{"nest it inline", "POST", "/v1/deployments", `{"source": "eve_template_version: 1\nresources:\n  x: {type: \"template:web@1\"}\n"}`, 404},
		{"extend it in a template", "POST", "/v1/templates/mine/versions", "eve_template_version: 1\nextends: web@1\n", 400},
		{"nest it in a template", "POST", "/v1/templates/mine/versions", "eve_template_version: 1\nresources:\n  x: {type: \"template:web@2\"}\n", 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := rc.do(t, bob, tc.method, tc.path, tc.body)
			if code != tc.code {
				t.Fatalf("%s %s: %d, want %d: %s", tc.method, tc.path, code, tc.code, b)
			}
			ghostCode, ghost := rc.do(t, bob, tc.method, ghostOr(tc.path), ghostOr(tc.body))
			if ghostCode != code {
				t.Fatalf("a name that never existed answers %d, shop's %d", ghostCode, code)
			}
			// The same answer but for the name itself.
			if code != 403 && strings.ReplaceAll(ghostOr(string(b)), "ghost-child", "ghost") != strings.ReplaceAll(string(ghost), "ghost-child", "ghost") {
				t.Fatalf("shop's record answers\n%s\na name that never existed\n%s", b, ghost)
			}
		})
	}
	var lists struct {
		Templates   []struct{ Name string }
		Bindings    []struct{ Name string }
		Deployments []struct{ ID string }
	}
	rc.want(t, 200, bob, "GET", "/v1/templates/", "", &lists)
	rc.want(t, 200, bob, "GET", "/v1/bindings/", "", &lists)
	rc.want(t, 200, bob, "GET", "/v1/deployments/", "", &lists)
	if len(lists.Templates)+len(lists.Bindings)+len(lists.Deployments) != 0 {
		t.Fatalf("other sees %+v", lists)
	}

	// Names are per project: other's web and prod are its own. The same
	// bytes as shop's web are a new version 1 of other's web, not shop's.
	rc.want(t, 201, bob, "POST", "/v1/templates/web/versions", shopTemplate, &pushed)
	if !pushed.Created || pushed.Template.Version != 1 || pushed.Template.Project == shopProject || pushed.Template.Hash != hash {
		t.Fatalf("other's push of the same bytes: %+v", pushed)
	}
	rc.want(t, 201, bob, "POST", "/v1/bindings/prod/versions", "template: web@1\nparameters: {flavor: m1.small}\n", nil)
	rc.want(t, 201, bob, "POST", "/v1/bindings/prod/versions", "template: web@1\nparameters: {flavor: m1.micro}\n", nil)
	var versions struct{ Versions []struct{ Version int } }
	rc.want(t, 200, alice, "GET", "/v1/templates/web", "", &versions)
	if len(versions.Versions) != 2 {
		t.Fatalf("shop's web has %d versions after other pushed its own", len(versions.Versions))
	}
	var plan struct {
		Plan struct {
			Steps []struct {
				Key, Props string
				PeerName   string `json:"peer_name"`
			}
		}
	}
	rc.want(t, 200, alice, "POST", "/v1/deployments", `{"binding": "prod", "dry_run": true}`, &plan)
	for _, s := range plan.Plan.Steps {
		if s.Key == "web" && (s.PeerName != "remote" || !strings.Contains(s.Props, `"m1.tiny"`)) {
			t.Fatalf("shop's binding plans other's content: %+v", s)
		}
	}

	// A published version: every project reads and deploys it, none but
	// its owner changes it.
	rc.want(t, 201, root, "POST", "/v1/templates/base/versions", baseTemplate, nil)
	rc.want(t, 201, root, "POST", "/v1/templates/uses-private/versions", "eve_template_version: 1\nresources:\n  x: {type: \"template:base@1\"}\n", nil)
	rc.want(t, 400, root, "POST", "/v1/templates/uses-private/versions/1/publish", "", nil) // base@1 is not public yet
	rc.want(t, 403, alice, "POST", "/v1/templates/web/versions/1/publish", "", nil)
	rc.want(t, 200, root, "POST", "/v1/templates/base/versions/1/publish", "", nil)
	rc.want(t, 200, root, "POST", "/v1/templates/base/versions/1/publish", "", nil) // again: a no-op
	rc.want(t, 404, root, "POST", "/v1/templates/web/versions/1/publish", "", nil)  // shop's: not the admin's to publish
	rc.want(t, 200, bob, "GET", "/v1/templates/", "", &lists)
	if len(lists.Templates) != 2 || lists.Templates[0].Name != "base" {
		t.Fatalf("other's list with a public template: %+v", lists.Templates)
	}
	var public struct {
		Template struct {
			Public  bool
			Project string
			Source  string
		}
	}
	rc.want(t, 200, carol, "GET", "/v1/templates/base/versions/1", "", &public)
	if !public.Template.Public || public.Template.Project != "" || !strings.Contains(public.Template.Source, Mask) {
		t.Fatalf("public version as another project sees it: %+v", public.Template)
	}
	rc.want(t, 200, carol, "GET", "/v1/templates/base/versions/latest/used-by", "", nil)
	rc.want(t, 200, carol, "POST", "/v1/deployments", `{"template": "base@1", "dry_run": true}`, nil)
	rc.want(t, 201, carol, "POST", "/v1/templates/app/versions", "eve_template_version: 1\nresources:\n  fabric: {type: \"template:base@1\"}\n", nil)
	rc.want(t, 201, carol, "POST", "/v1/bindings/on-base/versions", "template: base@1\nparameters: {key: carols}\n", nil)
	var carolDep struct{ Deployment deploymentView }
	rc.want(t, 202, carol, "POST", "/v1/deployments", `{"template": "app"}`, &carolDep)
	if st := rc.settle(t, carol, carolDep.Deployment.ID); st != "COMPLETE" {
		t.Fatalf("a deployment nesting a public template: %s", st)
	}
	// Pushing to a public name makes the project's own template, which
	// shadows the public one for that project only.
	rc.want(t, 403, carol, "POST", "/v1/templates/base/versions/1/publish", "", nil)
	rc.want(t, 201, bob, "POST", "/v1/templates/base/versions", "eve_template_version: 1\nresources:\n  v: {type: Volume, properties: {size: 1}}\n", nil)
	rc.want(t, 200, carol, "GET", "/v1/templates/base/versions/latest", "", &public)
	if !strings.Contains(public.Template.Source, "type: Network") {
		t.Fatalf("other's push changed the public template: %s", public.Template.Source)
	}
	rc.want(t, 200, root, "GET", "/v1/templates/base", "", &versions)
	if len(versions.Versions) != 1 {
		t.Fatalf("the owner's template has %d versions", len(versions.Versions))
	}

	for _, secret := range []string{secretDefault, secretBinding, secretPublic} {
		if bytes.Contains(rc.bodies.Bytes(), []byte(secret)) {
			i := bytes.Index(rc.bodies.Bytes(), []byte(secret))
			t.Fatalf("a response carries the hidden value %s: ...%s...", secret, rc.bodies.Bytes()[max(0, i-300):i+40])
		}
	}
}
