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

// TestAWSZygoteMatchesExec is TestZygoteMatchesExec for /usr/bin/aws,
// whose stdout and stderr are compared apart.
func TestAWSZygoteMatchesExec(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the aws CLI")
	}
	if os.Getenv("CLOUDMUX_OSCLI") == "exec" {
		t.Skip("CLOUDMUX_OSCLI=exec: there is no zygote to compare")
	}
	const aws = "/usr/bin/aws"
	if _, err := os.Stat(aws); err != nil {
		if os.Getenv("CLOUDMUX_REQUIRE_AWSCLI") == "1" {
			t.Fatalf("%s is missing and CLOUDMUX_REQUIRE_AWSCLI=1: run scripts/install-awscli.sh", aws)
		}
		t.Skipf("%s is not installed (scripts/install-awscli.sh)", aws)
	}
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "config"), []byte("[default]\nregion = eu-home-1\noutput = text\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "LANG=C.UTF-8", "AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
		"AWS_SECRET_ACCESS_KEY=secret", "AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"), "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1"}
	tests := []struct {
		name string
		args []string
	}{
		{name: "version", args: []string{"--version"}},
		{name: "config file read", args: []string{"configure", "list"}},
		{name: "usage error", args: []string{"ec2", "no-such-operation"}},
		{name: "bad parameter", args: []string{"ec2", "describe-instances", "--max-results", "many"}},
		{name: "unreachable endpoint", args: []string{"--endpoint-url", "http://127.0.0.1:9", "ec2", "describe-regions"}},
	}
	// What awscli computed from HOME when the zygote imported it (its
	// history database, caches) is computed again from each command's:
	// a command recorded under one HOME is not in another's history.
	historyOn := filepath.Join(home, "history-config")
	if err := os.WriteFile(historyOn, []byte("[default]\nregion = eu-home-1\ncli_history = enabled\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withHome := func(h string) []string {
		out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + h, "LANG=C.UTF-8", "AWS_ACCESS_KEY_ID=AKIDEXAMPLE",
			"AWS_SECRET_ACCESS_KEY=secret", "AWS_CONFIG_FILE=" + historyOn, "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1"}
		return out
	}
	t.Run("history of another HOME", func(t *testing.T) {
		z := zygoteFor(t, aws)
		if z == nil {
			t.Fatalf("no zygote for %s", aws)
		}
		if _, _, _, err := z.runSplit("", withHome(t.TempDir()), []string{"--endpoint-url", "http://127.0.0.1:9", "ec2", "describe-regions"}, true); err != nil {
			t.Fatal(err)
		}
		other := withHome(t.TempDir())
		zout, zerr, zcode, err := z.runSplit("", other, []string{"history", "list"}, true)
		if err != nil {
			t.Fatal(err)
		}
		out, errOut, code := execSplit(t, aws, other, "history", "list")
		if zout != out || zerr != errOut || zcode != code {
			t.Errorf("through the zygote: exit %d\nstdout:\n%s\nstderr:\n%s\nas its own process: exit %d\nstdout:\n%s\nstderr:\n%s",
				zcode, zout, zerr, code, out, errOut)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := zygoteFor(t, aws)
			if z == nil {
				t.Fatalf("no zygote for %s", aws)
			}
			start := time.Now()
			zout, zerr, zcode, err := z.runSplit("", env, tc.args, true)
			if err != nil {
				t.Fatal(err)
			}
			forked := time.Since(start)
			start = time.Now()
			out, errOut, code := execSplit(t, aws, env, tc.args...)
			t.Logf("through the zygote %v, as its own process %v", forked.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
			zerr, errOut = addresses.ReplaceAllString(zerr, "0x…"), addresses.ReplaceAllString(errOut, "0x…")
			if zout != out || zerr != errOut || zcode != code {
				t.Errorf("through the zygote: exit %d\nstdout:\n%s\nstderr:\n%s\nas its own process: exit %d\nstdout:\n%s\nstderr:\n%s",
					zcode, zout, zerr, code, out, errOut)
			}
		})
	}
}

// TestSwiftZygoteMatchesExec is TestZygoteMatchesExec for Debian's swift
// CLI (python3-swiftclient), where installed.
func TestSwiftZygoteMatchesExec(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the swift CLI")
	}
	if os.Getenv("CLOUDMUX_OSCLI") == "exec" {
		t.Skip("CLOUDMUX_OSCLI=exec: there is no zygote to compare")
	}
	const swift = "/usr/bin/swift"
	if _, err := os.Stat(swift); err != nil {
		t.Skipf("%s is not installed (python3-swiftclient)", swift)
	}
	work := t.TempDir()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	// No retries: swift backs off for a minute against a closed port.
	storage := []string{"--retries", "0", "--os-auth-token", "tok", "--os-storage-url", "http://127.0.0.1:9/v1/AUTH_x"}
	tests := []struct {
		name string
		args []string
	}{
		{name: "version", args: []string{"--version"}},
		{name: "usage error", args: []string{"no-such-command"}},
		{name: "no credentials", args: []string{"list"}},
		{name: "unreachable storage", args: append(storage, "list")},
		{name: "upload of a missing file", args: append(storage, "upload", "c", "missing.bin")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			z := zygoteFor(t, swift)
			if z == nil {
				t.Fatalf("no zygote for %s", swift)
			}
			// Apart: swift prints from a thread of its own, so how its
			// stdout and stderr interleave differs from run to run.
			zout, zerr, zcode, err := z.runSplit(work, env, tc.args, true)
			if err != nil {
				t.Fatal(err)
			}
			out, errOut, code := execSplitIn(t, swift, work, env, tc.args...)
			zerr, errOut = addresses.ReplaceAllString(zerr, "0x…"), addresses.ReplaceAllString(errOut, "0x…")
			if zout != out || zerr != errOut || zcode != code {
				t.Errorf("through the zygote: exit %d\nstdout:\n%s\nstderr:\n%s\nas its own process: exit %d\nstdout:\n%s\nstderr:\n%s",
					zcode, zout, zerr, code, out, errOut)
			}
		})
	}
}
