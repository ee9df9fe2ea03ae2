package identity_test

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
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

// TestDomainAdmin: a domain-scoped admin token manages its domain's
// users, groups, projects and member/reader grants with gophercloud, and
// gets 403 for anything in another domain, for the admin role, for users
// and groups holding it, and for what only identity admins do.
func TestDomainAdmin(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	acme, err := domains.Create(ctx, e.adminC, domains.CreateOpts{Name: "acme"}).Extract()
	mustOK(t, "domain", err)
	dana, err := users.Create(ctx, e.adminC, users.CreateOpts{Name: "dana", DomainID: acme.ID, Password: "dana-pw"}).Extract()
	mustOK(t, "user", err)
	adminRole := e.boot.Roles[identity.RoleAdmin]
	mustOK(t, "admin on acme", roles.Assign(ctx, e.adminC, adminRole.ID, roles.AssignOpts{UserID: dana.ID, DomainID: acme.ID}).ExtractErr())
	p, err := openstack.AuthenticatedClient(ctx, gophercloud.AuthOptions{IdentityEndpoint: e.srv.URL + "/v3", Username: "dana",
		Password: "dana-pw", DomainID: acme.ID, Scope: &gophercloud.AuthScope{DomainID: acme.ID}})
	mustOK(t, "dana's domain token", err)
	dc, err := openstack.NewIdentityV3(p, gophercloud.EndpointOpts{})
	mustOK(t, "client", err)

	// What dana makes: a user, a project below another, a group.
	eve, err := users.Create(ctx, dc, users.CreateOpts{Name: "eve", Password: "eve-pw"}).Extract()
	mustOK(t, "create a user (the token's domain)", err)
	shop, err := projects.Create(ctx, dc, projects.CreateOpts{Name: "shop"}).Extract()
	mustOK(t, "create a project", err)
	shopDev, err := projects.Create(ctx, dc, projects.CreateOpts{Name: "shop-dev", ParentID: shop.ID}).Extract()
	mustOK(t, "create a subproject", err)
	staff, err := groups.Create(ctx, dc, groups.CreateOpts{Name: "staff"}).Extract()
	mustOK(t, "create a group", err)
	if eve.DomainID != acme.ID || shop.DomainID != acme.ID || staff.DomainID != acme.ID || shopDev.DomainID != acme.ID {
		t.Fatalf("made outside acme: %s %s %s %s", eve.DomainID, shop.DomainID, staff.DomainID, shopDev.DomainID)
	}

	t.Run("in its domain", func(t *testing.T) {
		for _, c := range []struct {
			name string
			err  error
		}{
			{"add a member", users.AddToGroup(ctx, dc, staff.ID, eve.ID).ExtractErr()},
			{"grant member on a project", roles.Assign(ctx, dc, e.memberRole.ID, roles.AssignOpts{UserID: eve.ID, ProjectID: shop.ID}).ExtractErr()},
			{"grant reader on the domain to a group", roles.Assign(ctx, dc, e.readerRole.ID, roles.AssignOpts{GroupID: staff.ID, DomainID: acme.ID}).ExtractErr()},
			{"inherit reader down a project", osinherit.Assign(ctx, dc, e.readerRole.ID, osinherit.AssignOpts{GroupID: staff.ID, ProjectID: shop.ID}).ExtractErr()},
			{"update a user", users.Update(ctx, dc, eve.ID, users.UpdateOpts{Description: new("shop keeper")}).Err},
			{"show a user", users.Get(ctx, dc, eve.ID).Err},
			{"show a project", projects.Get(ctx, dc, shop.ID).Err},
			{"tag a project", projects.ModifyTags(ctx, dc, shop.ID, projects.ModifyTagsOpts{Tags: []string{"retail"}}).Err},
			{"show its domain", domains.Get(ctx, dc, acme.ID).Err},
			{"list roles", func() error { _, err := roles.List(dc, nil).AllPages(ctx); return err }()},
		} {
			t.Run(c.name, func(t *testing.T) { mustOK(t, c.name, c.err) })
		}
		_, v, err := e.scopedToken(t, "eve", acme.ID, "eve-pw", tokens.Scope{ProjectID: shopDev.ID})
		mustOK(t, "eve's token on the subproject", err)
		if got := v.roleNames(); !slices.Equal(got, []string{"reader"}) {
			t.Errorf("eve's roles on shop-dev = %v, want the group's inherited reader", got)
		}
	})

	t.Run("listings are the domain's", func(t *testing.T) {
		pages, err := users.List(dc, nil).AllPages(ctx)
		mustOK(t, "list users", err)
		us, _ := users.ExtractUsers(pages)
		var names []string
		for _, u := range us {
			names = append(names, u.Name)
		}
		slices.Sort(names)
		if !slices.Equal(names, []string{"dana", "eve"}) {
			t.Errorf("users = %v, want acme's", names)
		}
		pages, err = projects.List(dc, nil).AllPages(ctx)
		mustOK(t, "list projects", err)
		if ps, _ := projects.ExtractProjects(pages); len(ps) != 2 {
			t.Errorf("projects = %+v, want acme's two", ps)
		}
		pages, err = roles.ListAssignments(dc, roles.ListAssignmentsOpts{}).AllPages(ctx)
		mustOK(t, "list assignments", err)
		as, _ := roles.ExtractRoleAssignments(pages)
		for _, a := range as {
			if a.Scope.Domain.ID != acme.ID && a.Scope.Project.ID != shop.ID {
				t.Errorf("assignment outside acme listed: %+v", a)
			}
		}
		if len(as) != 4 {
			t.Errorf("%d assignments, want acme's 4", len(as))
		}
	})

	t.Run("refused", func(t *testing.T) {
		tok := dc.Token()
		base := "/v3"
		for _, c := range []struct {
			name, method, path string
			body               any
		}{
			{"a user in another domain", "POST", base + "/users", map[string]any{"user": map[string]any{"name": "x", "domain_id": identity.DefaultDomainID}}},
			{"a project in another domain", "POST", base + "/projects", map[string]any{"project": map[string]any{"name": "x", "domain_id": identity.DefaultDomainID}}},
			{"a project below another domain's", "POST", base + "/projects", map[string]any{"project": map[string]any{"name": "x", "parent_id": e.proj.ID}}},
			{"another domain's users", "GET", base + "/users?domain_id=" + identity.DefaultDomainID, nil},
			{"another domain's user", "GET", base + "/users/" + e.alice.ID, nil},
			{"change another domain's user", "PATCH", base + "/users/" + e.alice.ID, map[string]any{"user": map[string]any{"enabled": false}}},
			{"change a user holding admin", "PATCH", base + "/users/" + dana.ID, map[string]any{"user": map[string]any{"password": "taken"}}},
			{"delete another domain's project", "DELETE", base + "/projects/" + e.proj.ID, nil},
			{"grant admin", "PUT", base + "/projects/" + shop.ID + "/users/" + eve.ID + "/roles/" + adminRole.ID, nil},
			{"grant admin on the domain", "PUT", base + "/domains/" + acme.ID + "/users/" + eve.ID + "/roles/" + adminRole.ID, nil},
			{"grant on another domain's project", "PUT", base + "/projects/" + e.proj.ID + "/users/" + eve.ID + "/roles/" + e.memberRole.ID, nil},
			{"grant to another domain's user", "PUT", base + "/projects/" + shop.ID + "/users/" + e.alice.ID + "/roles/" + e.memberRole.ID, nil},
			{"grant on the system", "PUT", base + "/system/users/" + eve.ID + "/roles/" + e.readerRole.ID, nil},
			{"join another domain's user", "PUT", base + "/groups/" + staff.ID + "/users/" + e.alice.ID, nil},
			{"list domains", "GET", base + "/domains", nil},
			{"show another domain", "GET", base + "/domains/" + identity.DefaultDomainID, nil},
			{"disable its domain", "PATCH", base + "/domains/" + acme.ID, map[string]any{"domain": map[string]any{"enabled": false}}},
			{"create a role", "POST", base + "/roles", map[string]any{"role": map[string]any{"name": "boss"}}},
			{"imply a role", "PUT", base + "/roles/" + e.readerRole.ID + "/implies/" + adminRole.ID, nil},
			{"create a service", "POST", base + "/services", map[string]any{"service": map[string]any{"type": "x"}}},
		} {
			t.Run(c.name, func(t *testing.T) {
				if code, body := e.call(t, c.method, c.path, tok, c.body); code != http.StatusForbidden {
					t.Errorf("%s %s = %d %v, want 403", c.method, c.path, code, body)
				}
			})
		}
		// A group granted admin is out of reach: joining it would make
		// a domain admin one everywhere it holds admin.
		admins, err := groups.Create(ctx, e.adminC, groups.CreateOpts{Name: "admins", DomainID: acme.ID}).Extract()
		mustOK(t, "group", err)
		mustOK(t, "admin grant", roles.Assign(ctx, e.adminC, adminRole.ID, roles.AssignOpts{GroupID: admins.ID, ProjectID: e.proj.ID}).ExtractErr())
		if err := users.AddToGroup(ctx, dc, admins.ID, eve.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Errorf("join a group granted admin = %v, want 403", err)
		}
	})

	t.Run("a domain member is no domain admin", func(t *testing.T) {
		mustOK(t, "member on acme", roles.Assign(ctx, e.adminC, e.memberRole.ID, roles.AssignOpts{UserID: eve.ID, DomainID: acme.ID}).ExtractErr())
		tok, _, err := e.scopedToken(t, "eve", acme.ID, "eve-pw", tokens.Scope{DomainID: acme.ID})
		mustOK(t, "eve's domain token", err)
		for _, path := range []string{"/v3/users", "/v3/projects", "/v3/role_assignments"} {
			if code, _ := e.call(t, http.MethodGet, path, tok, nil); code != http.StatusForbidden {
				t.Errorf("GET %s = %d, want 403", path, code)
			}
		}
	})

	t.Run("it deletes what is its", func(t *testing.T) {
		mustOK(t, "delete subproject", projects.Delete(ctx, dc, shopDev.ID).ExtractErr())
		mustOK(t, "delete group", groups.Delete(ctx, dc, staff.ID).ExtractErr())
		mustOK(t, "delete user", users.Delete(ctx, dc, eve.ID).ExtractErr())
	})
}

