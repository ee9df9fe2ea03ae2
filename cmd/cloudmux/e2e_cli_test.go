package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/internal/libvirttest"
)

// cliFlow is what the full openstack CLI flow needs from the cloud behind
// the broker: the image it boots (a file uploaded through the CLI), the
// flavor it fits, and what the console must show once it runs.
type cliFlow struct {
	imageFile   string
	flavor      string
	consoleWant string // "" when the cloud boots nothing (fake driver)
	// bootTimeout bounds each wait for a server state (a TCG guest is slow
	// to power off on ACPI).
	bootTimeout time.Duration
}

// TestOpenStackCLIFullFlow is issue 4's first done-means, on the fake
// driver: the real openstack CLI against `cloudmux serve -dev`, every
// service a user touches on a first day, and a second project that sees
// none of it.
func TestOpenStackCLIFullFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs the openstack CLI")
	}
	img := filepath.Join(t.TempDir(), "disk.raw")
	data := make([]byte, 3<<20+12345) // not a multiple of any chunk size
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(img, data, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startDev(t)
	runCLIFlow(t, b, cliFlow{imageFile: img, flavor: "m1.nano", bootTimeout: time.Minute})
}

// TestOpenStackCLIFullFlowLibvirt is the same flow with the local cloud on
// the real libvirt driver (qemu:///system, TCG): the server really boots
// the test guest and its console log, read through the CLI, shows the
// kernel's banner.
func TestOpenStackCLIFullFlowLibvirt(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a real guest")
	}
	if os.Getenv("CLOUDMUX_REQUIRE_LIBVIRT") == "" {
		if _, err := os.Stat(libvirttest.SocketPath); err != nil {
			t.Skipf("no libvirtd (%s: %v); set CLOUDMUX_REQUIRE_LIBVIRT=1 to fail instead", libvirttest.SocketPath, err)
		}
	}
	libvirttest.Ensure(t)
	guest := libvirttest.GuestImage(t)
	dir := t.TempDir()
	// The pool lives where QEMU (its own user) can read it, not in the
	// test's private temporary directory; pool and directory are removed
	// once the broker is gone.
	// A run killed before its cleanup (a CI timeout) leaves its pool and
	// guest domains: removed here, by the next run.
	libvirttest.SweepStalePools(t, libvirttest.SystemURI, "cmxe2e-", "/var/lib/cloudmux/test-pools")
	pool := "cmxe2e-" + strconv.Itoa(os.Getpid())
	poolPath := "/var/lib/cloudmux/test-pools/" + pool
	t.Cleanup(func() {
		_, _ = libvirttest.Virsh(libvirttest.SystemURI, "pool-destroy", pool)
		_, _ = libvirttest.Virsh(libvirttest.SystemURI, "pool-undefine", pool)
		_ = os.RemoveAll(poolPath)
	})
	cfg := filepath.Join(dir, "cloudmux.yaml")
	content := "prober: {interval: 1s, timeout: 1s}\nlocal_cloud: {driver: libvirt, hosts: [{name: e2ehost, uri: \"" + libvirttest.SystemURI +
		"\"}], pool: " + pool + ", pool_path: " + poolPath + "}\n"
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, []string{"serve", "-dev", "-config", cfg, "-listen", "127.0.0.1:0", "-log-format", "json"},
		[]string{"CLOUDMUX_ADMIN_PASSWORD=" + testAdminPassword})
	runCLIFlow(t, b, cliFlow{imageFile: guest, flavor: "m1.tiny", consoleWant: libvirttest.ConsoleKernelLine, bootTimeout: 3 * time.Minute})
}

