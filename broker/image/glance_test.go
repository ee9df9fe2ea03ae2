package image_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/peers"
)

func TestImageLifecycle(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha", "beta")
	admin := te.admin(t)

	img, err := images.Create(ctx, admin, images.CreateOpts{Name: "web", DiskFormat: "raw", ContainerFormat: "bare",
		MinRAM: 256, Tags: []string{"prod"}, Properties: map[string]string{"os_distro": "debian", "hw_disk_bus": "virtio"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != images.ImageStatusQueued || img.Name != "web" || img.MinRAMMegabytes != 256 || img.Owner != te.Boot.Project.ID ||
		img.Properties["os_distro"] != "debian" || len(img.Tags) != 1 || img.Visibility != images.ImageVisibilityShared {
		t.Fatalf("created %+v", img)
	}
	for k := range img.Properties {
		if strings.HasPrefix(k, "cloudmux_") {
			t.Fatalf("the broker's property %s leaks into the API", k)
		}
	}
	// The broker ID is the image's ID on its peer too.
	where, err := te.Images.Get(ctx, image.Caller{Admin: true}, img.ID)
	if err != nil || where.PeerImageID != img.ID || !where.Indexed {
		t.Fatalf("service view = %+v, %v", where, err)
	}
	onPeer, err := te.cloud(where.PeerName).GetImage(ctx, img.ID)
	if err != nil || onPeer.Properties[peers.MetaID] != img.ID || onPeer.Properties[peers.MetaProject] != te.Boot.Project.ID {
		t.Fatalf("the peer's image = %+v, %v", onPeer, err)
	}

	// No data yet: 204.
	if code, _, _ := raw(t, admin, http.MethodGet, "images/"+img.ID+"/file", "", nil); code != http.StatusNoContent {
		t.Fatalf("download of a queued image = %d, want 204", code)
	}

	data := randomBytes(3<<20+17, 1)
	if err := imagedata.Upload(ctx, admin, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	got, err := images.Get(ctx, admin, img.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != images.ImageStatusActive || got.SizeBytes != int64(len(data)) || got.Checksum != md5hex(data) || got.Properties["os_hash_algo"] != "sha512" {
		t.Fatalf("after upload %+v", got)
	}

	res := imagedata.Download(ctx, admin, img.ID)
	rc, err := res.Extract()
	if err != nil {
		t.Fatal(err)
	}
	back, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(back, data) {
		t.Fatalf("downloaded %d bytes (%v), want the %d uploaded", len(back), err, len(data))
	}
	if h := res.Header; h.Get("Content-MD5") != md5hex(data) || h.Get("Content-Type") != "application/octet-stream" || h.Get("Content-Length") != "3145745" {
		t.Fatalf("download headers %v", h)
	}

	if err := imagedata.Upload(ctx, admin, img.ID, bytes.NewReader(data)).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("second upload = %v, want 409", err)
	}

	if err := images.Delete(ctx, admin, img.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := images.Get(ctx, admin, img.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get after delete = %v, want 404", err)
	}
	if _, err := te.cloud(where.PeerName).GetImage(ctx, img.ID); err == nil {
		t.Fatal("the image is still on its peer after delete")
	}
	if err := images.Delete(ctx, admin, img.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("second delete = %v, want 404", err)
	}
}

func TestVersionsSchemasAndErrors(t *testing.T) {
	te := newEnv(t, envOpts{}, "alpha")
	admin := te.admin(t)
	for _, tc := range []struct {
		name string
		path string
		code int
	}{
		{"root", "/image", http.StatusMultipleChoices},
		{"versions", "/image/versions", http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Get(te.Server.URL + tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.code || !strings.Contains(string(b), `"CURRENT"`) || !strings.Contains(string(b), "/image/v2/") {
				t.Fatalf("%s = %d %s", tc.path, resp.StatusCode, b)
			}
		})
	}
	for _, tc := range []struct{ name, path, want string }{
		{"image schema", "schemas/image", `"os_hash_value"`},
		{"images schema", "schemas/images", `"describedby"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, b := raw(t, admin, http.MethodGet, tc.path, "", nil)
			if code != http.StatusOK || !strings.Contains(string(b), tc.want) || !strings.Contains(string(b), `"additionalProperties"`) {
				t.Fatalf("%s = %d %s", tc.path, code, b)
			}
		})
	}
	t.Run("error body is Glance's", func(t *testing.T) {
		code, h, b := raw(t, admin, http.MethodGet, "images/3b0f7a3c-2f35-4b40-8c43-0d8a9e4b0a11", "", nil)
		c, title, msg := glanceError(t, b)
		if code != http.StatusNotFound || c != "404 Not Found" || title != "Not Found" || msg == "" || !strings.HasPrefix(h.Get("Content-Type"), "application/json") {
			t.Fatalf("404 = %d %s", code, b)
		}
	})
	t.Run("unauthenticated", func(t *testing.T) {
		resp, err := http.Get(te.Server.URL + "/image/v2/images")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("no token = %d, want 401", resp.StatusCode)
		}
	})
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{maxSize: 1 << 20}, "alpha")
	admin := te.admin(t)
	img, err := images.Create(ctx, admin, images.CreateOpts{Name: "x", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, path, contentType, body string
		code                                  int
		want                                  string // in the message
	}{
		{"missing disk_format", "POST", "images", "application/json", `{"name": "n", "container_format": "bare"}`, 400, "disk_format"},
		{"missing container_format", "POST", "images", "application/json", `{"name": "n", "disk_format": "raw"}`, 400, "container_format"},
		{"unknown disk_format", "POST", "images", "application/json", `{"disk_format": "floppy", "container_format": "bare"}`, 400, "floppy"},
		{"not JSON", "POST", "images", "application/json", `{"name": `, 400, "JSON"},
		{"empty body", "POST", "images", "application/json", ``, 400, "JSON object"},
		{"JSON null", "POST", "images", "application/json", `null`, 400, "JSON object"},
		{"an array", "POST", "images", "application/json", `[]`, 400, "JSON object"},
		{"data after the object", "POST", "images", "application/json", `{"disk_format": "raw", "container_format": "bare"} {}`, 400, "after"},
		{"oversized create", "POST", "images", "application/json", `{"name": "` + strings.Repeat("n", 1<<20) + `"}`, 413, "larger"},
		{"oversized patch", "PATCH", "images/" + img.ID, image.PatchMediaType, `[{"op":"add","path":"/p","value":"` + strings.Repeat("v", 1<<20) + `"}]`, 413, "larger"},
		{"read-only status", "POST", "images", "application/json", `{"disk_format": "raw", "container_format": "bare", "status": "active"}`, 403, "status"},
		{"non-string property", "POST", "images", "application/json", `{"disk_format": "raw", "container_format": "bare", "cores": 4}`, 400, "cores"},
		{"reserved property", "POST", "images", "application/json", `{"disk_format": "raw", "container_format": "bare", "cloudmux_id": "x"}`, 403, "cloudmux_id"},
		{"id not a UUID", "POST", "images", "application/json", `{"id": "abc", "disk_format": "raw", "container_format": "bare"}`, 400, "UUID"},
		{"id taken", "POST", "images", "application/json", `{"id": "` + img.ID + `", "disk_format": "raw", "container_format": "bare"}`, 409, img.ID},
		{"bad min_ram", "POST", "images", "application/json", `{"disk_format": "raw", "container_format": "bare", "min_ram": "lots"}`, 400, "min_ram"},
		{"null min_ram", "POST", "images", "application/json", `{"disk_format": "raw", "container_format": "bare", "min_ram": null}`, 400, "min_ram"},
		{"negative min_disk", "POST", "images", "application/json", `{"disk_format": "raw", "container_format": "bare", "min_disk": -1}`, 400, "min_disk"},
		{"null protected", "POST", "images", "application/json", `{"disk_format": "raw", "container_format": "bare", "protected": null}`, 400, "protected"},
		{"upload content type", "PUT", "images/" + img.ID + "/file", "text/plain", "abc", 415, "application/octet-stream"},
		{"upload over the size cap", "PUT", "images/" + img.ID + "/file", "application/octet-stream", strings.Repeat("x", 1<<20+1), 413, "cap"},
		{"bad sort key", "GET", "images?sort=colour:asc", "", "", 400, "colour"},
		{"bad sort dir", "GET", "images?sort_key=name&sort_dir=up", "", "", 400, "up"},
		{"bad limit", "GET", "images?limit=-1", "", "", 400, "limit"},
		{"unknown marker", "GET", "images?marker=3b0f7a3c-2f35-4b40-8c43-0d8a9e4b0a11", "", "", 400, "marker"},
		{"bad time filter", "GET", "images?created_at=gt:yesterday", "", "", 400, "created_at"},
		{"bad visibility filter", "GET", "images?visibility=secret", "", "", 400, "visibility"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, b := raw(t, admin, tc.method, tc.path, tc.contentType, []byte(tc.body))
			_, _, msg := glanceError(t, b)
			if code != tc.code || !strings.Contains(msg, tc.want) {
				t.Fatalf("%s %s = %d %q; want %d naming %q", tc.method, tc.path, code, msg, tc.code, tc.want)
			}
		})
	}
	// The refused oversize upload leaves no active image with partial bytes.
	got, err := images.Get(ctx, admin, img.ID).Extract()
	if err != nil || got.Status == images.ImageStatusActive {
		t.Fatalf("after the refused upload: %+v, %v", got, err)
	}
}

func TestNoPeerHoldsImageData(t *testing.T) {
	te := newEnv(t, envOpts{noData: []string{"nodata"}}, "nodata")
	admin := te.admin(t)
	code, _, b := raw(t, admin, "POST", "images", "application/json", []byte(`{"name": "x", "disk_format": "raw", "container_format": "bare"}`))
	if _, _, msg := glanceError(t, b); code != http.StatusRequestEntityTooLarge || !strings.Contains(msg, "nodata: cannot store image data") {
		t.Fatalf("create with no data-capable peer = %d %s", code, b)
	}
}
