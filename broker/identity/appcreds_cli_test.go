package identity_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// TestApplicationCredentialsCLI drives the real openstack CLI: a member
// makes an application credential with a password login, then the CLI
// authenticates with the credential alone (v3applicationcredential), as
// a CI job or another cloudmux broker would.
func TestApplicationCredentialsCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs the openstack CLI")
	}
	ctx := context.Background()
	e := newEnv(t, registry.NewMemory())
	proj, err := e.dir.CreateProject(ctx, identity.Project{Name: "team-c", DomainID: identity.DefaultDomainID, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	carol, err := e.dir.CreateUser(ctx, identity.User{Name: "carol", DomainID: identity.DefaultDomainID, Enabled: true}, "carol-password")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.dir.Grant(ctx, identity.Assignment{UserID: carol.ID, ProjectID: proj.ID, RoleID: e.boot.Roles[identity.RoleMember].ID}); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t, e)
	carolLogin := passwordLogin("carol", "carol-password", "team-c")
	out, code := c.run(t, carolLogin, "application", "credential", "create", "ci-cred", "--description", "for CI", "-f", "json")
	if code != 0 {
		t.Fatalf("application credential create: exit %d\n%s", code, out)
	}
	var cred struct {
		ID, Secret, Roles string
		ProjectID         string `json:"project_id"`
	}
	if err := json.Unmarshal([]byte(out), &cred); err != nil || cred.ID == "" || cred.Secret == "" || cred.ProjectID != proj.ID || !strings.Contains(cred.Roles, "member") {
		t.Fatalf("application credential create printed %s (%v)", out, err)
	}
	byID := []string{"--os-auth-type", "v3applicationcredential", "--os-application-credential-id", cred.ID, "--os-application-credential-secret", cred.Secret}
	byName := []string{"--os-auth-type", "v3applicationcredential", "--os-application-credential-name", "ci-cred",
		"--os-username", "carol", "--os-user-domain-name", "Default", "--os-application-credential-secret", cred.Secret}
	wrong := []string{"--os-auth-type", "v3applicationcredential", "--os-application-credential-id", cred.ID, "--os-application-credential-secret", "wrong-secret"}
	with := func(auth []string, args ...string) []string { return append(append([]string{}, auth...), args...) }

	c.runSteps(t, []cliStep{
		{"list", carolLogin, []string{"application", "credential", "list", "-f", "value", "-c", "Name"}, 0, []string{"ci-cred"}, ""},
		{"show hides the secret", carolLogin, []string{"application", "credential", "show", "ci-cred", "-f", "json"}, 0, []string{`"description": "for CI"`}, `"secret"`},
		{"an expiry, as the CLI writes it", carolLogin, []string{"application", "credential", "create", "--expiration", "2099-01-31T12:00:00", "dated", "-f", "value", "-c", "expires_at"}, 0, []string{"2099-01-31T12:00:00.000000"}, ""},
		{"a role carol lacks", carolLogin, []string{"application", "credential", "create", "--role", "admin", "too-much"}, 1, []string{"400"}, ""},
		{"token issue by id", nil, with(byID, "token", "issue", "-f", "value", "-c", "project_id"), 0, []string{proj.ID}, ""},
		{"token issue by name", nil, with(byName, "token", "issue", "-f", "value", "-c", "user_id"), 0, []string{carol.ID}, ""},
		{"wrong secret", nil, with(wrong, "token", "issue"), 1, []string{"401"}, ""},
		{"restricted cannot create another", nil, with(byID, "application", "credential", "create", "child"), 1, []string{"403"}, ""},
		{"delete", carolLogin, []string{"application", "credential", "delete", "ci-cred"}, 0, nil, ""},
		{"deleted credential refused", nil, with(byID, "token", "issue"), 1, []string{"401"}, ""},
		{"gone from the list", carolLogin, []string{"application", "credential", "list", "-f", "value", "-c", "Name"}, 0, nil, "ci-cred"},
	})
}