// oscOK runs the openstack CLI and fails the test unless it exits 0.
func oscOK(t *testing.T, b *devBroker, env map[string]string, args ...string) string {
	t.Helper()
	out, code := osc(t, b, env, args...)
	if code != 0 {
		t.Fatalf("openstack %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return strings.TrimSpace(out)
}

// oscFails runs the openstack CLI and fails the test unless it exits
// non-zero with output containing want.
func oscFails(t *testing.T, b *devBroker, env map[string]string, want string, args ...string) {
	t.Helper()
	out, code := osc(t, b, env, args...)
	if code == 0 || !strings.Contains(out, want) {
		t.Errorf("openstack %s: exit %d, want a failure saying %q\n%s", strings.Join(args, " "), code, want, out)
	}
}

// oscWait polls `openstack ARGS -f value -c FIELD` until it prints want.
// A status of "error" ends the wait at once.
func oscWait(t *testing.T, b *devBroker, timeout time.Duration, want, field string, args ...string) {
	t.Helper()
	args = append(args, "-f", "value", "-c", field)
	deadline := time.Now().Add(timeout)
	for {
		out, code := osc(t, b, nil, args...)
		got := strings.TrimSpace(out)
		if code == 0 && got == want {
			return
		}
		if code == 0 && strings.EqualFold(got, "error") {
			t.Fatalf("openstack %s: %s, want %s", strings.Join(args, " "), got, want)
		}
		if time.Now().After(deadline) {
			t.Fatalf("openstack %s: still %q (exit %d) after %s, want %s", strings.Join(args, " "), got, code, timeout, want)
		}
		time.Sleep(200 * time.Millisecond) // poll interval; each CLI run takes longer anyway
	}
}

// runCLIFlow drives the openstack CLI through a user's first day against
// b, as admin of project admin, then checks a second project sees none of
// it, then deletes everything.
func runCLIFlow(t *testing.T, b *devBroker, f cliFlow) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log (last lines):\n%s", lastLines(b.stderr.String(), 30))
		}
	})
	// Identity and catalog.
	if tok := oscOK(t, b, nil, "token", "issue", "-f", "value", "-c", "id"); !strings.HasPrefix(tok, "cmx_") {
		t.Errorf("token issue printed %q", tok)
	}
	catalog := oscOK(t, b, nil, "catalog", "list", "-f", "value", "-c", "Type")
	for _, svc := range []string{"identity", "compute", "image", "network", "volumev3"} {
		if !strings.Contains(catalog, svc) {
			t.Errorf("catalog list lacks %s:\n%s", svc, catalog)
		}
	}

	// Image: upload with a property, read it back byte for byte.
	imgID := oscOK(t, b, nil, "image", "create", "--file", f.imageFile, "--disk-format", "raw", "--container-format", "bare",
		"--private", "--property", "e2e_role=first-day", "--property", "os_distro=test", "e2e-image", "-f", "value", "-c", "id")
	var shown struct {
		Status     string         `json:"status"`
		Visibility string         `json:"visibility"`
		Properties map[string]any `json:"properties"`
		Checksum   string         `json:"checksum"`
	}
	if err := json.Unmarshal([]byte(oscOK(t, b, nil, "image", "show", imgID, "-f", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	if shown.Status != "active" || shown.Visibility != "private" || shown.Properties["e2e_role"] != "first-day" || shown.Checksum == "" {
		t.Errorf("image show = %+v; want active, private, e2e_role=first-day and a checksum", shown)
	}
	saved := filepath.Join(t.TempDir(), "saved.raw")
	oscOK(t, b, nil, "image", "save", "--file", saved, imgID)
	want, err := os.ReadFile(f.imageFile)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(saved); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("image save: %d bytes (%v), want the %d uploaded bytes back", len(got), err, len(want))
	}

	// Compute: flavors, a keypair, a server on a network of our own.
	if fl := oscOK(t, b, nil, "flavor", "list", "-f", "value", "-c", "Name"); !strings.Contains(fl, f.flavor) {
		t.Fatalf("flavor list lacks %s:\n%s", f.flavor, fl)
	}
	if out := oscOK(t, b, nil, "keypair", "create", "e2e-key"); !strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("keypair create printed no private key:\n%s", out)
	}
	netID := oscOK(t, b, nil, "network", "create", "e2e-net", "-f", "value", "-c", "id")
	subnetID := oscOK(t, b, nil, "subnet", "create", "--network", "e2e-net", "--subnet-range", "192.168.77.0/24", "e2e-subnet", "-f", "value", "-c", "id")
	if cidr := oscOK(t, b, nil, "subnet", "show", subnetID, "-f", "value", "-c", "cidr"); cidr != "192.168.77.0/24" {
		t.Errorf("subnet show cidr = %q", cidr)
	}
	srvID := oscOK(t, b, nil, "server", "create", "--image", imgID, "--flavor", f.flavor, "--network", netID, "--key-name", "e2e-key",
		"--wait", "e2e-server", "-f", "value", "-c", "id")
	// On ERROR, `server create --wait` prints "Error creating server" and
	// still exits 0 (python-openstackclient 6.0): the ID is checked.
	if st, code := osc(t, b, nil, "server", "show", srvID, "-f", "value", "-c", "status"); code != 0 || strings.TrimSpace(st) != "ACTIVE" {
		fault, _ := osc(t, b, nil, "server", "show", "e2e-server", "-f", "value", "-c", "status", "-c", "fault")
		t.Fatalf("server create --wait printed %q; the server: %s", srvID, fault)
	}
	if list := oscOK(t, b, nil, "server", "list", "-f", "value", "-c", "ID", "-c", "Name", "-c", "Status"); !strings.Contains(list, srvID+" e2e-server ACTIVE") {
		t.Errorf("server list lacks the server:\n%s", list)
	}
	var srv struct {
		KeyName   string `json:"key_name"`
		Addresses any    `json:"addresses"`
		Flavor    any    `json:"flavor"`
	}
	if err := json.Unmarshal([]byte(oscOK(t, b, nil, "server", "show", srvID, "-f", "json")), &srv); err != nil {
		t.Fatal(err)
	}
	if srv.KeyName != "e2e-key" || !strings.Contains(jsonText(srv.Addresses), "e2e-net") || !strings.Contains(jsonText(srv.Flavor), f.flavor) {
		t.Errorf("server show = %+v; want key e2e-key, an address on e2e-net and flavor %s", srv, f.flavor)
	}
	if f.consoleWant != "" {
		waitFor2(t, f.bootTimeout, "the console log to show "+f.consoleWant, func() (bool, string) {
			out, _ := osc(t, b, nil, "console", "log", "show", srvID)
			return strings.Contains(out, f.consoleWant), lastLines(out, 10)
		})
	}
	oscOK(t, b, nil, "server", "stop", srvID)
	oscWait(t, b, f.bootTimeout, "SHUTOFF", "status", "server", "show", srvID)
	oscOK(t, b, nil, "server", "start", srvID)
	oscWait(t, b, f.bootTimeout, "ACTIVE", "status", "server", "show", srvID)

	// Volume: create, attach (in-use), detach (available).
	volID := oscOK(t, b, nil, "volume", "create", "--size", "1", "e2e-vol", "-f", "value", "-c", "id")
	oscWait(t, b, time.Minute, "available", "status", "volume", "show", volID)
	oscOK(t, b, nil, "server", "add", "volume", srvID, volID)
	oscWait(t, b, f.bootTimeout, "in-use", "status", "volume", "show", volID)
	if att := oscOK(t, b, nil, "volume", "show", volID, "-f", "json", "-c", "attachments"); !strings.Contains(att, srvID) {
		t.Errorf("volume attachments lack the server:\n%s", att)
	}
	oscOK(t, b, nil, "server", "remove", "volume", srvID, volID)
	oscWait(t, b, f.bootTimeout, "available", "status", "volume", "show", volID)

	// A second project sees none of it, by list or by ID.
	oscOK(t, b, nil, "project", "create", "e2e-other")
	oscOK(t, b, nil, "user", "create", "--password", "other-password-1", "--project", "e2e-other", "other")
	oscOK(t, b, nil, "role", "add", "--project", "e2e-other", "--user", "other", "member")
	other := map[string]string{"OS_USERNAME": "other", "OS_PASSWORD": "other-password-1", "OS_PROJECT_NAME": "e2e-other"}
	isolation := []struct {
		kind, id, notFound string
		list               []string
	}{
		{"server", srvID, "No server with a name or ID", []string{"server", "list", "-f", "value", "-c", "ID"}},
		{"image", imgID, "No Image found", []string{"image", "list", "-f", "value", "-c", "ID"}},
		{"volume", volID, "No volume with a name or ID", []string{"volume", "list", "-f", "value", "-c", "ID"}},
		{"network", netID, "No Network found", []string{"network", "list", "-f", "value", "-c", "ID"}},
		{"subnet", subnetID, "No Subnet found", []string{"subnet", "list", "-f", "value", "-c", "ID"}},
	}
	for _, iso := range isolation {
		t.Run("other project/"+iso.kind, func(t *testing.T) {
			if out := oscOK(t, b, other, iso.list...); strings.Contains(out, iso.id) {
				t.Errorf("the other project lists %s %s:\n%s", iso.kind, iso.id, out)
			}
			oscFails(t, b, other, iso.notFound, iso.kind, "show", iso.id)
			oscFails(t, b, other, "", iso.kind, "delete", iso.id)
		})
	}
	// Its own server list is empty, and the admin's server is unharmed.
	if out := oscOK(t, b, nil, "server", "show", srvID, "-f", "value", "-c", "status"); out != "ACTIVE" {
		t.Errorf("after the other project's delete attempts the server is %q", out)
	}

	// Deletes, each checked.
	oscOK(t, b, nil, "server", "delete", "--wait", srvID)
	oscFails(t, b, nil, "No server with a name or ID", "server", "show", srvID)
	oscOK(t, b, nil, "volume", "delete", volID)
	waitFor2(t, time.Minute, "the volume gone", func() (bool, string) {
		out, code := osc(t, b, nil, "volume", "show", volID)
		return code != 0, out
	})
	oscOK(t, b, nil, "subnet", "delete", subnetID)
	oscOK(t, b, nil, "network", "delete", netID)
	oscFails(t, b, nil, "No Network found", "network", "show", netID)
	oscOK(t, b, nil, "image", "delete", imgID)
	oscFails(t, b, nil, "No Image found", "image", "show", imgID)
	oscOK(t, b, nil, "keypair", "delete", "e2e-key")
	for _, list := range [][]string{{"server", "list"}, {"volume", "list"}, {"keypair", "list"}} {
		if out := oscOK(t, b, nil, append(list, "-f", "value")...); out != "" {
			t.Errorf("openstack %s after the deletes:\n%s", strings.Join(list, " "), out)
		}
	}
}

// waitFor2 is waitFor with a timeout of the caller's choosing.
func waitFor2(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		time.Sleep(200 * time.Millisecond) // poll interval, not a correctness gate
	}
}

func jsonText(v any) string {
	raw, _ := json.Marshal(v)
	return string(raw)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
