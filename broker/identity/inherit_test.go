package identity_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/osinherit"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestProjectInheritance drives OS-INHERIT on projects with gophercloud:
// a role granted to a user (or a group) on a project inherited to its
// projects reaches every project below it, not the project itself, in
// tokens, the user's projects and effective assignments; removing it
// voids the tokens that carried it.
func TestProjectInheritance(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	mk := func(name, parent string) *projects.Project {
		t.Helper()
		p, err := projects.Create(ctx, e.adminC, projects.CreateOpts{Name: name, DomainID: identity.DefaultDomainID, ParentID: parent}).Extract()
		mustOK(t, "project "+name, err)
		return p
	}
	org := mk("org", "")
	dev := mk("org-dev", org.ID)
	ci := mk("org-dev-ci", dev.ID)
	other := mk("other", "")
	ivy, err := users.Create(ctx, e.adminC, users.CreateOpts{Name: "ivy", DomainID: identity.DefaultDomainID, Password: "ivy-pw"}).Extract()
	mustOK(t, "user", err)
	devs, err := groups.Create(ctx, e.adminC, groups.CreateOpts{Name: "devs", DomainID: identity.DefaultDomainID}).Extract()
	mustOK(t, "group", err)
	mustOK(t, "join", users.AddToGroup(ctx, e.adminC, devs.ID, ivy.ID).ExtractErr())
	mustOK(t, "inherit member from org", osinherit.Assign(ctx, e.adminC, e.memberRole.ID, osinherit.AssignOpts{UserID: ivy.ID, ProjectID: org.ID}).ExtractErr())
	mustOK(t, "inherit reader from org-dev to devs", osinherit.Assign(ctx, e.adminC, e.readerRole.ID, osinherit.AssignOpts{GroupID: devs.ID, ProjectID: dev.ID}).ExtractErr())
	// Direct grants of another user below org and outside it, for
	// include_subtree.
	mustOK(t, "mallory reader on org-dev-ci", roles.Assign(ctx, e.adminC, e.readerRole.ID, roles.AssignOpts{UserID: e.mallory.ID, ProjectID: ci.ID}).ExtractErr())
	mustOK(t, "mallory member on other", roles.Assign(ctx, e.adminC, e.memberRole.ID, roles.AssignOpts{UserID: e.mallory.ID, ProjectID: other.ID}).ExtractErr())

	t.Run("check", func(t *testing.T) {
		for _, c := range []struct {
			name string
			opts osinherit.ValidateOpts
			role string
			want bool
		}{
			{"the grant", osinherit.ValidateOpts{UserID: ivy.ID, ProjectID: org.ID}, e.memberRole.ID, true},
			{"the group's", osinherit.ValidateOpts{GroupID: devs.ID, ProjectID: dev.ID}, e.readerRole.ID, true},
			{"not on a subproject as made", osinherit.ValidateOpts{UserID: ivy.ID, ProjectID: dev.ID}, e.memberRole.ID, false},
		} {
			t.Run(c.name, func(t *testing.T) {
				err := osinherit.Validate(ctx, e.adminC, c.role, c.opts).ExtractErr()
				if (err == nil) != c.want {
					t.Errorf("validate = %v, want found %v", err, c.want)
				}
			})
		}
		// The direct grant routes do not see it.
		code, _ := e.call(t, http.MethodHead, "/v3/projects/"+org.ID+"/users/"+ivy.ID+"/roles/"+e.memberRole.ID, e.adminC.Token(), nil)
		if code != http.StatusNotFound {
			t.Errorf("direct check of an inherited grant = %d, want 404", code)
		}
	})

	t.Run("tokens", func(t *testing.T) {
		for _, c := range []struct {
			name, project string
			want          []string // nil: no access
		}{
			{"not on the project itself", org.ID, nil},
			{"a child", dev.ID, []string{"member", "reader"}},
			{"a grandchild, with the group's", ci.ID, []string{"member", "reader"}},
			{"another tree", other.ID, nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, v, err := e.scopedToken(t, "ivy", identity.DefaultDomainID, "ivy-pw", tokens.Scope{ProjectID: c.project})
				if c.want == nil {
					if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
						t.Fatalf("login = %v, want 401", err)
					}
					return
				}
				mustOK(t, "login", err)
				if got := v.roleNames(); !slices.Equal(got, c.want) {
					t.Fatalf("roles = %v, want %v", got, c.want)
				}
			})
		}
		pages, err := users.ListProjects(e.adminC, ivy.ID).AllPages(ctx)
		mustOK(t, "user projects", err)
		ps, _ := projects.ExtractProjects(pages)
		var names []string
		for _, p := range ps {
			names = append(names, p.Name)
		}
		if !slices.Equal(names, []string{"org-dev", "org-dev-ci"}) {
			t.Errorf("ivy's projects = %v", names)
		}
	})

	t.Run("assignments", func(t *testing.T) {
		base := "/v3/role_assignments?include_names&"
		for _, c := range []struct {
			name, query string
			want        []string // role@project[~inherited]
		}{
			{"as made", "user.id=" + ivy.ID, []string{"member@org~inherited"}},
			{"inherited ones", "scope.OS-INHERIT:inherited_to=projects", []string{"member@org~inherited", "reader@org-dev~inherited"}},
			{"on a project, as made", "scope.project.id=" + dev.ID, []string{"reader@org-dev~inherited"}},
			{"effective for the user", "effective&user.id=" + ivy.ID,
				[]string{"member@org-dev", "member@org-dev-ci", "reader@org-dev", "reader@org-dev-ci"}},
			{"effective on the grandchild", "effective&scope.project.id=" + ci.ID,
				[]string{"member@org-dev-ci", "reader@org-dev-ci"}},
			{"effective on the root", "effective&scope.project.id=" + org.ID, nil},
			{"the root's subtree, as made", "include_subtree&scope.project.id=" + org.ID,
				[]string{"member@org~inherited", "reader@org-dev-ci", "reader@org-dev~inherited"}},
			{"a child's subtree, as made", "include_subtree=true&scope.project.id=" + dev.ID,
				[]string{"reader@org-dev-ci", "reader@org-dev~inherited"}},
			{"the root's subtree, effective", "effective&include_subtree&scope.project.id=" + org.ID,
				[]string{"member@org-dev", "member@org-dev-ci", "reader@org-dev", "reader@org-dev-ci"}},
			{"the root's subtree, effective for ivy", "effective&include_subtree&user.id=" + ivy.ID + "&scope.project.id=" + org.ID,
				[]string{"member@org-dev", "member@org-dev-ci", "reader@org-dev", "reader@org-dev-ci"}},
			{"a leaf's subtree is the leaf", "include_subtree&scope.project.id=" + ci.ID, []string{"reader@org-dev-ci"}},
		} {
			t.Run(c.name, func(t *testing.T) {
				code, body := e.call(t, http.MethodGet, base+c.query, e.adminC.Token(), nil)
				if code != http.StatusOK {
					t.Fatalf("= %d %v", code, body)
				}
				var got []string
				rows, _ := body["role_assignments"].([]any)
				for _, x := range rows {
					row := x.(map[string]any)
					scope := row["scope"].(map[string]any)
					proj, _ := scope["project"].(map[string]any)
					s := row["role"].(map[string]any)["name"].(string) + "@" + proj["name"].(string)
					if scope["OS-INHERIT:inherited_to"] == "projects" {
						s += "~inherited"
					}
					link := row["links"].(map[string]any)["assignment"].(string)
					if strings.Contains(c.query, "effective") && !strings.Contains(link, "/OS-INHERIT/projects/") && row["user"].(map[string]any)["id"] != e.mallory.ID {
						t.Errorf("effective row's assignment link %s names no inherited grant", link)
					}
					if !slices.Contains(got, s) {
						got = append(got, s)
					}
				}
				slices.Sort(got)
				if !slices.Equal(got, c.want) {
					t.Fatalf("assignments = %v, want %v", got, c.want)
				}
			})
		}
	})

	t.Run("include_subtree with gophercloud", func(t *testing.T) {
		yes := true
		got := listAssignmentNames(t, e.adminC, roles.ListAssignmentsOpts{ScopeProjectID: org.ID, IncludeSubtree: &yes, IncludeNames: &yes}, nil)
		if want := []string{"member@org", "reader@org-dev", "reader@org-dev-ci"}; !slices.Equal(got, want) {
			t.Errorf("assignments = %v, want %v", got, want)
		}
		_, err := roles.ListAssignments(e.adminC, roles.ListAssignmentsOpts{IncludeSubtree: &yes}).AllPages(ctx)
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
			t.Errorf("include_subtree without scope.project.id = %v, want 400", err)
		}
		_, err = roles.ListAssignments(e.malC, roles.ListAssignmentsOpts{ScopeProjectID: org.ID, IncludeSubtree: &yes}).AllPages(ctx)
		if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Errorf("a member's include_subtree = %v, want 403", err)
		}
	})

	t.Run("a member may not grant", func(t *testing.T) {
		err := osinherit.Assign(ctx, e.malC, e.memberRole.ID, osinherit.AssignOpts{UserID: e.mallory.ID, ProjectID: org.ID}).ExtractErr()
		if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("member grants = %v, want 403", err)
		}
	})

	t.Run("unassign voids the tokens it reached", func(t *testing.T) {
		tok, _, err := e.scopedToken(t, "ivy", identity.DefaultDomainID, "ivy-pw", tokens.Scope{ProjectID: ci.ID})
		mustOK(t, "login", err)
		mustOK(t, "unassign", osinherit.Unassign(ctx, e.adminC, e.memberRole.ID, osinherit.UnassignOpts{UserID: ivy.ID, ProjectID: org.ID}).ExtractErr())
		if _, err := e.tokens.Validate(ctx, tok); !errors.Is(err, identity.ErrUnauthorized) {
			t.Fatalf("token after unassign = %v, want refused", err)
		}
		_, v, err := e.scopedToken(t, "ivy", identity.DefaultDomainID, "ivy-pw", tokens.Scope{ProjectID: ci.ID})
		mustOK(t, "login with the group's inherited reader", err)
		if got := v.roleNames(); !slices.Equal(got, []string{"reader"}) {
			t.Fatalf("roles = %v, want the group's reader", got)
		}
		if _, _, err := e.scopedToken(t, "ivy", identity.DefaultDomainID, "ivy-pw", tokens.Scope{ProjectID: dev.ID}); !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("login on org-dev = %v, want 401 (the group's grant is below it)", err)
		}
	})

	t.Run("deleting the project deletes what it granted down", func(t *testing.T) {
		mustOK(t, "delete grandchild", projects.Delete(ctx, e.adminC, ci.ID).ExtractErr())
		mustOK(t, "delete child", projects.Delete(ctx, e.adminC, dev.ID).ExtractErr())
		as, err := e.dir.ListAssignments(ctx, identity.AssignmentFilter{GroupID: devs.ID})
		if err != nil || len(as) != 0 {
			t.Fatalf("devs' grants after org-dev's delete = %+v, %v", as, err)
		}
	})
}

