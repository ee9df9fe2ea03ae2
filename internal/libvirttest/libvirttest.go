package libvirttest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// Connection URIs.
const (
	// SystemURI is the local libvirtd's QEMU driver: real VMs. Guests must be
	// <domain type='qemu'> (TCG): /dev/kvm exists on CI machines but KVM
	// guests do not boot there.
	SystemURI = "qemu:///system"
	// TestURI is libvirt's test driver. Opened through the daemon's socket
	// (what go-libvirt does: ConnectOpen("test:///default") over
	// SocketPath) it is a real-protocol, in-memory hypervisor whose state is
	// shared by every connection and reset when the last one closes: give
	// what a test creates unique names. `virsh -c test:///default` would run
	// the driver inside virsh instead; TestURIViaDaemon makes virsh go
	// through the daemon.
	TestURI = "test:///default"
	// TestURIViaDaemon is TestURI reached through libvirtd's unix socket,
	// for virsh and other libvirt-C clients.
	TestURIViaDaemon = "test+unix:///default"
	// SocketPath is libvirtd's read-write unix socket.
	SocketPath = "/var/run/libvirt/libvirt-sock"
)

// The guest image's contract (see scripts/guest/init).
const (
	// ConfigDriveLabel is the ISO 9660 volume label the guest looks for (it
	// compares case-insensitively). The ISO goes on an extra read-only
	// virtio disk.
	ConfigDriveLabel = "config-2"
	// ConsolePrefix starts every line the guest's /init prints.
	ConsolePrefix = "cloudmux-guest: "
	// ConsoleKernelLine is printed by the kernel itself, first thing.
	ConsoleKernelLine = "Linux version "
	// ConsoleConfigDriveFound is printed once the config drive is mounted.
	ConsoleConfigDriveFound = "cloudmux-guest: config drive found"
	// ConsoleNoConfigDrive is printed when none was found (after ~10 s).
	ConsoleNoConfigDrive = "cloudmux-guest: no config drive"
	// ConsoleNetPrefix starts the line for each address network_data.json
	// gave a NIC: "cloudmux-guest: net IFACE MAC ADDR/PREFIX".
	ConsoleNetPrefix = "cloudmux-guest: net "
	// ConsoleDone is printed after the user data ran; the guest then idles.
	ConsoleDone = "cloudmux-guest: done"
	// GuestImageEnv names a prebuilt guest image, skipping the build script.
	GuestImageEnv = "CLOUDMUX_GUEST_IMAGE"
)

// Timeouts. Generous: CI machines are slow and share 2 cores.
const (
	installTimeout = 10 * time.Minute // apt-get install and first daemon start
	buildTimeout   = 10 * time.Minute // kernel download and image build
)

var (
	ensureOnce sync.Once
	ensureErr  error

	imageOnce sync.Once
	imagePath string
	imageErr  error
)

// Ensure makes sure libvirtd answers on SystemURI (installing and starting
// it the first time in this test binary) and fails the test when it cannot.
// It holds the daemon for the test (Share): a RestartDaemon elsewhere
// waits for it.
func Ensure(t testing.TB) {
	t.Helper()
	if err := EnsureErr(); err != nil {
		t.Fatalf("libvirttest: no libvirt: %v", err)
	}
	Share(t)
}

// EnsureErr is Ensure for TestMain and benchmarks: it returns the error.
// scripts/install-libvirt.sh runs at most once per process.
func EnsureErr() error {
	ensureOnce.Do(func() {
		_, ensureErr = runScript("install-libvirt.sh", installTimeout)
		if ensureErr == nil {
			ensureErr = ping()
		}
	})
	return ensureErr
}

// ping checks the daemon answers on SystemURI.
func ping() error {
	out, err := Virsh(SystemURI, "uri")
	if err != nil {
		return fmt.Errorf("after scripts/install-libvirt.sh: %w", err)
	}
	if strings.TrimSpace(out) != SystemURI {
		return fmt.Errorf("virsh -c %s uri printed %q", SystemURI, out)
	}
	return nil
}

// GuestImage returns the path of the test guest's raw disk image, building it
// the first time (see the package documentation). It fails the test when no
// image can be had.
func GuestImage(t testing.TB) string {
	t.Helper()
	p, err := GuestImagePath()
	if err != nil {
		t.Fatalf("libvirttest: no guest image: %v", err)
	}
	return p
}

// GuestImagePath is GuestImage for TestMain and benchmarks.
func GuestImagePath() (string, error) {
	imageOnce.Do(func() {
		if p := os.Getenv(GuestImageEnv); p != "" {
			if _, err := os.Stat(p); err != nil {
				imageErr = fmt.Errorf("%s=%s: %w", GuestImageEnv, p, err)
				return
			}
			imagePath = p
			return
		}
		var out string
		out, imageErr = runScript("build-guest-image.sh", buildTimeout)
		if imageErr != nil {
			return
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		p := strings.TrimSpace(lines[len(lines)-1])
		if _, err := os.Stat(p); err != nil {
			imageErr = fmt.Errorf("scripts/build-guest-image.sh printed %q: %w", p, err)
			return
		}
		imagePath = p
	})
	return imagePath, imageErr
}

// Virsh runs `virsh -c uri args...` and returns its stdout; the error carries
// its stderr.
func Virsh(uri string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "virsh", append([]string{"-q", "-c", uri}, args...)...)
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("virsh -c %s %s: %w: %s", uri, strings.Join(args, " "), err,
			strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// WaitForConsole polls a console log file until it contains every one of
// want, and returns its content. It gives up after timeout, returning what
// the log held and an error naming what was missing.
func WaitForConsole(path string, timeout time.Duration, want ...string) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(path)
		var missing []string
		for _, w := range want {
			if !bytes.Contains(b, []byte(w)) {
				missing = append(missing, w)
			}
		}
		if len(missing) == 0 {
			return string(b), nil
		}
		if time.Now().After(deadline) {
			return string(b), fmt.Errorf("console %s: after %s still no %q", path, timeout, missing)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// ModuleRoot walks up from the working directory (a test's package
// directory) to the directory holding go.mod.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// runScript runs scripts/NAME from the module root and returns its stdout;
// the error carries the tail of its stderr.
func runScript(name string, timeout time.Duration) (string, error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", err
	}
	script := filepath.Join(root, "scripts", name)
	if _, err := os.Stat(script); err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = root
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("scripts/%s: %w\n%s", name, err, tail(stderr.String(), 30))
	}
	return stdout.String(), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
