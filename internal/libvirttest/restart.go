package libvirttest

import (
	"bytes"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Restarting libvirtd is something one test does to the machine's only
// daemon, while other test binaries (go test runs packages in parallel) may
// be using it. So tests that use the daemon hold a shared lock on
// usersLock for their duration (Ensure and Share take it), and
// RestartDaemon takes it exclusively: it waits for every other binary's
// tests to finish with the daemon, and new ones wait for the restart.

// usersLock is the lock file of the daemon's users.
const usersLock = "/var/lock/cloudmux-libvirtd-users.lock"

// installLock is scripts/install-libvirt.sh's own lock: held while the
// daemon is stopped, so no run of the script starts it meanwhile.
const installLock = "/var/lock/cloudmux-libvirt.lock"

// scriptDaemonArgs are the arguments scripts/install-libvirt.sh starts
// libvirtd with, now and before it listened on loopback TCP.
var scriptDaemonArgs = []string{"-d -l -f " + DaemonConfig, "-d"}

// DaemonConfig is the libvirtd config file scripts/install-libvirt.sh
// writes and starts libvirtd with.
const DaemonConfig = "/etc/libvirt/cloudmux-libvirtd.conf"

// pidFile is where libvirtd, run as root, writes its PID.
const pidFile = "/run/libvirtd.pid"

// restartWait bounds how long RestartDaemon waits for the daemon to itself.
const restartWait = 10 * time.Minute

// The process's one descriptor on usersLock, shared by its tests (a
// process holds one flock per open file; tests in one binary run one at a
// time unless parallel, and all share it).
var (
	shareMu    sync.Mutex
	shareFile  *os.File
	shareCount int
)

// Share holds the daemon-users lock shared until tb ends, so a
// RestartDaemon in another test binary waits for tb. Ensure calls it.
func Share(tb testing.TB) {
	tb.Helper()
	shareMu.Lock()
	defer shareMu.Unlock()
	if shareCount == 0 {
		f, err := lockFile(usersLock, syscall.LOCK_SH)
		if err != nil {
			tb.Fatalf("libvirttest: %v", err)
		}
		shareFile = f
	}
	shareCount++
	tb.Cleanup(func() {
		shareMu.Lock()
		defer shareMu.Unlock()
		if shareCount--; shareCount == 0 {
			_ = shareFile.Close()
			shareFile = nil
		}
	})
}

func lockFile(path string, how int) (*os.File, error) {
	if err := os.MkdirAll("/var/lock", 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), how); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("flock %s: %w", path, err)
	}
	return f, nil
}

// RestartDaemon stops the libvirtd scripts/install-libvirt.sh started
// (a root "libvirtd -d ..." with the script's arguments; any other daemon
// is not the tests' to stop, and the test is skipped), runs whileDown once it has exited, and starts it
// again the same way, with the script, which returns when it answers.
// Guests keep running meanwhile: QEMU processes do not depend on the
// daemon. It first waits (up to 10 minutes) until no other test binary
// uses the daemon.
func RestartDaemon(tb testing.TB, whileDown func()) {
	tb.Helper()
	pid, err := ourDaemon()
	if err != nil {
		tb.Skipf("libvirttest: not restarting libvirtd: %v", err)
	}
	release, err := exclusive()
	if err != nil {
		tb.Fatalf("libvirttest: %v", err)
	}
	defer release()
	install, err := lockFile(installLock, syscall.LOCK_EX)
	if err != nil {
		tb.Fatalf("libvirttest: %v", err)
	}
	tb.Logf("libvirttest: stopping libvirtd (pid %d)", pid)
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		_ = install.Close()
		tb.Fatalf("libvirttest: stopping libvirtd: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = install.Close()
			tb.Fatalf("libvirttest: libvirtd (pid %d) still running a minute after SIGTERM", pid)
		}
		time.Sleep(50 * time.Millisecond) // polling a process's exit
	}
	if whileDown != nil {
		whileDown()
	}
	_ = install.Close() // the script takes it itself
	if _, err := runScript("install-libvirt.sh", installTimeout); err != nil {
		tb.Fatalf("libvirttest: starting libvirtd again: %v", err)
	}
	if err := ping(); err != nil {
		tb.Fatalf("libvirttest: libvirtd after the restart: %v", err)
	}
	tb.Log("libvirttest: libvirtd restarted")
}

// exclusive takes the daemon-users lock exclusively: this process's shared
// hold, if it has one, is converted (and converted back by release). It
// polls rather than blocks, so giving up leaves no request pending.
func exclusive() (release func(), err error) {
	shareMu.Lock()
	f, own := shareFile, false
	if f == nil {
		if f, err = os.OpenFile(usersLock, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
			shareMu.Unlock()
			return nil, err
		}
		own = true
	}
	back := func() {
		defer shareMu.Unlock()
		if own {
			_ = f.Close()
			return
		}
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_SH)
	}
	deadline := time.Now().Add(restartWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return back, nil
		}
		if err != syscall.EWOULDBLOCK || time.Now().After(deadline) {
			back()
			if err == syscall.EWOULDBLOCK {
				return nil, fmt.Errorf("other tests used libvirtd for %s; gave up waiting to restart it", restartWait)
			}
			return nil, fmt.Errorf("flock %s: %w", usersLock, err)
		}
		time.Sleep(100 * time.Millisecond) // polling another process's lock
	}
}

// ourDaemon returns the PID of the libvirtd install-libvirt.sh started: the
// pid file's process, run as "libvirtd -d" by root.
func ourDaemon() (int, error) {
	if os.Getuid() != 0 {
		return 0, fmt.Errorf("not root")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", pidFile, err)
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return 0, fmt.Errorf("libvirtd pid %d: %w", pid, err)
	}
	args := strings.Split(string(bytes.TrimRight(cmd, "\x00")), "\x00")
	if !strings.HasSuffix(args[0], "libvirtd") || !slices.Contains(scriptDaemonArgs, strings.Join(args[1:], " ")) {
		return 0, fmt.Errorf("pid %d runs %q, not a libvirtd the test scripts started", pid, args)
	}
	return pid, nil
}

// alive reports whether pid's process still exists, as a zombie too:
// scripts/install-libvirt.sh's pgrep counts a zombie libvirtd as running
// and would not start another.
func alive(pid int) bool {
	_, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	return err == nil
}
