// Package oscli finds the real openstack CLI for tests that drive it
// against the broker, installing it on first use with the project's own
// script (CI machines start without it).
package oscli

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	once sync.Once
	path string
	err  error
)

// Path returns the openstack CLI's path, running
// scripts/install-openstack-cli.sh once per test binary. A CLI that
// cannot be had fails the test: the tests that need it are not optional.
func Path(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		_, here, _, _ := runtime.Caller(0)
		script := filepath.Join(filepath.Dir(here), "..", "..", "scripts", "install-openstack-cli.sh")
		out, runErr := exec.Command("bash", script).Output()
		lines := strings.Fields(string(out))
		if runErr != nil || len(lines) == 0 {
			err = runErr
			return
		}
		path = lines[len(lines)-1]
	})
	if err != nil || path == "" {
		t.Fatalf("the openstack CLI cannot be had: %v", err)
	}
	return path
}

// Run runs the CLI at path with env as its whole environment and returns
// its combined output and exit code (a CLI that cannot start fails t).
func Run(t testing.TB, path string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env = env
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
