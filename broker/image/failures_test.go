package image_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
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
