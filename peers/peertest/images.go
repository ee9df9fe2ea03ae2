package peertest

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

// makeImage registers a queued raw/bare image and deletes it at cleanup.
func (s *suite) makeImage(t *testing.T, spec peers.ImageSpec) peers.Image {
	t.Helper()
	if spec.Name == "" {
		spec.Name = s.name("image")
	}
	spec.Project = s.fx.Project
	if spec.DiskFormat == "" {
		spec.DiskFormat, spec.ContainerFormat = "raw", "bare"
	}
	if spec.Properties == nil {
		spec.Properties = s.meta()
	}
	img, err := s.c.CreateImage(t.Context(), spec)
	if err != nil {
		t.Fatalf("CreateImage(%q): %v", spec.Name, err)
	}
	s.cleanupImage(t, img.ID)
	return img
}

func (s *suite) cleanupImage(t *testing.T, id string) {
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		if err := s.c.DeleteImage(ctx, id); err != nil && !errors.Is(err, peers.ErrNotFound) {
			t.Errorf("cleanup: DeleteImage(%s): %v", id, err)
		}
	})
}

func (s *suite) imageStatus(id string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		img, err := s.c.GetImage(ctx, id)
		return string(img.Status), err
	}
}

func (s *suite) testImages(t *testing.T) {
	ctx := t.Context()
	meta := s.meta("peertest_key", "v1")
	spec := peers.ImageSpec{
		Name: s.name("image"), DiskFormat: "raw", ContainerFormat: "bare",
		MinRAMMiB: 64, MinDiskGiB: 1, Visibility: "private", Properties: meta,
	}
	img := s.makeImage(t, spec)
	wantUUID(t, "CreateImage", img.ID)
	if img.Status != peers.ImageQueued || img.Name != spec.Name || img.Project != s.fx.Project ||
		img.DiskFormat != "raw" || img.ContainerFormat != "bare" || img.MinRAMMiB != 64 || img.MinDiskGiB != 1 ||
		img.Visibility != "private" || img.Size != 0 || img.Checksum != "" {
		t.Fatalf("CreateImage = %+v\nwant queued, name %q, owner %q, raw/bare, min_ram 64, min_disk 1, private, no size nor checksum yet", img, spec.Name, s.fx.Project)
	}
	wantMetadata(t, "CreateImage", img.Properties, meta)
	if got, err := s.c.GetImage(ctx, img.ID); err != nil || got.Status != peers.ImageQueued || got.Name != spec.Name {
		t.Fatalf("GetImage(%s) = %+v, %v; want the queued image", img.ID, got, err)
	}
	t.Run("ListImages", func(t *testing.T) {
		s.checkListed(t, img.ID, meta, func(ctx context.Context, o peers.ListOptions) ([]string, error) {
			l, err := s.c.ListImages(ctx, o)
			return ids(l, func(x peers.Image) string { return x.ID }), err
		})
	})

	t.Run("NamesAreNotUnique", func(t *testing.T) {
		group := s.run + "-" + randHex(4)
		a := s.makeImage(t, peers.ImageSpec{Name: spec.Name, Properties: s.meta("peertest_group", group)})
		b := s.makeImage(t, peers.ImageSpec{Name: spec.Name, Properties: s.meta("peertest_group", group)})
		if a.ID == b.ID {
			t.Fatalf("two images named %q got the same ID %s", spec.Name, a.ID)
		}
		l, err := s.c.ListImages(t.Context(), peers.ListOptions{Metadata: map[string]string{"peertest_group": group}})
		got := ids(l, func(x peers.Image) string { return x.ID })
		if err != nil || len(got) != 2 || !slices.Contains(got, a.ID) || !slices.Contains(got, b.ID) {
			t.Fatalf("ListImages by group = %v, %v; want exactly %s and %s", got, err, a.ID, b.ID)
		}
	})

	t.Run("RequestedID", func(t *testing.T) {
		id := "6a1c0e2e-5b7d-4f4e-9c1a-" + randHex(6)
		got := s.makeImage(t, peers.ImageSpec{ID: id})
		if got.ID != id {
			t.Fatalf("CreateImage with ID %s returned ID %s", id, got.ID)
		}
		again, err := s.c.CreateImage(t.Context(), peers.ImageSpec{ID: id, Project: s.fx.Project, DiskFormat: "raw", ContainerFormat: "bare"})
		if err == nil {
			s.cleanupImage(t, again.ID)
		}
		wantErr(t, "CreateImage with an ID in use", err, peers.ErrConflict)
	})

	t.Run("Update", func(t *testing.T) {
		name := s.name("renamed")
		minRAM := 128
		updated, err := s.c.UpdateImage(t.Context(), img.ID, peers.ImagePatch{
			Name: &name, MinRAMMiB: &minRAM,
			SetProperties: map[string]string{"peertest_added": "yes"}, RemoveProperties: []string{"peertest_key"},
		})
		if err != nil {
			t.Fatalf("UpdateImage: %v", err)
		}
		for what, got := range map[string]peers.Image{"UpdateImage": updated, "GetImage after UpdateImage": s.mustGetImage(t, img.ID)} {
			_, kept := got.Properties["peertest_key"]
			if got.Name != name || got.MinRAMMiB != 128 || got.Properties["peertest_added"] != "yes" || kept || got.MinDiskGiB != 1 {
				t.Fatalf("%s = %+v\nwant name %q, min_ram 128, min_disk still 1, peertest_added=yes, peertest_key removed", what, got, name)
			}
			wantMetadata(t, what, got.Properties, map[string]string{peers.MetaID: meta[peers.MetaID]})
		}
		_, err = s.c.UpdateImage(t.Context(), "00000000-0000-4000-8000-0000000000aa", peers.ImagePatch{Name: &name})
		wantErr(t, "UpdateImage of an unknown image", err, peers.ErrNotFound)
	})

	t.Run("Tags", func(t *testing.T) {
		// Glance keeps tags as a set, in no particular order.
		tagged := s.makeImage(t, peers.ImageSpec{Tags: []string{"peertest-a", "peertest-b"}})
		wantTags(t, "CreateImage", tagged.Tags, "peertest-a", "peertest-b")
		wantTags(t, "GetImage", s.mustGetImage(t, tagged.ID).Tags, "peertest-a", "peertest-b")
		updated, err := s.c.UpdateImage(t.Context(), tagged.ID, peers.ImagePatch{AddTags: []string{"peertest-c"}, RemoveTags: []string{"peertest-a"}})
		if err != nil {
			t.Fatalf("UpdateImage tags: %v", err)
		}
		wantTags(t, "UpdateImage", updated.Tags, "peertest-b", "peertest-c")
		wantTags(t, "GetImage after UpdateImage", s.mustGetImage(t, tagged.ID).Tags, "peertest-b", "peertest-c")
		meta := tagged.Properties
		l, err := s.c.ListImages(t.Context(), peers.ListOptions{Metadata: map[string]string{peers.MetaID: meta[peers.MetaID]}})
		if err != nil || len(l) != 1 {
			t.Fatalf("ListImages by MetaID = %d images, %v; want the tagged image", len(l), err)
		}
		wantTags(t, "ListImages", l[0].Tags, "peertest-b", "peertest-c")
	})

	t.Run("Visibility", func(t *testing.T) {
		// Unset is shared in Glance since Image API v2.5, private before.
		plain := s.makeImage(t, peers.ImageSpec{})
		if plain.Visibility != "shared" && plain.Visibility != "private" {
			t.Fatalf("CreateImage without a visibility = %q, want shared (or private, before Image API v2.5)", plain.Visibility)
		}
		// public is left out: Glance's default policy keeps it for admins.
		for _, v := range []string{"private", "shared", "community"} {
			got := s.makeImage(t, peers.ImageSpec{Visibility: v})
			if got.Visibility != v || s.mustGetImage(t, got.ID).Visibility != v {
				t.Fatalf("CreateImage with visibility %s gave %q", v, got.Visibility)
			}
		}
		for _, v := range []string{"shared", "community", "private"} {
			updated, err := s.c.UpdateImage(t.Context(), plain.ID, peers.ImagePatch{Visibility: &v})
			if err != nil {
				t.Fatalf("UpdateImage visibility %s: %v", v, err)
			}
			if got := s.mustGetImage(t, plain.ID).Visibility; updated.Visibility != v || got != v {
				t.Fatalf("UpdateImage visibility %s gave %q, then GetImage %q", v, updated.Visibility, got)
			}
		}
		bad := "everyone"
		_, err := s.c.UpdateImage(t.Context(), plain.ID, peers.ImagePatch{Visibility: &bad})
		wantErr(t, "UpdateImage to an unknown visibility", err, peers.ErrInvalid)
	})

	t.Run("Delete", func(t *testing.T) {
		if err := s.c.DeleteImage(t.Context(), img.ID); err != nil {
			t.Fatalf("DeleteImage: %v", err)
		}
		if err := s.pollGone("image "+img.ID, s.imageStatus(img.ID)); err != nil {
			t.Fatal(err)
		}
		l, err := s.c.ListImages(t.Context(), peers.ListOptions{Metadata: map[string]string{peers.MetaID: meta[peers.MetaID]}})
		if err != nil || len(l) != 0 {
			t.Fatalf("ListImages after delete = %v, %v; want none", ids(l, func(x peers.Image) string { return x.ID }), err)
		}
		wantErr(t, "DeleteImage twice", s.c.DeleteImage(t.Context(), img.ID), peers.ErrNotFound)
	})
}

