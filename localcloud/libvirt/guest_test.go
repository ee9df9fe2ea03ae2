package libvirt_test

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/internal/libvirttest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/libvirt"
	"github.com/cloudmux/cloudmux/peers"
)

// TestGuestBoots is issue 3's end-to-end check: a real TCG guest boots on
// qemu:///system from an image uploaded through the image service, its
// console shows the kernel and a line printed by the config drive's user
// data, a volume is attached (and extended live), then everything is
// deleted and nothing the cloud made is left in libvirt.
func TestGuestBoots(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a real guest; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	c, d, cfg, img := guestCloud(t, ctx)
	netw, err := c.CreateNetwork(ctx, peers.NetworkSpec{Name: "guestnet", Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	sn, err := c.CreateSubnet(ctx, peers.SubnetSpec{NetworkID: netw.ID, Project: "p", CIDR: "10.91.0.0/24", IPVersion: 4})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := c.CreateKeypair(ctx, peers.KeypairSpec{Name: "guestkey", Project: "p"})
	if err != nil {
		t.Fatal(err)
	}

	marker := "cloudmux-userdata-" + randHex(4)
	srv, err := c.CreateServer(ctx, peers.ServerSpec{
		Name: "guest", Project: "p", FlavorID: "1", ImageID: img.ID, KeyName: kp.Name,
		Networks: []peers.NetworkAttachment{{NetworkID: netw.ID}},
		Metadata: map[string]string{"role": "e2e"},
		UserData: []byte("#!/bin/sh\necho " + marker + "\n"),
	})
	if err != nil {
		t.Fatalf("CreateServer: %v", err)
	}
	srv = waitFor(t, ctx, "server ACTIVE", func() (peers.Server, bool, error) {
		s, err := c.GetServer(ctx, srv.ID)
		if s.Status == peers.ServerError {
			return s, false, errors.New(s.Fault)
		}
		return s, s.Status == peers.ServerActive, err
	})
	console := waitFor(t, ctx, "console with the kernel line and the user data's line", func() (string, bool, error) {
		out, err := c.ConsoleOutput(ctx, srv.ID, 0)
		// The serial console ends lines with CRLF. The marker on a line of
		// its own is the user data's output, not its text.
		lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
		return out, strings.Contains(out, libvirttest.ConsoleKernelLine) && slices.Contains(lines, marker) &&
			strings.Contains(out, kp.PublicKey[:20]), err
	})
	t.Logf("console (last lines):\n%s", lastLines(console, 15))
	// The same console as a remote host's: downloaded through libvirtd.
	libvirt.ReadConsoleThroughLibvirt(d)
	for i := range 3 {
		start := time.Now()
		remote, err := c.ConsoleOutput(ctx, srv.ID, 0)
		if err != nil || !strings.Contains(remote, marker) || time.Since(start) > 5*time.Second {
			t.Fatalf("console through libvirtd #%d: %d bytes, %v after %s; want the marker at once", i+1, len(remote), err, time.Since(start))
		}
	}

	vol, err := c.CreateVolume(ctx, peers.VolumeSpec{Name: "data", Project: "p", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitVolume := func(want peers.VolumeStatus, size int) {
		waitFor(t, ctx, "volume "+string(want), func() (peers.Volume, bool, error) {
			v, err := c.GetVolume(ctx, vol.ID)
			return v, v.Status == want && v.SizeGiB == size, err
		})
	}
	waitVolume(peers.VolumeAvailable, 1)
	if _, err := c.AttachVolume(ctx, srv.ID, vol.ID); err != nil {
		t.Fatalf("AttachVolume: %v", err)
	}
	waitVolume(peers.VolumeInUse, 1)
	if _, err := c.ExtendVolume(ctx, vol.ID, 2); err != nil {
		t.Fatalf("ExtendVolume: %v", err)
	}
	waitVolume(peers.VolumeInUse, 2)

	// Delete everything; the volume comes free with its server.
	if err := c.DeleteServer(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "server gone", func() (struct{}, bool, error) {
		_, err := c.GetServer(ctx, srv.ID)
		return struct{}{}, errors.Is(err, peers.ErrNotFound), nil
	})
	waitVolume(peers.VolumeAvailable, 2)
	if err := c.DeleteVolume(ctx, vol.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteImage(ctx, img.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "volume gone", func() (struct{}, bool, error) {
		_, err := c.GetVolume(ctx, vol.ID)
		return struct{}{}, errors.Is(err, peers.ErrNotFound), nil
	})
	if err := c.DeleteSubnet(ctx, sn.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteNetwork(ctx, netw.ID); err != nil {
		t.Fatal(err)
	}
	_ = c.DeleteKeypair(ctx, kp.Name)
	waitFor(t, ctx, "nothing of the cloud's left in libvirt", func() ([]string, bool, error) {
		left := leftovers(t, "qemu:///system", cfg.Prefix)
		return left, len(left) == 0, nil
	})
}

// waitFor polls cond every 250ms until it holds, fails, or ctx ends.
func waitFor[T any](t *testing.T, ctx context.Context, what string, cond func() (T, bool, error)) T {
	t.Helper()
	for {
		v, ok, err := cond()
		if err != nil {
			t.Fatalf("waiting for %s: %v (last seen %+v)", what, err, v)
		}
		if ok {
			return v
		}
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v; last seen: %+v", what, ctx.Err(), v)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// leftovers lists the domains, networks and pool volumes on uri named with
// prefix.
func leftovers(t *testing.T, uri, prefix string) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, err := libvirt.Dial(ctx, uri)
	if err != nil {
		t.Fatalf("dial %s: %v", uri, err)
	}
	defer api.Disconnect()
	l := api.(*libvirt.Conn).Libvirt
	var left []string
	doms, _, _ := l.ConnectListAllDomains(1, 0)
	for _, d := range doms {
		if strings.HasPrefix(d.Name, prefix) {
			left = append(left, "domain "+d.Name)
		}
	}
	nets, _, _ := l.ConnectListAllNetworks(1, 0)
	for _, n := range nets {
		if strings.HasPrefix(n.Name, prefix) {
			left = append(left, "network "+n.Name)
		}
	}
	if p, err := l.StoragePoolLookupByName(prefix + "pool"); err == nil {
		_ = l.StoragePoolRefresh(p, 0)
		vols, _, _ := l.StoragePoolListAllVolumes(p, 1, 0)
		for _, v := range vols {
			left = append(left, "volume "+v.Name)
		}
	}
	return left
}

// guestCloud is a local cloud on qemu:///system (closed at cleanup) with
// the guest image uploaded through its image service, as image "guest"
// of project "p".
func guestCloud(t *testing.T, ctx context.Context) (*localcloud.Cloud, *libvirt.Driver, libvirt.Config, peers.Image) {
	t.Helper()
	requireLibvirt(t)
	guest := libvirttest.GuestImage(t)
	d, cfg, _ := testDriver(t, "qemu:///system")
	lc := localcloud.DevDefaults(t.TempDir())
	lc.Hosts = cfg.Hosts
	c, err := localcloud.New(lc, d, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	f, err := os.Open(guest)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, _ := f.Stat()
	img, err := c.CreateImage(ctx, peers.ImageSpec{Name: "guest", Project: "p", DiskFormat: "raw", ContainerFormat: "bare"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.UploadImage(ctx, img.ID, f, st.Size()); err != nil {
		t.Fatalf("UploadImage: %v", err)
	}
	return c, d, cfg, img
}
