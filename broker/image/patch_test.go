package image_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/broker/image"
)

func TestPatch(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha")
	admin := te.admin(t)
	img, err := images.Create(ctx, admin, images.CreateOpts{Name: "base", DiskFormat: "raw", ContainerFormat: "bare",
		Tags: []string{"old"}, Properties: map[string]string{"keep": "1", "drop": "2"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("gophercloud update", func(t *testing.T) {
		got, err := images.Update(ctx, admin, img.ID, images.UpdateOpts{
			images.ReplaceImageName{NewName: "renamed"},
			images.ReplaceImageMinRam{NewMinRam: 512},
			images.ReplaceImageMinDisk{NewMinDisk: 2},
			images.ReplaceImageTags{NewTags: []string{"new", "newer"}},
			images.UpdateVisibility{Visibility: images.ImageVisibilityCommunity},
			images.UpdateImageProperty{Op: images.AddOp, Name: "os_distro", Value: "debian"},
			images.UpdateImageProperty{Op: images.ReplaceOp, Name: "keep", Value: "one"},
			images.UpdateImageProperty{Op: images.RemoveOp, Name: "drop"},
		}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if got.Name != "renamed" || got.MinRAMMegabytes != 512 || got.MinDiskGigabytes != 2 || !slices.Equal(got.Tags, []string{"new", "newer"}) ||
			got.Visibility != images.ImageVisibilityCommunity || got.Properties["os_distro"] != "debian" || got.Properties["keep"] != "one" {
			t.Fatalf("updated %+v", got)
		}
		if _, ok := got.Properties["drop"]; ok {
			t.Fatal("a removed property is still there")
		}
	})

	patch := func(t *testing.T, contentType, body string) (int, map[string]any, string) {
		t.Helper()
		code, _, b := raw(t, admin, http.MethodPatch, "images/"+img.ID, contentType, []byte(body))
		var out map[string]any
		_ = json.Unmarshal(b, &out)
		msg, _ := out["message"].(string)
		return code, out, msg
	}
	for _, tc := range []struct {
		name, body string
		code       int
		check      func(map[string]any) bool
		want       string // in the error message
	}{
		{"ops apply in order", `[{"op":"add","path":"/x","value":"1"},{"op":"replace","path":"/x","value":"2"},{"op":"add","path":"/y","value":"3"},{"op":"remove","path":"/y"}]`,
			200, func(m map[string]any) bool { _, y := m["y"]; return m["x"] == "2" && !y }, ""},
		{"escaped pointer", `[{"op":"add","path":"/a~1b~0c","value":"v"}]`, 200, func(m map[string]any) bool { return m["a/b~c"] == "v" }, ""},
		{"protect and hide", `[{"op":"replace","path":"/protected","value":true},{"op":"replace","path":"/os_hidden","value":true}]`,
			200, func(m map[string]any) bool { return m["protected"] == true && m["os_hidden"] == true }, ""},
		{"unprotect and unhide", `[{"op":"replace","path":"/protected","value":false},{"op":"replace","path":"/os_hidden","value":false}]`,
			200, func(m map[string]any) bool { return m["protected"] == false && m["os_hidden"] == false }, ""},
		{"name null", `[{"op":"replace","path":"/name","value":null}]`, 200, func(m map[string]any) bool { return m["name"] == nil }, ""},
		{"same disk_format is no change", `[{"op":"replace","path":"/disk_format","value":"raw"}]`, 200, nil, ""},
		{"read-only status", `[{"op":"replace","path":"/status","value":"active"}]`, 403, nil, "status"},
		{"read-only id", `[{"op":"replace","path":"/id","value":"x"}]`, 403, nil, "id"},
		{"read-only checksum", `[{"op":"add","path":"/checksum","value":"x"}]`, 403, nil, "checksum"},
		{"read-only size", `[{"op":"replace","path":"/size","value":3}]`, 403, nil, "size"},
		{"core attribute removal", `[{"op":"remove","path":"/name"}]`, 403, nil, "name"},
		{"reserved prefix", `[{"op":"add","path":"/cloudmux_id","value":"x"}]`, 403, nil, "cloudmux_id"},
		{"other disk_format", `[{"op":"replace","path":"/disk_format","value":"qcow2"}]`, 403, nil, "disk_format"},
		{"replace missing property", `[{"op":"replace","path":"/nope","value":"x"}]`, 409, nil, "nope"},
		{"remove missing property", `[{"op":"remove","path":"/nope"}]`, 409, nil, "nope"},
		{"nested path", `[{"op":"add","path":"/a/b","value":"x"}]`, 400, nil, "nested"},
		{"no leading slash", `[{"op":"add","path":"a","value":"x"}]`, 400, nil, "pointer"},
		{"unknown escape", `[{"op":"add","path":"/a~2b","value":"x"}]`, 400, nil, "escape"},
		{"trailing tilde", `[{"op":"add","path":"/a~","value":"x"}]`, 400, nil, "escape"},
		{"empty path", `[{"op":"add","path":"","value":"x"}]`, 400, nil, "pointer"},
		{"add over a property replaces it in 2.1", `[{"op":"add","path":"/x","value":"3"}]`, 200, func(m map[string]any) bool { return m["x"] == "3" }, ""},
		{"unknown op", `[{"op":"move","path":"/a","from":"/b"}]`, 400, nil, "op"},
		{"missing value", `[{"op":"add","path":"/a"}]`, 400, nil, "value"},
		{"non-string property", `[{"op":"add","path":"/a","value":1}]`, 400, nil, "string"},
		{"bad visibility", `[{"op":"replace","path":"/visibility","value":"secret"}]`, 400, nil, "visibility"},
		{"negative min_ram", `[{"op":"replace","path":"/min_ram","value":-1}]`, 400, nil, "min_ram"},
		{"null protected", `[{"op":"replace","path":"/protected","value":null}]`, 400, nil, "protected"},
		{"null min_disk", `[{"op":"replace","path":"/min_disk","value":null}]`, 400, nil, "min_disk"},
		{"not an array", `{"op":"add"}`, 400, nil, "array"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, msg := patch(t, image.PatchMediaType, tc.body)
			if code != tc.code || (tc.check != nil && !tc.check(out)) || !strings.Contains(msg, tc.want) {
				t.Fatalf("PATCH %s = %d %v; want %d (%q)", tc.body, code, out, tc.code, tc.want)
			}
		})
	}
	t.Run("v2.0 patch format", func(t *testing.T) {
		code, out, _ := patch(t, image.PatchMediaType20, `[{"replace":"/name","value":"old-style"}]`)
		if code != http.StatusOK || out["name"] != "old-style" {
			t.Fatalf("2.0 patch = %d %v", code, out)
		}
	})
	t.Run("v2.0 add refuses to overwrite", func(t *testing.T) {
		for _, body := range []string{`[{"add":"/x","value":"4"}]`, `[{"add":"/name","value":"n"}]`} {
			if code, _, msg := patch(t, image.PatchMediaType20, body); code != http.StatusConflict || !strings.Contains(msg, "already present") {
				t.Fatalf("2.0 %s = %d %q, want 409", body, code, msg)
			}
		}
		if code, out, _ := patch(t, image.PatchMediaType20, `[{"add":"/fresh","value":"5"}]`); code != http.StatusOK || out["fresh"] != "5" {
			t.Fatalf("2.0 add of a new property = %d %v", code, out)
		}
	})
	t.Run("wrong media type", func(t *testing.T) {
		for _, ct := range []string{"application/json", "application/json-patch+json", ""} {
			if code, _, msg := patch(t, ct, `[{"op":"replace","path":"/name","value":"x"}]`); code != http.StatusUnsupportedMediaType || !strings.Contains(msg, image.PatchMediaType) {
				t.Fatalf("PATCH as %q = %d %q, want 415", ct, code, msg)
			}
		}
	})
	t.Run("tags", func(t *testing.T) {
		for _, step := range []struct {
			method, tag string
			code        int
		}{
			{"PUT", "blue", 204}, {"PUT", "blue", 204}, {"PUT", "with space", 204},
			{"DELETE", "new", 204}, {"DELETE", "absent", 404}, {"PUT", strings.Repeat("t", 256), 400},
		} {
			if code, _, b := raw(t, admin, step.method, "images/"+img.ID+"/tags/"+strings.ReplaceAll(step.tag, " ", "%20"), "", nil); code != step.code {
				t.Fatalf("%s tag %.10q = %d %s, want %d", step.method, step.tag, code, b, step.code)
			}
		}
		got, err := images.Get(ctx, admin, img.ID).Extract()
		if err != nil || !slices.Equal(got.Tags, []string{"blue", "newer", "with space"}) {
			t.Fatalf("tags = %v, %v", got.Tags, err)
		}
	})
	t.Run("protected image is not deleted", func(t *testing.T) {
		yes := true
		if _, err := images.Update(ctx, admin, img.ID, images.UpdateOpts{images.ReplaceImageProtected{NewProtected: yes}}).Extract(); err != nil {
			t.Fatal(err)
		}
		if err := images.Delete(ctx, admin, img.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("delete of a protected image = %v, want 403", err)
		}
		if _, err := images.Update(ctx, admin, img.ID, images.UpdateOpts{images.ReplaceImageProtected{NewProtected: false}}).Extract(); err != nil {
			t.Fatal(err)
		}
		if err := images.Delete(ctx, admin, img.ID).ExtractErr(); err != nil {
			t.Fatalf("delete once unprotected: %v", err)
		}
	})
}
