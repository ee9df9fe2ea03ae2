package image_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
)

// A reader's writes are refused with Glance's error body (message, code,
// title at the root), which is what Glance clients parse; not Keystone's.
func TestReaderWritesAreRefusedInGlancesShape(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha")
	alice := te.client(t, "alice", te.Member(t, "alice", "team-a", identity.RoleMember), "team-a")
	reader := te.client(t, "rita", te.Member(t, "rita", "team-a", identity.RoleReader), "team-a")
	img, err := images.Create(ctx, alice, images.CreateOpts{Name: "a", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, method, path, contentType, body string }{
		{"create", "POST", "images", "application/json", `{"disk_format":"raw","container_format":"bare"}`},
		{"update", "PATCH", "images/" + img.ID, image.PatchMediaType, `[{"op":"replace","path":"/name","value":"x"}]`},
		{"delete", "DELETE", "images/" + img.ID, "", ""},
		{"upload", "PUT", "images/" + img.ID + "/file", "application/octet-stream", "data"},
		{"tag", "PUT", "images/" + img.ID + "/tags/t", "", ""},
		{"untag", "DELETE", "images/" + img.ID + "/tags/t", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, b := raw(t, reader, tc.method, tc.path, tc.contentType, []byte(tc.body))
			c, title, msg := glanceError(t, b)
			if code != http.StatusForbidden || c != "403 Forbidden" || title != "Forbidden" || !strings.Contains(msg, "member") {
				t.Fatalf("reader %s = %d %s, want Glance's 403 naming the member role", tc.name, code, b)
			}
		})
	}
}
