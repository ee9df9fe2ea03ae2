package peertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

func (s *suite) cleanupVolume(t *testing.T, id string) {
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		if err := s.c.DeleteVolume(ctx, id); err != nil {
			if !errors.Is(err, peers.ErrNotFound) {
				t.Errorf("cleanup: DeleteVolume(%s): %v", id, err)
			}
			return
		}
		if err := s.pollGone("cleanup: volume "+id, s.volumeStatus(id)); err != nil {
			t.Error(err)
		}
	})
}

func (s *suite) volumeStatus(id string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		v, err := s.c.GetVolume(ctx, id)
		return string(v.Status), err
	}
}

// waitVolume polls until the volume reaches want and cond (if any) holds;
// error ends the wait.
func (s *suite) waitVolume(t *testing.T, id string, want peers.VolumeStatus, cond func(peers.Volume) bool) peers.Volume {
	t.Helper()
	var v peers.Volume
	s.mustPoll(t, fmt.Sprintf("volume %s to become %s", id, want), func(ctx context.Context) (bool, string, error) {
		var err error
		v, err = s.c.GetVolume(ctx, id)
		if err != nil {
			return false, "", err
		}
		if v.Status == peers.VolumeError && want != peers.VolumeError {
			return false, string(v.Status), errors.New("volume went to error")
		}
		return v.Status == want && (cond == nil || cond(v)), fmt.Sprintf("%s, attachments %+v", v.Status, v.Attachments), nil
	})
	return v
}

func (s *suite) testVolumes(t *testing.T) {
	ctx := t.Context()
	meta := s.meta("peertest_role", "volume")
	spec := peers.VolumeSpec{Name: s.name("vol"), Description: "peertest volume", Project: s.fx.Project, SizeGiB: 1, Metadata: meta}
	vol, err := s.c.CreateVolume(ctx, spec)
	if errors.Is(err, peers.ErrNotSupported) {
		t.Skipf("the cloud has no block storage: %v", err)
	}
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	s.cleanupVolume(t, vol.ID)
	wantUUID(t, "CreateVolume", vol.ID)
	if vol.Status != peers.VolumeCreating {
		t.Fatalf("CreateVolume returned status %q, want %q (the contract: long operations return at once, transitional)", vol.Status, peers.VolumeCreating)
	}
	vol = s.waitVolume(t, vol.ID, peers.VolumeAvailable, nil)
	if vol.Name != spec.Name || vol.Project != s.fx.Project || vol.SizeGiB != 1 || len(vol.Attachments) != 0 || vol.CreatedAt.IsZero() {
		t.Fatalf("GetVolume = %+v\nwant name %q, project %q, 1 GiB, no attachments, a creation time", vol, spec.Name, s.fx.Project)
	}
	wantMetadata(t, "GetVolume", vol.Metadata, meta)
	t.Run("ListVolumes", func(t *testing.T) {
		s.checkListed(t, vol.ID, meta, func(ctx context.Context, o peers.ListOptions) ([]string, error) {
			l, err := s.c.ListVolumes(ctx, o)
			return ids(l, func(x peers.Volume) string { return x.ID }), err
		})
	})

	t.Run("FromImage", func(t *testing.T) {
		s.gap(t)
		img, err := s.c.GetImage(t.Context(), s.fx.ImageID)
		if err != nil {
			t.Fatalf("GetImage(%s): %v", s.fx.ImageID, err)
		}
		v, err := s.c.CreateVolume(t.Context(), peers.VolumeSpec{Name: s.name("bootvol"), Project: s.fx.Project, SizeGiB: max(1, img.MinDiskGiB), ImageID: img.ID, Metadata: s.meta()})
		if err != nil {
			t.Fatalf("CreateVolume from image %s: %v", img.ID, err)
		}
		s.cleanupVolume(t, v.ID)
		v = s.waitVolume(t, v.ID, peers.VolumeAvailable, nil)
		if !v.Bootable || v.SourceImageID != img.ID {
			t.Fatalf("volume from image = %+v, want bootable with source image %s", v, img.ID)
		}
	})

	// Attach needs a server; it also has to live where the volume can reach.
	t.Run("AttachDetach", func(t *testing.T) {
		net, _ := s.makeNetwork(t, "10.82.0.0/24")
		srv := s.bootServer(t, net.ID)
		att, err := s.c.AttachVolume(t.Context(), srv.ID, vol.ID)
		if err != nil {
			t.Fatalf("AttachVolume(%s, %s): %v", srv.ID, vol.ID, err)
		}
		if att.ServerID != srv.ID || att.VolumeID != vol.ID {
			t.Fatalf("AttachVolume = %+v, want server %s and volume %s", att, srv.ID, vol.ID)
		}
		attachedTo := func(v peers.Volume) bool {
			return slices.ContainsFunc(v.Attachments, func(a peers.VolumeAttachment) bool { return a.ServerID == srv.ID })
		}
		s.waitVolume(t, vol.ID, peers.VolumeInUse, attachedTo)
		s.waitServerVolumes(t, srv.ID, vol.ID, true)

		// Cinder answers 400 for deleting an in-use volume, Nova 400 for
		// attaching one again; the state is what is wrong.
		wantErr(t, "DeleteVolume of an in-use volume", s.c.DeleteVolume(t.Context(), vol.ID), peers.ErrConflict, peers.ErrInvalid)
		_, err = s.c.AttachVolume(t.Context(), srv.ID, vol.ID)
		wantErr(t, "AttachVolume of an in-use volume", err, peers.ErrConflict, peers.ErrInvalid)

		if err := s.c.DetachVolume(t.Context(), srv.ID, vol.ID); err != nil {
			t.Fatalf("DetachVolume(%s, %s): %v", srv.ID, vol.ID, err)
		}
		s.waitVolume(t, vol.ID, peers.VolumeAvailable, func(v peers.Volume) bool { return !attachedTo(v) })
		s.waitServerVolumes(t, srv.ID, vol.ID, false)

		_, err = s.c.AttachVolume(t.Context(), "00000000-0000-4000-8000-0000000000ad", vol.ID)
		wantErr(t, "AttachVolume to an unknown server", err, peers.ErrNotFound)
		_, err = s.c.AttachVolume(t.Context(), srv.ID, "00000000-0000-4000-8000-0000000000ae")
		wantErr(t, "AttachVolume of an unknown volume", err, peers.ErrNotFound, peers.ErrInvalid)
	})

	t.Run("Extend", func(t *testing.T) {
		s.gap(t)
		s.testExtendVolume(t)
	})

	t.Run("Delete", func(t *testing.T) {
		if err := s.c.DeleteVolume(t.Context(), vol.ID); err != nil {
			t.Fatalf("DeleteVolume(%s): %v", vol.ID, err)
		}
		if err := s.pollGone("volume "+vol.ID, s.volumeStatus(vol.ID)); err != nil {
			t.Fatal(err)
		}
		_, err := s.c.GetVolume(t.Context(), vol.ID)
		wantErr(t, "GetVolume after delete", err, peers.ErrNotFound)
	})
}

