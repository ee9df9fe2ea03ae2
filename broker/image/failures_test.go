package image_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// flakyCloud is a local cloud whose image reads fail while down is set (a
// peer timing out), so a test can break it after creating images on it.
type flakyCloud struct {
	*localcloud.Cloud
	down *atomic.Bool
}

func (f flakyCloud) GetImage(ctx context.Context, id string) (peers.Image, error) {
	if f.down.Load() {
		return peers.Image{}, fmt.Errorf("timed out: %w", peers.ErrUnavailable)
	}
	return f.Cloud.GetImage(ctx, id)
}

// A project must not tell another project's private image from a random
// ID, even when the peer holding it does not answer: 404 for both, never
// a 503 that confirms the image exists.
func TestUnreachablePeerDoesNotLeakOthersImages(t *testing.T) {
	ctx := context.Background()
	var down atomic.Bool
	te := newEnv(t, envOpts{wrap: map[string]func(*localcloud.Cloud) peers.Cloud{
		"flaky": func(c *localcloud.Cloud) peers.Cloud { return flakyCloud{Cloud: c, down: &down} },
	}}, "flaky")
	alice := te.client(t, "alice", te.Member(t, "alice", "team-a", identity.RoleMember), "team-a")
	bob := te.client(t, "bob", te.Member(t, "bob", "team-b", identity.RoleMember), "team-b")
	img, err := images.Create(ctx, alice, images.CreateOpts{Name: "secret", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	down.Store(true)
	for _, tc := range []struct {
		name string
		do   func() error
	}{
		{"get", func() error { return images.Get(ctx, bob, img.ID).Err }},
		{"delete", func() error { return images.Delete(ctx, bob, img.ID).ExtractErr() }},
		{"update", func() error {
			return images.Update(ctx, bob, img.ID, images.UpdateOpts{images.ReplaceImageName{NewName: "x"}}).Err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.do(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Fatalf("another project's image on a peer that does not answer: %v, want 404", err)
			}
		})
	}
	// The owner is told the truth: the peer is unavailable.
	if err := images.Get(ctx, alice, img.ID).Err; !gophercloud.ResponseCodeIs(err, http.StatusServiceUnavailable) {
		t.Fatalf("owner's get = %v, want 503", err)
	}
	if _, err := te.Images.Get(ctx, image.Caller{Project: "team-b"}, img.ID); err == nil {
		t.Fatal("service get succeeded")
	}
}

// A delete that removes the image from its peer but cannot drop its index
// entry fails; retrying it must finish the job, not answer 404 forever
// over an entry that points at nothing.
func TestDeleteCutBeforeTheIndexIsRetried(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha")
	alice := te.client(t, "alice", te.Member(t, "alice", "team-a", identity.RoleMember), "team-a")
	img, err := images.Create(ctx, alice, images.CreateOpts{Name: "doomed", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	te.Store.InjectFault(func(op registry.Op, key string) error {
		if op == registry.OpDelete && strings.HasPrefix(key, "index/") {
			return fmt.Errorf("consul lost its leader: %w", registry.ErrUnavailable)
		}
		return nil
	})
	if err := images.Delete(ctx, alice, img.ID).ExtractErr(); err == nil {
		t.Fatal("delete succeeded although the index could not be written")
	}
	te.Store.InjectFault(nil)
	if _, err := te.cloud("alpha").GetImage(ctx, img.ID); err == nil {
		t.Fatal("the test needs the peer's part of the delete done")
	}
	if err := images.Delete(ctx, alice, img.ID).ExtractErr(); err != nil {
		t.Fatalf("retried delete = %v, want it to finish", err)
	}
	if _, err := te.Images.Index.Get(ctx, image.Kind, img.ID, ""); !errors.Is(err, index.ErrNotFound) {
		t.Fatalf("index entry after the retried delete: %v", err)
	}
	if err := images.Delete(ctx, alice, img.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("third delete = %v, want 404", err)
	}
}

// lossyCloud makes the images it is asked to and, while lose is set, then
// loses the answer (a timeout after the peer acted).
type lossyCloud struct {
	*localcloud.Cloud
	lose *atomic.Bool
}

func (l lossyCloud) CreateImage(ctx context.Context, spec peers.ImageSpec) (peers.Image, error) {
	img, err := l.Cloud.CreateImage(ctx, spec)
	if err == nil && l.lose.Load() {
		return peers.Image{}, fmt.Errorf("no answer in time: %w", peers.ErrUnavailable)
	}
	return img, err
}

// A create whose answer is lost after the peer acted fails and leaves no
// queued image there for the caller to find later (or for a server to be
// booted from as a copy without data).
func TestLostCreateAnswerLeavesNoImage(t *testing.T) {
	ctx := context.Background()
	var lose atomic.Bool
	lose.Store(true)
	te := newEnv(t, envOpts{wrap: map[string]func(*localcloud.Cloud) peers.Cloud{
		"lossy": func(c *localcloud.Cloud) peers.Cloud { return lossyCloud{Cloud: c, lose: &lose} },
	}}, "lossy")
	admin := te.admin(t)
	if _, err := images.Create(ctx, admin, images.CreateOpts{Name: "lost", DiskFormat: "raw", ContainerFormat: "bare"}).Extract(); err == nil {
		t.Fatal("the create succeeded although its answer was lost")
	}
	left, err := te.cloud("lossy").ListImages(ctx, peers.ListOptions{Metadata: map[string]string{peers.MetaBrokerID: "test-broker"}})
	if err != nil || len(left) != 0 {
		t.Fatalf("the peer keeps %d of the broker's images (%v), want none", len(left), err)
	}
	if names := listNames(t, admin, images.ListOpts{Name: "lost"}); len(names) != 0 {
		t.Fatalf("the failed image is listed: %v", names)
	}
}

// busyCloud refuses to delete images, as a peer does one it is using.
type busyCloud struct{ *localcloud.Cloud }

func (busyCloud) DeleteImage(context.Context, string) error {
	return fmt.Errorf("image is the base of a running server's disk: %w", peers.ErrConflict)
}

// A peer refusing a delete because the image is in use is Glance's 409
// (InUseByStore), not a 403 the owner would read as a missing permission;
// the image stays, indexed.
func TestDeleteOfAnImageInUseIs409(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{wrap: map[string]func(*localcloud.Cloud) peers.Cloud{
		"busy": func(c *localcloud.Cloud) peers.Cloud { return busyCloud{c} },
	}}, "busy")
	admin := te.admin(t)
	img, err := images.Create(ctx, admin, images.CreateOpts{Name: "base", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	code, _, b := raw(t, admin, http.MethodDelete, "images/"+img.ID, "", nil)
	if _, _, msg := glanceError(t, b); code != http.StatusConflict || !strings.Contains(msg, "in use") {
		t.Fatalf("delete = %d %s, want 409 saying it is in use", code, b)
	}
	if _, err := images.Get(ctx, admin, img.ID).Extract(); err != nil {
		t.Fatalf("the image after a refused delete: %v", err)
	}
}
