package identity_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/domains"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/osinherit"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/projects"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/roles"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/users"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// scopedToken logs in with a password and the given scope, and returns
// the token and what its body says of scope and roles.
func (e *appEnv) scopedToken(t *testing.T, user, domainID, password string, scope tokens.Scope) (string, tokenView, error) {
	t.Helper()
	res := tokens.Create(context.Background(), e.adminC, &tokens.AuthOptions{Username: user, DomainID: domainID, Password: password, Scope: scope})
	if res.Err != nil {
		return "", tokenView{}, res.Err
	}
	id, err := res.ExtractTokenID()
	if err != nil {
		t.Fatal(err)
	}
	var v tokenView
	if err := res.ExtractInto(&v); err != nil {
		t.Fatal(err)
	}
	return id, v, nil
}

func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// TestDomainsAndScopes: domains CRUD through gophercloud, domain- and
// system-scoped tokens from role assignments on them, and disabling a
// domain voiding its users' tokens and refusing their logins.
func TestDomainsAndScopes(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	dom, err := domains.Create(ctx, e.adminC, domains.CreateOpts{Name: "acme", Description: "a customer"}).Extract()
	mustOK(t, "create domain", err)
	if !dom.Enabled || dom.Name != "acme" {
		t.Fatalf("domain = %+v", dom)
	}
	ann, err := users.Create(ctx, e.adminC, users.CreateOpts{Name: "ann", DomainID: dom.ID, Password: "pw"}).Extract()
	mustOK(t, "create user in domain (a 2-byte password: Keystone sets no minimum)", err)
	proj, err := projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "web", DomainID: dom.ID}).Extract()
	mustOK(t, "create project in domain", err)
	admin := e.boot.Roles[identity.RoleAdmin]
	mustOK(t, "grant admin on the domain", roles.Assign(ctx, e.adminC, admin.ID, roles.AssignOpts{UserID: ann.ID, DomainID: dom.ID}).ExtractErr())
	mustOK(t, "grant member on the project", roles.Assign(ctx, e.adminC, e.memberRole.ID, roles.AssignOpts{UserID: ann.ID, ProjectID: proj.ID}).ExtractErr())

	domTok, v, err := e.scopedToken(t, "ann", dom.ID, "pw", tokens.Scope{DomainName: "acme"})
	mustOK(t, "domain-scoped token", err)
	if got := v.roleNames(); !slices.Equal(got, []string{"admin", "member", "reader"}) {
		t.Fatalf("domain token roles = %v", got)
	}
	projTok, _, err := e.scopedToken(t, "ann", dom.ID, "pw", tokens.Scope{ProjectID: proj.ID})
	mustOK(t, "project-scoped token", err)

	t.Run("the domain token names its domain", func(t *testing.T) {
		d, err := tokens.Get(ctx, e.adminC, domTok).ExtractDomain()
		if err != nil || d == nil || d.ID != dom.ID || d.Name != "acme" {
			t.Fatalf("token domain = %+v, %v", d, err)
		}
	})
	t.Run("a domain admin is not an identity admin", func(t *testing.T) {
		code, _ := e.call(t, http.MethodGet, "/v3/domains", domTok, nil)
		if code != http.StatusForbidden {
			t.Fatalf("domain admin lists domains: %d, want 403", code)
		}
	})
	t.Run("no role on a domain, no domain token", func(t *testing.T) {
		_, _, err := e.scopedToken(t, "alice", identity.DefaultDomainID, "alice-password", tokens.Scope{DomainID: dom.ID})
		if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("alice's domain token = %v, want 401", err)
		}
	})
	t.Run("system scope", func(t *testing.T) {
		sysadm, err := users.Create(ctx, e.adminC, users.CreateOpts{Name: "sysadm", DomainID: identity.DefaultDomainID, Password: "sysadm-pw"}).Extract()
		mustOK(t, "create user", err)
		mustOK(t, "grant admin on the system", roles.Assign(ctx, e.adminC, admin.ID, roles.AssignOpts{UserID: sysadm.ID, System: true}).ExtractErr())
		tok, v, err := e.scopedToken(t, "sysadm", identity.DefaultDomainID, "sysadm-pw", tokens.Scope{System: true})
		mustOK(t, "system-scoped token", err)
		if got := v.roleNames(); !slices.Equal(got, []string{"admin", "member", "reader"}) {
			t.Fatalf("system token roles = %v", got)
		}
		if code, _ := e.call(t, http.MethodGet, "/v3/domains", tok, nil); code != http.StatusOK {
			t.Fatalf("system admin lists domains: %d, want 200", code)
		}
		var sys struct {
			System map[string]bool `json:"system"`
		}
		mustOK(t, "validate", tokens.Get(ctx, e.adminC, tok).ExtractInto(&sys))
		if !sys.System["all"] {
			t.Fatalf("token system = %v", sys.System)
		}
		_, _, err = e.scopedToken(t, "alice", identity.DefaultDomainID, "alice-password", tokens.Scope{System: true})
		if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("alice's system token = %v, want 401", err)
		}
	})
	t.Run("assignments on domains and the system are listed", func(t *testing.T) {
		cases := []struct {
			name string
			opts roles.ListAssignmentsOpts
			want int
		}{
			{"scope.domain.id", roles.ListAssignmentsOpts{ScopeDomainID: dom.ID}, 1},
			{"scope.system", roles.ListAssignmentsOpts{ScopeSystem: "all"}, 1},
			{"user.id", roles.ListAssignmentsOpts{UserID: ann.ID}, 2},
			{"scope.project.id", roles.ListAssignmentsOpts{ScopeProjectID: proj.ID}, 1},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				pages, err := roles.ListAssignments(e.adminC, c.opts).AllPages(ctx)
				mustOK(t, "list", err)
				as, _ := roles.ExtractRoleAssignments(pages)
				if len(as) != c.want {
					t.Fatalf("assignments = %+v, want %d", as, c.want)
				}
			})
		}
	})
	t.Run("an enabled domain is not deleted", func(t *testing.T) {
		if err := domains.Delete(ctx, e.adminC, dom.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("delete enabled domain = %v, want 403", err)
		}
	})
	t.Run("the default domain stays enabled", func(t *testing.T) {
		off := false
		_, err := domains.Update(ctx, e.adminC, identity.DefaultDomainID, domains.UpdateOpts{Enabled: &off}).Extract()
		if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("disable default = %v, want 403", err)
		}
	})
	t.Run("disabling cascades", func(t *testing.T) {
		off := false
		d, err := domains.Update(ctx, e.adminC, dom.ID, domains.UpdateOpts{Enabled: &off}).Extract()
		if err != nil || d.Enabled {
			t.Fatalf("disable = %+v, %v", d, err)
		}
		for name, tok := range map[string]string{"domain": domTok, "project": projTok} {
			if _, err := e.tokens.Validate(ctx, tok); !errors.Is(err, identity.ErrUnauthorized) {
				t.Errorf("%s-scoped token of a disabled domain = %v, want refused", name, err)
			}
		}
		_, _, err = e.scopedToken(t, "ann", dom.ID, "pw", tokens.Scope{ProjectID: proj.ID})
		if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("login in a disabled domain = %v, want 401", err)
		}
	})
	t.Run("a disabled domain is deleted with what it holds", func(t *testing.T) {
		mustOK(t, "delete", domains.Delete(ctx, e.adminC, dom.ID).ExtractErr())
		for what, err := range map[string]error{
			"domain":  domains.Get(ctx, e.adminC, dom.ID).Err,
			"user":    users.Get(ctx, e.adminC, ann.ID).Err,
			"project": projects.Get(ctx, e.adminC, proj.ID).Err,
		} {
			if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Errorf("%s after domain delete = %v, want 404", what, err)
			}
		}
	})
}

