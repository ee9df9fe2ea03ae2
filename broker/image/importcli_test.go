package image_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/oscli"
)

// TestOpenStackCLIImport: `openstack image create --import` stages and
// imports (glance-direct, offered in the create's
// OpenStack-image-import-methods header) instead of uploading, and the
// image ends active with the file's bytes. (This CLI has no `image stage`
// or `image import` commands; gophercloud's test drives those calls.)
func TestOpenStackCLIImport(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the real openstack CLI")
	}
	bin := oscli.Path(t)
	te := newEnv(t, envOpts{}, "alpha")
	pw := te.Member(t, "alice", "team-a", identity.RoleMember)
	dir := t.TempDir()
	src, out := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "saved.raw")
	data := randomBytes(2<<20, 11)
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(oscAs(t, bin, te, "alice", pw, "team-a", "image", "create", "--import", "--file", src,
		"--disk-format", "raw", "--container-format", "bare", "cli-imported", "-f", "value", "-c", "id"))
	waitImage(t, te.client(t, "alice", pw, "team-a"), id, images.ImageStatusActive)
	oscAs(t, bin, te, "alice", pw, "team-a", "image", "save", "--file", out, id)
	saved, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(saved, data) {
		t.Fatalf("image save wrote %d bytes (%v), want the %d imported", len(saved), err, len(data))
	}
}