// wantTags fails t unless got holds exactly want, in any order.
func wantTags(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	sorted := slices.Sorted(slices.Values(got))
	if !slices.Equal(sorted, slices.Sorted(slices.Values(want))) {
		t.Fatalf("%s: tags %v, want %v (in any order)", what, got, want)
	}
}

func (s *suite) mustGetImage(t *testing.T, id string) peers.Image {
	t.Helper()
	img, err := s.c.GetImage(t.Context(), id)
	if err != nil {
		t.Fatalf("GetImage(%s): %v", id, err)
	}
	return img
}

// testImageRefusals registers images Glance refuses with 400.
func (s *suite) testImageRefusals(t *testing.T) {
	cases := []struct {
		name string
		spec peers.ImageSpec
	}{
		{"UnknownDiskFormat", peers.ImageSpec{DiskFormat: "floppy", ContainerFormat: "bare"}},
		{"UnknownContainerFormat", peers.ImageSpec{DiskFormat: "raw", ContainerFormat: "crate"}},
		{"IDNotAUUID", peers.ImageSpec{ID: "not-a-uuid", DiskFormat: "raw", ContainerFormat: "bare"}},
		{"UnknownVisibility", peers.ImageSpec{DiskFormat: "raw", ContainerFormat: "bare", Visibility: "everyone"}},
		{"NegativeMinRAM", peers.ImageSpec{DiskFormat: "raw", ContainerFormat: "bare", MinRAMMiB: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Name, spec.Project, spec.Properties = s.name("bad"), s.fx.Project, s.meta()
			img, err := s.c.CreateImage(t.Context(), spec)
			if err == nil {
				s.cleanupImage(t, img.ID)
			}
			wantErr(t, "CreateImage "+tc.name, err, peers.ErrInvalid)
		})
	}
	t.Run("UnknownImage", func(t *testing.T) {
		_, err := s.c.GetImage(t.Context(), "00000000-0000-4000-8000-0000000000ab")
		wantErr(t, "GetImage of an unknown image", err, peers.ErrNotFound)
		wantErr(t, "DeleteImage of an unknown image", s.c.DeleteImage(t.Context(), "00000000-0000-4000-8000-0000000000ab"), peers.ErrNotFound)
	})
}
