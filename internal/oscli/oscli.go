// Package oscli finds the real openstack CLI for tests that drive it
// against the broker, installing it on first use with the project's own
// script (CI machines start without it), and runs its commands.
//
// Commands run through a zygote (zygote.py): one Python process per test
// binary and CLI that imports the CLI once and forks a child per command,
// which runs the CLI's own entry point with the command's arguments,
// environment and directory. An openstack command costs ~0.3 s of CPU
// instead of ~2 s of imports, which is most of the CLI-driven packages'
// time on a 2-core machine; /usr/bin/aws (RunSplit) saves its ~1 s of
// imports the same way. CLOUDMUX_OSCLI=exec runs every command as its own
// process instead (the zygote is also left for exec when it cannot
// start); TestZygoteMatchesExec holds the two to the same output.
// CLOUDMUX_OSCLI_TRACE=file appends each command's duration there.
package oscli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
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
	return RunIn(t, path, "", env, args...)
}

// RunIn is Run in directory dir ("" is the test binary's own).
func RunIn(t testing.TB, path, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	defer trace(time.Now(), args)
	if z := zygoteFor(t, path); z != nil {
		out, code, zerr := z.run(dir, env, args)
		if zerr == nil {
			return out, code
		}
		t.Fatalf("openstack %s through the zygote: %v", strings.Join(args, " "), zerr)
	}
	return execRun(t, path, dir, env, args...)
}

// RunSplit runs a CLI (the openstack CLI, or /usr/bin/aws: both go through
// a zygote) with env as its whole environment, and returns its stdout,
// its stderr and its exit code.
func RunSplit(t testing.TB, path string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	defer trace(time.Now(), args)
	if z := zygoteFor(t, path); z != nil {
		stdout, stderr, code, zerr := z.runSplit("", env, args, true)
		if zerr == nil {
			return stdout, stderr, code
		}
		t.Fatalf("%s %s through the zygote: %v", filepath.Base(path), strings.Join(args, " "), zerr)
	}
	return execSplit(t, path, env, args...)
}

// execSplit runs a CLI as its own process, its stdout and stderr apart.
func execSplit(t testing.TB, path string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return execSplitIn(t, path, "", env, args...)
}

// execSplitIn is execSplit in directory dir.
func execSplitIn(t testing.TB, path, dir string, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env, cmd.Dir = env, dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	if ee, ok := runErr.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if runErr != nil {
		t.Fatal(runErr)
	}
	return out.String(), errb.String(), 0
}

// trace appends a command's duration and arguments to the file named by
// CLOUDMUX_OSCLI_TRACE, if set: where a CLI-driven package spends its time.
func trace(start time.Time, args []string) {
	file := os.Getenv("CLOUDMUX_OSCLI_TRACE")
	if file == "" {
		return
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "%.3f %s\n", time.Since(start).Seconds(), strings.Join(args, " "))
}

// execRun runs the CLI as its own process.
func execRun(t testing.TB, path, dir string, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(path, args...)
	cmd.Env, cmd.Dir = env, dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	if ee, ok := runErr.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if runErr != nil {
		t.Fatal(runErr)
	}
	return out.String(), 0
}
