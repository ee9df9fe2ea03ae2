package localcloud_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
)

func TestBuildFailure(t *testing.T) {
	boom := errors.New("host on fire")
	for _, op := range []fake.Op{fake.OpCreateVolume, fake.OpUploadVolume, fake.OpDefine, fake.OpStart, fake.OpState} {
		t.Run(string(op), func(t *testing.T) {
			c, drv := newCloud(t, oneHost(t))
			img := seed(t, c).ImageID
			n, _ := makeNet(t, c, "10.6.0.0/24")
			drv.InjectFault(func(o fake.Op, host, id string) error {
				if o == op {
					return boom
				}
				return nil
			})
			srv, err := c.CreateServer(t.Context(), peers.ServerSpec{Name: "s", Project: "p", FlavorID: "1", ImageID: img, Networks: []peers.NetworkAttachment{{NetworkID: n.ID}}})
			if err != nil {
				t.Fatalf("CreateServer: %v (a driver failure shows later, as ERROR)", err)
			}
			srv = waitServer(t, c, srv.ID, peers.ServerError)
			if !strings.Contains(srv.Fault, "host on fire") {
				t.Fatalf("fault = %q, want it to carry the driver's error", srv.Fault)
			}
			if capa, _ := c.Capacity(t.Context()); capa.Instances.Used != 0 || capa.RAMMiB.Used != 0 {
				t.Fatalf("capacity with a failed build: %+v; want it given back", capa)
			}
			if inv := drv.Contents("host-a"); len(inv.Domains) != 0 || len(inv.Volumes) != 0 {
				t.Fatalf("host after a failed build: %+v; want the half-built domain and disk removed", inv)
			}
			drv.InjectFault(nil)
			if err := c.DeleteServer(t.Context(), srv.ID); err != nil {
				t.Fatal(err)
			}
			waitServerGone(t, c, srv.ID)
			if ports, _ := c.ListPorts(t.Context(), peers.ListOptions{}); len(ports) != 0 {
				t.Fatalf("ports after deleting the failed server: %d, want 0", len(ports))
			}
		})
	}
}

func TestDeleteDuringBuild(t *testing.T) {
	c, drv := newCloud(t, oneHost(t))
	img := seed(t, c).ImageID
	entered, release := make(chan struct{}), make(chan struct{})
	// The fault blocks the boot inside DefineDomain until released.
	drv.InjectFault(func(o fake.Op, host, id string) error {
		if o == fake.OpDefine {
			close(entered)
			<-release
		}
		return nil
	})
	srv, err := c.CreateServer(t.Context(), peers.ServerSpec{Name: "s", Project: "p", FlavorID: "1", ImageID: img})
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	if err := c.DeleteServer(t.Context(), srv.ID); err != nil {
		t.Fatalf("DeleteServer during BUILD: %v", err)
	}
	if got, err := c.GetServer(t.Context(), srv.ID); err != nil || got.Status != peers.ServerBuild {
		t.Fatalf("server with a delete waiting for its boot = %+v, %v; want still BUILD", got, err)
	}
	if err := c.ServerAction(t.Context(), srv.ID, peers.ActionStop); !errors.Is(err, peers.ErrConflict) {
		t.Fatalf("stop during BUILD = %v, want ErrConflict", err)
	}
	close(release)
	waitServerGone(t, c, srv.ID)
	drv.InjectFault(nil)
	if inv := drv.Contents("host-a"); len(inv.Domains) != 0 || len(inv.Volumes) != 0 {
		t.Fatalf("host after delete during build: %+v, want empty", inv)
	}
}

