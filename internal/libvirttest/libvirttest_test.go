package libvirttest

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// bootTimeout bounds one guest boot under TCG (3-10 s on an idle machine;
// CI runs many test packages at once on 2 cores).
const bootTimeout = 3 * time.Minute

// needsLibvirt skips under -short (`make test-unit`: no external services);
// `make test` and CI run everything.
func needsLibvirt(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("real libvirt and QEMU: not with -short")
	}
}

func TestEnsureQEMUSystem(t *testing.T) {
	needsLibvirt(t)
	Ensure(t)
	out, err := Virsh(SystemURI, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Running hypervisor: QEMU") {
		t.Fatalf("virsh version on %s:\n%s", SystemURI, out)
	}
	t.Logf("%s", strings.TrimSpace(out))

	// No network that forwards off this machine may autostart or run.
	names, err := Virsh(SystemURI, "net-list", "--all", "--name")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range strings.Fields(names) {
		// Other tests create and delete networks meanwhile: one that is
		// gone is fine.
		x, err := Virsh(SystemURI, "net-dumpxml", n)
		if err != nil || !strings.Contains(x, "<forward") {
			continue
		}
		info, err := Virsh(SystemURI, "net-info", n)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(info, "\n") {
			f := strings.Fields(l)
			if len(f) == 2 && (f[0] == "Active:" || f[0] == "Autostart:") && f[1] == "yes" {
				t.Errorf("forwarding network %s: %s", n, l)
			}
		}
	}
}

func TestTestDriverThroughDaemon(t *testing.T) {
	needsLibvirt(t)
	Ensure(t)
	out, err := Virsh(TestURIViaDaemon, "version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Using API: TEST") {
		t.Fatalf("virsh version on %s:\n%s", TestURIViaDaemon, out)
	}
	if _, err := os.Stat(SocketPath); err != nil {
		t.Fatalf("libvirtd socket: %v", err)
	}
}

// TestGuestBootsUnderQEMU boots the image with qemu alone (SeaBIOS, TCG, no
// libvirt) through scripts/guest/boot-test.sh.
func TestGuestBootsUnderQEMU(t *testing.T) {
	needsLibvirt(t)
	Ensure(t) // installs qemu-system-x86
	img := GuestImage(t)
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(t.TempDir(), "console.log")
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "guest", "boot-test.sh"), img, log)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boot-test.sh: %v\n%s", err, out)
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{ConsoleKernelLine, ConsolePrefix + "kernel ", ConsoleConfigDriveFound, "\nhello-from-user-data", ConsoleDone} {
		if !strings.Contains(string(b), want) {
			t.Errorf("console has no %q", want)
		}
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}

// TestGuestBootsUnderLibvirt boots the image as a transient qemu:///system
// domain built from Domain.XML, with a config drive, reads the console log,
// then shuts it down through ACPI.
func TestGuestBootsUnderLibvirt(t *testing.T) {
	needsLibvirt(t)
	Ensure(t)
	img := GuestImage(t)
	dir := t.TempDir()
	// libvirt's qemu user must reach the files (t.TempDir is 0700).
	for d := dir; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	disk := filepath.Join(dir, "root.raw")
	copyFile(t, img, disk)
	name := "cloudmux-libvirttest-" + randHex(t)
	iso := ConfigDrive(t, dir,
		[]byte(`{"uuid": "`+name+`", "name": "`+name+`", "meta": {"cloudmux": "libvirttest"}}`),
		[]byte("#!/bin/sh\necho hello-from-user-data via libvirt\n"))
	console := filepath.Join(dir, "console.log")
	xmlPath := filepath.Join(dir, "domain.xml")
	dom := Domain{Name: name, Disk: disk, ConfigDrive: iso, ConsoleLog: console}
	if err := os.WriteFile(xmlPath, []byte(dom.XML()), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := Virsh(SystemURI, "create", xmlPath); err != nil {
		t.Fatalf("%v\n%s", err, dom.XML())
	}
	t.Cleanup(func() {
		if _, err := Virsh(SystemURI, "domstate", name); err == nil {
			if _, err := Virsh(SystemURI, "destroy", name); err != nil {
				t.Logf("destroying %s: %v", name, err)
			}
		}
	})
	log, err := WaitForConsole(console, bootTimeout,
		ConsoleKernelLine, ConsoleConfigDriveFound, "\nhello-from-user-data via libvirt", ConsoleDone)
	if err != nil {
		t.Fatalf("%v\n--- console ---\n%s", err, log)
	}
	t.Logf("guest done %s after virsh create", time.Since(start).Round(100*time.Millisecond))

	// ACPI power button: the guest powers off and the transient domain goes.
	if _, err := Virsh(SystemURI, "shutdown", name); err != nil {
		t.Fatal(err)
	}
	const shutdownTimeout = time.Minute
	deadline := time.Now().Add(shutdownTimeout)
	for {
		if _, err := Virsh(SystemURI, "domstate", name); err != nil {
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(console)
			t.Fatalf("%s still there %s after virsh shutdown\n--- console ---\n%s", name, shutdownTimeout, b)
		}
		time.Sleep(200 * time.Millisecond)
	}
	b, _ := os.ReadFile(console)
	if !strings.Contains(string(b), "power button pressed") {
		t.Errorf("console does not show the power button:\n%s", b)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func randHex(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestSweepStalePools: a pool left by a process that is gone is removed
// with its directory; a live process's pool is kept.
func TestSweepStalePools(t *testing.T) {
	needsLibvirt(t)
	Ensure(t)
	root := t.TempDir()
	const prefix = "cmxsweeptest-"
	stale, live := prefix+"2147483646", prefix+strconv.Itoa(os.Getpid())
	for _, pool := range []string{stale, live} {
		dir := filepath.Join(root, pool)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := Virsh(SystemURI, "pool-define-as", pool, "dir", "--target", dir); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_, _ = Virsh(SystemURI, "pool-destroy", pool)
			_, _ = Virsh(SystemURI, "pool-undefine", pool)
		})
		if _, err := Virsh(SystemURI, "pool-start", pool); err != nil {
			t.Fatal(err)
		}
	}
	SweepStalePools(t, SystemURI, prefix, root)
	pools, err := Virsh(SystemURI, "pool-list", "--all", "--name")
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(strings.Fields(pools), stale) || !slices.Contains(strings.Fields(pools), live) {
		t.Errorf("pools after the sweep: %q; want %s gone and %s kept", pools, stale, live)
	}
	if _, err := os.Stat(filepath.Join(root, stale)); !os.IsNotExist(err) {
		t.Errorf("the stale pool's directory: %v; want it removed", err)
	}
}
