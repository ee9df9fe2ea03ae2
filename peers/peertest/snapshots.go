package peertest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

// waitSnapshot polls until the snapshot is want; error ends the wait.
func (s *suite) waitSnapshot(t *testing.T, sn peers.Snapshots, id string, want peers.SnapshotStatus) peers.Snapshot {
	t.Helper()
	var got peers.Snapshot
	s.mustPoll(t, fmt.Sprintf("snapshot %s to become %s", id, want), func(ctx context.Context) (bool, string, error) {
		var err error
		got, err = sn.GetSnapshot(ctx, id)
		if err != nil {
			return false, "", err
		}
		if got.Status == peers.SnapshotError && want != peers.SnapshotError {
			return false, string(got.Status), errors.New("snapshot went to error")
		}
		return got.Status == want, string(got.Status), nil
	})
	return got
}

func (s *suite) cleanupSnapshot(t *testing.T, sn peers.Snapshots, id string) {
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		if err := sn.DeleteSnapshot(ctx, id); err != nil {
			if !errors.Is(err, peers.ErrNotFound) {
				t.Errorf("cleanup: DeleteSnapshot(%s): %v", id, err)
			}
			return
		}
		err := s.pollGone("cleanup: snapshot "+id, func(ctx context.Context) (string, error) {
			got, err := sn.GetSnapshot(ctx, id)
			return string(got.Status), err
		})
		if err != nil {
			t.Error(err)
		}
	})
}

