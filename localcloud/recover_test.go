package localcloud_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/localcloud/localcloudtest"
	"github.com/cloudmux/cloudmux/peers"
)

var fastPoll = localcloudtest.Poll{Timeout: 15 * time.Second, Every: time.Millisecond}

// reopen builds a second Cloud on cfg's data directory and drv's hosts, as
// a restarted process would, and recovers it.
func reopen(t *testing.T, cfg localcloud.Config, drv *fake.Driver) (*localcloud.Cloud, localcloud.Recovery) {
	t.Helper()
	c, err := localcloud.New(cfg, drv, testLogger(t))
	if err != nil {
		t.Fatalf("New on the old data directory: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	rec, err := c.Recover(t.Context())
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	t.Logf("recovery: %+v", rec)
	return c, rec
}

// crashable builds a seeded cloud over a fake; localcloud.Halt "crashes"
// it (it stops saving, as a dead process would), and it is closed at the
// test's end.
func crashable(t *testing.T) (localcloud.Config, *fake.Driver, *localcloud.Cloud, localcloud.Seeded) {
	t.Helper()
	cfg := oneHost(t)
	c, drv := newCloud(t, cfg)
	return cfg, drv, c, seed(t, c)
}

// TestRecoverEverything drops a cloud holding servers (running, stopped),
// volumes (attached, free), networks, subnets, ports, keypairs and images,
// and builds another on the same data directory and hosts: everything is
// back as it was, and usable.
func TestRecoverEverything(t *testing.T) {
	cfg, drv, c1, seeded := crashable(t)
	w := localcloudtest.Populate(t, c1, seeded, "42", true, fastPoll)
	localcloud.Halt(c1)

	c2, rec := reopen(t, cfg, drv)
	if len(rec.Errored)+len(rec.Adopted)+len(rec.Removed)+len(rec.Restored)+len(rec.Unknown)+len(rec.Resumed) > 0 {
		t.Errorf("recovery of a quiet cloud changed things: %+v", rec)
	}
	w.Check(t, c2)
	w.Exercise(t, c2, fastPoll)
	if err := c2.DeleteImage(t.Context(), seeded.ImageID); err != nil {
		t.Fatal(err)
	}
	if err := c2.DeleteSubnet(t.Context(), seeded.SubnetID); err != nil {
		t.Fatal(err)
	}
	if err := c2.DeleteNetwork(t.Context(), seeded.NetworkID); err != nil {
		t.Fatal(err)
	}
	fastPoll.WaitFor(t, "nothing left on the host", func() (bool, string) {
		inv := drv.Contents("host-a")
		return len(inv.Domains)+len(inv.Volumes)+len(inv.BaseVolumes)+len(inv.Networks) == 0, strings.Join(slices.Concat(inv.Domains, inv.Volumes, inv.BaseVolumes, inv.Networks), " ")
	})
}

// blockOnce makes the first op on the fake block until release, then fail;
// entered is closed when it blocks. Later ops pass.
func blockOnce(drv *fake.Driver, op fake.Op) (entered <-chan struct{}, release func()) {
	entered, finish := holdOnce(drv, op)
	return entered, func() { finish(false) }
}

// holdOnce is blockOnce whose release says whether the op then fails or
// goes ahead (the host did it, the process that asked never learnt).
func holdOnce(drv *fake.Driver, op fake.Op) (entered <-chan struct{}, release func(pass bool)) {
	in, out := make(chan struct{}), make(chan bool, 1)
	var once sync.Once
	drv.InjectFault(func(o fake.Op, host, id string) error {
		if o != op {
			return nil
		}
		first := false
		once.Do(func() { first = true })
		if !first {
			return nil
		}
		close(in)
		if <-out {
			return nil
		}
		return errors.New("the process that asked is gone")
	})
	var ro sync.Once
	return in, func(pass bool) { ro.Do(func() { out <- pass }) }
}

// TestRecoverInterrupted crashes a cloud in the middle of an operation and
// checks what its successor makes of it.
func TestRecoverInterrupted(t *testing.T) {
	t.Run("UploadKilled", func(t *testing.T) {
		cfg, drv, c1, _ := crashable(t)
		img := queuedImage(t, c1)
		pr, pw := io.Pipe()
		t.Cleanup(func() { _ = pw.CloseWithError(errors.New("test over")) })
		go func() { _ = c1.UploadImage(context.Background(), img.ID, pr, -1) }()
		if _, err := pw.Write(make([]byte, 4096)); err != nil { // the upload is under way
			t.Fatal(err)
		}
		localcloud.Halt(c1)
		partial, _ := filepath.Glob(filepath.Join(cfg.DataDir, "images", ".upload-*"))
		if len(partial) != 1 {
			t.Fatalf("partial uploads before the restart: %v", partial)
		}
		c2, _ := reopen(t, cfg, drv)
		got, err := c2.GetImage(t.Context(), img.ID)
		if err != nil || got.Status != peers.ImageKilled {
			t.Fatalf("image after the restart = %s, %v; want killed", got.Status, err)
		}
		if _, err := os.Stat(partial[0]); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("partial upload %s still there: %v", partial[0], err)
		}
	})
	t.Run("BuildAndBaseUpload", func(t *testing.T) {
		cfg, drv, c1, seeded := crashable(t)
		entered, release := blockOnce(drv, fake.OpUploadVolume)
		t.Cleanup(release)
		srv, err := bootFlavor(t, c1, seeded.ImageID, "42", "")
		if err != nil {
			t.Fatal(err)
		}
		<-entered // the base volume exists, its upload is cut here
		localcloud.Halt(c1)
		c2, rec := reopen(t, cfg, drv)
		got, err := c2.GetServer(t.Context(), srv.ID)
		if err != nil || got.Status != peers.ServerError || !strings.Contains(got.Fault, "interrupted") {
			t.Fatalf("server after the restart = %s %q, %v; want ERROR, build interrupted", got.Status, got.Fault, err)
		}
		if !slices.ContainsFunc(rec.Removed, func(r string) bool { return strings.Contains(r, localcloud.BaseImageVolume(seeded.ImageID)) }) {
			t.Errorf("the half-uploaded base volume was not removed: %+v", rec)
		}
		if inv := drv.Contents("host-a"); len(inv.BaseVolumes) != 0 {
			t.Errorf("base volumes left: %v", inv.BaseVolumes)
		}
		if err := c2.DeleteServer(t.Context(), srv.ID); err != nil {
			t.Fatal(err)
		}
		waitServerGone(t, c2, srv.ID)
		// The address and capacity it held are free again.
		capa, err := c2.Capacity(t.Context())
		if err != nil || capa.Instances.Used != 0 || capa.VCPUs.Used != 0 {
			t.Errorf("capacity after deleting the broken server = %+v, %v", capa, err)
		}
	})
	t.Run("DeleteResumed", func(t *testing.T) {
		cfg, drv, c1, seeded := crashable(t)
		srv, err := bootFlavor(t, c1, seeded.ImageID, "42", "")
		if err != nil {
			t.Fatal(err)
		}
		waitServer(t, c1, srv.ID, peers.ServerActive)
		entered, release := blockOnce(drv, fake.OpUndefine)
		t.Cleanup(release)
		if err := c1.DeleteServer(t.Context(), srv.ID); err != nil {
			t.Fatal(err)
		}
		<-entered
		localcloud.Halt(c1)
		c2, rec := reopen(t, cfg, drv)
		if !slices.Contains(rec.Resumed, "server "+srv.ID) {
			t.Errorf("delete not resumed: %+v", rec)
		}
		waitServerGone(t, c2, srv.ID)
		if inv := drv.Contents("host-a"); len(inv.Domains)+len(inv.Volumes) != 0 {
			t.Errorf("left on the host: %+v", inv)
		}
	})
	t.Run("DomainGone", func(t *testing.T) {
		cfg, drv, c1, seeded := crashable(t)
		srv, err := bootFlavor(t, c1, seeded.ImageID, "42", "")
		if err != nil {
			t.Fatal(err)
		}
		waitServer(t, c1, srv.ID, peers.ServerActive)
		localcloud.Halt(c1)
		ctx := t.Context()
		if err := errors.Join(drv.DestroyDomain(ctx, "host-a", srv.ID), drv.UndefineDomain(ctx, "host-a", srv.ID)); err != nil {
			t.Fatal(err)
		}
		c2, rec := reopen(t, cfg, drv)
		got, err := c2.GetServer(ctx, srv.ID)
		if err != nil || got.Status != peers.ServerError || !slices.Contains(rec.Errored, "server "+srv.ID) {
			t.Fatalf("server whose domain vanished = %s %q, %v (recovery %+v); want ERROR", got.Status, got.Fault, err, rec)
		}
		if err := c2.ServerAction(ctx, srv.ID, peers.ActionHardReboot); !errors.Is(err, peers.ErrConflict) {
			t.Errorf("hard reboot without a domain = %v, want ErrConflict", err)
		}
		if err := c2.DeleteServer(ctx, srv.ID); err != nil {
			t.Fatal(err)
		}
		waitServerGone(t, c2, srv.ID)
		if inv := drv.Contents("host-a"); len(inv.Volumes) != 0 {
			t.Errorf("root disk left: %v", inv.Volumes)
		}
	})
	t.Run("RecordLost", func(t *testing.T) {
		// A state file lost (or older than the hosts): a new data
		// directory, the same hosts.
		cfg, drv, c1, seeded := crashable(t)
		srv, err := c1.CreateServer(t.Context(), peers.ServerSpec{Name: "orphan", Project: "op", FlavorID: "42", ImageID: seeded.ImageID,
			Metadata: map[string]string{"broker_id": "b-7"}, Networks: []peers.NetworkAttachment{{NetworkID: seeded.NetworkID}}})
		if err != nil {
			t.Fatal(err)
		}
		waitServer(t, c1, srv.ID, peers.ServerActive)
		lonely, err := c1.CreateNetwork(t.Context(), peers.NetworkSpec{Name: "lonely", Project: "op"})
		if err != nil {
			t.Fatal(err)
		}
		localcloud.Halt(c1)
		cfg.DataDir = t.TempDir()
		c2, rec := reopen(t, cfg, drv)
		got, err := c2.GetServer(t.Context(), srv.ID)
		if err != nil || got.Status != peers.ServerError || got.Name != "orphan" || got.Project != "op" || got.Metadata["broker_id"] != "b-7" {
			t.Fatalf("adopted server = %+v, %v; want ERROR with its name, project and metadata", got, err)
		}
		if !slices.Contains(rec.Adopted, "server "+srv.ID+" on host host-a") {
			t.Errorf("not reported adopted: %+v", rec)
		}
		if inv := drv.Contents("host-a"); slices.Contains(inv.Networks, lonely.ID) || !slices.Contains(inv.Networks, seeded.NetworkID) {
			t.Errorf("networks after recovery = %v: want %s (no record, unused) gone and %s (the adopted domain's) kept", inv.Networks, lonely.ID, seeded.NetworkID)
		}
		if err := c2.DeleteServer(t.Context(), srv.ID); err != nil {
			t.Fatal(err)
		}
		waitServerGone(t, c2, srv.ID)
		if inv := drv.Contents("host-a"); len(inv.Domains)+len(inv.Volumes) != 0 {
			t.Errorf("left on the host: %+v", inv)
		}
	})
	t.Run("AttachCutBeforeTheHost", func(t *testing.T) {
		cfg, drv, c1, seeded := crashable(t)
		srv, vol := serverAndVolume(t, c1, seeded)
		entered, release := holdOnce(drv, fake.OpAttach)
		t.Cleanup(func() { release(false) })
		if _, err := c1.AttachVolume(t.Context(), srv, vol); err != nil {
			t.Fatal(err)
		}
		<-entered
		localcloud.Halt(c1)
		c2, _ := reopen(t, cfg, drv)
		v, err := c2.GetVolume(t.Context(), vol)
		if err != nil || v.Status != peers.VolumeAvailable || len(v.Attachments) != 0 {
			t.Fatalf("volume whose attach never reached the host = %+v, %v; want available", v, err)
		}
		if _, err := c2.AttachVolume(t.Context(), srv, vol); err != nil {
			t.Fatalf("attaching again after recovery: %v", err)
		}
		waitVolume(t, c2, vol, peers.VolumeInUse)
	})
	t.Run("AttachDoneOnTheHost", func(t *testing.T) {
		cfg, drv, c1, seeded := crashable(t)
		srv, vol := serverAndVolume(t, c1, seeded)
		entered, release := holdOnce(drv, fake.OpAttach)
		if _, err := c1.AttachVolume(t.Context(), srv, vol); err != nil {
			t.Fatal(err)
		}
		<-entered
		localcloud.Halt(c1)
		release(true) // the host attaches it; the dead process never records it
		fastPoll.WaitFor(t, "the disk attached on the host", func() (bool, string) {
			info, _ := drv.Volume("host-a", vol)
			return info.AttachedTo == srv, info.AttachedTo
		})
		c2, _ := reopen(t, cfg, drv)
		v, err := c2.GetVolume(t.Context(), vol)
		s, _ := c2.GetServer(t.Context(), srv)
		if err != nil || v.Status != peers.VolumeInUse || len(v.Attachments) != 1 || v.Attachments[0].ServerID != srv || !slices.Contains(s.Volumes, vol) {
			t.Fatalf("volume attached on the host = %+v (server's volumes %v), %v; want in-use on %s", v, s.Volumes, err, srv)
		}
		if err := c2.DetachVolume(t.Context(), srv, vol); err != nil {
			t.Fatalf("detach after recovery: %v", err)
		}
		waitVolume(t, c2, vol, peers.VolumeAvailable)
	})
	t.Run("ExtendDoneOnTheHost", func(t *testing.T) {
		cfg, drv, c1, seeded := crashable(t)
		_, vol := serverAndVolume(t, c1, seeded)
		entered, release := holdOnce(drv, fake.OpResizeVolume)
		if _, err := c1.ExtendVolume(t.Context(), vol, 3); err != nil {
			t.Fatal(err)
		}
		<-entered
		localcloud.Halt(c1)
		release(true)
		fastPoll.WaitFor(t, "the volume grown on the host", func() (bool, string) {
			info, _ := drv.Volume("host-a", vol)
			return info.Bytes() == 3<<30, fmt.Sprint(info.Bytes())
		})
		c2, _ := reopen(t, cfg, drv)
		v, err := c2.GetVolume(t.Context(), vol)
		if err != nil || v.Status != peers.VolumeAvailable || v.SizeGiB != 3 {
			t.Fatalf("volume extended on the host = %+v, %v; want available, 3 GiB", v, err)
		}
		capa, err := c2.Capacity(t.Context())
		if err != nil || capa.DiskGiB.Used != 1+3 { // the m1.nano root disk and the volume
			t.Errorf("disk used after recovery = %d, %v; want 4 GiB", capa.DiskGiB.Used, err)
		}
	})
	t.Run("NetworkCreationCut", func(t *testing.T) {
		cfg, drv, c1, _ := crashable(t)
		entered, release := blockOnce(drv, fake.OpCreateNetwork)
		t.Cleanup(release)
		go func() { _, _ = c1.CreateNetwork(context.Background(), peers.NetworkSpec{Name: "half", Project: "p"}) }()
		<-entered
		localcloud.Halt(c1)
		c2, _ := reopen(t, cfg, drv)
		fastPoll.WaitFor(t, "the half-made network forgotten", func() (bool, string) {
			nets, err := c2.ListNetworks(t.Context(), peers.ListOptions{Project: "p"})
			return err == nil && len(nets) == 0, fmt.Sprint(nets, err)
		})
	})
	t.Run("DelayedDeleteRescheduled", func(t *testing.T) {
		cfg := oneHost(t)
		cfg.ImageDeleteDelay = 50 * time.Millisecond
		c1, drv := newCloud(t, cfg)
		img := activeImage(t, c1)
		if err := c1.DeleteImage(t.Context(), img.ID); err != nil {
			t.Fatal(err)
		}
		localcloud.Halt(c1)
		_ = c1.Close() // its own scrub timer stops: only the new cloud's may finish the delete
		c2, _ := reopen(t, cfg, drv)
		fastPoll.WaitFor(t, "the delayed delete finished by the new cloud", func() (bool, string) {
			d, err := c2.DeletedImage(t.Context(), img.ID)
			return d.Status == peers.ImageDeleted, fmt.Sprint(d.Status, err)
		})
		if files := imageFiles(t, cfg.DataDir); len(files) != 0 {
			t.Errorf("image files left: %v", files)
		}
	})
	t.Run("NetworkMissingOnHost", func(t *testing.T) {
		cfg, drv, c1, _ := crashable(t)
		n, _ := makeNet(t, c1, "10.9.0.0/24")
		localcloud.Halt(c1)
		if err := drv.DeleteNetwork(t.Context(), "host-a", n.ID); err != nil {
			t.Fatal(err)
		}
		_, rec := reopen(t, cfg, drv)
		if !slices.Contains(drv.Contents("host-a").Networks, n.ID) || len(rec.Restored) != 1 {
			t.Errorf("network %s not restored on the host: %+v", n.ID, rec)
		}
	})
}

// TestCorruptStateRefused: a state file that cannot be read stops New
// rather than letting an empty cloud overwrite it.
func TestCorruptStateRefused(t *testing.T) {
	cfg := oneHost(t)
	if err := os.WriteFile(filepath.Join(cfg.DataDir, "state.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := localcloud.New(cfg, fake.New(cfg.Hosts...), testLogger(t)); err == nil {
		t.Fatal("New over a corrupt state file succeeded")
	}
}

// TestDataDirInUse: two clouds on one data directory would remove each
// other's uploads in progress and overwrite each other's state, so the
// second is refused until the first is closed.
func TestDataDirInUse(t *testing.T) {
	cfg := oneHost(t)
	c1, drv := newCloud(t, cfg)
	if _, err := localcloud.New(cfg, drv, testLogger(t)); !errors.Is(err, peers.ErrConflict) {
		t.Fatalf("a second cloud on the same data directory: %v, want ErrConflict", err)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	c2, err := localcloud.New(cfg, drv, testLogger(t))
	if err != nil {
		t.Fatalf("New after the first cloud closed: %v", err)
	}
	_ = c2.Close()
}

// serverAndVolume makes an ACTIVE server and an available 1 GiB volume.
func serverAndVolume(t *testing.T, c *localcloud.Cloud, seeded localcloud.Seeded) (string, string) {
	t.Helper()
	srv, err := bootFlavor(t, c, seeded.ImageID, "42", "")
	if err != nil {
		t.Fatal(err)
	}
	vol, err := c.CreateVolume(t.Context(), peers.VolumeSpec{Name: "v", Project: "p", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitServer(t, c, srv.ID, peers.ServerActive)
	waitVolume(t, c, vol.ID, peers.VolumeAvailable)
	return srv.ID, vol.ID
}

func waitVolume(t *testing.T, c *localcloud.Cloud, id string, want peers.VolumeStatus) {
	t.Helper()
	waitFor(t, "volume "+id+" "+string(want), func() (bool, string) {
		v, err := c.GetVolume(context.Background(), id)
		return err == nil && v.Status == want, fmt.Sprint(v.Status, err)
	})
}
