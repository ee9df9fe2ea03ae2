package identity_test

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestRBACCLI drives the real openstack CLI as a cloud admin through
// domains, groups, roles, implied roles, inherited group grants, effective
// assignment listings and domain- and system-scoped tokens, and as a
// member, who is refused.
func TestRBACCLI(t *testing.T) {
	e := newEnv(t, registry.NewMemory())
	c := newCLI(t, e)
	admin := passwordLogin("admin", adminPassword, "admin")
	ann := []string{"OS_USERNAME=ann", "OS_PASSWORD=pw", "OS_USER_DOMAIN_NAME=acme", "OS_DOMAIN_NAME=acme"}
	annProject := []string{"OS_USERNAME=ann", "OS_PASSWORD=pw", "OS_USER_DOMAIN_NAME=acme", "OS_PROJECT_NAME=web", "OS_PROJECT_DOMAIN_NAME=acme"}
	adminSystem := []string{"OS_USERNAME=admin", "OS_PASSWORD=" + adminPassword, "OS_USER_DOMAIN_NAME=Default", "OS_SYSTEM_SCOPE=all"}
	c.runSteps(t, []cliStep{
		{"domain create", admin, []string{"domain", "create", "acme", "--description", "a customer"}, 0, []string{"acme"}, ""},
		{"domain show", admin, []string{"domain", "show", "acme", "-f", "value", "-c", "enabled"}, 0, []string{"True"}, ""},
		{"group create", admin, []string{"group", "create", "--domain", "acme", "ops"}, 0, []string{"ops"}, ""},
		{"user create", admin, []string{"user", "create", "--domain", "acme", "--password", "pw", "ann"}, 0, []string{"ann"}, ""},
		{"group add user", admin, []string{"group", "add", "user", "--group-domain", "acme", "--user-domain", "acme", "ops", "ann"}, 0, nil, ""},
		{"group contains user", admin, []string{"group", "contains", "user", "--group-domain", "acme", "--user-domain", "acme", "ops", "ann"}, 0, []string{"ann in group ops"}, ""},
		{"role create", admin, []string{"role", "create", "auditor"}, 0, []string{"auditor"}, ""},
		{"domain role create", admin, []string{"role", "create", "--domain", "acme", "acme-reader"}, 0, []string{"acme-reader"}, ""},
		{"implied role create", admin, []string{"implied", "role", "create", "--implied-role", "reader", "auditor"}, 0, []string{"implies", "prior_role"}, ""},
		{"implied role list", admin, []string{"implied", "role", "list", "-f", "value"}, 0, []string{"admin", "member", "auditor"}, ""},
		{"project create", admin, []string{"project", "create", "--domain", "acme", "web"}, 0, []string{"web"}, ""},
		{"role add --group --domain --inherited", admin, []string{"role", "add", "--group", "ops", "--group-domain", "acme", "--domain", "acme", "--inherited", "member"}, 0, nil, ""},
		{"role add --user --domain", admin, []string{"role", "add", "--user", "ann", "--user-domain", "acme", "--domain", "acme", "admin"}, 0, nil, ""},
		{"role assignment list --names --domain", admin, []string{"role", "assignment", "list", "--names", "--domain", "acme", "-f", "value"}, 0, []string{"ann@acme", "ops@acme", "True"}, ""},
		{"role assignment list --effective --names", admin, []string{"role", "assignment", "list", "--effective", "--names", "--user", "ann", "--user-domain", "acme", "-f", "value"}, 0, []string{"member", "reader", "web@acme", "admin"}, ""},
		{"domain-scoped token", ann, []string{"token", "issue", "-f", "value", "-c", "domain_id"}, 0, nil, ""},
		{"inherited project token", annProject, []string{"token", "issue", "-f", "value", "-c", "project_id"}, 0, nil, ""},
		{"role add --system", admin, []string{"role", "add", "--user", "admin", "--user-domain", "Default", "--system", "all", "admin"}, 0, nil, ""},
		{"system-scoped token", adminSystem, []string{"domain", "list", "-f", "value", "-c", "Name"}, 0, []string{"acme", "Default"}, ""},
		{"member refused", annProject, []string{"domain", "list"}, 1, []string{"403"}, ""},
		{"domain delete refused while enabled", admin, []string{"domain", "delete", "acme"}, 1, []string{"403"}, ""},
		{"domain set --disable", admin, []string{"domain", "set", "--disable", "acme"}, 0, nil, ""},
		{"disabled domain's user refused", annProject, []string{"token", "issue"}, 1, []string{"401"}, ""},
		{"domain delete", admin, []string{"domain", "delete", "acme"}, 0, nil, ""},
		{"gone", admin, []string{"domain", "list", "-f", "value", "-c", "Name"}, 0, []string{"Default"}, "acme"},
	})
}

