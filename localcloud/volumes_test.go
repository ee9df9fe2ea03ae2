package localcloud_test

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
)

func TestExtendVolume(t *testing.T) {
	cfg := oneHost(t)
	cfg.Hosts[0].DiskGiB = 10
	c, drv := newCloud(t, cfg)
	ctx := t.Context()
	vol, err := c.CreateVolume(ctx, peers.VolumeSpec{Name: "v", Project: "p", SizeGiB: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitVol := func(want peers.VolumeStatus, size int) {
		t.Helper()
		waitFor(t, "volume", func() (bool, string) {
			v, err := c.GetVolume(context.Background(), vol.ID)
			return err == nil && v.Status == want && v.SizeGiB == size, string(v.Status) + " " + errString(err)
		})
	}
	waitVol(peers.VolumeAvailable, 2)

	if _, err := c.ExtendVolume(ctx, vol.ID, 2); !errors.Is(err, peers.ErrInvalid) {
		t.Fatalf("extend to the same size = %v, want ErrInvalid", err)
	}
	if _, err := c.ExtendVolume(ctx, vol.ID, 11); !errors.Is(err, peers.ErrCapacity) {
		t.Fatalf("extend past the host's disk = %v, want ErrCapacity", err)
	}

	// A driver failure keeps the old size and gives the disk back.
	drv.InjectFault(func(op fake.Op, _, _ string) error {
		if op == fake.OpResizeVolume {
			return errors.New("disk on fire")
		}
		return nil
	})
	v, err := c.ExtendVolume(ctx, vol.ID, 5)
	if err != nil || v.Status != "extending" {
		t.Fatalf("ExtendVolume = %+v, %v; want it extending", v, err)
	}
	waitVol(peers.VolumeAvailable, 2)
	if capa, _ := c.Capacity(ctx); capa.DiskGiB.Used != 2 {
		t.Fatalf("disk used after a failed extend = %d, want 2", capa.DiskGiB.Used)
	}
	drv.InjectFault(nil)

	if _, err := c.ExtendVolume(ctx, vol.ID, 5); err != nil {
		t.Fatal(err)
	}
	waitVol(peers.VolumeAvailable, 5)
	if pv, _ := drv.Volume("host-a", vol.ID); pv.SizeGiB != 5 {
		t.Fatalf("pool volume = %+v, want 5 GiB", pv)
	}
	if capa, _ := c.Capacity(ctx); capa.DiskGiB.Used != 5 {
		t.Fatalf("disk used = %d, want 5", capa.DiskGiB.Used)
	}
	if err := c.DeleteVolume(ctx, vol.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "volume gone", func() (bool, string) {
		_, err := c.GetVolume(context.Background(), vol.ID)
		return errors.Is(err, peers.ErrNotFound), errString(err)
	})
	if capa, _ := c.Capacity(ctx); capa.DiskGiB.Used != 0 {
		t.Fatalf("disk used after delete = %d, want 0", capa.DiskGiB.Used)
	}
	if _, err := c.ExtendVolume(ctx, vol.ID, 6); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("extend of a deleted volume = %v, want ErrNotFound", err)
	}
}
