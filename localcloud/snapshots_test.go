package localcloud_test

import (
	"testing"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// waitSnapshot polls until the snapshot is want.
func waitSnapshot(t *testing.T, c *localcloud.Cloud, id string, want peers.SnapshotStatus) {
	t.Helper()
	waitFor(t, "snapshot "+id+" "+string(want), func() (bool, string) {
		sn, err := c.GetSnapshot(t.Context(), id)
		return err == nil && sn.Status == want, string(sn.Status)
	})
}

// TestSnapshotCopies: a snapshot of a volume made from an image, and a
// volume made from that snapshot, hold the image's bytes (standalone
// copies in the host's pool, not overlays); they take the host's disk,
// survive a restart, and a volume with a snapshot is not deleted.
func TestSnapshotCopies(t *testing.T) {
	cfg, drv, c1, seeded := crashable(t)
	ctx := t.Context()
	vol, err := c1.CreateVolume(ctx, peers.VolumeSpec{Name: "src", Project: "p", SizeGiB: 1, ImageID: seeded.ImageID})
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, c1, vol.ID, peers.VolumeAvailable)
	sn, err := c1.CreateSnapshot(ctx, peers.SnapshotSpec{VolumeID: vol.ID, Name: "snap", Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshot(t, c1, sn.ID, peers.SnapshotAvailable)
	copyVol, err := c1.CreateVolume(ctx, peers.VolumeSpec{Name: "copy", Project: "p", SizeGiB: 3, SnapshotID: sn.ID})
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, c1, copyVol.ID, peers.VolumeAvailable)

	base, ok := drv.Volume("host-a", localcloud.BaseImageVolume(seeded.ImageID))
	if !ok || base.SHA256 == "" {
		t.Fatalf("the image's base volume = %+v, %v", base, ok)
	}
	tests := []struct {
		name, id string
		giB      int
	}{
		{"snapshot", sn.ID, 1},
		{"volume from the snapshot", copyVol.ID, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pv, ok := drv.Volume("host-a", tt.id)
			if !ok || pv.SHA256 != base.SHA256 || pv.BackingID != "" || pv.SizeGiB != tt.giB {
				t.Fatalf("pool volume = %+v (%v); want a standalone %d GiB copy of the image's bytes %s", pv, ok, tt.giB, base.SHA256)
			}
		})
	}
	if got, err := c1.GetVolume(ctx, copyVol.ID); err != nil || !got.Bootable || got.SnapshotID != sn.ID {
		t.Fatalf("volume from the snapshot = %+v, %v; want bootable, from snapshot %s", got, err, sn.ID)
	}
	capa, err := c1.Capacity(ctx)
	if err != nil || capa.DiskGiB.Used != 1+1+3 {
		t.Fatalf("disk used = %+v, %v; want 5 GiB (volume, snapshot, copy)", capa.DiskGiB, err)
	}

	localcloud.Halt(c1)
	c2, _ := reopen(t, cfg, drv)
	got, err := c2.GetSnapshot(ctx, sn.ID)
	if err != nil || got.Status != peers.SnapshotAvailable || got.VolumeID != vol.ID {
		t.Fatalf("snapshot after a restart = %+v, %v", got, err)
	}
	if err := c2.DeleteVolume(ctx, vol.ID); err == nil {
		t.Fatal("a volume with a snapshot was deleted")
	}
	if err := c2.DeleteSnapshot(ctx, sn.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "snapshot gone", func() (bool, string) {
		_, err := c2.GetSnapshot(ctx, sn.ID)
		return err != nil, "still there"
	})
	if err := c2.DeleteVolume(ctx, vol.ID); err != nil {
		t.Fatalf("the volume once its snapshot is gone: %v", err)
	}
}
