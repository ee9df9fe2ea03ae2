package image_test

import (
	"bytes"
	"context"
	"io"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/peers"
)

// TestStagedCopiesFollowTheirImage: copies the stager made (under the
// image's ID, and under another one where the peer had burned that ID)
// are never listed as images of their own, take the image's renames, and
// go when it is deleted, records included.
func TestStagedCopiesFollowTheirImage(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha", "beta")
	quiet := logrus.New()
	quiet.SetOutput(io.Discard)
	stager := staging.New(te.Store, "test", quiet)
	te.Images.Replicas = stager
	alice := te.client(t, "alice", te.Member(t, "alice", "team-a", identity.RoleMember), "team-a")

	created, err := images.Create(ctx, alice, images.CreateOpts{Name: "golden", DiskFormat: "raw", ContainerFormat: "bare",
		Properties: map[string]string{"os_distro": "debian"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(1<<20, 7)
	if err := imagedata.Upload(ctx, alice, created.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	home, err := te.Images.Get(ctx, callerAdmin, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	other := map[string]string{"alpha": "beta", "beta": "alpha"}[home.PeerName]
	src, _ := te.Pool.Lookup(home.PeerName)
	dst, _ := te.Pool.Lookup(other)
	onHome, err := src.Cloud.GetImage(ctx, home.PeerImageID)
	if err != nil {
		t.Fatal(err)
	}
	first, err := stager.Ensure(ctx, onHome, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	// Delete the copy behind the stager's back: the peer burns the ID, so
	// the next copy gets another one.
	if err := te.cloud(other).DeleteImage(ctx, first.PeerImageID); err != nil {
		t.Fatal(err)
	}
	second, err := stager.Ensure(ctx, onHome, src, dst)
	if err != nil {
		t.Fatal(err)
	}
	if second.PeerImageID == created.ID {
		t.Fatalf("second copy under the burned ID %s", second.PeerImageID)
	}

	if got := listNames(t, alice, images.ListOpts{}); slices.Index(got, "golden") < 0 || len(slices.DeleteFunc(slices.Clone(got), func(n string) bool { return n != "golden" })) != 1 {
		t.Fatalf("list = %v, want golden once", got)
	}
	if _, err := images.Get(ctx, alice, second.PeerImageID).Extract(); err == nil {
		t.Fatal("a staged copy's own ID resolves as an image")
	}
	if _, err := images.Update(ctx, alice, created.ID, images.UpdateOpts{images.ReplaceImageName{NewName: "golden-2"}}).Extract(); err != nil {
		t.Fatal(err)
	}
	if c, err := te.cloud(other).GetImage(ctx, second.PeerImageID); err != nil || c.Name != "golden-2" {
		t.Fatalf("copy after rename: %+v, %v", c, err)
	}
	if err := images.Delete(ctx, alice, created.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	left, err := te.cloud(other).ListImages(ctx, peers.ListOptions{Metadata: map[string]string{staging.MetaReplicaOf: onHome.ID}})
	if err != nil || len(left) != 0 {
		t.Fatalf("copies left after the delete: %v, %v", left, err)
	}
	if reps, err := stager.Replicas(ctx, onHome.ID); err != nil || len(reps) != 0 {
		t.Fatalf("replica records left: %v, %v", reps, err)
	}
}
