package identity_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/oscli"
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
	bin := oscli.Path(t)
	home := t.TempDir()
	// osc runs the CLI; password logs in as carol on team-c, otherwise
	// args carry the application credential and no project or user is
	// set (Keystone refuses a scope with one).
	osc := func(t *testing.T, password bool, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home,
			"OS_AUTH_URL=" + e.srv.URL + "/v3", "OS_IDENTITY_API_VERSION=3", "OS_REGION_NAME=" + identity.Region, "OS_INTERFACE=public"}
		if password {
			cmd.Env = append(cmd.Env, "OS_USERNAME=carol", "OS_PASSWORD=carol-password", "OS_PROJECT_NAME=team-c",
				"OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default")
		}
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return out.String(), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return out.String(), 0
	}

	out, code := osc(t, true, "application", "credential", "create", "ci-cred", "--description", "for CI", "-f", "json")
	if code != 0 {
		t.Fatalf("application credential create: exit %d\n%s", code, out)
	}
	var cred struct {
		ID, Secret, Roles string
		ProjectID         string `json:"project_id"`
	}
	if err := json.Unmarshal([]byte(out), &cred); err != nil || cred.ID == "" || cred.Secret == "" || cred.ProjectID != proj.ID || cred.Roles != "member" {
		t.Fatalf("application credential create printed %s (%v)", out, err)
	}
	byID := []string{"--os-auth-type", "v3applicationcredential", "--os-application-credential-id", cred.ID, "--os-application-credential-secret", cred.Secret}
	byName := []string{"--os-auth-type", "v3applicationcredential", "--os-application-credential-name", "ci-cred",
		"--os-username", "carol", "--os-user-domain-name", "Default", "--os-application-credential-secret", cred.Secret}
	wrong := []string{"--os-auth-type", "v3applicationcredential", "--os-application-credential-id", cred.ID, "--os-application-credential-secret", "wrong-secret"}
	with := func(auth []string, args ...string) []string { return append(append([]string{}, auth...), args...) }

	steps := []struct {
		name     string
		password bool
		args     []string
		wantCode int
		want     []string
		notWant  string
	}{
		{"list", true, []string{"application", "credential", "list", "-f", "value", "-c", "Name"}, 0, []string{"ci-cred"}, ""},
		{"show hides the secret", true, []string{"application", "credential", "show", "ci-cred", "-f", "json"}, 0, []string{`"description": "for CI"`}, `"secret"`},
		{"an expiry, as the CLI writes it", true, []string{"application", "credential", "create", "--expiration", "2099-01-31T12:00:00", "dated", "-f", "value", "-c", "expires_at"}, 0, []string{"2099-01-31T12:00:00.000000"}, ""},
		{"a role carol lacks", true, []string{"application", "credential", "create", "--role", "admin", "too-much"}, 1, []string{"400"}, ""},
		{"token issue by id", false, with(byID, "token", "issue", "-f", "value", "-c", "project_id"), 0, []string{proj.ID}, ""},
		{"token issue by name", false, with(byName, "token", "issue", "-f", "value", "-c", "user_id"), 0, []string{carol.ID}, ""},
		{"wrong secret", false, with(wrong, "token", "issue"), 1, []string{"401"}, ""},
		{"restricted cannot create another", false, with(byID, "application", "credential", "create", "child"), 1, []string{"403"}, ""},
		{"delete", true, []string{"application", "credential", "delete", "ci-cred"}, 0, nil, ""},
		{"deleted credential refused", false, with(byID, "token", "issue"), 1, []string{"401"}, ""},
		{"gone from the list", true, []string{"application", "credential", "list", "-f", "value", "-c", "Name"}, 0, nil, "ci-cred"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out, code := osc(t, st.password, st.args...)
			if code != st.wantCode {
				t.Fatalf("openstack %v: exit %d, want %d\n%s", st.args, code, st.wantCode, out)
			}
			for _, w := range st.want {
				if !strings.Contains(out, w) {
					t.Errorf("openstack %v: output lacks %q:\n%s", st.args, w, out)
				}
			}
			if st.notWant != "" && strings.Contains(out, st.notWant) {
				t.Errorf("openstack %v: output has %q:\n%s", st.args, st.notWant, out)
			}
		})
	}
}
