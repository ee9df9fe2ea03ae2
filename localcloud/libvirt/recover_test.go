package libvirt_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/libvirt"
	"github.com/cloudmux/cloudmux/localcloud/localcloudtest"
)

// TestRecoverOnQEMU is a cloudmux restart on real libvirt: a cloud on
// qemu:///system makes servers (real TCG domains), volumes, networks,
// subnets, ports, keypairs and images, and is dropped without cleaning up,
// its driver's connection closed, as a process that exits would. A new
// driver and cloud on the same pool, prefix and data directory recover all
// of it from the state file and libvirt's inventory; the recovered
// resources work (hard reboot, detach, a new port gets a fresh address),
// and deleting them leaves nothing in libvirt (the driver's cleanup sweeps
// and fails the test on leftovers). test:///default cannot stand in: its
// state dies with the last connection.
func TestRecoverOnQEMU(t *testing.T) {
	if testing.Short() {
		t.Skip("boots real guests; skipped with -short")
	}
	poll := localcloudtest.Poll{Timeout: 3 * time.Minute, Every: 100 * time.Millisecond}
	tc := seededCloud(t, "qemu:///system")
	c1, seeded, d1 := tc.Cloud, tc.Seeded, tc.Driver
	// m1.nano; no stop: the placeholder guest ignores the ACPI button, so a
	// stop would wait out the shutdown grace.
	w := localcloudtest.Populate(t, c1, seeded, "42", false, poll)
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d1.Close(); err != nil {
		t.Fatal(err)
	}

	d2, err := libvirt.New(tc.DriverCfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d2.Close() })
	c2, err := localcloud.New(tc.Config, d2, testLogger(t))
	if err != nil {
		t.Fatalf("New on the old data directory: %v", err)
	}
	t.Cleanup(func() { _ = c2.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	rec, err := c2.Recover(ctx)
	if err != nil {
		t.Fatalf("Recover: %v", err)
	}
	// Networks are state of the broker's user-space switch, not of the
	// host: a new driver starts without them and Recover makes them again
	// (nothing on the host changes). Anything else restored is a change.
	restored := slices.DeleteFunc(slices.Clone(rec.Restored), func(r string) bool { return strings.HasPrefix(r, "network ") })
	if len(rec.Errored)+len(rec.Adopted)+len(rec.Removed)+len(restored)+len(rec.Unknown)+len(rec.Resumed) > 0 {
		t.Errorf("recovery of a quiet cloud changed things: %+v", rec)
	}
	w.Check(t, c2)
	w.Exercise(t, c2, poll)
	deleteSeeded(t, c2, seeded)
}
