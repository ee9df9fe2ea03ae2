package image_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"slices"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/members"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/localcloud"
)

func (te *testEnv) projectID(t testing.TB, name string) string {
	t.Helper()
	p, err := te.Dir.FindProject(te.Ctx, identity.DefaultDomainID, name)
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// wantStatus checks err is an HTTP error with code (nil for 0).
func wantStatus(t *testing.T, what string, err error, code int) {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return
	}
	if !gophercloud.ResponseCodeIs(err, code) {
		t.Fatalf("%s: got %v, want %d", what, err, code)
	}
}

// TestImageMembers drives Glance's image sharing through gophercloud's
// members package: the owner shares, the member sees it, accepts it and
// lists it, a third project sees nothing, and every refusal is Glance's.
func TestImageMembers(t *testing.T) {
	ctx := context.Background()
	te := newEnv(t, envOpts{}, "alpha")
	alice := te.client(t, "alice", te.Member(t, "alice", "team-a", identity.RoleMember), "team-a")
	bob := te.client(t, "bob", te.Member(t, "bob", "team-b", identity.RoleMember), "team-b")
	carol := te.client(t, "carol", te.Member(t, "carol", "team-c", identity.RoleMember), "team-c")
	teamB, teamC := te.projectID(t, "team-b"), te.projectID(t, "team-c")
	if _, err := te.cloud("alpha").Seed(ctx); err != nil {
		t.Fatal(err)
	}

	shared := images.ImageVisibilityShared
	img, err := images.Create(ctx, alice, images.CreateOpts{Name: "a-shared", DiskFormat: "raw", ContainerFormat: "bare", Visibility: &shared}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if err := imagedata.Upload(ctx, alice, img.ID, bytes.NewReader([]byte("shared bytes"))).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	private := images.ImageVisibilityPrivate
	priv, err := images.Create(ctx, alice, images.CreateOpts{Name: "a-private", DiskFormat: "raw", ContainerFormat: "bare", Visibility: &private}).Extract()
	if err != nil {
		t.Fatal(err)
	}

	// Before sharing, bob sees nothing of it.
	_, err = images.Get(ctx, bob, img.ID).Extract()
	wantStatus(t, "bob's get before sharing", err, http.StatusNotFound)

	m, err := members.Create(ctx, alice, img.ID, teamB).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if m.MemberID != teamB || m.ImageID != img.ID || m.Status != "pending" || m.Schema != "/v2/schemas/member" || m.CreatedAt.IsZero() {
		t.Fatalf("created member %+v", m)
	}

	t.Run("refusals", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			do   func() error
			code int
		}{
			{"member twice", func() error { _, err := members.Create(ctx, alice, img.ID, teamB).Extract(); return err }, http.StatusConflict},
			{"private image has no members", func() error { _, err := members.Create(ctx, alice, priv.ID, teamB).Extract(); return err }, http.StatusForbidden},
			{"member adds a member", func() error { _, err := members.Create(ctx, bob, img.ID, teamC).Extract(); return err }, http.StatusForbidden},
			{"stranger adds a member", func() error { _, err := members.Create(ctx, carol, img.ID, teamC).Extract(); return err }, http.StatusNotFound},
			{"owner sets the member's status", func() error {
				_, err := members.Update(ctx, alice, img.ID, teamB, members.UpdateOpts{Status: "accepted"}).Extract()
				return err
			}, http.StatusForbidden},
			{"bad status", func() error {
				_, err := members.Update(ctx, bob, img.ID, teamB, members.UpdateOpts{Status: "maybe"}).Extract()
				return err
			}, http.StatusBadRequest},
			{"member removes itself", func() error { return members.Delete(ctx, bob, img.ID, teamB).ExtractErr() }, http.StatusForbidden},
			{"stranger reads a member", func() error { _, err := members.Get(ctx, carol, img.ID, teamB).Extract(); return err }, http.StatusNotFound},
			{"no such member", func() error { _, err := members.Get(ctx, alice, img.ID, teamC).Extract(); return err }, http.StatusNotFound},
			{"member edits the image", func() error {
				_, err := images.Update(ctx, bob, img.ID, images.UpdateOpts{images.ReplaceImageName{NewName: "x"}}).Extract()
				return err
			}, http.StatusForbidden},
		} {
			t.Run(tc.name, func(t *testing.T) { wantStatus(t, tc.name, tc.do(), tc.code) })
		}
	})

	// Two owners' adds of one member at once (two brokers, whose memory
	// has not seen the other's): exactly one is made, the rest are 409.
	t.Run("concurrent adds of one member", func(t *testing.T) {
		race, err := images.Create(ctx, alice, images.CreateOpts{Name: "a-race", DiskFormat: "raw", ContainerFormat: "bare", Visibility: &shared}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		owner := image.Caller{Project: te.projectID(t, "team-a")}
		const n = 8
		errs := make(chan error, n)
		start := make(chan struct{})
		for range n {
			go func() {
				<-start
				_, err := te.Images.AddMember(ctx, owner, race.ID, teamC)
				errs <- err
			}()
		}
		close(start)
		made := 0
		for range n {
			switch err := <-errs; {
			case err == nil:
				made++
			case !errors.Is(err, image.ErrConflict):
				t.Errorf("a losing add: %v; want ErrConflict", err)
			}
		}
		if made != 1 {
			t.Fatalf("%d of %d concurrent adds of one member succeeded; want exactly 1", made, n)
		}
		if err := images.Delete(ctx, alice, race.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("error body is Glance's", func(t *testing.T) {
		code, _, body := raw(t, alice, http.MethodPost, "images/"+priv.ID+"/members", "application/json", []byte(`{"member":"`+teamB+`"}`))
		c, title, msg := glanceError(t, body)
		if code != http.StatusForbidden || c != "403 Forbidden" || title != "Forbidden" || msg == "" {
			t.Fatalf("%d %s %s %q", code, c, title, msg)
		}
		code, _, body = raw(t, alice, http.MethodPost, "images/"+img.ID+"/members", "application/json", []byte(`{}`))
		if c, _, _ := glanceError(t, body); code != http.StatusBadRequest || c != "400 Bad Request" {
			t.Fatalf("no member: %d %s", code, body)
		}
	})

	lists := func(t *testing.T, stage string, want map[string][]string) {
		t.Helper()
		for _, tc := range []struct {
			name   string
			client *gophercloud.ServiceClient
			opts   images.ListOpts
		}{
			{"bob default", bob, images.ListOpts{}},
			{"bob shared", bob, images.ListOpts{Visibility: images.ImageVisibilityShared}},
			{"bob pending", bob, images.ListOpts{MemberStatus: images.ImageMemberStatusPending}},
			{"bob all", bob, images.ListOpts{Visibility: images.ImageVisibilityShared, MemberStatus: images.ImageMemberStatusAll}},
			{"carol shared", carol, images.ListOpts{Visibility: images.ImageVisibilityShared}},
			{"alice shared", alice, images.ListOpts{Visibility: images.ImageVisibilityShared}},
		} {
			got := listNames(t, tc.client, tc.opts)
			if w := want[tc.name]; !equalNames(got, w) {
				t.Errorf("%s: %s lists %v, want %v", stage, tc.name, got, w)
			}
		}
	}
	seed := localcloud.SeedImageName
	lists(t, "pending", map[string][]string{
		"bob default": {seed}, "bob shared": nil, "bob pending": {"a-shared", seed}, "bob all": {"a-shared"},
		"carol shared": nil, "alice shared": {"a-shared"},
	})
	// A pending member sees the image by ID (as in Glance) but not in lists.
	if got, err := images.Get(ctx, bob, img.ID).Extract(); err != nil || got.Name != "a-shared" {
		t.Fatalf("bob's get while pending: %v %v", got, err)
	}

	m, err = members.Update(ctx, bob, img.ID, teamB, members.UpdateOpts{Status: "accepted"}).Extract()
	if err != nil || m.Status != "accepted" {
		t.Fatalf("accept: %+v %v", m, err)
	}
	lists(t, "accepted", map[string][]string{
		"bob default": {"a-shared", seed}, "bob shared": {"a-shared"}, "bob pending": {seed}, "bob all": {"a-shared"},
		"carol shared": nil, "alice shared": {"a-shared"},
	})
	var got bytes.Buffer
	rc, err := imagedata.Download(ctx, bob, img.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = got.ReadFrom(rc)
	rc.Close()
	if got.String() != "shared bytes" {
		t.Fatalf("bob downloaded %q", got.String())
	}

	t.Run("member lists", func(t *testing.T) {
		if _, err := members.Create(ctx, alice, img.ID, teamC).Extract(); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			client *gophercloud.ServiceClient
			want   []string
		}{
			{"owner sees all", alice, []string{teamB, teamC}},
			{"member sees itself", bob, []string{teamB}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				pages, err := members.List(tc.client, img.ID).AllPages(ctx)
				if err != nil {
					t.Fatal(err)
				}
				ms, err := members.ExtractMembers(pages)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for _, m := range ms {
					ids = append(ids, m.MemberID)
				}
				if !equalNames(ids, slices.Sorted(slices.Values(tc.want))) {
					t.Fatalf("members %v, want %v", ids, tc.want)
				}
			})
		}
		if err := members.Delete(ctx, alice, img.ID, teamC).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		_, err := images.Get(ctx, carol, img.ID).Extract()
		wantStatus(t, "carol's get once removed", err, http.StatusNotFound)
	})

	t.Run("private again hides it", func(t *testing.T) {
		if _, err := images.Update(ctx, alice, img.ID, images.UpdateOpts{images.UpdateVisibility{Visibility: images.ImageVisibilityPrivate}}).Extract(); err != nil {
			t.Fatal(err)
		}
		_, err := images.Get(ctx, bob, img.ID).Extract()
		wantStatus(t, "bob's get of a private image", err, http.StatusNotFound)
		if _, err := images.Update(ctx, alice, img.ID, images.UpdateOpts{images.UpdateVisibility{Visibility: images.ImageVisibilityShared}}).Extract(); err != nil {
			t.Fatal(err)
		}
		if _, err := images.Get(ctx, bob, img.ID).Extract(); err != nil {
			t.Fatalf("bob's get once shared again: %v", err)
		}
	})

	t.Run("deleting the image drops its members", func(t *testing.T) {
		if err := images.Delete(ctx, alice, img.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		kvs, _, err := te.Store.List(ctx, "image-members/")
		if err != nil || len(kvs) != 0 {
			t.Fatalf("member records after the delete: %v %v", kvs, err)
		}
	})
}

func equalNames(a, b []string) bool { return slices.Equal(a, b) || (len(a) == 0 && len(b) == 0) }
