package libvirt_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/internal/libvirttest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/libvirt"
	"github.com/cloudmux/cloudmux/localcloud/localcloudtest"
	"github.com/cloudmux/cloudmux/peers"
)

// tcpURI is the local libvirtd reached as a remote host: scripts/install-libvirt.sh
// has it listen on loopback TCP, unauthenticated.
const tcpURI = "qemu+tcp://127.0.0.1/system"

// hostRouter is one localcloud.Driver over several libvirt drivers, one a
// host, so two "hosts" can be the one libvirtd on this machine, reached
// through different URIs, each driver with its own names and pool.
type hostRouter map[string]*libvirt.Driver

var (
	_ localcloud.Driver      = hostRouter(nil)
	_ localcloud.Inventorier = hostRouter(nil)
)

func (r hostRouter) to(host string) *libvirt.Driver { return r[host] }

func (r hostRouter) Name() string { return "libvirt" }
func (r hostRouter) HostResources(ctx context.Context, host string) (localcloud.HostResources, error) {
	return r.to(host).HostResources(ctx, host)
}
func (r hostRouter) DefineDomain(ctx context.Context, host string, spec localcloud.DomainSpec) error {
	return r.to(host).DefineDomain(ctx, host, spec)
}
func (r hostRouter) StartDomain(ctx context.Context, host, id string) error {
	return r.to(host).StartDomain(ctx, host, id)
}
func (r hostRouter) ShutdownDomain(ctx context.Context, host, id string) error {
	return r.to(host).ShutdownDomain(ctx, host, id)
}
func (r hostRouter) RebootDomain(ctx context.Context, host, id string, hard bool) error {
	return r.to(host).RebootDomain(ctx, host, id, hard)
}
func (r hostRouter) PauseDomain(ctx context.Context, host, id string) error {
	return r.to(host).PauseDomain(ctx, host, id)
}
func (r hostRouter) UnpauseDomain(ctx context.Context, host, id string) error {
	return r.to(host).UnpauseDomain(ctx, host, id)
}
func (r hostRouter) SaveDomain(ctx context.Context, host, id string) error {
	return r.to(host).SaveDomain(ctx, host, id)
}
func (r hostRouter) SetDomainSize(ctx context.Context, host, id string, vcpus, ramMiB int) error {
	return r.to(host).SetDomainSize(ctx, host, id, vcpus, ramMiB)
}
func (r hostRouter) DestroyDomain(ctx context.Context, host, id string) error {
	return r.to(host).DestroyDomain(ctx, host, id)
}
func (r hostRouter) UndefineDomain(ctx context.Context, host, id string) error {
	return r.to(host).UndefineDomain(ctx, host, id)
}
func (r hostRouter) DomainState(ctx context.Context, host, id string) (localcloud.DomainState, error) {
	return r.to(host).DomainState(ctx, host, id)
}
func (r hostRouter) AttachDisk(ctx context.Context, host, domainID string, disk localcloud.Disk) error {
	return r.to(host).AttachDisk(ctx, host, domainID, disk)
}
func (r hostRouter) DetachDisk(ctx context.Context, host, domainID, volumeID string) error {
	return r.to(host).DetachDisk(ctx, host, domainID, volumeID)
}
func (r hostRouter) ConsoleOutput(ctx context.Context, host, id string) (string, error) {
	return r.to(host).ConsoleOutput(ctx, host, id)
}
func (r hostRouter) CreateVolume(ctx context.Context, host string, vol localcloud.PoolVolume) error {
	return r.to(host).CreateVolume(ctx, host, vol)
}
func (r hostRouter) UploadVolume(ctx context.Context, host, id string, data io.Reader, size int64) error {
	return r.to(host).UploadVolume(ctx, host, id, data, size)
}
func (r hostRouter) ResizeVolume(ctx context.Context, host, id string, newSizeGiB int, domainID string) error {
	return r.to(host).ResizeVolume(ctx, host, id, newSizeGiB, domainID)
}
func (r hostRouter) DeleteVolume(ctx context.Context, host, id string) error {
	return r.to(host).DeleteVolume(ctx, host, id)
}
func (r hostRouter) CreateNetwork(ctx context.Context, host string, net localcloud.IsolatedNetwork) error {
	return r.to(host).CreateNetwork(ctx, host, net)
}
func (r hostRouter) DeleteNetwork(ctx context.Context, host, id string) error {
	return r.to(host).DeleteNetwork(ctx, host, id)
}
func (r hostRouter) Inventory(ctx context.Context, host string) (localcloud.HostInventory, error) {
	return r.to(host).Inventory(ctx, host)
}

