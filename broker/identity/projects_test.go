package identity_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestProjectTreeAndTags: nested projects (parent_id, subtree and
// parents listings, no delete of a parent, a depth limit), tags (on
// create, the tags API, the four tag filters) and is_domain refused,
// through gophercloud.
func TestProjectTreeAndTags(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	mk := func(name, parent string, tags ...string) *projects.Project {
		t.Helper()
		p, err := projects.Create(ctx, e.adminC, projects.CreateOpts{Name: name, ParentID: parent, Tags: tags}).Extract()
		mustOK(t, "create "+name, err)
		return p
	}
	org := mk("org", "", "prod")
	dept := mk("dept", org.ID, "prod", "eu")
	team := mk("team", dept.ID, "dev")
	if dept.ParentID != org.ID || dept.DomainID != identity.DefaultDomainID || org.ParentID != identity.DefaultDomainID {
		t.Fatalf("parents: org %+v, dept %+v", org, dept)
	}

	t.Run("listing filters", func(t *testing.T) {
		cases := []struct {
			name string
			opts projects.ListOpts
			want []string
		}{
			{"tags (all of)", projects.ListOpts{Tags: "prod,eu"}, []string{"dept"}},
			{"tags-any", projects.ListOpts{TagsAny: "eu,dev"}, []string{"dept", "team"}},
			{"not-tags", projects.ListOpts{NotTags: "prod", ParentID: dept.ID}, []string{"team"}},
			{"not-tags-any", projects.ListOpts{NotTagsAny: "prod,dev", Name: "team-a"}, []string{"team-a"}},
			{"parent_id", projects.ListOpts{ParentID: org.ID}, []string{"dept"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				pages, err := projects.List(e.adminC, c.opts).AllPages(ctx)
				mustOK(t, "list", err)
				ps, _ := projects.ExtractProjects(pages)
				var got []string
				for _, p := range ps {
					got = append(got, p.Name)
				}
				slices.Sort(got)
				if !slices.Equal(got, c.want) {
					t.Fatalf("projects = %v, want %v", got, c.want)
				}
			})
		}
	})
	t.Run("subtree and parents", func(t *testing.T) {
		var out struct {
			Project struct {
				Subtree []struct {
					Project struct{ Name string } `json:"project"`
				} `json:"subtree"`
			} `json:"project"`
		}
		_, err := e.adminC.Get(ctx, e.adminC.ServiceURL("projects", org.ID)+"?subtree_as_list", &out, nil)
		mustOK(t, "subtree_as_list", err)
		if len(out.Project.Subtree) != 2 || out.Project.Subtree[0].Project.Name != "dept" || out.Project.Subtree[1].Project.Name != "team" {
			t.Fatalf("subtree = %+v", out.Project.Subtree)
		}
		var ids struct {
			Project struct {
				Parents map[string]map[string]any `json:"parents"`
			} `json:"project"`
		}
		_, err = e.adminC.Get(ctx, e.adminC.ServiceURL("projects", team.ID)+"?parents_as_ids", &ids, nil)
		mustOK(t, "parents_as_ids", err)
		if _, ok := ids.Project.Parents[dept.ID][org.ID]; !ok {
			t.Fatalf("parents = %v, want dept then org", ids.Project.Parents)
		}
	})
	t.Run("tags API", func(t *testing.T) {
		// Keystone answers {"tags": [...]}; gophercloud's result type
		// expects projects, so only the status is checked here.
		mustOK(t, "replace", projects.ModifyTags(ctx, e.adminC, team.ID, projects.ModifyTagsOpts{Tags: []string{"a", "b"}}).Err)
		resp, err := e.adminC.Put(ctx, e.adminC.ServiceURL("projects", team.ID, "tags", "c"), nil, nil, &gophercloud.RequestOpts{OkCodes: []int{201}})
		mustOK(t, "add one", err)
		resp.Body.Close()
		got, err := projects.ListTags(ctx, e.adminC, team.ID).Extract()
		if err != nil || !slices.Equal(got.Tags, []string{"a", "b", "c"}) {
			t.Fatalf("tags = %+v, %v", got, err)
		}
		_, err = projects.ModifyTags(ctx, e.adminC, team.ID, projects.ModifyTagsOpts{Tags: []string{"bad/tag"}}).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
			t.Fatalf("a tag with '/' = %v, want 400", err)
		}
		mustOK(t, "delete all", projects.DeleteTags(ctx, e.adminC, team.ID).ExtractErr())
		if code, _ := e.call(t, http.MethodHead, "/v3/projects/"+team.ID+"/tags/a", e.adminC.TokenID, nil); code != http.StatusNotFound {
			t.Fatalf("check a cleared tag = %d, want 404", code)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		yes := true
		deep := mk("l4", team.ID)
		deeper := mk("l5", deep.ID)
		no := false
		off, err := projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "off", Enabled: &no}).Extract()
		mustOK(t, "a disabled parent", err)
		offKid, err := projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "off-kid", ParentID: off.ID, Enabled: &no}).Extract()
		mustOK(t, "a disabled child of a disabled parent", err)
		cases := []struct {
			name string
			err  error
			code int
		}{
			{"a parent is not deleted", projects.Delete(ctx, e.adminC, dept.ID).Err, http.StatusForbidden},
			{"is_domain", projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "dom", IsDomain: &yes}).Err, http.StatusBadRequest},
			{"deeper than 5", projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "l6", ParentID: deeper.ID}).Err, http.StatusBadRequest},
			{"an unknown parent", projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "orphan", ParentID: "nope"}).Err, http.StatusBadRequest},
			{"the parent changes", projects.Update(ctx, e.adminC, team.ID, projects.UpdateOpts{ParentID: org.ID}).Err, http.StatusBadRequest},
			{"a member lists projects", projects.List(e.aliceC, nil).EachPage(ctx, nil), http.StatusForbidden},
			{"an enabled child of a disabled parent", projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "on-kid", ParentID: off.ID}).Err, http.StatusForbidden},
			{"enabling a child of a disabled parent", projects.Update(ctx, e.adminC, offKid.ID, projects.UpdateOpts{Enabled: &yes}).Err, http.StatusForbidden},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if !gophercloud.ResponseCodeIs(c.err, c.code) {
					t.Fatalf("err = %v, want %d", c.err, c.code)
				}
			})
		}
		for _, p := range []*projects.Project{deeper, deep, team, dept, org, offKid, off} {
			mustOK(t, "delete leaf first", projects.Delete(ctx, e.adminC, p.ID).ExtractErr())
		}
	})
}