// TestRolesGroupsInheritance: roles CRUD and inference rules, groups and
// their members, group grants direct and inherited to a domain's
// projects, and the effective assignments and token roles they give.
func TestRolesGroupsInheritance(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())

	t.Run("bootstrap rules are real rows", func(t *testing.T) {
		res := roles.ListRoleInferenceRules(ctx, e.adminC)
		rules, err := res.Extract()
		mustOK(t, "list role inferences", err)
		got := map[string][]string{}
		for _, r := range rules.RoleInferenceRuleList {
			for _, imp := range r.ImpliedRoles {
				got[r.PriorRole.Name] = append(got[r.PriorRole.Name], imp.Name)
			}
		}
		if !slices.Equal(got["admin"], []string{"member"}) || !slices.Equal(got["member"], []string{"reader"}) {
			t.Fatalf("rules = %v", got)
		}
	})
	auditor, err := roles.Create(ctx, e.adminC, roles.CreateOpts{Name: "auditor", Description: "reads logs"}).Extract()
	mustOK(t, "create role", err)
	t.Run("roles CRUD", func(t *testing.T) {
		r, err := roles.Get(ctx, e.adminC, auditor.ID).Extract()
		if err != nil || r.Name != "auditor" || r.Description != "reads logs" {
			t.Fatalf("get = %+v, %v", r, err)
		}
		r, err = roles.Update(ctx, e.adminC, auditor.ID, roles.UpdateOpts{Name: "auditor2"}).Extract()
		if err != nil || r.Name != "auditor2" {
			t.Fatalf("update = %+v, %v", r, err)
		}
		if _, err := roles.Create(ctx, e.adminC, roles.CreateOpts{Name: "auditor2"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
			t.Fatalf("duplicate name = %v, want 409", err)
		}
		if err := roles.Delete(ctx, e.adminC, e.boot.Roles[identity.RoleMember].ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("delete member = %v, want 403", err)
		}
	})
	t.Run("domain-specific roles imply global ones", func(t *testing.T) {
		dr, err := roles.Create(ctx, e.adminC, roles.CreateOpts{Name: "auditor2", DomainID: identity.DefaultDomainID}).Extract()
		mustOK(t, "a domain role may share a global role's name", err)
		if dr.DomainID != identity.DefaultDomainID {
			t.Fatalf("domain role = %+v", dr)
		}
		pages, err := roles.List(e.adminC, roles.ListOpts{DomainID: identity.DefaultDomainID}).AllPages(ctx)
		mustOK(t, "list domain roles", err)
		if rs, _ := roles.ExtractRoles(pages); len(rs) != 1 || rs[0].ID != dr.ID {
			t.Fatalf("domain roles = %+v", rs)
		}
		mustOK(t, "imply", roles.CreateRoleInferenceRule(ctx, e.adminC, dr.ID, auditor.ID).Err)
		u, err := users.Create(ctx, e.adminC, users.CreateOpts{Name: "dora", DomainID: identity.DefaultDomainID, Password: "dora-pw"}).Extract()
		mustOK(t, "user", err)
		mustOK(t, "grant", roles.Assign(ctx, e.adminC, dr.ID, roles.AssignOpts{UserID: u.ID, ProjectID: e.proj.ID}).ExtractErr())
		_, v, err := e.scopedToken(t, "dora", identity.DefaultDomainID, "dora-pw", tokens.Scope{ProjectID: e.proj.ID})
		mustOK(t, "login", err)
		if got := v.roleNames(); !slices.Equal(got, []string{"auditor2"}) {
			t.Fatalf("token roles = %v, want the implied global role only", got)
		}
	})
	t.Run("implied rules", func(t *testing.T) {
		mustOK(t, "reader implies auditor", roles.CreateRoleInferenceRule(ctx, e.adminC, e.readerRole.ID, auditor.ID).Err)
		_, v, err := e.scopedToken(t, "mallory", identity.DefaultDomainID, "mallory-password", tokens.Scope{ProjectID: e.proj.ID})
		mustOK(t, "login", err)
		if got := v.roleNames(); !slices.Equal(got, []string{"auditor2", "member", "reader"}) {
			t.Fatalf("token roles = %v, want member and what it implies transitively", got)
		}
		err = roles.CreateRoleInferenceRule(ctx, e.adminC, auditor.ID, e.boot.Roles[identity.RoleAdmin].ID).Err
		if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("implying admin = %v, want 403", err)
		}
		mustOK(t, "delete rule", roles.DeleteRoleInferenceRule(ctx, e.adminC, e.readerRole.ID, auditor.ID).ExtractErr())
		if err := roles.GetRoleInferenceRule(ctx, e.adminC, e.readerRole.ID, auditor.ID).Err; !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("deleted rule = %v, want 404", err)
		}
	})

	dom, err := domains.Create(ctx, e.adminC, domains.CreateOpts{Name: "labs"}).Extract()
	mustOK(t, "domain", err)
	labA, err := projects.Create(ctx, e.adminC, projects.CreateOpts{Name: "lab-a", DomainID: dom.ID}).Extract()
	mustOK(t, "project", err)
	ops, err := groups.Create(ctx, e.adminC, groups.CreateOpts{Name: "ops", DomainID: identity.DefaultDomainID}).Extract()
	mustOK(t, "create group", err)
	gus, err := users.Create(ctx, e.adminC, users.CreateOpts{Name: "gus", DomainID: identity.DefaultDomainID, Password: "gus-pw"}).Extract()
	mustOK(t, "user", err)
	mustOK(t, "add to group", users.AddToGroup(ctx, e.adminC, ops.ID, gus.ID).ExtractErr())
	mustOK(t, "group grant", roles.Assign(ctx, e.adminC, e.readerRole.ID, roles.AssignOpts{GroupID: ops.ID, ProjectID: e.proj.ID}).ExtractErr())
	mustOK(t, "inherited group grant", osinherit.Assign(ctx, e.adminC, e.memberRole.ID, osinherit.AssignOpts{GroupID: ops.ID, DomainID: dom.ID}).ExtractErr())

	t.Run("groups CRUD and membership", func(t *testing.T) {
		g, err := groups.Update(ctx, e.adminC, ops.ID, groups.UpdateOpts{Description: new("on call")}).Extract()
		if err != nil || g.Description != "on call" || g.Name != "ops" {
			t.Fatalf("update = %+v, %v", g, err)
		}
		ok, err := users.IsMemberOfGroup(ctx, e.adminC, ops.ID, gus.ID).Extract()
		if err != nil || !ok {
			t.Fatalf("member = %v, %v", ok, err)
		}
		pages, err := users.ListInGroup(e.adminC, ops.ID, nil).AllPages(ctx)
		mustOK(t, "list members", err)
		if us, _ := users.ExtractUsers(pages); len(us) != 1 || us[0].ID != gus.ID {
			t.Fatalf("members = %+v", us)
		}
		pages, err = users.ListGroups(e.adminC, gus.ID).AllPages(ctx)
		mustOK(t, "list user groups", err)
		if gs, _ := groups.ExtractGroups(pages); len(gs) != 1 || gs[0].ID != ops.ID {
			t.Fatalf("user groups = %+v", gs)
		}
	})
	t.Run("tokens carry group and inherited roles", func(t *testing.T) {
		cases := []struct {
			name    string
			project string
			want    []string
		}{
			{"group grant on the project", e.proj.ID, []string{"reader"}},
			{"inherited from the domain", labA.ID, []string{"member", "reader"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				_, v, err := e.scopedToken(t, "gus", identity.DefaultDomainID, "gus-pw", tokens.Scope{ProjectID: c.project})
				mustOK(t, "login", err)
				if got := v.roleNames(); !slices.Equal(got, c.want) {
					t.Fatalf("roles = %v, want %v", got, c.want)
				}
			})
		}
		pages, err := users.ListProjects(e.adminC, gus.ID).AllPages(ctx)
		mustOK(t, "user projects", err)
		if ps, _ := projects.ExtractProjects(pages); len(ps) != 2 {
			t.Fatalf("gus's projects = %+v, want team-a and lab-a", ps)
		}
	})
	t.Run("effective assignments", func(t *testing.T) {
		yes := true
		cases := []struct {
			name string
			opts roles.ListAssignmentsOpts
			want []string // role@project names
		}{
			{"as made, by group", roles.ListAssignmentsOpts{GroupID: ops.ID, IncludeNames: &yes}, []string{"member@", "reader@team-a"}},
			{"effective for the user", roles.ListAssignmentsOpts{UserID: gus.ID, Effective: &yes, IncludeNames: &yes},
				[]string{"member@lab-a", "reader@lab-a", "reader@team-a"}},
			{"effective on the inheriting project", roles.ListAssignmentsOpts{ScopeProjectID: labA.ID, Effective: &yes, IncludeNames: &yes},
				[]string{"member@lab-a", "reader@lab-a"}},
			{"effective by role", roles.ListAssignmentsOpts{UserID: gus.ID, RoleID: e.readerRole.ID, Effective: &yes, IncludeNames: &yes},
				[]string{"reader@lab-a", "reader@team-a"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				got := listAssignmentNames(t, e.adminC, c.opts, func(a roles.RoleAssignment) {
					if c.opts.Effective != nil && a.User.Name != "gus" {
						t.Errorf("effective row of %+v, want gus", a.User)
					}
				})
				if !slices.Equal(got, c.want) {
					t.Fatalf("assignments = %v, want %v", got, c.want)
				}
			})
		}
	})
	t.Run("leaving the group voids tokens and roles", func(t *testing.T) {
		tok, _, err := e.scopedToken(t, "gus", identity.DefaultDomainID, "gus-pw", tokens.Scope{ProjectID: labA.ID})
		mustOK(t, "login", err)
		mustOK(t, "remove", users.RemoveFromGroup(ctx, e.adminC, ops.ID, gus.ID).ExtractErr())
		if _, err := e.tokens.Validate(ctx, tok); !errors.Is(err, identity.ErrUnauthorized) {
			t.Fatalf("token after leaving = %v, want refused", err)
		}
		_, _, err = e.scopedToken(t, "gus", identity.DefaultDomainID, "gus-pw", tokens.Scope{ProjectID: labA.ID})
		if !gophercloud.ResponseCodeIs(err, http.StatusUnauthorized) {
			t.Fatalf("login after leaving = %v, want 401", err)
		}
	})
	t.Run("deleting a role voids the tokens carrying it", func(t *testing.T) {
		mustOK(t, "grant", roles.Assign(ctx, e.adminC, auditor.ID, roles.AssignOpts{UserID: gus.ID, ProjectID: e.proj.ID}).ExtractErr())
		tok, _, err := e.scopedToken(t, "gus", identity.DefaultDomainID, "gus-pw", tokens.Scope{ProjectID: e.proj.ID})
		mustOK(t, "login", err)
		mustOK(t, "delete role", roles.Delete(ctx, e.adminC, auditor.ID).ExtractErr())
		if _, err := e.tokens.Validate(ctx, tok); !errors.Is(err, identity.ErrUnauthorized) {
			t.Fatalf("token with a deleted role = %v, want refused", err)
		}
		pages, err := roles.ListAssignments(e.adminC, roles.ListAssignmentsOpts{RoleID: auditor.ID}).AllPages(ctx)
		mustOK(t, "list", err)
		if as, _ := roles.ExtractRoleAssignments(pages); len(as) != 0 {
			t.Fatalf("assignments of a deleted role = %+v", as)
		}
	})
	t.Run("group delete", func(t *testing.T) {
		mustOK(t, "delete", groups.Delete(ctx, e.adminC, ops.ID).ExtractErr())
		pages, err := roles.ListAssignments(e.adminC, roles.ListAssignmentsOpts{GroupID: ops.ID}).AllPages(ctx)
		mustOK(t, "list", err)
		if as, _ := roles.ExtractRoleAssignments(pages); len(as) != 0 {
			t.Fatalf("assignments of a deleted group = %+v", as)
		}
	})
}