// TestProjectInheritanceCLI: the openstack CLI grants a role inherited
// down a project's subtree (role add --project --inherited), lists it and
// its effect, and the user's token on a subproject carries it.
func TestProjectInheritanceCLI(t *testing.T) {
	e := newEnv(t, registry.NewMemory())
	c := newCLI(t, e)
	admin := passwordLogin("admin", adminPassword, "admin")
	c.runSteps(t, []cliStep{
		{"parent", admin, []string{"project", "create", "parent"}, 0, nil, ""},
		{"child", admin, []string{"project", "create", "--parent", "parent", "child"}, 0, nil, ""},
		{"user", admin, []string{"user", "create", "--password", "uu-pw", "uu"}, 0, nil, ""},
		{"role add --project --inherited", admin, []string{"role", "add", "--project", "parent", "--user", "uu", "--inherited", "member"}, 0, nil, ""},
		{"listed as inherited", admin, []string{"role", "assignment", "list", "--names", "--user", "uu", "-f", "value", "-c", "Role", "-c", "Project", "-c", "Inherited"}, 0, []string{"member parent@Default True"}, ""},
		{"effective on the child", admin, []string{"role", "assignment", "list", "--effective", "--names", "--user", "uu", "-f", "value", "-c", "Role", "-c", "Project"}, 0, []string{"member child@Default", "reader child@Default"}, "parent@Default"},
		{"token on the child", passwordLogin("uu", "uu-pw", "child"), []string{"token", "issue", "-f", "value", "-c", "project_id"}, 0, nil, ""},
		{"no token on the parent", passwordLogin("uu", "uu-pw", "parent"), []string{"token", "issue"}, 1, []string{"401"}, ""},
		{"a member may not grant", passwordLogin("uu", "uu-pw", "child"), []string{"role", "add", "--project", "child", "--user", "uu", "--inherited", "admin"}, 1, []string{"403"}, ""},
		{"role remove --inherited", admin, []string{"role", "remove", "--project", "parent", "--user", "uu", "--inherited", "member"}, 0, nil, ""},
		{"no token on the child now", passwordLogin("uu", "uu-pw", "child"), []string{"token", "issue"}, 1, []string{"401"}, ""},
	})
}