// testSnapshots takes a snapshot of a volume, makes volumes from it and
// from the volume (a clone), and checks Cinder's rules: a volume with
// snapshots is not deleted, copies are at least as large as their
// source, an in-use volume needs force.
func (s *suite) testSnapshots(t *testing.T) {
	sn, ok := s.c.(peers.Snapshots)
	if !ok {
		t.Skip("the cloud has no snapshots (peers.Snapshots)")
	}
	ctx := t.Context()
	vol, err := s.c.CreateVolume(ctx, peers.VolumeSpec{Name: s.name("snapvol"), Project: s.fx.Project, SizeGiB: 1, Metadata: s.meta()})
	if err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	s.cleanupVolume(t, vol.ID)
	s.waitVolume(t, vol.ID, peers.VolumeAvailable, nil)

	meta := s.meta("peertest_role", "snapshot")
	spec := peers.SnapshotSpec{VolumeID: vol.ID, Name: s.name("snap"), Description: "peertest snapshot", Project: s.fx.Project, Metadata: meta}
	snap, err := sn.CreateSnapshot(ctx, spec)
	if errors.Is(err, peers.ErrNotSupported) {
		t.Skipf("the cloud cannot take snapshots: %v", err)
	}
	if err != nil {
		t.Fatalf("CreateSnapshot: %v", err)
	}
	s.cleanupSnapshot(t, sn, snap.ID)
	wantUUID(t, "CreateSnapshot", snap.ID)
	snap = s.waitSnapshot(t, sn, snap.ID, peers.SnapshotAvailable)
	if snap.Name != spec.Name || snap.Description != spec.Description || snap.VolumeID != vol.ID || snap.SizeGiB != 1 || snap.Project != s.fx.Project || snap.CreatedAt.IsZero() {
		t.Fatalf("GetSnapshot = %+v\nwant name %q, volume %s, 1 GiB, project %q, a creation time", snap, spec.Name, vol.ID, s.fx.Project)
	}
	wantMetadata(t, "GetSnapshot", snap.Metadata, meta)
	t.Run("ListSnapshots", func(t *testing.T) {
		s.checkListed(t, snap.ID, meta, func(ctx context.Context, o peers.ListOptions) ([]string, error) {
			l, err := sn.ListSnapshots(ctx, o)
			return ids(l, func(x peers.Snapshot) string { return x.ID }), err
		})
	})
	t.Run("NotAVolume", func(t *testing.T) {
		_, err := s.c.GetVolume(t.Context(), snap.ID)
		wantErr(t, "GetVolume of a snapshot's ID", err, peers.ErrNotFound)
		_, err = sn.GetSnapshot(t.Context(), vol.ID)
		wantErr(t, "GetSnapshot of a volume's ID", err, peers.ErrNotFound)
	})
	t.Run("Refusals", func(t *testing.T) {
		_, err := sn.CreateSnapshot(t.Context(), peers.SnapshotSpec{VolumeID: "00000000-0000-4000-8000-0000000000b1", Name: s.name("snap"), Project: s.fx.Project})
		wantErr(t, "CreateSnapshot of an unknown volume", err, peers.ErrNotFound, peers.ErrInvalid)
		_, err = sn.GetSnapshot(t.Context(), "00000000-0000-4000-8000-0000000000b2")
		wantErr(t, "GetSnapshot of an unknown snapshot", err, peers.ErrNotFound)
		wantErr(t, "DeleteSnapshot of an unknown snapshot", sn.DeleteSnapshot(t.Context(), "00000000-0000-4000-8000-0000000000b3"), peers.ErrNotFound)
		_, err = s.c.CreateVolume(t.Context(), peers.VolumeSpec{Name: s.name("fromsnap"), Project: s.fx.Project, SizeGiB: 1, SnapshotID: "00000000-0000-4000-8000-0000000000b4", Metadata: s.meta()})
		wantErr(t, "CreateVolume from an unknown snapshot", err, peers.ErrNotFound, peers.ErrInvalid)
		wantErr(t, "DeleteVolume of a volume with a snapshot", s.c.DeleteVolume(t.Context(), vol.ID), peers.ErrConflict, peers.ErrInvalid)
	})

	for _, tc := range []struct {
		name string
		spec peers.VolumeSpec
		want func(peers.Volume) bool
	}{
		{"FromSnapshot", peers.VolumeSpec{SnapshotID: snap.ID, SizeGiB: 2}, func(v peers.Volume) bool { return v.SnapshotID == snap.ID && v.SizeGiB == 2 }},
		{"Clone", peers.VolumeSpec{SourceVolumeID: vol.ID, SizeGiB: 1}, func(v peers.Volume) bool { return v.SourceVolumeID == vol.ID && v.SizeGiB == 1 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			spec.Name, spec.Project, spec.Metadata = s.name("copy"), s.fx.Project, s.meta()
			v, err := s.c.CreateVolume(t.Context(), spec)
			if err != nil {
				t.Fatalf("CreateVolume %+v: %v", spec, err)
			}
			s.cleanupVolume(t, v.ID)
			v = s.waitVolume(t, v.ID, peers.VolumeAvailable, nil)
			if !tc.want(v) {
				t.Fatalf("the copy = %+v", v)
			}
		})
	}

	t.Run("InUse", func(t *testing.T) {
		s.gap(t)
		net, _ := s.makeNetwork(t, "10.84.0.0/24")
		srv := s.bootServer(t, net.ID)
		if _, err := s.c.AttachVolume(t.Context(), srv.ID, vol.ID); err != nil {
			t.Fatalf("AttachVolume(%s, %s): %v", srv.ID, vol.ID, err)
		}
		s.waitVolume(t, vol.ID, peers.VolumeInUse, nil)
		_, err := sn.CreateSnapshot(t.Context(), peers.SnapshotSpec{VolumeID: vol.ID, Name: s.name("snap"), Project: s.fx.Project, Metadata: s.meta()})
		wantErr(t, "CreateSnapshot of an in-use volume without force", err, peers.ErrConflict, peers.ErrInvalid)
		forced, err := sn.CreateSnapshot(t.Context(), peers.SnapshotSpec{VolumeID: vol.ID, Name: s.name("snap"), Project: s.fx.Project, Force: true, Metadata: s.meta()})
		if err != nil {
			t.Fatalf("CreateSnapshot of an in-use volume, forced: %v", err)
		}
		s.cleanupSnapshot(t, sn, forced.ID)
		s.waitSnapshot(t, sn, forced.ID, peers.SnapshotAvailable)
		if err := s.c.DetachVolume(t.Context(), srv.ID, vol.ID); err != nil {
			t.Fatalf("DetachVolume(%s, %s): %v", srv.ID, vol.ID, err)
		}
		s.waitVolume(t, vol.ID, peers.VolumeAvailable, nil)
	})

	t.Run("TooSmall", func(t *testing.T) {
		big, err := s.c.CreateVolume(t.Context(), peers.VolumeSpec{Name: s.name("big"), Project: s.fx.Project, SizeGiB: 2, Metadata: s.meta()})
		if err != nil {
			t.Fatalf("CreateVolume: %v", err)
		}
		s.cleanupVolume(t, big.ID)
		s.waitVolume(t, big.ID, peers.VolumeAvailable, nil)
		_, err = s.c.CreateVolume(t.Context(), peers.VolumeSpec{Name: s.name("small"), Project: s.fx.Project, SizeGiB: 1, SourceVolumeID: big.ID, Metadata: s.meta()})
		wantErr(t, "CreateVolume smaller than its source", err, peers.ErrInvalid)
	})

	t.Run("Delete", func(t *testing.T) {
		if err := sn.DeleteSnapshot(t.Context(), snap.ID); err != nil {
			t.Fatalf("DeleteSnapshot(%s): %v", snap.ID, err)
		}
		err := s.pollGone("snapshot "+snap.ID, func(ctx context.Context) (string, error) {
			got, err := sn.GetSnapshot(ctx, snap.ID)
			return string(got.Status), err
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}