// TestMembersCannotAdminister: a project member, and a project admin of
// an ordinary project, get 403 from every identity admin call.
func TestMembersCannotAdminister(t *testing.T) {
	e := newAppEnv(t, registry.NewMemory())
	member := e.aliceC.TokenID
	calls := []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/v3/domains", nil},
		{http.MethodPost, "/v3/domains", map[string]any{"domain": map[string]any{"name": "x"}}},
		{http.MethodPatch, "/v3/domains/default", map[string]any{"domain": map[string]any{"enabled": false}}},
		{http.MethodGet, "/v3/groups", nil},
		{http.MethodPost, "/v3/groups", map[string]any{"group": map[string]any{"name": "x"}}},
		{http.MethodPost, "/v3/roles", map[string]any{"role": map[string]any{"name": "x"}}},
		{http.MethodPut, "/v3/roles/" + e.memberRole.ID + "/implies/" + e.readerRole.ID, nil},
		{http.MethodGet, "/v3/role_assignments", nil},
		{http.MethodGet, "/v3/users", nil},
		{http.MethodGet, "/v3/users/" + e.mallory.ID, nil},
		{http.MethodGet, "/v3/projects/" + e.boot.Project.ID, nil},
		{http.MethodGet, "/v3/projects", nil},
		{http.MethodPut, "/v3/projects/" + e.proj.ID + "/users/" + e.alice.ID + "/roles/" + e.boot.Roles[identity.RoleAdmin].ID, nil},
		{http.MethodPut, "/v3/projects/" + e.proj.ID + "/tags/x", nil},
		{http.MethodPut, "/v3/system/users/" + e.alice.ID + "/roles/" + e.boot.Roles[identity.RoleAdmin].ID, nil},
		{http.MethodPut, "/v3/domains/default/users/" + e.alice.ID + "/roles/" + e.boot.Roles[identity.RoleAdmin].ID, nil},
		{http.MethodPut, "/v3/OS-INHERIT/domains/default/users/" + e.alice.ID + "/roles/" + e.boot.Roles[identity.RoleAdmin].ID + "/inherited_to_projects", nil},
	}
	for _, c := range calls {
		t.Run(c.method+" "+c.path, func(t *testing.T) {
			if code, body := e.call(t, c.method, c.path, member, c.body); code != http.StatusForbidden {
				t.Fatalf("member: %d %v, want 403", code, body)
			}
		})
	}
}