// TestCatalogProjectsPasswordCLI: an admin adds a region, a service the
// broker does not serve and its endpoint with the openstack CLI; a
// member's catalog lists it, and the member cannot change it; the admin
// nests and tags projects; the member changes its own password.
func TestCatalogProjectsPasswordCLI(t *testing.T) {
	e := newEnv(t, registry.NewMemory())
	c := newCLI(t, e)
	admin := passwordLogin("admin", adminPassword, "admin")
	ctx := context.Background()
	proj, err := e.dir.CreateProject(ctx, identity.Project{Name: "team-d", DomainID: identity.DefaultDomainID, Enabled: true})
	mustOK(t, "project", err)
	u, err := e.dir.CreateUser(ctx, identity.User{Name: "dan", DomainID: identity.DefaultDomainID, Enabled: true}, "dan-pw")
	mustOK(t, "user", err)
	mustOK(t, "grant", e.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: proj.ID, RoleID: e.boot.Roles[identity.RoleMember].ID}))
	dan := passwordLogin("dan", "dan-pw", "team-d")
	c.runSteps(t, []cliStep{
		{"region create", admin, []string{"region", "create", "--description", "second site", "RegionTwo"}, 0, []string{"RegionTwo"}, ""},
		{"region list", admin, []string{"region", "list", "-f", "value", "-c", "Region"}, 0, []string{"RegionOne", "RegionTwo"}, ""},
		{"service create", admin, []string{"service", "create", "--name", "designate", "--description", "DNS", "dns"}, 0, []string{"designate"}, ""},
		{"endpoint create", admin, []string{"endpoint", "create", "--region", "RegionTwo", "designate", "public", "http://dns.example.test:9001"}, 0, []string{"http://dns.example.test:9001"}, ""},
		{"endpoint list --service", admin, []string{"endpoint", "list", "--service", "designate", "-f", "value", "-c", "URL"}, 0, []string{"http://dns.example.test:9001"}, ""},
		{"service list", dan, []string{"service", "list", "-f", "value", "-c", "Name"}, 0, []string{"nova", "designate", "keystone"}, ""},
		{"catalog list", dan, []string{"catalog", "list", "-f", "value", "-c", "Name"}, 0, []string{"designate", "nova"}, ""},
		{"member cannot create", dan, []string{"service", "create", "--name", "x", "x"}, 1, []string{"403"}, ""},
		{"service delete", admin, []string{"service", "delete", "designate"}, 0, nil, ""},
		{"endpoints go with it", admin, []string{"endpoint", "list", "-f", "value", "-c", "URL"}, 0, []string{"/compute/v2.1"}, "dns.example.test"},
		{"project create --parent --tag", admin, []string{"project", "create", "--parent", "team-d", "--tag", "web", "--tag", "eu", "team-d-web"}, 0, []string{"team-d-web"}, ""},
		{"project list --tags", admin, []string{"project", "list", "--tags", "web,eu", "-f", "value", "-c", "Name"}, 0, []string{"team-d-web"}, "team-d\n"},
		{"project show --children", admin, []string{"project", "show", "--children", "team-d", "-f", "json"}, 0, []string{`"subtree": {`, `": null`}, ""},
		{"project set --tag", admin, []string{"project", "set", "--tag", "prod", "team-d-web"}, 0, nil, ""},
		{"project show tags", admin, []string{"project", "show", "team-d-web", "-f", "value", "-c", "tags"}, 0, []string{"prod"}, ""},
		{"a parent is not deleted", admin, []string{"project", "delete", "team-d"}, 1, []string{"403"}, ""},
		{"credential create", admin, []string{"credential", "create", "--type", "totp", "dan", "JBSWY3DPEHPK3PXP"}, 0, []string{"totp", "JBSWY3DPEHPK3PXP"}, ""},
		{"credential create ec2", dan, []string{"credential", "create", "--type", "ec2", "--project", proj.ID, u.ID, `{"access": "AKIADAN", "secret": "s"}`}, 0, []string{"AKIADAN"}, ""},
		{"credential list", dan, []string{"credential", "list", "-f", "value", "-c", "Type"}, 0, []string{"totp", "ec2"}, ""},
		{"ec2 credentials list", dan, []string{"ec2", "credentials", "list", "-f", "value", "-c", "Access"}, 0, []string{"AKIADAN"}, ""},
		{"trust create", admin, []string{"trust", "create", "--project", "admin", "--role", "reader", "--impersonate", "admin", "dan", "-f", "value", "-c", "trustee_user_id"}, 0, []string{u.ID}, ""},
		{"trust list", admin, []string{"trust", "list", "-f", "value", "-c", "Trustee User ID"}, 0, []string{u.ID}, ""},
		{"user password set, wrong original", dan, []string{"user", "password", "set", "--original-password", "nope", "--password", "dan-pw-2"}, 1, []string{"401"}, ""},
		{"user password set", dan, []string{"user", "password", "set", "--original-password", "dan-pw", "--password", "dan-pw-2"}, 0, nil, ""},
		{"the old password is refused", dan, []string{"token", "issue"}, 1, []string{"401"}, ""},
		{"the new one logs in", passwordLogin("dan", "dan-pw-2", "team-d"), []string{"token", "issue", "-f", "value", "-c", "user_id"}, 0, []string{u.ID}, ""},
	})
}
