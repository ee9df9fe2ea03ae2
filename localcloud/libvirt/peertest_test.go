package libvirt_test

import (
	"context"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers/peertest"
)

// newCloud is a local cloud over a libvirt driver on uri.
func newCloud(t *testing.T, uri string) (*localcloud.Cloud, localcloud.Seeded) {
	t.Helper()
	d, cfg, _ := testDriver(t, uri)
	lc := localcloud.DevDefaults(t.TempDir())
	lc.Hosts = cfg.Hosts
	c, err := localcloud.New(lc, d, testLogger(t))
	if err != nil {
		t.Fatalf("localcloud.New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	seeded, err := c.Seed(t.Context())
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	t.Cleanup(func() {
		// The seeded network is the one thing the suite leaves.
		ctx := context.Background()
		if err := c.DeleteSubnet(ctx, seeded.SubnetID); err != nil {
			t.Errorf("cleanup: DeleteSubnet: %v", err)
		}
		if err := c.DeleteNetwork(ctx, seeded.NetworkID); err != nil {
			t.Errorf("cleanup: DeleteNetwork: %v", err)
		}
	})
	return c, seeded
}

// TestConformanceTestDriver runs the peers conformance suite against the
// local cloud on libvirt's test:///default driver, through libvirtd: the
// real RPC protocol, XML and errors, with no guest running.
func TestConformanceTestDriver(t *testing.T) {
	c, seeded := newCloud(t, "test:///default")
	peertest.Exercise(t, c, peertest.Fixture{
		FlavorID: "1", ImageID: seeded.ImageID, Project: "peertest",
		PollTimeout: time.Minute, MaxPollInterval: 50 * time.Millisecond,
	})
}

// TestConformanceQEMU runs the suite against real QEMU (TCG) domains on
// qemu:///system, booting the seeded placeholder image. Guests ignore the
// ACPI power button, so every stop waits out the cloud's shutdown grace
// (60s) before the domain is destroyed: the test takes minutes.
func TestConformanceQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots real guests; skipped with -short")
	}
	c, seeded := newCloud(t, "qemu:///system")
	peertest.Exercise(t, c, peertest.Fixture{
		FlavorID: "1", ImageID: seeded.ImageID, Project: "peertest",
		PollTimeout: 3 * time.Minute, MaxPollInterval: 500 * time.Millisecond,
	})
}
