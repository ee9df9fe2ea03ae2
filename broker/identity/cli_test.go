package identity_test

import (
	"os"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/oscli"
)

// cli runs the real openstack CLI against a broker, with a HOME of its
// own (the CLI caches there) and the given OS_* login.
type cli struct {
	bin, home, authURL string
}

func newCLI(t *testing.T, e *env) *cli {
	t.Helper()
	if testing.Short() {
		t.Skip("installs and runs the openstack CLI")
	}
	return &cli{bin: oscli.Path(t), home: t.TempDir(), authURL: e.srv.URL + "/v3"}
}

// passwordLogin is the OS_* environment of a password login on a
// default-domain project.
func passwordLogin(user, password, project string) []string {
	return []string{"OS_USERNAME=" + user, "OS_PASSWORD=" + password, "OS_PROJECT_NAME=" + project,
		"OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default"}
}

// run runs the CLI with login (OS_* variables, or none when the args
// carry the credentials) and returns its output and exit code.
func (c *cli) run(t *testing.T, login []string, args ...string) (string, int) {
	t.Helper()
	env := append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.home,
		"OS_AUTH_URL=" + c.authURL, "OS_IDENTITY_API_VERSION=3", "OS_REGION_NAME=" + identity.Region, "OS_INTERFACE=public"}, login...)
	return oscli.Run(t, c.bin, env, args...)
}

// cliStep is one CLI invocation and what its output must (not) hold.
type cliStep struct {
	name     string
	login    []string
	args     []string
	wantCode int
	want     []string
	notWant  string
}

// runSteps runs steps in order, each a subtest.
func (c *cli) runSteps(t *testing.T, steps []cliStep) {
	t.Helper()
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out, code := c.run(t, st.login, st.args...)
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
