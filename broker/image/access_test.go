package image_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

func listNames(t *testing.T, c *gophercloud.ServiceClient, opts images.ListOpts) []string {
	t.Helper()
	pages, err := images.List(c, opts).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	imgs, err := images.ExtractImages(pages)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, img := range imgs {
		out = append(out, img.Name)
	}
	slices.Sort(out)
	return out
}

func TestTenantIsolation(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha", "beta")
	admin := te.admin(t)
	alice := te.client(t, "alice", te.Member(t, "alice", "team-a", identity.RoleMember), "team-a")
	bob := te.client(t, "bob", te.Member(t, "bob", "team-b", identity.RoleMember), "team-b")
	reader := te.client(t, "rita", te.Member(t, "rita", "team-a", identity.RoleReader), "team-a")

	seeded, err := te.cloud("beta").Seed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	private, err := images.Create(ctx, alice, images.CreateOpts{Name: "a-private", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Upload(ctx, alice, private.ID, bytes.NewReader([]byte("secret bytes"))).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	community := images.ImageVisibilityCommunity
	comm, err := images.Create(ctx, alice, images.CreateOpts{Name: "a-community", DiskFormat: "raw", ContainerFormat: "bare", Visibility: &community}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	public := images.ImageVisibilityPublic
	pub, err := images.Create(ctx, admin, images.CreateOpts{Name: "admin-public", DiskFormat: "raw", ContainerFormat: "bare", Visibility: &public}).Extract()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("lists", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			client *gophercloud.ServiceClient
			opts   images.ListOpts
			want   []string
		}{
			{"owner sees own and public", alice, images.ListOpts{}, []string{"a-community", "a-private", "admin-public", localcloud.SeedImageName}},
			{"reader of the owner's project", reader, images.ListOpts{}, []string{"a-community", "a-private", "admin-public", localcloud.SeedImageName}},
			{"other project sees public only", bob, images.ListOpts{}, []string{"admin-public", localcloud.SeedImageName}},
			{"community when asked", bob, images.ListOpts{Visibility: images.ImageVisibilityCommunity}, []string{"a-community"}},
			{"private filter shows only own", bob, images.ListOpts{Visibility: images.ImageVisibilityPrivate}, nil},
			{"admin sees all", admin, images.ListOpts{}, []string{"a-community", "a-private", "admin-public", localcloud.SeedImageName}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if got := listNames(t, tc.client, tc.opts); !slices.Equal(got, tc.want) {
					t.Fatalf("list = %v, want %v", got, tc.want)
				}
			})
		}
	})

	t.Run("another project's private image is not found", func(t *testing.T) {
		id := private.ID
		if _, err := images.Get(ctx, bob, id).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("get = %v", err)
		}
		if _, err := imagedata.Download(ctx, bob, id).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("download = %v", err)
		}
		if err := imagedata.Upload(ctx, bob, id, bytes.NewReader([]byte("x"))).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("upload = %v", err)
		}
		if _, err := images.Update(ctx, bob, id, images.UpdateOpts{images.ReplaceImageName{NewName: "mine"}}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("update = %v", err)
		}
		if err := images.Delete(ctx, bob, id).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("delete = %v", err)
		}
		if code, _, _ := raw(t, bob, "PUT", "images/"+id+"/tags/x", "", nil); code != http.StatusNotFound {
			t.Fatalf("tag = %d", code)
		}
	})

	t.Run("public and community images are visible but not writable", func(t *testing.T) {
		for _, id := range []string{pub.ID, comm.ID, seeded.ImageID} {
			if _, err := images.Get(ctx, bob, id).Extract(); err != nil {
				t.Fatalf("get %s = %v", id, err)
			}
			if _, err := images.Update(ctx, bob, id, images.UpdateOpts{images.ReplaceImageName{NewName: "mine"}}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
				t.Fatalf("update %s = %v, want 403", id, err)
			}
			if err := images.Delete(ctx, bob, id).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
				t.Fatalf("delete %s = %v, want 403", id, err)
			}
		}
	})

	t.Run("the seeded image keeps its own ID and data", func(t *testing.T) {
		rc, err := imagedata.Download(ctx, bob, seeded.ImageID).Extract()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(b, localcloud.PlaceholderDisk()) {
			t.Fatalf("seeded image data: %d bytes, %v", len(b), err)
		}
	})

	t.Run("roles", func(t *testing.T) {
		if _, err := images.Create(ctx, reader, images.CreateOpts{Name: "r", DiskFormat: "raw", ContainerFormat: "bare"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("reader create = %v, want 403", err)
		}
		if _, err := images.Create(ctx, alice, images.CreateOpts{Name: "p", DiskFormat: "raw", ContainerFormat: "bare", Visibility: &public}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("member publicizing = %v, want 403", err)
		}
		if _, err := images.Update(ctx, alice, private.ID, images.UpdateOpts{images.UpdateVisibility{Visibility: public}}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
			t.Fatalf("member publicizing by update = %v, want 403", err)
		}
		if code, _, _ := raw(t, alice, "POST", "images", "application/json", []byte(`{"disk_format":"raw","container_format":"bare","owner":"someone-else"}`)); code != http.StatusForbidden {
			t.Fatalf("member creating for another owner = %d, want 403", code)
		}
	})

	t.Run("a staged copy on another peer is listed once, from home", func(t *testing.T) {
		home, err := te.Images.Get(ctx, callerAdmin, private.ID)
		if err != nil {
			t.Fatal(err)
		}
		other := map[string]string{"alpha": "beta", "beta": "alpha"}[home.PeerName]
		onHome, err := te.cloud(home.PeerName).GetImage(ctx, private.ID)
		if err != nil {
			t.Fatal(err)
		}
		// What the stager does: the same ID and properties, a different name
		// to tell them apart.
		if _, err := te.cloud(other).CreateImage(ctx, peers.ImageSpec{ID: private.ID, Name: "the copy", Project: onHome.Project,
			DiskFormat: "raw", ContainerFormat: "bare", Visibility: onHome.Visibility, Properties: onHome.Properties}); err != nil {
			t.Fatal(err)
		}
		if got := listNames(t, alice, images.ListOpts{ID: private.ID}); !slices.Equal(got, []string{"a-private"}) {
			t.Fatalf("list = %v, want the home image once", got)
		}
		if err := images.Delete(ctx, alice, private.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if _, err := te.cloud(other).GetImage(ctx, private.ID); err == nil {
			t.Fatal("the copy outlived the image")
		}
	})
}

func TestDeactivateReactivate(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha")
	admin := te.admin(t)
	alice := te.client(t, "alice", te.Member(t, "alice", "team-a", identity.RoleMember), "team-a")
	img, err := images.Create(ctx, alice, images.CreateOpts{Name: "d", DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	action := func(c *gophercloud.ServiceClient, what string) int {
		code, _, _ := raw(t, c, "POST", "images/"+img.ID+"/actions/"+what, "", nil)
		return code
	}
	if code := action(admin, "deactivate"); code != http.StatusForbidden {
		t.Fatalf("deactivating a queued image = %d, want 403", code)
	}
	if err := imagedata.Upload(ctx, alice, img.ID, bytes.NewReader([]byte("data"))).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name   string
		client *gophercloud.ServiceClient
		action string
		code   int
		status images.ImageStatus
		owner  int // the owner's download status after the step
	}{
		{"member may not deactivate", alice, "deactivate", 403, images.ImageStatusActive, 200},
		{"admin deactivates", admin, "deactivate", 204, images.ImageStatusDeactivated, 403},
		{"again is no change", admin, "deactivate", 204, images.ImageStatusDeactivated, 403},
		{"member may not reactivate", alice, "reactivate", 403, images.ImageStatusDeactivated, 403},
		{"admin reactivates", admin, "reactivate", 204, images.ImageStatusActive, 200},
	} {
		t.Run(step.name, func(t *testing.T) {
			if code := action(step.client, step.action); code != step.code {
				t.Fatalf("%s = %d, want %d", step.action, code, step.code)
			}
			got, err := images.Get(ctx, alice, img.ID).Extract()
			if err != nil || got.Status != step.status {
				t.Fatalf("status = %q (%v), want %q", got.Status, err, step.status)
			}
			if code, _, _ := raw(t, alice, "GET", "images/"+img.ID+"/file", "", nil); code != step.owner {
				t.Fatalf("owner download = %d, want %d", code, step.owner)
			}
			if step.status == images.ImageStatusDeactivated {
				if code, _, b := raw(t, admin, "GET", "images/"+img.ID+"/file", "", nil); code != http.StatusOK || string(b) != "data" {
					t.Fatalf("admin download of a deactivated image = %d %q", code, b)
				}
				if got := listNames(t, alice, images.ListOpts{Status: images.ImageStatusDeactivated}); !slices.Equal(got, []string{"d"}) {
					t.Fatalf("status filter = %v", got)
				}
			}
		})
	}
}
