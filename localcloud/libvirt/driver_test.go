package libvirt_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/libvirt"
	"github.com/cloudmux/cloudmux/peers"
)

// TestReconnect closes the driver's connection under it, as a libvirtd
// restart does: the next call redials and works.
func TestReconnect(t *testing.T) {
	for _, uri := range []string{"test:///default", "qemu:///system"} {
		t.Run(strings.TrimSuffix(strings.Split(uri, ":")[0], "+tcp"), func(t *testing.T) { testReconnect(t, uri) })
	}
}

func testReconnect(t *testing.T, uri string) {
	d, _, cd := testDriver(t, uri)
	ctx := t.Context()
	if _, err := d.HostResources(ctx, "h1"); err != nil {
		t.Fatalf("HostResources: %v", err)
	}
	first, n := cd.last()
	if n != 1 {
		t.Fatalf("dials = %d, want 1", n)
	}
	if err := first.Disconnect(); err != nil {
		t.Fatalf("Disconnect: %v", err)
	}
	select {
	case <-first.Disconnected():
	case <-time.After(5 * time.Second):
		t.Fatal("Disconnected() not closed after Disconnect")
	}
	// test:///default lost its state with the connection: the pool is
	// made again on the new one. qemu:///system kept it.
	res, err := d.HostResources(ctx, "h1")
	if err != nil {
		t.Fatalf("HostResources after the connection dropped: %v", err)
	}
	if _, n := cd.last(); n != 2 {
		t.Fatalf("dials = %d, want 2 (one redial)", n)
	}
	if res.VCPUs <= 0 || res.RAMMiB <= 0 {
		t.Fatalf("HostResources = %+v", res)
	}
	if err := d.CreateNetwork(ctx, "h1", localcloud.IsolatedNetwork{ID: "n1", Name: "n1"}); err != nil {
		t.Fatalf("CreateNetwork after the redial: %v", err)
	}
	if err := d.DeleteNetwork(ctx, "h1", "n1"); err != nil {
		t.Fatalf("DeleteNetwork: %v", err)
	}
}

// hangingAPI stops answering ConnectGetLibVersion while hang is set: a
// daemon that accepted the connection and went silent.
type hangingAPI struct {
	libvirt.API
	hang *atomic.Bool
}

func (h hangingAPI) ConnectGetLibVersion() (uint64, error) {
	if h.hang.Load() {
		<-h.Disconnected() // until the driver gives up on the connection
		return 0, errors.New("interrupted")
	}
	return h.API.ConnectGetLibVersion()
}