// waitServerVolumes polls until the server's Volumes does (or does not)
// list volumeID.
func (s *suite) waitServerVolumes(t *testing.T, serverID, volumeID string, want bool) {
	t.Helper()
	s.mustPoll(t, fmt.Sprintf("server %s to list volume %s: %v", serverID, volumeID, want), func(ctx context.Context) (bool, string, error) {
		srv, err := s.c.GetServer(ctx, serverID)
		if err != nil {
			return false, "", err
		}
		return slices.Contains(srv.Volumes, volumeID) == want, fmt.Sprintf("%s, volumes %v", srv.Status, srv.Volumes), nil
	})
}

// testExtendVolume grows an available volume, then an in-use one, and
// checks the refusals.
func (s *suite) testExtendVolume(t *testing.T) {
	ctx := t.Context()
	vol, err := s.c.CreateVolume(ctx, peers.VolumeSpec{Name: s.name("extvol"), Project: s.fx.Project, SizeGiB: 1, Metadata: s.meta()})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	s.cleanupVolume(t, vol.ID)
	s.waitVolume(t, vol.ID, peers.VolumeAvailable, nil)

	_, err = s.c.ExtendVolume(ctx, vol.ID, 1)
	wantErr(t, "ExtendVolume to the same size", err, peers.ErrInvalid)
	_, err = s.c.ExtendVolume(ctx, "00000000-0000-4000-8000-0000000000af", 5)
	wantErr(t, "ExtendVolume of an unknown volume", err, peers.ErrNotFound)

	got, err := s.c.ExtendVolume(ctx, vol.ID, 2)
	if errors.Is(err, peers.ErrNotSupported) {
		t.Skipf("the cloud cannot extend volumes: %v", err)
	}
	if err != nil {
		t.Fatalf("ExtendVolume(%s, 2) of an available volume: %v", vol.ID, err)
	}
	if got.ID != vol.ID {
		t.Fatalf("ExtendVolume returned volume %s, want %s", got.ID, vol.ID)
	}
	sized := func(n int) func(peers.Volume) bool { return func(v peers.Volume) bool { return v.SizeGiB == n } }
	s.waitVolume(t, vol.ID, peers.VolumeAvailable, sized(2))

	// In-use: the attached server's guest sees the new size live.
	net, _ := s.makeNetwork(t, "10.83.0.0/24")
	srv := s.bootServer(t, net.ID)
	if _, err := s.c.AttachVolume(ctx, srv.ID, vol.ID); err != nil {
		t.Fatalf("AttachVolume(%s, %s): %v", srv.ID, vol.ID, err)
	}
	s.waitVolume(t, vol.ID, peers.VolumeInUse, nil)
	if _, err := s.c.ExtendVolume(ctx, vol.ID, 3); err != nil {
		t.Fatalf("ExtendVolume(%s, 3) of an in-use volume: %v", vol.ID, err)
	}
	s.waitVolume(t, vol.ID, peers.VolumeInUse, sized(3))
	if err := s.c.DetachVolume(ctx, srv.ID, vol.ID); err != nil {
		t.Fatalf("DetachVolume(%s, %s): %v", srv.ID, vol.ID, err)
	}
	s.waitVolume(t, vol.ID, peers.VolumeAvailable, nil)
}
