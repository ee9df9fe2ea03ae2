package broker_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"
)

// TestSharedImageBoot: Nova resolves an image through the image service
// with the caller's identity, so a project boots another's shared image
// once it is a member, and not before (Nova's 400, the image unknown to
// it). Glance lets any member, whatever its status, use the image by ID;
// the status decides only whether it is listed.
func TestSharedImageBoot(t *testing.T) {
	te := newTenancyEnv(t)
	ctx := te.Ctx
	aGlance := te.client(t, te.aToken, openstack.NewImageV2)
	bGlance := te.client(t, te.bToken, openstack.NewImageV2)
	bNova := te.client(t, te.bToken, openstack.NewComputeV2)
	img, err := images.Create(ctx, aGlance, images.CreateOpts{Name: "a-shared-image", DiskFormat: "raw", ContainerFormat: "bare",
		Visibility: ptr(images.ImageVisibilityShared)}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Upload(ctx, aGlance, img.ID, bytes.NewReader(bytes.Repeat([]byte("S"), 4096))).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	boot := `{"server": {"name": "b-on-shared", "flavorRef": "1", "imageRef": "` + img.ID + `", "networks": "none"}}`
	if code, body := te.send(t, http.MethodPost, "/compute/v2.1/servers", te.bToken, boot); code != http.StatusBadRequest {
		t.Fatalf("boot by a non-member: %d %s, want 400", code, body)
	}
	if _, err := members.Create(ctx, aGlance, img.ID, te.bProject).Extract(); err != nil {
		t.Fatal(err)
	}
	if _, err := members.Update(ctx, bGlance, img.ID, te.bProject, members.UpdateOpts{Status: "accepted"}).Extract(); err != nil {
		t.Fatal(err)
	}
	s, err := servers.Create(ctx, bNova, servers.CreateOpts{Name: "b-on-shared", FlavorRef: "1", ImageRef: img.ID, Networks: "none"}, nil).Extract()
	if err != nil {
		t.Fatalf("boot by an accepted member: %v", err)
	}
	if err := servers.WaitForStatus(ctx, bNova, s.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	// Removed from the members, B can boot it no more.
	if err := members.Delete(ctx, aGlance, img.ID, te.bProject).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if code, body := te.send(t, http.MethodPost, "/compute/v2.1/servers", te.bToken, boot); code != http.StatusBadRequest {
		t.Fatalf("boot once removed: %d %s, want 400", code, body)
	}
}
