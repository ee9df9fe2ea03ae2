package oscli

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"
)

var addresses = regexp.MustCompile(`0x[0-9a-f]{6,}`)

// TestZygoteMatchesExec runs commands both ways, through the zygote and
// as their own processes, and wants the same output and exit status: the
// zygote may only save time. The cases cover what a command takes from
// its caller (arguments, environment, HOME's clouds.yaml, the working
// directory) and its failures (a usage error, an unreachable cloud).
func TestZygoteMatchesExec(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	if os.Getenv("CLOUDMUX_OSCLI") == "exec" {
		t.Skip("CLOUDMUX_OSCLI=exec: there is no zygote to compare")
	}
	cli := Path(t)
	home, work := t.TempDir(), t.TempDir()
	clouds := "clouds:\n  fromhome:\n    auth:\n      auth_url: http://127.0.0.1:9/v3\n      username: carol\n      password: secret\n      project_name: gamma\n    region_name: RegionTwo\n"
	if err := os.MkdirAll(filepath.Join(home, ".config", "openstack"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".config", "openstack", "clouds.yaml"), []byte(clouds), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(work, "clouds.yaml"), []byte(clouds), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	openrc := append(base[:2:2], "OS_AUTH_URL=http://127.0.0.1:9/v3", "OS_USERNAME=alice", "OS_PASSWORD=pw",
		"OS_PROJECT_NAME=alpha", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default", "OS_REGION_NAME=RegionOne")
	tests := []struct {
		name string
		dir  string
		env  []string
		args []string
	}{
		{name: "version", env: base, args: []string{"--version"}},
		{name: "help of a command", env: base, args: []string{"help", "server", "list"}},
		{name: "usage error", env: base, args: []string{"server", "list", "--no-such-flag"}},
		{name: "unknown command", env: base, args: []string{"no-such-command"}},
		{name: "openrc environment", env: openrc, args: []string{"configuration", "show", "-f", "json"}},
		{name: "clouds.yaml in HOME", env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "OS_CLOUD=fromhome"},
			args: []string{"configuration", "show", "-f", "json"}},
		{name: "clouds.yaml in the working directory", dir: work, env: append(base[:2:2], "OS_CLOUD=fromhome"),
			args: []string{"configuration", "show", "-f", "json"}},
		{name: "unreachable cloud", env: openrc, args: []string{"server", "list"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := zygoteFor(t, cli)
			if z == nil {
				t.Fatalf("no zygote for %s", cli)
			}
			start := time.Now()
			zout, zcode, err := z.run(tc.dir, tc.env, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			forked := time.Since(start)
			start = time.Now()
			out, code := execRun(t, cli, tc.dir, tc.env, tc.args...)
			t.Logf("through the zygote %v, as its own process %v", forked.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			// Python prints objects with their addresses, which differ
			// between any two processes.
			zout, out = addresses.ReplaceAllString(zout, "0x…"), addresses.ReplaceAllString(out, "0x…")
			if zout != out || zcode != code {
				t.Errorf("through the zygote: exit %d\n%s\nas its own process: exit %d\n%s", zcode, zout, code, out)
			}
			if tc.name == "clouds.yaml in HOME" && code != 0 {
				t.Errorf("the HOME clouds.yaml case failed both ways (exit %d): %s", code, out)
			}
		})
	}
}