// TestHungCallDropsConnection: a call with no answer fails with
// ErrUnavailable after CallTimeout instead of hanging, the connection is
// dropped, and the next call redials.
func TestHungCallDropsConnection(t *testing.T) {
	requireLibvirt(t)
	var hang atomic.Bool
	var dials atomic.Int32
	d, err := libvirt.New(libvirt.Config{
		Hosts:       []localcloud.HostConfig{{Name: "h1", URI: "test:///default"}},
		CallTimeout: 300 * time.Millisecond,
		Dial: func(ctx context.Context, uri string) (libvirt.API, error) {
			a, err := libvirt.Dial(ctx, uri)
			if err != nil {
				return nil, err
			}
			dials.Add(1)
			return hangingAPI{a, &hang}, nil
		},
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Ping(t.Context(), "h1"); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	hang.Store(true)
	start := time.Now()
	err = d.Ping(t.Context(), "h1")
	if !errors.Is(err, peers.ErrUnavailable) || time.Since(start) > 3*time.Second {
		t.Fatalf("Ping of a silent daemon = %v after %s; want ErrUnavailable after about 300ms", err, time.Since(start))
	}
	hang.Store(false)
	if err := d.Ping(t.Context(), "h1"); err != nil {
		t.Fatalf("Ping after the drop: %v", err)
	}
	if n := dials.Load(); n != 2 {
		t.Fatalf("dials = %d, want 2", n)
	}
}

// TestDaemonDown: with no daemon to dial (libvirtd restarting), calls fail
// at once with ErrUnavailable.
func TestDaemonDown(t *testing.T) {
	for _, tc := range []struct {
		name string
		dial libvirt.DialFunc
	}{
		{"NoSocket", nil},
		{"Refused", func(context.Context, string) (libvirt.API, error) {
			return nil, fmt.Errorf("dial unix /var/run/libvirt/libvirt-sock: %w", syscall.ECONNREFUSED)
		}},
		{"Silent", func(ctx context.Context, _ string) (libvirt.API, error) { <-ctx.Done(); return nil, ctx.Err() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := libvirt.New(libvirt.Config{
				Hosts:       []localcloud.HostConfig{{Name: "h1", URI: "qemu:///system?socket=/nonexistent/libvirt-sock"}},
				Dial:        tc.dial,
				DialTimeout: 300 * time.Millisecond,
			}, testLogger(t))
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			start := time.Now()
			_, err = d.DomainState(t.Context(), "h1", "x")
			if !errors.Is(err, peers.ErrUnavailable) || time.Since(start) > 3*time.Second {
				t.Fatalf("DomainState with no daemon = %v after %s; want ErrUnavailable at once", err, time.Since(start))
			}
		})
	}
}

// TestDriverErrors checks the mapping on a real daemon.
func TestDriverErrors(t *testing.T) {
	d, _, _ := testDriver(t, "test:///default")
	ctx := t.Context()
	_, err := d.DomainState(ctx, "h1", "no-such-domain")
	wantErr(t, "DomainState of an unknown domain", err, peers.ErrNotFound)
	wantErr(t, "DeleteVolume of an unknown volume", d.DeleteVolume(ctx, "h1", "no-such-volume"), peers.ErrNotFound)
	wantErr(t, "DeleteNetwork of an unknown network", d.DeleteNetwork(ctx, "h1", "no-such-network"), peers.ErrNotFound)
	wantErr(t, "StartDomain of an unknown domain", d.StartDomain(ctx, "h1", "no-such-domain"), peers.ErrNotFound)
	_, err = d.HostResources(ctx, "no-such-host")
	wantErr(t, "an unknown host", err, peers.ErrUnavailable)

	if err := d.CreateVolume(ctx, "h1", localcloud.PoolVolume{ID: "v1", SizeGiB: 1}); err != nil {
		t.Fatalf("CreateVolume: %v", err)
	}
	wantErr(t, "CreateVolume twice", d.CreateVolume(ctx, "h1", localcloud.PoolVolume{ID: "v1", SizeGiB: 1}), peers.ErrConflict)
	wantErr(t, "ResizeVolume smaller", d.ResizeVolume(ctx, "h1", "v1", 0, ""), peers.ErrInvalid)
	if err := d.CreateNetwork(ctx, "h1", localcloud.IsolatedNetwork{ID: "n1"}); err != nil {
		t.Fatalf("CreateNetwork: %v", err)
	}
	wantErr(t, "CreateNetwork twice", d.CreateNetwork(ctx, "h1", localcloud.IsolatedNetwork{ID: "n1"}), peers.ErrConflict)
	spec := localcloud.DomainSpec{ID: "00000000-0000-4000-8000-000000000d01", Name: "d1", VCPUs: 1, RAMMiB: 64,
		Disks: []localcloud.Disk{{VolumeID: "v1", Device: "vda"}}, NICs: []localcloud.NIC{{PortID: "p1", NetworkID: "n1", MAC: "fa:16:3e:00:00:09"}}}
	if err := d.DefineDomain(ctx, "h1", spec); err != nil {
		t.Fatalf("DefineDomain: %v", err)
	}
	wantErr(t, "DefineDomain twice", d.DefineDomain(ctx, "h1", spec), peers.ErrConflict)
	if err := d.StartDomain(ctx, "h1", spec.ID); err != nil {
		t.Fatalf("StartDomain: %v", err)
	}
	wantErr(t, "StartDomain of a running domain", d.StartDomain(ctx, "h1", spec.ID), peers.ErrConflict)
	if st, err := d.DomainState(ctx, "h1", spec.ID); err != nil || st != localcloud.DomainRunning {
		t.Fatalf("DomainState = %v, %v; want running", st, err)
	}
	for i := 0; i < 2; i++ { // the second is a no-op
		if err := d.DestroyDomain(ctx, "h1", spec.ID); err != nil {
			t.Fatalf("DestroyDomain #%d: %v", i+1, err)
		}
	}
	if err := d.UndefineDomain(ctx, "h1", spec.ID); err != nil {
		t.Fatalf("UndefineDomain: %v", err)
	}
	wantErr(t, "UndefineDomain again", d.UndefineDomain(ctx, "h1", spec.ID), peers.ErrNotFound)
	if err := d.DeleteVolume(ctx, "h1", "v1"); err != nil {
		t.Fatalf("DeleteVolume: %v", err)
	}
	if err := d.DeleteNetwork(ctx, "h1", "n1"); err != nil {
		t.Fatalf("DeleteNetwork: %v", err)
	}
}

func wantErr(t *testing.T, what string, err error, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s = %v; want %v", what, err, want)
	}
	if err != nil && !strings.Contains(err.Error(), "libvirt") {
		t.Errorf("%s: %q does not say it came from libvirt", what, err)
	}
}

// TestInventory: what the driver made on a host reads back with the
// metadata the cloud stored, enough to rebuild its records.
func TestInventory(t *testing.T) {
	d, cfg, _ := testDriver(t, "test:///default")
	ctx := t.Context()
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must("base", d.CreateVolume(ctx, "h1", localcloud.PoolVolume{ID: "image-i1", SizeBytes: 8192, Format: "raw"}))
	must("root", d.CreateVolume(ctx, "h1", localcloud.PoolVolume{ID: "s1-disk", SizeGiB: 1, BackingID: "image-i1", BackingFormat: "raw"}))
	must("data", d.CreateVolume(ctx, "h1", localcloud.PoolVolume{ID: "v1", SizeGiB: 2}))
	must("network", d.CreateNetwork(ctx, "h1", localcloud.IsolatedNetwork{ID: "n1"}))
	spec := localcloud.DomainSpec{
		ID: "00000000-0000-4000-8000-0000000000a1", Name: "s1", VCPUs: 1, RAMMiB: 128, KeyName: "k",
		Disks:    []localcloud.Disk{{VolumeID: "s1-disk", Device: "vda"}},
		NICs:     []localcloud.NIC{{PortID: "p1", NetworkID: "n1", MAC: "fa:16:3e:00:00:0a", IPs: []string{"10.0.0.7/24"}, Gateway: "10.0.0.1"}},
		Metadata: map[string]string{"localcloud.project": "proj", "server.cloudmux.broker_id": "b1"},
		UserData: []byte("#!/bin/sh\n"),
	}
	must("define", d.DefineDomain(ctx, "h1", spec))
	must("attach", d.AttachDisk(ctx, "h1", spec.ID, localcloud.Disk{VolumeID: "v1", Device: "vdb"}))
	inv, err := d.Inventory(ctx, "h1")
	must("Inventory", err)
	if len(inv.Domains) != 1 {
		t.Fatalf("domains = %+v, want 1", inv.Domains)
	}
	got := inv.Domains[0]
	if got.ID != spec.ID || got.Name != "s1" || got.VCPUs != 1 || got.RAMMiB != 128 || got.KeyName != "k" || got.State != localcloud.DomainShutoff ||
		got.Metadata["server.cloudmux.broker_id"] != "b1" || got.Metadata["localcloud.project"] != "proj" ||
		len(got.Disks) != 2 || got.Disks[1] != (localcloud.Disk{VolumeID: "v1", Device: "vdb"}) || len(got.NICs) != 1 || got.NICs[0].MAC != "fa:16:3e:00:00:0a" ||
		len(got.NICs[0].IPs) != 1 || got.NICs[0].IPs[0] != "10.0.0.7/24" || got.NICs[0].Gateway != "10.0.0.1" {
		t.Fatalf("domain = %+v", got)
	}
	byID := map[string]localcloud.PoolVolume{}
	for _, v := range inv.Volumes {
		byID[v.ID] = v
	}
	if len(inv.Volumes) != 3 || byID["s1-disk"].BackingID != "image-i1" || byID["s1-disk"].Format != "qcow2" ||
		byID["v1"].SizeBytes != 2<<30 || byID["image-i1"].SizeBytes != 8192 {
		t.Fatalf("volumes = %+v", inv.Volumes)
	}
	if len(inv.Networks) != 1 || inv.Networks[0] != "n1" {
		t.Fatalf("networks = %v", inv.Networks)
	}
	// The NIC is a switch port; a driver started afresh (a broker
	// restart) reopens it at the same UDP addresses from the domain.
	port, ok := d.Switch().Port("p1")
	if !ok || port.Network != "n1" || !port.Switch.IsValid() || !port.NIC.IsValid() {
		t.Fatalf("switch port p1 = %+v, %v", port, ok)
	}
	must("the first driver gone", d.Switch().RemovePort("p1"))
	d2, err := libvirt.New(cfg, testLogger(t))
	must("second driver", err)
	defer d2.Close()
	_, err = d2.Inventory(ctx, "h1")
	must("Inventory of the second driver", err)
	if again, ok := d2.Switch().Port("p1"); !ok || again.Switch != port.Switch || again.NIC != port.NIC {
		t.Fatalf("after a restart, port p1 = %+v, %v; want it at %s, %s", again, ok, port.Switch, port.NIC)
	}
	must("close the second driver", d2.Close())
	_, err = d.Inventory(ctx, "h1")
	must("Inventory of the first driver again", err)
	// An offline resize rewrites the definition: both up and down.
	for _, size := range []struct{ vcpus, ram int }{{2, 256}, {1, 64}} {
		must("set size", d.SetDomainSize(ctx, "h1", spec.ID, size.vcpus, size.ram))
		inv, err := d.Inventory(ctx, "h1")
		must("Inventory", err)
		if got := inv.Domains[0]; got.VCPUs != size.vcpus || got.RAMMiB != size.ram {
			t.Fatalf("after SetDomainSize(%d, %d): %d vCPU, %d MiB", size.vcpus, size.ram, got.VCPUs, got.RAMMiB)
		}
	}
	// Clean up through the driver, as the cloud would.
	must("detach", d.DetachDisk(ctx, "h1", spec.ID, "v1"))
	must("undefine", d.UndefineDomain(ctx, "h1", spec.ID))
	if _, ok := d.Switch().Port("p1"); ok {
		t.Fatal("the switch port outlived its domain")
	}
	for _, v := range []string{"s1-disk", "image-i1", "v1"} {
		must("delete "+v, d.DeleteVolume(ctx, "h1", v))
	}
	must("delete network", d.DeleteNetwork(ctx, "h1", "n1"))
}

// TestUploadRefusesBackingFile: a qcow2 image that names a backing file of
// its own (a host file the guest would read) is refused.
func TestUploadRefusesBackingFile(t *testing.T) {
	if testing.Short() {
		t.Skip("uses qemu:///system")
	}
	d, _, _ := testDriver(t, "qemu:///system")
	ctx := t.Context()
	dir := t.TempDir()
	img := dir + "/evil.qcow2"
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", "-F", "raw", "-b", "/etc/hostname", img, "1M").CombinedOutput(); err != nil {
		t.Skipf("qemu-img: %v: %s", err, out)
	}
	data, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVolume(ctx, "h1", localcloud.PoolVolume{ID: "image-evil", SizeBytes: int64(len(data)), Format: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	err = d.UploadVolume(ctx, "h1", "image-evil", bytes.NewReader(data), int64(len(data)))
	wantErr(t, "UploadVolume of a qcow2 with a backing file", err, peers.ErrInvalid)
	if err := d.DeleteVolume(ctx, "h1", "image-evil"); err != nil {
		t.Fatal(err)
	}

	// The same without a backing file is fine.
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", img, "1M").CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v: %s", err, out)
	}
	if data, err = os.ReadFile(img); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateVolume(ctx, "h1", localcloud.PoolVolume{ID: "image-ok", SizeBytes: int64(len(data)), Format: "qcow2"}); err != nil {
		t.Fatal(err)
	}
	if err := d.UploadVolume(ctx, "h1", "image-ok", bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("UploadVolume of a plain qcow2: %v", err)
	}
	if err := d.DeleteVolume(ctx, "h1", "image-ok"); err != nil {
		t.Fatal(err)
	}
}

