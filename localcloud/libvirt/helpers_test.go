package libvirt_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/internal/libvirttest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/libvirt"
	"github.com/cloudmux/cloudmux/localcloud/localcloudtest"
)

const libvirtSocket = "/var/run/libvirt/libvirt-sock"

// requireLibvirt skips the test when no libvirtd answers here, unless
// CLOUDMUX_REQUIRE_LIBVIRT is set (CI sets it): then libvirtd is installed
// and started if need be (libvirttest.Ensure), and failing that the test
// fails. It holds the daemon for the test (libvirttest.Share), so a
// restart of it by another test binary waits.
func requireLibvirt(t *testing.T) {
	t.Helper()
	if os.Getenv("CLOUDMUX_REQUIRE_LIBVIRT") != "" {
		libvirttest.Ensure(t)
		return
	}
	if !libvirtHere() {
		t.Skipf("no libvirtd answers on %s; set CLOUDMUX_REQUIRE_LIBVIRT=1 to start one (or fail)", libvirtSocket)
	}
	libvirttest.Share(t)
}

// libvirtHere reports whether libvirtd answers on its socket, or
// CLOUDMUX_REQUIRE_LIBVIRT says it must. A socket file left by a daemon
// that has stopped does not count.
func libvirtHere() bool {
	if os.Getenv("CLOUDMUX_REQUIRE_LIBVIRT") != "" {
		return true
	}
	c, err := net.DialTimeout("unix", libvirtSocket, 2*time.Second)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// testLogger logs into a buffer a failing test prints.
func testLogger(t *testing.T) logrus.FieldLogger { return localcloudtest.Logger(t) }

// countingDial wraps libvirt.Dial, remembering every connection it opens.
type countingDial struct {
	mu    sync.Mutex
	conns []libvirt.API
}

func (c *countingDial) dial(ctx context.Context, uri string) (libvirt.API, error) {
	a, err := libvirt.Dial(ctx, uri)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conns = append(c.conns, a)
	return a, nil
}

func (c *countingDial) last() (libvirt.API, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.conns) == 0 {
		return nil, 0
	}
	return c.conns[len(c.conns)-1], len(c.conns)
}

// testDriver is a driver on uri with a unique prefix and pool; everything
// carrying the prefix (domains, networks, volumes, and the pool) is
// removed at cleanup, whatever the test left.
func testDriver(t *testing.T, uri string) (*libvirt.Driver, libvirt.Config, *countingDial) {
	t.Helper()
	return testDriverOn(t, "h1", uri)
}

// testDriverOn is testDriver with its one host named hostName.
func testDriverOn(t *testing.T, hostName, uri string) (*libvirt.Driver, libvirt.Config, *countingDial) {
	t.Helper()
	requireLibvirt(t)
	prefix := "cmxtest-" + randHex(4) + "-"
	poolPath := "/var/lib/cloudmux/test-pools/" + strings.TrimSuffix(prefix, "-")
	if strings.HasPrefix(uri, "test:") {
		poolPath = t.TempDir() + "/pool"
	}
	cd := &countingDial{}
	cfg := libvirt.Config{
		Hosts: []localcloud.HostConfig{{Name: hostName, URI: uri}},
		Pool:  prefix + "pool", PoolPath: poolPath, Prefix: prefix, Dial: cd.dial,
		CallTimeout: 20 * time.Second,
	}
	d, err := libvirt.New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		sweep(t, uri, prefix)
		_ = d.Close()
		if !strings.HasPrefix(uri, "test:") {
			_ = os.RemoveAll(poolPath)
		}
	})
	return d, cfg, cd
}

// sweep removes everything named with prefix from uri, on a connection of
// its own, and fails the test if anything was left.
func sweep(t testing.TB, uri, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	api, err := libvirt.Dial(ctx, uri)
	if err != nil {
		t.Errorf("sweep: dial %s: %v", uri, err)
		return
	}
	defer api.Disconnect()
	l := api.(*libvirt.Conn).Libvirt
	var left []string
	doms, _, _ := l.ConnectListAllDomains(1, 0)
	for _, d := range doms {
		if strings.HasPrefix(d.Name, prefix) {
			left = append(left, "domain "+d.Name)
			_ = l.DomainDestroy(d)
			_ = l.DomainUndefineFlags(d, golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineSnapshotsMetadata)
		}
	}
	nets, _, _ := l.ConnectListAllNetworks(1, 0)
	for _, n := range nets {
		if strings.HasPrefix(n.Name, prefix) {
			left = append(left, "network "+n.Name)
			_ = l.NetworkDestroy(n)
			_ = l.NetworkUndefine(n)
		}
	}
	if p, err := l.StoragePoolLookupByName(prefix + "pool"); err == nil {
		_ = l.StoragePoolRefresh(p, 0)
		vols, _, _ := l.StoragePoolListAllVolumes(p, 1, 0)
		for _, v := range vols {
			if strings.HasPrefix(v.Name, prefix) && !strings.Contains(v.Name, "-console.log") && !strings.HasPrefix(v.Name, prefix+"image-") {
				left = append(left, "volume "+v.Name)
			}
			_ = l.StorageVolDelete(v, 0)
		}
		_ = l.StoragePoolDestroy(p)
		_ = l.StoragePoolDelete(p, 0)
		_ = l.StoragePoolUndefine(p)
	}
	if len(left) > 0 && !t.Failed() {
		t.Errorf("left behind on %s: %v", uri, left)
	}
}

var _ = io.Discard