// TestAccessRulesCLI drives access rules with the real openstack CLI: a
// member makes a credential limited to listing her projects, the CLI
// logged in with it can do that and nothing else; she lists, shows and
// (once unused) deletes her rules; another member cannot list them, the
// admin can.
func TestAccessRulesCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs the openstack CLI")
	}
	ctx := context.Background()
	e := newEnv(t, registry.NewMemory())
	proj, err := e.dir.CreateProject(ctx, identity.Project{Name: "team-r", DomainID: identity.DefaultDomainID, Enabled: true})
	if err != nil {
		t.Fatal(err)
	}
	users := map[string]identity.User{}
	for _, name := range []string{"rita", "sam"} {
		u, err := e.dir.CreateUser(ctx, identity.User{Name: name, DomainID: identity.DefaultDomainID, Enabled: true}, name+"-password")
		if err != nil {
			t.Fatal(err)
		}
		if err := e.dir.Grant(ctx, identity.Assignment{UserID: u.ID, ProjectID: proj.ID, RoleID: e.boot.Roles[identity.RoleMember].ID}); err != nil {
			t.Fatal(err)
		}
		users[name] = u
	}
	c := newCLI(t, e)
	rita, sam := passwordLogin("rita", "rita-password", "team-r"), passwordLogin("sam", "sam-password", "team-r")
	admin := passwordLogin("admin", adminPassword, "admin")
	out, code := c.run(t, rita, "application", "credential", "create", "lister", "-f", "json",
		"--access-rules", `[{"service": "identity", "method": "GET", "path": "/v3/users/*/projects"}]`)
	if code != 0 {
		t.Fatalf("application credential create --access-rules: exit %d\n%s", code, out)
	}
	var cred struct {
		ID, Secret  string
		AccessRules any `json:"access_rules"`
	}
	if err := json.Unmarshal([]byte(out), &cred); err != nil || cred.ID == "" || !strings.Contains(out, "/v3/users/*/projects") {
		t.Fatalf("created %s (%v)", out, err)
	}
	rules, err := e.dir.AccessRulesOf(ctx, users["rita"].ID)
	if err != nil || len(rules) != 1 {
		t.Fatalf("rita's rules = %+v, %v", rules, err)
	}
	ruleID := rules[0].ID
	withCred := func(args ...string) []string {
		return append([]string{"--os-auth-type", "v3applicationcredential", "--os-application-credential-id", cred.ID,
			"--os-application-credential-secret", cred.Secret}, args...)
	}
	c.runSteps(t, []cliStep{
		{"the rule allows her projects", nil, withCred("project", "list", "--my-projects", "-f", "value", "-c", "Name"), 0, []string{"team-r"}, ""},
		{"and nothing else", nil, withCred("user", "show", users["rita"].ID), 1, []string{"401"}, ""},
		{"not even the credentials", nil, withCred("application", "credential", "list"), 1, []string{"401"}, ""},
		{"list", rita, []string{"access", "rule", "list", "-f", "value", "-c", "ID", "-c", "Path"}, 0, []string{ruleID, "/v3/users/*/projects"}, ""},
		{"show", rita, []string{"access", "rule", "show", ruleID, "-f", "value", "-c", "method"}, 0, []string{"GET"}, ""},
		{"another member cannot list them", sam, []string{"access", "rule", "list", "--user", users["rita"].ID}, 1, []string{"403"}, ""},
		{"another member does not see them as theirs", sam, []string{"access", "rule", "show", ruleID}, 1, nil, "/v3/users"},
		{"the admin lists them", admin, []string{"access", "rule", "list", "--user", "rita", "-f", "value", "-c", "ID"}, 0, []string{ruleID}, ""},
		{"in use, it stays", rita, []string{"access", "rule", "delete", ruleID}, 1, nil, ""},
		{"reused by id", rita, []string{"application", "credential", "create", "second", "-f", "json", "--access-rules", `[{"id": "` + ruleID + `"}]`}, 0, []string{ruleID}, ""},
		{"credentials deleted", rita, []string{"application", "credential", "delete", "lister", "second"}, 0, nil, ""},
		{"unused, it goes", rita, []string{"access", "rule", "delete", ruleID}, 0, nil, ""},
		{"gone", rita, []string{"access", "rule", "list", "-f", "value", "-c", "ID"}, 0, nil, ruleID},
	})
}