func TestPowerActionFailureKeepsState(t *testing.T) {
	c, drv := newCloud(t, oneHost(t))
	img := seed(t, c).ImageID
	srv, err := c.CreateServer(t.Context(), peers.ServerSpec{Name: "s", Project: "p", FlavorID: "1", ImageID: img})
	if err != nil {
		t.Fatal(err)
	}
	waitServer(t, c, srv.ID, peers.ServerActive)
	drv.InjectFault(func(o fake.Op, host, id string) error {
		if o == fake.OpShutdown {
			return errors.New("acpi broken")
		}
		return nil
	})
	if err := c.ServerAction(t.Context(), srv.ID, peers.ActionStop); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "stop to fail", func() (bool, string) {
		got, _ := c.GetServer(context.Background(), srv.ID)
		return got.Status == peers.ServerActive && strings.Contains(got.Fault, "acpi broken"), string(got.Status) + " " + got.Fault
	})
	drv.InjectFault(nil)
	if err := c.ServerAction(t.Context(), srv.ID, peers.ActionStop); err != nil {
		t.Fatal(err)
	}
	if got := waitServer(t, c, srv.ID, peers.ServerShutoff); got.Fault != "" {
		t.Fatalf("fault after a successful stop = %q, want it cleared", got.Fault)
	}
}

func TestVolumes(t *testing.T) {
	c, drv := newCloud(t, twoHosts(t))
	img := seed(t, c).ImageID
	waitVolume := func(id string, want peers.VolumeStatus) peers.Volume {
		t.Helper()
		var v peers.Volume
		waitFor(t, "volume "+id+" "+string(want), func() (bool, string) {
			var err error
			v, err = c.GetVolume(context.Background(), id)
			return v.Status == want, string(v.Status) + " " + errString(err)
		})
		return v
	}

	t.Run("FromImageIsAnOverlayOnTheImage", func(t *testing.T) {
		v, err := c.CreateVolume(t.Context(), peers.VolumeSpec{Name: "boot", Project: "p", SizeGiB: 1, ImageID: img, AvailabilityZone: "nova:host-a"})
		if err != nil {
			t.Fatal(err)
		}
		waitVolume(v.ID, peers.VolumeAvailable)
		// The volume is a qcow2 overlay on the image's base volume, which
		// holds the image's bytes.
		sum := sha256.Sum256(localcloud.PlaceholderDisk())
		pv, ok := drv.Volume("host-a", v.ID)
		if !ok || pv.BackingID != localcloud.BaseImageVolume(img) || pv.Format != localcloud.VolumeQCOW2 || pv.BackingFormat != localcloud.VolumeRaw {
			t.Fatalf("pool volume = %+v, %v; want a qcow2 overlay on raw %s", pv, ok, localcloud.BaseImageVolume(img))
		}
		base, ok := drv.Volume("host-a", pv.BackingID)
		if !ok || base.Written != int64(len(localcloud.PlaceholderDisk())) || base.SHA256 != hex.EncodeToString(sum[:]) {
			t.Fatalf("base volume = %+v, %v; want the image's %d bytes", base, ok, len(localcloud.PlaceholderDisk()))
		}

		srv, err := c.CreateServer(t.Context(), peers.ServerSpec{Name: "bfv", Project: "p", FlavorID: "2", BootVolumeID: v.ID})
		if err != nil {
			t.Fatalf("boot from volume: %v", err)
		}
		if srv.Host != "host-a" {
			t.Fatalf("server booted from a host-a volume went to %s", srv.Host)
		}
		srv = waitServer(t, c, srv.ID, peers.ServerActive)
		if got, _ := c.GetVolume(t.Context(), v.ID); got.Status != peers.VolumeInUse || len(got.Attachments) != 1 || got.Attachments[0].Device != "/dev/vda" {
			t.Fatalf("boot volume = %+v, want in-use at /dev/vda", got)
		}
		// m1.small's 20 GiB root disk is not taken: the volume is the root.
		if capa, _ := c.Capacity(t.Context()); capa.DiskGiB.Used != 1 {
			t.Fatalf("disk used = %d GiB, want only the volume's 1", capa.DiskGiB.Used)
		}
		if err := c.DetachVolume(t.Context(), srv.ID, v.ID); !errors.Is(err, peers.ErrConflict) {
			t.Fatalf("detaching the root volume = %v, want ErrConflict", err)
		}
		if err := c.DeleteServer(t.Context(), srv.ID); err != nil {
			t.Fatal(err)
		}
		waitServerGone(t, c, srv.ID)
		waitVolume(v.ID, peers.VolumeAvailable)
	})

	t.Run("AttachAcrossHostsIsAConflict", func(t *testing.T) {
		v, err := c.CreateVolume(t.Context(), peers.VolumeSpec{Name: "far", Project: "p", SizeGiB: 1, AvailabilityZone: "nova:host-b"})
		if err != nil {
			t.Fatal(err)
		}
		waitVolume(v.ID, peers.VolumeAvailable)
		srv, err := c.CreateServer(t.Context(), peers.ServerSpec{Name: "s", Project: "p", FlavorID: "1", ImageID: img, AvailabilityZone: "nova:host-a"})
		if err != nil {
			t.Fatal(err)
		}
		waitServer(t, c, srv.ID, peers.ServerActive)
		if _, err := c.AttachVolume(t.Context(), srv.ID, v.ID); !errors.Is(err, peers.ErrConflict) || !strings.Contains(err.Error(), "host-b") {
			t.Fatalf("AttachVolume across hosts = %v, want ErrConflict naming the volume's host", err)
		}
	})

	t.Run("TooSmallForImage", func(t *testing.T) {
		big, err := c.CreateImage(t.Context(), peers.ImageSpec{Name: "big", Project: "p", DiskFormat: "raw", ContainerFormat: "bare", MinDiskGiB: 5})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.UploadImage(t.Context(), big.ID, strings.NewReader("tiny"), 4); err != nil {
			t.Fatal(err)
		}
		_, err = c.CreateVolume(t.Context(), peers.VolumeSpec{Name: "small", Project: "p", SizeGiB: 1, ImageID: big.ID})
		if !errors.Is(err, peers.ErrInvalid) || !strings.Contains(err.Error(), "min_disk 5") {
			t.Fatalf("CreateVolume smaller than the image's min_disk = %v, want ErrInvalid", err)
		}
	})
}

