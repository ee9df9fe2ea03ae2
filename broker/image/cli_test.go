package image_test

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/oscli"
)

// osc runs the openstack CLI as the admin, with the environment an openrc
// would set.
func osc(t *testing.T, bin string, te *testEnv, args ...string) string {
	t.Helper()
	out, code := oscli.Run(t, bin, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"OS_AUTH_URL=" + te.Server.URL + "/v3", "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=admin",
		"OS_PASSWORD=" + brokertest.AdminPassword, "OS_PROJECT_NAME=admin", "OS_USER_DOMAIN_NAME=Default",
		"OS_PROJECT_DOMAIN_NAME=Default", "OS_REGION_NAME=RegionOne", "OS_INTERFACE=public"}, args...)
	if code != 0 {
		t.Fatalf("openstack %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// qcow2Bytes is a qcow2 v3 header (no backing file) followed by n bytes of
// noise: what the local cloud's format check accepts as qcow2.
func qcow2Bytes(n int) []byte {
	h := make([]byte, 104)
	copy(h, "QFI\xfb")
	be := binary.BigEndian
	be.PutUint32(h[4:], 3)      // version
	be.PutUint32(h[20:], 16)    // cluster_bits
	be.PutUint64(h[24:], 1<<30) // virtual size
	be.PutUint32(h[100:], 104)  // header_length
	return append(h, randomBytes(n, 7)...)
}

func TestOpenStackCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the real openstack CLI")
	}
	bin := oscli.Path(t)
	te := newEnv(t, envOpts{}, "alpha", "beta")
	dir := t.TempDir()
	src, out := filepath.Join(dir, "disk.qcow2"), filepath.Join(dir, "saved.qcow2")
	data := qcow2Bytes(3 << 20)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}

	var created map[string]any
	js := osc(t, bin, te, "image", "create", "--file", src, "--disk-format", "qcow2", "--container-format", "bare",
		"--property", "os_distro=debian", "--tag", "cli", "cli-image", "-f", "json")
	if err := json.Unmarshal([]byte(js), &created); err != nil {
		t.Fatalf("image create output %q: %v", js, err)
	}
	id, _ := created["id"].(string)
	// The CLI prints the image as created, before its upload (as with Glance).
	if id == "" || created["disk_format"] != "qcow2" || created["name"] != "cli-image" {
		t.Fatalf("created %v", created)
	}

	var list []map[string]any
	if err := json.Unmarshal([]byte(osc(t, bin, te, "image", "list", "-f", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["ID"] != id || list[0]["Name"] != "cli-image" || list[0]["Status"] != "active" {
		t.Fatalf("image list = %v", list)
	}

	var shown map[string]any
	if err := json.Unmarshal([]byte(osc(t, bin, te, "image", "show", "cli-image", "-f", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	props, _ := shown["properties"].(map[string]any)
	if shown["id"] != id || shown["status"] != "active" || shown["checksum"] != md5hex(data) || props["os_distro"] != "debian" || shown["size"] != float64(len(data)) {
		t.Fatalf("image show = %v", shown)
	}
	for k := range props {
		if strings.HasPrefix(k, "cloudmux_") {
			t.Fatalf("image show leaks the broker's property %s", k)
		}
	}

	osc(t, bin, te, "image", "save", "--file", out, "cli-image")
	saved, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(saved, data) {
		t.Fatalf("image save wrote %d bytes (%v), want the %d uploaded", len(saved), err, len(data))
	}

	osc(t, bin, te, "image", "set", "--property", "hw_disk_bus=virtio", "--name", "cli-renamed", "cli-image")
	if err := json.Unmarshal([]byte(osc(t, bin, te, "image", "show", id, "-f", "json")), &shown); err != nil {
		t.Fatal(err)
	}
	props, _ = shown["properties"].(map[string]any)
	if shown["name"] != "cli-renamed" || props["hw_disk_bus"] != "virtio" || props["os_distro"] != "debian" {
		t.Fatalf("after image set: %v", shown)
	}

	osc(t, bin, te, "image", "delete", "cli-renamed")
	if err := json.Unmarshal([]byte(osc(t, bin, te, "image", "list", "-f", "json")), &list); err != nil || len(list) != 0 {
		t.Fatalf("image list after delete = %v, %v", list, err)
	}
}
