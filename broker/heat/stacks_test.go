package heat

import (
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/resourcetypes"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stackevents"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stackresources"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stacks"
	"github.com/gophercloud/gophercloud/v2/openstack/orchestration/v1/stacktemplates"
)

// settle polls the stack until its status is no longer IN_PROGRESS
// (bounded by go test's timeout, not a clock of its own).
func settle(t *testing.T, c *gophercloud.ServiceClient, name, id string) *stacks.RetrievedStack {
	t.Helper()
	for {
		s, err := stacks.Get(t.Context(), c, name, id).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasSuffix(s.Status, "_IN_PROGRESS") {
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestGophercloudStackLifecycle drives a plain HOT template through
// gophercloud's orchestration packages: create, find by name, list,
// resources, events, outputs, update (PUT and PATCH), mark unhealthy,
// validate, resource types, delete.
func TestGophercloudStackLifecycle(t *testing.T) {
	he := newHeatEnv(t)
	c := he.client(t, "ann", "team-a", "member")
	ctx := t.Context()
	t.Run("preview places every resource and makes nothing", func(t *testing.T) {
		p, err := stacks.Preview(ctx, c, stacks.PreviewOpts{Name: "web1", TemplateOpts: &stacks.Template{TE: stacks.TE{Bin: []byte(webHOT)}}}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, x := range p.Resources {
			r := x.(map[string]any)
			names = append(names, r["resource_name"].(string)+"@"+r["placement"].(map[string]any)["peer"].(string))
		}
		if got := strings.Join(names, " "); !strings.Contains(got, "web@local") || !strings.Contains(got, "net@local") {
			t.Errorf("preview resources: %s", got)
		}
		if pages, _ := stacks.List(c, nil).AllPages(ctx); pages != nil {
			if list, _ := stacks.ExtractStacks(pages); len(list) != 0 {
				t.Errorf("a preview recorded a stack: %+v", list)
			}
		}
	})
	rollback := false
	created, err := stacks.Create(ctx, c, stacks.CreateOpts{Name: "web1", TemplateOpts: &stacks.Template{TE: stacks.TE{Bin: []byte(webHOT)}},
		Parameters: map[string]any{"flavor": "m1.tiny"}, DisableRollback: &rollback, Timeout: 30}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	s := settle(t, c, "web1", created.ID)
	if s.Status != "CREATE_COMPLETE" || s.StatusReason != "Stack CREATE completed successfully" {
		t.Fatalf("after create: %s (%s)", s.Status, s.StatusReason)
	}
	if s.Timeout != 30 || s.DisableRollback || s.Parameters["secret"] != "******" || s.Parameters["flavor"] != "m1.tiny" ||
		s.Parameters["OS::stack_id"] != created.ID {
		t.Errorf("stack shows timeout %d, disable_rollback %v, parameters %v", s.Timeout, s.DisableRollback, s.Parameters)
	}
	if len(s.Outputs) != 1 || s.Outputs[0]["output_key"] != "ip" || !strings.HasPrefix(s.Outputs[0]["output_value"].(string), "10.40.0.") {
		t.Errorf("outputs %v", s.Outputs)
	}

	t.Run("find by name follows the lookup redirect", func(t *testing.T) {
		f, err := stacks.Find(ctx, c, "web1").Extract()
		if err != nil || f.ID != created.ID {
			t.Fatalf("find: %v %v", f, err)
		}
		code, h := do(t, c, "GET", "/stacks/web1/resources", "", nil)
		if code != 302 || !strings.HasSuffix(h.Get("Location"), "/stacks/web1/"+created.ID+"/resources") {
			t.Errorf("lookup with a sub-path: %d %q", code, h.Get("Location"))
		}
	})
	t.Run("list", func(t *testing.T) {
		pages, err := stacks.List(c, stacks.ListOpts{Name: "web1"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		list, _ := stacks.ExtractStacks(pages)
		if len(list) != 1 || list[0].ID != created.ID || list[0].Status != "CREATE_COMPLETE" {
			t.Errorf("list: %+v", list)
		}
	})
	t.Run("resources", func(t *testing.T) {
		pages, err := stackresources.List(c, "web1", created.ID, stackresources.ListOpts{Depth: 1}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		rs, _ := stackresources.ExtractResources(pages)
		types := map[string]string{}
		for _, r := range rs {
			types[r.Name] = r.Type + " " + r.Status
			if r.PhysicalID == "" {
				t.Errorf("%s has no physical ID", r.Name)
			}
		}
		if types["web"] != "OS::Nova::Server CREATE_COMPLETE" || types["net"] != "OS::Neutron::Net CREATE_COMPLETE" || len(rs) != 3 {
			t.Errorf("resources: %v", types)
		}
		r, err := stackresources.Get(ctx, c, "web1", created.ID, "web").Extract()
		if err != nil || r.Attributes["first_address"] == nil || len(r.Links) != 2 {
			t.Errorf("resource show: %+v %v", r, err)
		}
		md, err := stackresources.Metadata(ctx, c, "web1", created.ID, "web").Extract()
		if err != nil || md["role"] != "frontend" {
			t.Errorf("metadata: %v %v", md, err)
		}
		if _, err := stackresources.Get(ctx, c, "web1", created.ID, "nope").Extract(); !gophercloud.ResponseCodeIs(err, 404) {
			t.Errorf("unknown resource: %v", err)
		}
	})
	t.Run("events", func(t *testing.T) {
		pages, err := stackevents.List(c, "web1", created.ID, nil).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		evs, _ := stackevents.ExtractEvents(pages)
		var seen []string
		for _, e := range evs {
			seen = append(seen, e.ResourceName+":"+e.ResourceStatus)
		}
		got := strings.Join(seen, " ")
		if !strings.HasPrefix(got, "web1:CREATE_IN_PROGRESS") || !strings.HasSuffix(got, "web1:CREATE_COMPLETE") ||
			!strings.Contains(got, "web:CREATE_COMPLETE") {
			t.Errorf("events: %s", got)
		}
		pages, err = stackevents.ListResourceEvents(c, "web1", created.ID, "web", nil).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		evs, _ = stackevents.ExtractResourceEvents(pages)
		if len(evs) != 2 {
			t.Fatalf("web's events: %+v", evs)
		}
		ev, err := stackevents.Get(ctx, c, "web1", created.ID, "web", evs[1].ID).Extract()
		if err != nil || ev.ResourceStatus != "CREATE_COMPLETE" {
			t.Errorf("event show: %+v %v", ev, err)
		}
	})
	t.Run("template", func(t *testing.T) {
		tpl, err := stacktemplates.Get(ctx, c, "web1", created.ID).Extract()
		if err != nil || !strings.Contains(string(tpl), "OS::Nova::Server") || strings.Contains(string(tpl), "s3cr3t-value") {
			t.Errorf("template show: %s %v", tpl, err)
		}
	})

	t.Run("update preview", func(t *testing.T) {
		var out struct {
			Changes map[string][]map[string]any `json:"resource_changes"`
		}
		if code, _ := do(t, c, "PATCH", "/stacks/web1/"+created.ID+"/preview", `{"parameters": {"flavor": "m1.small"}}`, &out); code != 200 {
			t.Fatalf("update preview: %d", code)
		}
		if len(out.Changes["replaced"]) != 1 || out.Changes["replaced"][0]["resource_name"] != "web" || len(out.Changes["unchanged"]) != 2 {
			t.Errorf("changes: %v", out.Changes)
		}
	})
	// An update with PATCH keeps the template and the other parameters.
	if err := stacks.UpdatePatch(ctx, c, "web1", created.ID, stacks.UpdateOpts{Parameters: map[string]any{"flavor": "m1.small"}}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	s = settle(t, c, "web1", created.ID)
	if s.Status != "UPDATE_COMPLETE" || s.Parameters["flavor"] != "m1.small" {
		t.Fatalf("after PATCH: %s %v", s.Status, s.Parameters)
	}
	// Marked unhealthy, a resource is replaced by the next update.
	before, _ := stackresources.Get(ctx, c, "web1", created.ID, "web").Extract()
	if err := stackresources.MarkUnhealthy(ctx, c, "web1", created.ID, "web", stackresources.MarkUnhealthyOpts{MarkUnhealthy: true, ResourceStatusReason: "disk lost"}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if r, _ := stackresources.Get(ctx, c, "web1", created.ID, "web").Extract(); r.Status != "CHECK_FAILED" || r.StatusReason != "disk lost" {
		t.Errorf("marked: %s %s", r.Status, r.StatusReason)
	}
	if err := stacks.Update(ctx, c, "web1", created.ID, stacks.UpdateOpts{TemplateOpts: &stacks.Template{TE: stacks.TE{Bin: []byte(webHOT)}},
		Parameters: map[string]any{"flavor": "m1.small"}}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if s = settle(t, c, "web1", created.ID); s.Status != "UPDATE_COMPLETE" {
		t.Fatalf("after PUT: %s (%s)", s.Status, s.StatusReason)
	}
	after, _ := stackresources.Get(ctx, c, "web1", created.ID, "web").Extract()
	if after.PhysicalID == before.PhysicalID || after.Status == "CHECK_FAILED" {
		t.Errorf("the unhealthy server was not replaced: %s -> %s (%s)", before.PhysicalID, after.PhysicalID, after.Status)
	}

	t.Run("validate", func(t *testing.T) {
		v, err := stacktemplates.Validate(ctx, c, stacktemplates.ValidateOpts{Template: webHOT}).Extract()
		if err != nil || v.Description != "A web server on its own network" || v.Parameters["secret"].(map[string]any)["NoEcho"] != "true" {
			t.Errorf("validate: %+v %v", v, err)
		}
		_, err = stacktemplates.Validate(ctx, c, stacktemplates.ValidateOpts{Template: strings.Replace(webHOT, "OS::Nova::Server", "OS::Nova::Serverr", 1)}).Extract()
		if !gophercloud.ResponseCodeIs(err, 400) || !strings.Contains(err.Error(), "OS::Nova::Serverr") {
			t.Errorf("an unknown type validates: %v", err)
		}
	})
	t.Run("resource types", func(t *testing.T) {
		list, err := resourcetypes.List(ctx, c, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, rt := range list {
			names = append(names, rt.ResourceType)
		}
		if got := strings.Join(names, " "); !strings.Contains(got, "OS::Nova::Server") || !strings.Contains(got, "OS::Heat::ResourceGroup") || strings.Contains(got, "OS::Neutron::Router") {
			t.Errorf("types: %s", got)
		}
		schema, err := resourcetypes.GetSchema(ctx, c, "OS::Cinder::VolumeAttachment").Extract()
		if err != nil || !schema.Properties["instance_uuid"].Required || schema.Properties["volume_id"].Type != "string" {
			t.Errorf("schema: %+v %v", schema, err)
		}
		tpl, err := resourcetypes.GenerateTemplate(ctx, c, "OS::Nova::Server", nil).Extract()
		if err != nil || tpl["heat_template_version"] == nil {
			t.Errorf("type template: %v %v", tpl, err)
		}
		if _, err := resourcetypes.GetSchema(ctx, c, "OS::Neutron::Router").Extract(); !gophercloud.ResponseCodeIs(err, 404) {
			t.Errorf("an unsupported type has a schema: %v", err)
		}
	})

	if err := stacks.Delete(ctx, c, "web1", created.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if s = settle(t, c, "web1", created.ID); s.Status != "DELETE_COMPLETE" {
		t.Fatalf("after delete: %s (%s)", s.Status, s.StatusReason)
	}
	if _, err := stacks.Find(ctx, c, "web1").Extract(); !gophercloud.ResponseCodeIs(err, 404) {
		t.Errorf("a deleted stack is found by name: %v", err)
	}
}