// requireTCP makes sure the local libvirtd answers on tcpURI. A daemon
// started before install-libvirt.sh listened on TCP is restarted (by the
// script, see libvirttest.RestartDaemon) when CLOUDMUX_REQUIRE_LIBVIRT is
// set; otherwise the test is skipped.
func requireTCP(t *testing.T) {
	t.Helper()
	answers := func() error {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		api, err := libvirt.Dial(ctx, tcpURI)
		if err == nil {
			_ = api.Disconnect()
		}
		return err
	}
	if answers() == nil {
		return
	}
	if os.Getenv("CLOUDMUX_REQUIRE_LIBVIRT") == "" {
		t.Skipf("libvirtd does not answer on %s (started before install-libvirt.sh had it listen on TCP?); CLOUDMUX_REQUIRE_LIBVIRT=1 restarts it", tcpURI)
	}
	libvirttest.RestartDaemon(t, nil)
	if err := answers(); err != nil {
		t.Fatalf("libvirtd does not answer on %s even after a restart by scripts/install-libvirt.sh: %v", tcpURI, err)
	}
}

// TestTwoHosts runs a cloud over two hosts: the local libvirtd through its
// unix socket (qemu:///system) and the same daemon as a remote host over
// loopback TCP (qemu+tcp://127.0.0.1/system). Each host offers 2 vCPUs and
// 256 MiB, vCPUs overcommitted 2:1: four m1.nano servers (1 vCPU, 128 MiB)
// spread over both by free RAM, the fifth finds no room, capacity adds up
// both hosts, the remote host's console comes through libvirtd over TCP,
// and recovery sees both hosts.
func TestTwoHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("boots real guests; skipped with -short")
	}
	requireLibvirt(t)
	requireTCP(t)
	local, localCfg, _ := testDriverOn(t, "local", "qemu:///system")
	remote, remoteCfg, _ := testDriverOn(t, "remote", tcpURI)
	lc := localcloud.DevDefaults(t.TempDir())
	lc.Hosts = []localcloud.HostConfig{
		{Name: "local", URI: localCfg.Hosts[0].URI, VCPUs: 2, RAMMiB: 256, DiskGiB: 20},
		{Name: "remote", URI: remoteCfg.Hosts[0].URI, VCPUs: 2, RAMMiB: 256, DiskGiB: 20},
	}
	lc.Overcommit = localcloud.Overcommit{CPU: 2, RAM: 1, Disk: 1}
	c, err := localcloud.New(lc, hostRouter{"local": local, "remote": remote}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx := t.Context()
	seeded, err := c.Seed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	poll := localcloudtest.Poll{Timeout: 3 * time.Minute, Every: 100 * time.Millisecond}
	var ids []string
	for i, want := range []string{"local", "remote", "local", "remote", "no room"} {
		s, err := c.CreateServer(ctx, peers.ServerSpec{Name: fmt.Sprintf("spread-%d", i), Project: "p", FlavorID: "42",
			ImageID: seeded.ImageID, Networks: []peers.NetworkAttachment{{NetworkID: seeded.NetworkID}}})
		if want == "no room" {
			if !errors.Is(err, peers.ErrCapacity) {
				t.Fatalf("server %d: %+v, %v; want ErrCapacity", i, s, err)
			}
			break
		}
		if err != nil || s.Host != want {
			t.Fatalf("server %d: host %q, %v; want %s", i, s.Host, err, want)
		}
		ids = append(ids, s.ID)
	}
	for _, id := range ids {
		poll.WaitFor(t, id+" ACTIVE", func() (bool, string) {
			s, err := c.GetServer(ctx, id)
			return err == nil && s.Status == peers.ServerActive, string(s.Status) + " " + s.Fault
		})
	}
	capa, err := c.Capacity(ctx)
	if err != nil || capa.VCPUs.Total != 8 || capa.RAMMiB.Total != 512 || capa.Instances.Used != 4 || capa.RAMMiB.Used != 512 {
		t.Errorf("capacity = %+v, %v; want 8 vCPUs and 512 MiB in all, 4 servers using 512 MiB", capa, err)
	}
	// ids[1] is on the remote host: its console comes over TCP.
	poll.WaitFor(t, "the remote guest's console", func() (bool, string) {
		out, err := c.ConsoleOutput(ctx, ids[1], 0)
		return strings.Contains(out, placeholderLine), fmt.Sprintf("%q %v", out, err)
	})
	rec, err := c.Recover(ctx)
	if err != nil || len(rec.Hosts) != 2 || len(rec.Errored)+len(rec.Adopted)+len(rec.Removed)+len(rec.Restored) > 0 {
		t.Errorf("Recover = %+v, %v; want both hosts seen and nothing amiss", rec, err)
	}
	localcloudtest.DeleteAll(t, c, ids)
	deleteSeeded(t, c, seeded)
}