// TestSystemAdminIsIdentityAdmin: a system-scoped admin (an identity
// admin, as Keystone's system scope is) validates and revokes another
// user's token and lists another user's projects; a member does not.
func TestSystemAdminIsIdentityAdmin(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	sys, err := users.Create(ctx, e.adminC, users.CreateOpts{Name: "sys", DomainID: identity.DefaultDomainID, Password: "sys-password"}).Extract()
	mustOK(t, "user", err)
	mustOK(t, "system admin", e.dir.Grant(ctx, identity.Assignment{UserID: sys.ID, System: true, RoleID: e.boot.Roles[identity.RoleAdmin].ID}))
	sysTok, _, err := e.scopedToken(t, "sys", identity.DefaultDomainID, "sys-password", tokens.Scope{System: true})
	mustOK(t, "system token", err)
	aliceTok, _, err := e.scopedToken(t, "alice", identity.DefaultDomainID, "alice-password", tokens.Scope{ProjectID: e.proj.ID})
	mustOK(t, "alice's token", err)
	malTok := e.malC.Token()
	cases := []struct {
		name, method, path, caller, subject string
		code                                int
	}{
		{"a member validates alice's token", http.MethodGet, "/v3/auth/tokens", malTok, aliceTok, http.StatusForbidden},
		{"the system admin validates it", http.MethodGet, "/v3/auth/tokens", sysTok, aliceTok, http.StatusOK},
		{"a member lists alice's projects", http.MethodGet, "/v3/users/" + e.alice.ID + "/projects", malTok, "", http.StatusForbidden},
		{"the system admin lists them", http.MethodGet, "/v3/users/" + e.alice.ID + "/projects", sysTok, "", http.StatusOK},
		{"a member revokes alice's token", http.MethodDelete, "/v3/auth/tokens", malTok, aliceTok, http.StatusForbidden},
		{"the system admin revokes it", http.MethodDelete, "/v3/auth/tokens", sysTok, aliceTok, http.StatusNoContent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(ctx, c.method, e.srv.URL+c.path, nil)
			mustOK(t, "request", err)
			req.Header.Set("X-Auth-Token", c.caller)
			if c.subject != "" {
				req.Header.Set("X-Subject-Token", c.subject)
			}
			resp, err := http.DefaultClient.Do(req)
			mustOK(t, "do", err)
			resp.Body.Close()
			if resp.StatusCode != c.code {
				t.Fatalf("%s %s: %d, want %d", c.method, c.path, resp.StatusCode, c.code)
			}
		})
	}
}

// listAssignmentNames lists role assignments with gophercloud as
// role@project names, sorted, handing each row to check.
func listAssignmentNames(t *testing.T, c *gophercloud.ServiceClient, opts roles.ListAssignmentsOpts, check func(roles.RoleAssignment)) []string {
	t.Helper()
	pages, err := roles.ListAssignments(c, opts).AllPages(context.Background())
	mustOK(t, "list", err)
	as, err := roles.ExtractRoleAssignments(pages)
	mustOK(t, "extract", err)
	var got []string
	for _, a := range as {
		got = append(got, a.Role.Name+"@"+a.Scope.Project.Name)
		if check != nil {
			check(a)
		}
	}
	slices.Sort(got)
	return got
}