func TestConsoleOutput(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	img := seed(t, c).ImageID
	srv, err := c.CreateServer(t.Context(), peers.ServerSpec{Name: "s", Project: "p", FlavorID: "1", ImageID: img})
	if err != nil {
		t.Fatal(err)
	}
	waitServer(t, c, srv.ID, peers.ServerActive)
	all, err := c.ConsoleOutput(t.Context(), srv.ID, 0)
	if err != nil || !strings.Contains(all, "fake driver") || strings.Count(all, "\n") < 2 {
		t.Fatalf("console = %q, %v; want the fake's lines, saying it is fake", all, err)
	}
	last, err := c.ConsoleOutput(t.Context(), srv.ID, 1)
	lines := strings.Split(strings.TrimRight(all, "\n"), "\n")
	if err != nil || last != lines[len(lines)-1]+"\n" {
		t.Fatalf("console, last line = %q, %v; want %q", last, err, lines[len(lines)-1])
	}
}

// TestBaseImages: an image is uploaded to a host once, servers' root disks
// are overlays on it, and the base goes once the image is deleted and the
// last overlay is gone.
func TestBaseImages(t *testing.T) {
	c, drv := newCloud(t, oneHost(t))
	img, err := c.CreateImage(t.Context(), peers.ImageSpec{Name: "img", Project: "p", DiskFormat: "raw", ContainerFormat: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadImage(t.Context(), img.ID, strings.NewReader(string(localcloud.PlaceholderDisk())), -1); err != nil {
		t.Fatal(err)
	}
	var uploads atomic.Int32
	drv.InjectFault(func(o fake.Op, host, id string) error {
		if o == fake.OpUploadVolume {
			uploads.Add(1)
		}
		return nil
	})
	var ids []string
	for range 3 {
		srv, err := c.CreateServer(t.Context(), peers.ServerSpec{Name: "s", Project: "p", FlavorID: "1", ImageID: img.ID})
		if err != nil {
			t.Fatal(err)
		}
		waitServer(t, c, srv.ID, peers.ServerActive)
		root, ok := drv.Volume("host-a", srv.ID+"-disk")
		if !ok || root.BackingID != localcloud.BaseImageVolume(img.ID) || root.SizeGiB != 1 {
			t.Fatalf("root disk = %+v, %v; want a 1 GiB overlay on the image's base", root, ok)
		}
		ids = append(ids, srv.ID)
	}
	if n := uploads.Load(); n != 1 {
		t.Fatalf("image uploaded %d times to the host, want once", n)
	}
	if err := c.DeleteImage(t.Context(), img.ID); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if err := c.DeleteServer(t.Context(), id); err != nil {
			t.Fatal(err)
		}
		waitServerGone(t, c, id)
		want := 1
		if i == len(ids)-1 {
			want = 0
		}
		waitFor(t, "base volumes", func() (bool, string) {
			inv := drv.Contents("host-a")
			return len(inv.BaseVolumes) == want, strings.Join(inv.BaseVolumes, ",")
		})
	}
}

// TestBootRidesOutAHostOutage: a host that stops answering for a moment
// while a boot waits for its guest (libvirtd restarting; the guest runs
// on) does not fail the boot.
func TestBootRidesOutAHostOutage(t *testing.T) {
	c, drv := newCloud(t, oneHost(t))
	img := seed(t, c).ImageID
	var mu sync.Mutex
	silent := 3 // state reads that find the host silent
	drv.InjectFault(func(o fake.Op, host, id string) error {
		mu.Lock()
		defer mu.Unlock()
		if o == fake.OpState && silent > 0 {
			silent--
			return fmt.Errorf("libvirtd restarting: %w", peers.ErrUnavailable)
		}
		return nil
	})
	srv, err := bootFlavor(t, c, img, "42", "")
	if err != nil {
		t.Fatal(err)
	}
	waitServer(t, c, srv.ID, peers.ServerActive)
	mu.Lock()
	defer mu.Unlock()
	if silent != 0 {
		t.Fatalf("the host was asked %d times fewer than the outage lasted", silent)
	}
}

// TestListServersByProjectMark: a list by the broker's project mark reads
// that project's servers (an index kept as servers come and go, rebuilt
// when the state is loaded); other filters still apply.
func TestListServersByProjectMark(t *testing.T) {
	cfg, drv, c, seeded := crashable(t)
	mk := func(name, mark string) peers.Server {
		t.Helper()
		spec := peers.ServerSpec{Name: name, Project: "p", FlavorID: "1", ImageID: seeded.ImageID}
		if mark != "" {
			spec.Metadata = map[string]string{peers.MetaProject: mark, "role": name}
		}
		srv, err := c.CreateServer(t.Context(), spec)
		if err != nil {
			t.Fatal(err)
		}
		waitServer(t, c, srv.ID, peers.ServerActive)
		return srv
	}
	a1, _, _, _ := mk("a1", "a"), mk("a2", "a"), mk("b1", "b"), mk("none", "")
	names := func(c *localcloud.Cloud, opts peers.ListOptions) string {
		t.Helper()
		srvs, err := c.ListServers(t.Context(), opts)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range srvs {
			out = append(out, s.Name)
		}
		return strings.Join(out, ",")
	}
	tests := []struct {
		name string
		opts peers.ListOptions
		want string
	}{
		{"every server", peers.ListOptions{}, "a1,a2,b1,none"},
		{"project a's", peers.ListOptions{Metadata: map[string]string{peers.MetaProject: "a"}}, "a1,a2"},
		{"project b's", peers.ListOptions{Metadata: map[string]string{peers.MetaProject: "b"}}, "b1"},
		{"a mark nobody has", peers.ListOptions{Metadata: map[string]string{peers.MetaProject: "z"}}, ""},
		{"a's, another filter too", peers.ListOptions{Metadata: map[string]string{peers.MetaProject: "a", "role": "a2"}}, "a2"},
		{"a's, another project", peers.ListOptions{Project: "q", Metadata: map[string]string{peers.MetaProject: "a"}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(c, tc.opts); got != tc.want {
				t.Fatalf("servers %q, want %q", got, tc.want)
			}
		})
	}
	if err := c.DeleteServer(t.Context(), a1.ID); err != nil {
		t.Fatal(err)
	}
	waitServerGone(t, c, a1.ID)
	byA := peers.ListOptions{Metadata: map[string]string{peers.MetaProject: "a"}}
	if got := names(c, byA); got != "a2" {
		t.Fatalf("project a's after a delete: %q", got)
	}
	localcloud.Halt(c)
	c2, _ := reopen(t, cfg, drv)
	if got := names(c2, byA); got != "a2" {
		t.Fatalf("project a's after a restart: %q", got)
	}
}
