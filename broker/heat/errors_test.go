package heat

import (
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stacks"
)

// heatFault is Heat's error body.
type heatFault struct {
	Explanation string `json:"explanation"`
	Code        int    `json:"code"`
	Title       string `json:"title"`
	Error       struct {
		Message   string `json:"message"`
		Type      string `json:"type"`
		Traceback *string
	} `json:"error"`
}

// TestErrorsAndTenancy checks Heat's error body, the refusals of what is
// not served, and that another project's stacks are not found.
func TestErrorsAndTenancy(t *testing.T) {
	he := newHeatEnv(t)
	ann := he.client(t, "ann", "team-a", "member")
	bob := he.client(t, "bob", "team-b", "member")
	rita := he.client(t, "rita", "team-a", "reader")
	created, err := stacks.Create(t.Context(), ann, stacks.CreateOpts{Name: "web1", TemplateOpts: &stacks.Template{TE: stacks.TE{Bin: []byte(webHOT)}}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	settle(t, ann, "web1", created.ID)
	tpl := `{"heat_template_version": "2018-08-31", "resources": {"k": {"type": "OS::Nova::KeyPair", "properties": {"name": "k"}}}}`
	annPath := strings.TrimSuffix(ann.Endpoint, "/")
	cases := []struct {
		name     string
		c        bool // as bob (another project) instead of ann
		reader   bool
		method   string
		path     string
		body     string
		code     int
		typ      string
		contains string
	}{
		{name: "unknown stack", method: "GET", path: "/stacks/nope", code: 404, typ: "StackNotFound", contains: "The Stack (nope) could not be found."},
		{name: "another project's stack by name", c: true, method: "GET", path: "/stacks/web1", code: 404, typ: "StackNotFound"},
		{name: "another project's stack by id", c: true, method: "GET", path: "/stacks/web1/" + created.ID, code: 404, typ: "StackNotFound"},
		{name: "a name that does not match the id", method: "GET", path: "/stacks/other/" + created.ID, code: 404, typ: "StackNotFound"},
		{name: "duplicate name", method: "POST", path: "/stacks", body: `{"stack_name": "web1", "template": ` + tpl + `}`, code: 409, typ: "StackExists", contains: "The Stack (web1) already exists."},
		{name: "bad name", method: "POST", path: "/stacks", body: `{"stack_name": "1web", "template": ` + tpl + `}`, code: 400, typ: "HTTPBadRequest", contains: "stack_name"},
		{name: "no template", method: "POST", path: "/stacks", body: `{"stack_name": "w2"}`, code: 400, contains: "a template is required"},
		{name: "template_url is refused", method: "POST", path: "/stacks", body: `{"stack_name": "w2", "template_url": "http://example.com/t.yaml"}`, code: 400, contains: "template_url"},
		{name: "an unsupported type", method: "POST", path: "/stacks", body: `{"stack_name": "w2", "template": {"heat_template_version": "2018-08-31", "resources": {"r": {"type": "OS::Neutron::Router"}}}}`,
			code: 400, typ: "StackValidationFailed", contains: "OS::Neutron::Router"},
		{name: "an undeclared parameter", method: "POST", path: "/stacks", body: `{"stack_name": "w2", "template": ` + tpl + `, "parameters": {"x": "1"}}`,
			code: 400, typ: "UnknownUserParameter", contains: "The Parameter (x) was not defined in template."},
		{name: "a resource registry", method: "POST", path: "/stacks", body: `{"stack_name": "w2", "template": ` + tpl + `, "environment": {"resource_registry": {"My::T": "t.yaml"}}}`,
			code: 400, contains: "resource_registry is not supported"},
		{name: "a get_file not sent", method: "POST", path: "/stacks", body: `{"stack_name": "w2", "template": {"heat_template_version": "2018-08-31", "description": {"get_file": "d.txt"}}}`,
			code: 400, contains: `get_file "d.txt"`},
		{name: "a reader cannot create", reader: true, method: "POST", path: "/stacks", body: `{"stack_name": "w2", "template": ` + tpl + `}`, code: 403, typ: "Forbidden"},
		{name: "cancel of a settled stack", method: "POST", path: "/stacks/web1/" + created.ID + "/actions", body: `{"cancel_update": null}`,
			code: 400, typ: "NotSupported", contains: "Cancelling update when stack is ('CREATE', 'COMPLETE') is not supported."},
		{name: "unsupported action", method: "POST", path: "/stacks/web1/" + created.ID + "/actions", body: `{"suspend": null}`, code: 400, contains: "suspend is not supported"},
		{name: "unknown output", method: "GET", path: "/stacks/web1/" + created.ID + "/outputs/nope", code: 404, contains: "Specified output key nope not found."},
		{name: "unknown path", method: "GET", path: "/stacks/web1/" + created.ID + "/snapshots", code: 404},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := ann
			if tc.c {
				c = bob
			}
			if tc.reader {
				c = rita
			}
			var f heatFault
			code, _ := do(t, c, tc.method, tc.path, tc.body, &f)
			if code != tc.code || f.Code != tc.code || f.Title == "" || f.Explanation == "" || f.Error.Message == "" || f.Error.Traceback != nil {
				t.Fatalf("%s %s: %d %+v, want %d in Heat's error body", tc.method, tc.path, code, f, tc.code)
			}
			if tc.typ != "" && f.Error.Type != tc.typ {
				t.Errorf("type %q, want %q", f.Error.Type, tc.typ)
			}
			if !strings.Contains(f.Error.Message, tc.contains) {
				t.Errorf("message %q lacks %q", f.Error.Message, tc.contains)
			}
		})
	}
	t.Run("a path naming another project", func(t *testing.T) {
		other := strings.Replace(ann.Endpoint, annPath[strings.LastIndex(annPath, "/")+1:], "someone-else", 1)
		c := *ann
		c.Endpoint = other
		var f heatFault
		if code, _ := do(t, &c, "GET", "/stacks", "", &f); code != 403 || f.Error.Type != "Forbidden" {
			t.Errorf("%d %+v", code, f)
		}
	})
	t.Run("bob's list does not show ann's stack", func(t *testing.T) {
		var out struct{ Stacks []map[string]any }
		if code, _ := do(t, bob, "GET", "/stacks", "", &out); code != 200 || len(out.Stacks) != 0 {
			t.Errorf("%d %v", code, out.Stacks)
		}
	})
}
