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
