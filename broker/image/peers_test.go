package image_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// fullCloud refuses new images for lack of room.
type fullCloud struct{ *localcloud.Cloud }

func (fullCloud) CreateImage(context.Context, peers.ImageSpec) (peers.Image, error) {
	return peers.Image{}, fmt.Errorf("image store full: %w", peers.ErrCapacity)
}

// stuckCloud never answers a list (until the caller gives up) and takes
// no new images.
type stuckCloud struct{ *localcloud.Cloud }

func (stuckCloud) ListImages(ctx context.Context, _ peers.ListOptions) ([]peers.Image, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (stuckCloud) CreateImage(context.Context, peers.ImageSpec) (peers.Image, error) {
	return peers.Image{}, fmt.Errorf("busy: %w", peers.ErrUnavailable)
}

func TestPlacementFallsBackToTheNextPeer(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{wrap: map[string]func(*localcloud.Cloud) peers.Cloud{
		"a-full": func(c *localcloud.Cloud) peers.Cloud { return fullCloud{c} },
	}}, "a-full", "b-roomy")
	admin := te.admin(t)
	for i := range 3 {
		img, err := images.Create(ctx, admin, images.CreateOpts{Name: fmt.Sprint(i), DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if got, err := te.Images.Get(ctx, callerAdmin, img.ID); err != nil || got.PeerName != "b-roomy" {
			t.Fatalf("image %d placed on %q (%v), want b-roomy", i, got.PeerName, err)
		}
	}
}

func TestSlowPeerGivesAPartialList(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{peerTimeout: 200 * time.Millisecond, wrap: map[string]func(*localcloud.Cloud) peers.Cloud{
		"stuck": func(c *localcloud.Cloud) peers.Cloud { return stuckCloud{c} },
	}}, "fine", "stuck")
	admin := te.admin(t)
	img, err := images.Create(ctx, admin, images.CreateOpts{Name: "here", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	code, h, b := raw(t, admin, http.MethodGet, "images", "", nil)
	if code != http.StatusOK || h.Get(osapi.PartialHeader) != "stuck" {
		t.Fatalf("list = %d, %s = %q", code, osapi.PartialHeader, h.Get(osapi.PartialHeader))
	}
	if got := listNames(t, admin, images.ListOpts{}); len(got) != 1 || got[0] != "here" {
		t.Fatalf("partial list = %v (%s), want the image on the peer that answered", got, b)
	}
	if _, err := images.Get(ctx, admin, img.ID).Extract(); err != nil {
		t.Fatalf("an indexed image is read from its own peer: %v", err)
	}
}

// failingReader yields n bytes, then fails: a client dying mid-upload.
type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errors.New("client went away")
	}
	k := min(len(p), f.n)
	clear(p[:k])
	f.n -= k
	return k, nil
}

func TestInterruptedUploadKillsTheImage(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()
	te := newEnv(t, envOpts{}, "alpha")
	admin := te.admin(t)
	img, err := images.Create(ctx, admin, images.CreateOpts{Name: "cut", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, admin.ResourceBaseURL()+"images/"+img.ID+"/file", &failingReader{n: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = 8 << 20
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-Auth-Token", admin.Token())
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("an upload whose body failed answered %d", resp.StatusCode)
	}
	// The broker learns of the cut when its read of the body fails; the
	// peer then kills the image. Wait for that (bounded by ctx), never for
	// a fixed time.
	for {
		got, err := images.Get(ctx, admin, img.ID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == images.ImageStatusKilled {
			break
		}
		if got.Status != images.ImageStatusQueued && got.Status != images.ImageStatusSaving {
			t.Fatalf("after a cut upload the image is %s, want killed", got.Status)
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the image stayed %s after its upload was cut", got.Status)
		case <-time.After(10 * time.Millisecond):
		}
	}
	if code, _, _ := raw(t, admin, http.MethodGet, "images/"+img.ID+"/file", "", nil); code != http.StatusNoContent {
		t.Fatalf("download of a killed image = %d, want 204", code)
	}
}

// When every allowed peer is only unavailable the create is 503 (try
// again), not the 413 of a full pool.
func TestCreateWithEveryPeerUnavailableIs503(t *testing.T) {
	te := newEnv(t, envOpts{wrap: map[string]func(*localcloud.Cloud) peers.Cloud{
		"stuck": func(c *localcloud.Cloud) peers.Cloud { return stuckCloud{c} },
	}}, "stuck")
	code, _, b := raw(t, te.admin(t), http.MethodPost, "images", "application/json", []byte(`{"disk_format": "raw", "container_format": "bare"}`))
	if _, _, msg := glanceError(t, b); code != http.StatusServiceUnavailable || !strings.Contains(msg, "stuck") {
		t.Fatalf("create = %d %s, want 503 naming the peer", code, b)
	}
}