// TestLegacyDomainAdopted: a domain an earlier version defined with its
// NIC on a libvirt network is redefined by Inventory with the NIC on a
// switch port, and the libvirt network (it runs no guest any more) and
// the port's nwfilter go.
func TestLegacyDomainAdopted(t *testing.T) {
	d, cfg, _ := testDriver(t, "test:///default")
	ctx := t.Context()
	api, err := libvirt.Dial(ctx, "test:///default")
	if err != nil {
		t.Fatal(err)
	}
	defer api.Disconnect()
	l := api.(*libvirt.Conn).Libvirt
	id := "00000000-0000-4000-8000-0000000000b1"
	n, err := l.NetworkDefineXML("<network><name>" + cfg.Prefix + "n1</name><bridge stp='on' delay='0'/></network>")
	if err != nil {
		t.Fatal(err)
	}
	if err := l.NetworkCreate(n); err != nil {
		t.Fatal(err)
	}
	legacy := `<domain type='test'><name>` + cfg.Prefix + id + `</name><uuid>` + id + `</uuid><memory unit='MiB'>128</memory><vcpu>1</vcpu>
<metadata><cmx:server xmlns:cmx="` + libvirt.MetadataNS + `"><cmx:id>` + id + `</cmx:id><cmx:name>old</cmx:name>
<cmx:nic port="p1" network="n1" mac="fa:16:3e:00:00:0b" filtered="true"><cmx:ip>10.0.0.8/24</cmx:ip></cmx:nic></cmx:server></metadata>
<os><type arch='x86_64'>hvm</type></os>
<devices><interface type='network'><mac address='fa:16:3e:00:00:0b'/><source network='` + cfg.Prefix + `n1'/><model type='virtio'/></interface></devices></domain>`
	if _, err := l.DomainDefineXMLFlags(legacy, 0); err != nil {
		t.Fatalf("define the legacy domain: %v", err)
	}
	inv, err := d.Inventory(ctx, "h1")
	if err != nil {
		t.Fatalf("Inventory: %v", err)
	}
	if len(inv.Domains) != 1 || len(inv.Domains[0].NICs) != 1 || !inv.Domains[0].NICs[0].Filtered {
		t.Fatalf("domains = %+v", inv.Domains)
	}
	port, ok := d.Switch().Port("p1")
	if !ok || port.Network != "n1" || !port.Filtered || len(port.IPs) != 1 || port.IPs[0].String() != "10.0.0.8" {
		t.Fatalf("switch port p1 = %+v, %v", port, ok)
	}
	dom, err := l.DomainLookupByName(cfg.Prefix + id)
	if err != nil {
		t.Fatal(err)
	}
	x, err := l.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(x, "<interface type='udp'>") || strings.Contains(x, "type='network'") ||
		!strings.Contains(x, fmt.Sprintf("port='%d'", port.Switch.Port())) {
		t.Fatalf("redefined domain XML has no udp NIC on port %s:\n%s", port.Switch, x)
	}
	if _, err := l.NetworkLookupByName(cfg.Prefix + "n1"); err == nil {
		t.Fatal("the legacy libvirt network is still there")
	}
	if err := d.UndefineDomain(ctx, "h1", id); err != nil {
		t.Fatal(err)
	}
}
