package main

import (
	"os"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/internal/oscli"
)

// osc runs the openstack CLI with the environment an openrc would set,
// plus overrides.
func osc(t *testing.T, b *devBroker, env map[string]string, args ...string) (string, int) {
	t.Helper()
	vars := map[string]string{
		"OS_AUTH_URL": b.addr + "/v3", "OS_IDENTITY_API_VERSION": "3", "OS_USERNAME": "admin",
		"OS_PASSWORD": testAdminPassword, "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
		"OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": "RegionOne", "OS_INTERFACE": "public",
	}
	for k, v := range env {
		vars[k] = v
	}
	environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for k, v := range vars {
		environ = append(environ, k+"="+v)
	}
	return oscli.Run(t, oscli.Path(t), environ, args...)
}

// TestOpenStackCLIIdentity drives the real openstack CLI against serve -dev
// through the identity flows an admin and a project member use.
func TestOpenStackCLIIdentity(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs the openstack CLI")
	}
	b := startDev(t)
	bob := map[string]string{"OS_USERNAME": "bob", "OS_PASSWORD": "bob-password-1", "OS_PROJECT_NAME": "team-b"}
	steps := []struct {
		name     string
		env      map[string]string
		args     []string
		wantCode int
		want     []string
	}{
		{"token issue", nil, []string{"token", "issue", "-f", "value", "-c", "id"}, 0, []string{"cmx_"}},
		{"catalog list", nil, []string{"catalog", "list", "-f", "value", "-c", "Type"}, 0, []string{"identity", "compute", "volumev3", "cloudmux"}},
		{"project create", nil, []string{"project", "create", "team-b", "-f", "value", "-c", "name"}, 0, []string{"team-b"}},
		{"duplicate project", nil, []string{"project", "create", "team-b"}, 1, []string{"409"}},
		{"user create", nil, []string{"user", "create", "--password", "bob-password-1", "--project", "team-b", "bob", "-f", "value", "-c", "name"}, 0, []string{"bob"}},
		{"role add", nil, []string{"role", "add", "--project", "team-b", "--user", "bob", "member"}, 0, nil},
		{"assignment list", nil, []string{"role", "assignment", "list", "--project", "team-b", "-f", "value"}, 0, []string{"False"}},
		{"assignment list with names", nil, []string{"role", "assignment", "list", "--project", "team-b", "--names", "-f", "value"}, 0, []string{"member bob@Default", "team-b@Default"}},
		{"member token", bob, []string{"token", "issue", "-f", "value", "-c", "project_id"}, 0, nil},
		{"member cannot create projects", bob, []string{"project", "create", "nope"}, 1, []string{"403"}},
		{"wrong password", map[string]string{"OS_PASSWORD": "wrong-password"}, []string{"token", "issue"}, 1, []string{"401"}},
		{"member has no admin project", map[string]string{"OS_USERNAME": "bob", "OS_PASSWORD": "bob-password-1"}, []string{"token", "issue"}, 1, []string{"401"}},
		{"project list", nil, []string{"project", "list", "-f", "value", "-c", "Name"}, 0, []string{"admin", "team-b"}},
		{"flavor list", nil, []string{"flavor", "list", "-f", "value", "-c", "Name"}, 0, []string{"m1.nano", "m1.tiny", "m1.small", "m1.medium"}},
		{"flavor show", nil, []string{"flavor", "show", "m1.small", "-f", "value", "-c", "ram"}, 0, []string{"2048"}},
		{"availability zones are peers", nil, []string{"availability", "zone", "list", "--compute", "-f", "value"}, 0, []string{"local available"}},
		{"volume zones are peers", nil, []string{"availability", "zone", "list", "--volume", "-f", "value"}, 0, []string{"local available"}},
		{"keypair create", nil, []string{"keypair", "create", "k1"}, 0, []string{"BEGIN RSA PRIVATE KEY"}},
		{"keypair list", nil, []string{"keypair", "list", "-f", "value", "-c", "Name"}, 0, []string{"k1"}},
		{"keypairs are per user", bob, []string{"keypair", "list", "-f", "value", "-c", "Name"}, 0, nil},
		{"keypair show hides the private key", nil, []string{"keypair", "show", "k1", "-f", "value", "-c", "private_key"}, 0, []string{"None"}},
		{"keypair delete", nil, []string{"keypair", "delete", "k1"}, 0, nil},
		{"keypair gone", nil, []string{"keypair", "show", "k1"}, 1, []string{"No Keypair found"}},
		{"disable user", nil, []string{"user", "set", "--disable", "bob"}, 0, nil},
		{"disabled user cannot log in", bob, []string{"token", "issue"}, 1, []string{"401"}},
		{"enable user", nil, []string{"user", "set", "--enable", "bob"}, 0, nil},
		{"enabled again", bob, []string{"token", "issue", "-f", "value", "-c", "project_id"}, 0, nil},
		{"disable project", nil, []string{"project", "set", "--disable", "team-b"}, 0, nil},
		{"disabled project refuses tokens", bob, []string{"token", "issue"}, 1, []string{"401"}},
		{"enable project", nil, []string{"project", "set", "--enable", "--description", "the b team", "team-b"}, 0, nil},
		{"project shows the change", nil, []string{"project", "show", "team-b", "-f", "value", "-c", "description"}, 0, []string{"the b team"}},
		{"change password", nil, []string{"user", "set", "--password", "bob-password-2", "bob"}, 0, nil},
		{"old password refused", bob, []string{"token", "issue"}, 1, []string{"401"}},
		{"new password works", map[string]string{"OS_USERNAME": "bob", "OS_PASSWORD": "bob-password-2", "OS_PROJECT_NAME": "team-b"}, []string{"token", "issue", "-f", "value", "-c", "id"}, 0, []string{"cmx_"}},
		{"user delete", nil, []string{"user", "delete", "bob"}, 0, nil},
		{"deleted user cannot log in", map[string]string{"OS_USERNAME": "bob", "OS_PASSWORD": "bob-password-2", "OS_PROJECT_NAME": "team-b"}, []string{"token", "issue"}, 1, []string{"401"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out, code := osc(t, b, st.env, st.args...)
			if code != st.wantCode {
				t.Fatalf("openstack %v: exit %d, want %d\n%s", st.args, code, st.wantCode, out)
			}
			for _, w := range st.want {
				if !strings.Contains(out, w) {
					t.Errorf("openstack %v: output lacks %q:\n%s", st.args, w, out)
				}
			}
		})
	}
}
