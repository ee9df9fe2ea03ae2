package image_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/broker/image"
)

// Creates racing for one requested ID: exactly one wins, the others are
// 409, and no losing image is left behind on any peer.
func TestConcurrentCreatesOfOneID(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha", "beta", "gamma")
	admin := te.admin(t)
	const id = "5d2b1a8e-1c3f-4d6e-9a7b-0c1d2e3f4a5b"
	const n = 6
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := images.Create(ctx, admin, images.CreateOpts{ID: id, Name: fmt.Sprint(i), DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
			switch {
			case err == nil:
				codes[i] = http.StatusCreated
			case gophercloud.ResponseCodeIs(err, http.StatusConflict):
				codes[i] = http.StatusConflict
			default:
				t.Errorf("create %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		if c == http.StatusCreated {
			won++
		}
	}
	if won != 1 {
		t.Fatalf("answers %v: want exactly one 201", codes)
	}
	held := 0
	for _, p := range []string{"alpha", "beta", "gamma"} {
		if _, err := te.cloud(p).GetImage(ctx, id); err == nil {
			held++
		}
	}
	if held != 1 {
		t.Fatalf("%d peers hold image %s, want 1", held, id)
	}
}

// Concurrent patches of different properties and tags all land: each
// request sends its own change, not its stale copy of the whole image.
func TestConcurrentPatchesAllLand(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha")
	admin := te.admin(t)
	img, err := images.Create(ctx, admin, images.CreateOpts{Name: "p", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	const n = 8
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := fmt.Sprintf(`[{"op":"add","path":"/p%d","value":"v"}]`, i)
			if code, _, b := raw(t, admin, http.MethodPatch, "images/"+img.ID, image.PatchMediaType, []byte(body)); code != http.StatusOK {
				t.Errorf("patch %d = %d %s", i, code, b)
			}
			if code, _, b := raw(t, admin, http.MethodPut, fmt.Sprintf("images/%s/tags/t%d", img.ID, i), "", nil); code != http.StatusNoContent {
				t.Errorf("tag %d = %d %s", i, code, b)
			}
		}()
	}
	wg.Wait()
	got, err := te.Images.Get(ctx, callerAdmin, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if got.Properties[fmt.Sprintf("p%d", i)] != "v" {
			t.Errorf("property p%d lost: %v", i, got.Properties)
		}
	}
	if len(got.Tags) != n {
		t.Errorf("tags = %v, want %d", got.Tags, n)
	}
}

// A deactivation record outliving its image (a deactivate racing the
// delete) must not deactivate a new image created later under the same
// requested ID.
func TestStaleDeactivationDoesNotTouchANewImageOfTheSameID(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha")
	admin := te.admin(t)
	const id = "0e6b3f0a-8d1c-4a57-bb4e-2f9d7c1a6e30"
	if _, err := te.Store.Put(ctx, "image-deactivated/"+id, []byte(`{"id":"`+id+`"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := images.Create(ctx, admin, images.CreateOpts{ID: id, Name: "new", DiskFormat: "raw", ContainerFormat: "bare"}).Extract(); err != nil {
		t.Fatal(err)
	}
	if code, _, b := raw(t, admin, http.MethodPut, "images/"+id+"/file", "application/octet-stream", []byte("data")); code != http.StatusNoContent {
		t.Fatalf("upload = %d %s", code, b)
	}
	if got, err := images.Get(ctx, admin, id).Extract(); err != nil || got.Status != images.ImageStatusActive {
		t.Fatalf("new image = %q, %v; want active", got.Status, err)
	}
}