// TestDomainAdminCLI: the openstack CLI logged in with a domain-scoped
// admin token (OS_DOMAIN_NAME) creates users and projects in its domain
// and grants member there; another domain's objects, and the admin role,
// are refused.
func TestDomainAdminCLI(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, registry.NewMemory())
	acme, err := e.dir.CreateDomain(ctx, identity.Domain{Name: "acme", Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	dana, err := e.dir.CreateUser(ctx, identity.User{Name: "dana", DomainID: acme.ID, Enabled: true}, "dana-pw")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.dir.Grant(ctx, identity.Assignment{UserID: dana.ID, DomainID: acme.ID, RoleID: e.boot.Roles[identity.RoleAdmin].ID}); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, e)
	da := []string{"OS_USERNAME=dana", "OS_PASSWORD=dana-pw", "OS_USER_DOMAIN_NAME=acme", "OS_DOMAIN_NAME=acme"}
	c.runSteps(t, []cliStep{
		{"user create", da, []string{"user", "create", "--password", "fay-pw", "fay", "-f", "value", "-c", "domain_id"}, 0, []string{acme.ID}, ""},
		{"project create", da, []string{"project", "create", "store", "-f", "value", "-c", "domain_id"}, 0, []string{acme.ID}, ""},
		{"role add member", da, []string{"role", "add", "--project", "store", "--user", "fay", "member"}, 0, nil, ""},
		{"fay's token", []string{"OS_USERNAME=fay", "OS_PASSWORD=fay-pw", "OS_USER_DOMAIN_NAME=acme", "OS_PROJECT_NAME=store", "OS_PROJECT_DOMAIN_NAME=acme"},
			[]string{"token", "issue", "-f", "value", "-c", "project_id"}, 0, nil, ""},
		{"user list is acme's", da, []string{"user", "list", "-f", "value", "-c", "Name"}, 0, []string{"dana", "fay"}, "admin"},
		{"project list is acme's", da, []string{"project", "list", "-f", "value", "-c", "Name"}, 0, []string{"store"}, "admin"},
		{"role assignment list", da, []string{"role", "assignment", "list", "--names", "-f", "value", "-c", "Role", "-c", "User"}, 0, []string{"member fay@acme"}, "admin@Default"},
		{"role add admin refused", da, []string{"role", "add", "--project", "store", "--user", "fay", "admin"}, 1, []string{"403"}, ""},
		{"a Default-domain user refused", da, []string{"user", "create", "--domain", identity.DefaultDomainID, "--password", "x-pw", "x"}, 1, []string{"403"}, ""},
		{"a domain refused", da, []string{"domain", "create", "other"}, 1, []string{"403"}, ""},
		{"user delete", da, []string{"user", "delete", "fay"}, 0, nil, ""},
	})
}
