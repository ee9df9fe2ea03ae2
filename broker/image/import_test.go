package image_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imageimport"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/policy"
)

// waitImage polls an image until it has status want (an import ends in
// the background, as Glance's task).
func waitImage(t *testing.T, c *gophercloud.ServiceClient, id string, want images.ImageStatus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := gophercloud.WaitFor(ctx, func(ctx context.Context) (bool, error) {
		img, err := images.Get(ctx, c, id).Extract()
		if err != nil {
			return false, err
		}
		return img.Status == want, nil
	})
	if err != nil {
		t.Fatalf("image %s never %s: %v", id, want, err)
	}
}

// wantData downloads an image and compares its bytes with the staged ones.
func wantData(t *testing.T, c *gophercloud.ServiceClient, id string, data []byte) {
	t.Helper()
	rc, err := imagedata.Download(context.Background(), c, id).Extract()
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("downloaded %d bytes (%v), want the %d staged", len(back), err, len(data))
	}
}

// TestImageImport drives interoperable import (glance-direct) through
// gophercloud's imagedata.Stage and imageimport: the staged image is
// "uploading", the import makes it active on its peer with the bytes
// staged, and every out-of-order call is Glance's 409 or 400.
func TestImageImport(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha")
	alice := te.client(t, "alice", te.Member(t, "alice", "team-a", identity.RoleMember), "team-a")

	info, err := imageimport.Get(ctx, alice).Extract()
	if err != nil || !slices.Equal(info.ImportMethods.Value, []string{"glance-direct"}) {
		t.Fatalf("import info %+v, %v", info, err)
	}
	code, _, body := raw(t, alice, http.MethodGet, "info/stores", "", nil)
	if code != http.StatusNotFound {
		t.Fatalf("info/stores: %d %s, want 404 (no multi-store)", code, body)
	}

	img, err := images.Create(ctx, alice, images.CreateOpts{Name: "imported", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	data := randomBytes(1<<20, 3)

	t.Run("another project", func(t *testing.T) {
		bob := te.client(t, "bob", te.Member(t, "bob", "team-b", identity.RoleMember), "team-b")
		err := imagedata.Stage(ctx, bob, img.ID, bytes.NewReader(data)).ExtractErr()
		wantStatus(t, "another project stages", err, http.StatusNotFound)
		err = imageimport.Create(ctx, bob, img.ID, imageimport.CreateOpts{Name: imageimport.GlanceDirectMethod}).ExtractErr()
		wantStatus(t, "another project imports", err, http.StatusNotFound)
	})
	t.Run("import before stage", func(t *testing.T) {
		err := imageimport.Create(ctx, alice, img.ID, imageimport.CreateOpts{Name: imageimport.GlanceDirectMethod}).ExtractErr()
		wantStatus(t, "import before stage", err, http.StatusConflict)
	})
	if err := imagedata.Stage(ctx, alice, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if got, err := images.Get(ctx, alice, img.ID).Extract(); err != nil || got.Status != "uploading" {
		t.Fatalf("staged image %+v, %v; want uploading", got, err)
	}

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name, method, path, body string
			code                     int
		}{
			{"stage twice", http.MethodPut, "images/" + img.ID + "/stage", "more", http.StatusConflict},
			{"upload once staged", http.MethodPut, "images/" + img.ID + "/file", "more", http.StatusConflict},
			{"web-download not offered", http.MethodPost, "images/" + img.ID + "/import", `{"method": {"name": "web-download", "uri": "http://127.0.0.1:1/x"}}`, http.StatusBadRequest},
			{"copy-image not offered", http.MethodPost, "images/" + img.ID + "/import", `{"method": {"name": "copy-image"}}`, http.StatusBadRequest},
			{"stores not offered", http.MethodPost, "images/" + img.ID + "/import", `{"method": {"name": "glance-direct"}, "stores": ["alpha"]}`, http.StatusBadRequest},
			{"no method", http.MethodPost, "images/" + img.ID + "/import", `{}`, http.StatusBadRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				ct := "application/json"
				if tc.method == http.MethodPut {
					ct = "application/octet-stream"
				}
				code, _, body := raw(t, alice, tc.method, tc.path, ct, []byte(tc.body))
				if code != tc.code {
					t.Fatalf("%d %s, want %d", code, body, tc.code)
				}
				glanceError(t, body)
			})
		}
	})

	if err := imageimport.Create(ctx, alice, img.ID, imageimport.CreateOpts{Name: imageimport.GlanceDirectMethod}).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitImage(t, alice, img.ID, images.ImageStatusActive)
	got, err := images.Get(ctx, alice, img.ID).Extract()
	if err != nil || got.SizeBytes != int64(len(data)) || got.Checksum != md5hex(data) {
		t.Fatalf("imported image %+v, %v", got, err)
	}
	wantData(t, alice, img.ID, data)
	kvs, _, err := te.Store.List(ctx, "image-import/")
	if err != nil || len(kvs) != 0 {
		t.Fatalf("import records once imported: %v %v", kvs, err)
	}

	t.Run("deleting a staged image drops its data", func(t *testing.T) {
		img, err := images.Create(ctx, alice, images.CreateOpts{Name: "staged-only", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if err := imagedata.Stage(ctx, alice, img.ID, bytes.NewReader(data[:1000])).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if err := images.Delete(ctx, alice, img.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if kvs, _, err := te.Store.List(ctx, "image-import/"); err != nil || len(kvs) != 0 {
			t.Fatalf("import records after the delete: %v %v", kvs, err)
		}
	})

	// Behind a load balancer the stage and the import are two requests,
	// which two brokers may take: nothing of the stage stays on the first.
	t.Run("staged through one broker, imported through another", func(t *testing.T) {
		img, err := images.Create(ctx, alice, images.CreateOpts{Name: "two-brokers", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if err := imagedata.Stage(ctx, alice, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		// Downloading staged data is refused, as Glance refuses a
		// non-active image's.
		code, _, body := raw(t, alice, http.MethodGet, "images/"+img.ID+"/file", "", nil)
		if code == http.StatusOK {
			t.Fatalf("download of a staged image: %d %s; want a refusal", code, body)
		}
		other := &image.Service{Pool: te.Pool, Index: te.Index, Placer: policy.Default{}, Store: te.Store, Log: te.Log, BrokerID: "test-broker"}
		owner := image.Caller{Project: te.projectID(t, "team-a")}
		if err := other.Import(ctx, owner, img.ID, "glance-direct"); err != nil {
			t.Fatalf("import through the other broker: %v", err)
		}
		if err := other.Import(ctx, owner, img.ID, "glance-direct"); !errors.Is(err, image.ErrConflict) {
			t.Fatalf("a second import: %v; want ErrConflict (not staged any more)", err)
		}
		waitImage(t, alice, img.ID, images.ImageStatusActive)
		wantData(t, alice, img.ID, data)
	})

	t.Run("os_glance properties are reserved", func(t *testing.T) {
		code, _, body := raw(t, alice, http.MethodPost, "images", "application/json",
			[]byte(`{"name": "x", "disk_format": "raw", "container_format": "bare", "os_glance_importing_to_stores": "a"}`))
		if code != http.StatusForbidden {
			t.Fatalf("%d %s, want 403", code, body)
		}
	})

	t.Run("versions", func(t *testing.T) {
		resp, err := http.Get(te.Server.URL + "/image/versions")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		code := resp.StatusCode
		var v struct{ Versions []struct{ ID, Status string } }
		if err := json.Unmarshal(body, &v); err != nil || code != http.StatusOK || len(v.Versions) == 0 {
			t.Fatalf("versions: %d %s", code, body)
		}
		if v.Versions[0].ID != "v2.7" || v.Versions[0].Status != "CURRENT" {
			t.Fatalf("current version %+v, want v2.7: 2.8 and later (multi-store, copy-image) are not offered", v.Versions[0])
		}
	})
}
