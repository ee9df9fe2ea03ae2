package libvirt_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/internal/libvirttest"
	"github.com/cloudmux/cloudmux/localcloud/localcloudtest"
	"github.com/cloudmux/cloudmux/peers"
)

// TestLibvirtdRestart stops the real libvirtd under a connected cloud and
// starts it again (the one the test scripts started, the same way; see
// libvirttest.RestartDaemon): the driver's connection sees Disconnected(),
// calls fail fast with ErrUnavailable while the daemon is down, and once it
// is back the same cloud carries on: its running guest is still ACTIVE,
// recovery finds nothing amiss, and power actions, a new server and
// deletes work on the redialled connection.
func TestLibvirtdRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts libvirtd and boots real guests; skipped with -short")
	}
	poll := localcloudtest.Poll{Timeout: 3 * time.Minute, Every: 100 * time.Millisecond}
	tc := seededCloud(t, "qemu:///system")
	c, seeded, cd, ctx := tc.Cloud, tc.Seeded, tc.Dial, t.Context()
	boot := func(name string) string {
		t.Helper()
		s, err := c.CreateServer(ctx, peers.ServerSpec{Name: name, Project: "rs", FlavorID: "42", ImageID: seeded.ImageID,
			Networks: []peers.NetworkAttachment{{NetworkID: seeded.NetworkID}}})
		if err != nil {
			t.Fatal(err)
		}
		poll.WaitFor(t, name+" ACTIVE", func() (bool, string) {
			got, err := c.GetServer(ctx, s.ID)
			return err == nil && got.Status == peers.ServerActive, string(got.Status) + " " + got.Fault
		})
		return s.ID
	}
	before := boot("before-restart")
	first, dials := cd.last()

	libvirttest.RestartDaemon(t, func() {
		select {
		case <-first.Disconnected():
		case <-time.After(30 * time.Second):
			t.Error("the driver's connection did not see the daemon go (Disconnected() still open after 30s)")
		}
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		if _, err := c.ConsoleOutput(dctx, before, 0); !errors.Is(err, peers.ErrUnavailable) {
			t.Errorf("ConsoleOutput with libvirtd down = %v, want ErrUnavailable", err)
		}
	})

	if _, err := c.ConsoleOutput(ctx, before, 0); err != nil {
		t.Fatalf("ConsoleOutput after the restart: %v", err)
	}
	if _, n := cd.last(); n <= dials {
		t.Errorf("dials = %d after the restart, want more than %d", n, dials)
	}
	rec, err := c.Recover(ctx)
	if err != nil || len(rec.Errored)+len(rec.Adopted)+len(rec.Removed)+len(rec.Restored) > 0 {
		t.Errorf("Recover after the restart = %+v, %v; want nothing amiss", rec, err)
	}
	if got, err := c.GetServer(ctx, before); err != nil || got.Status != peers.ServerActive {
		t.Errorf("server after the restart = %s, %v; want ACTIVE (guests outlive the daemon)", got.Status, err)
	}
	if err := c.ServerAction(ctx, before, peers.ActionHardReboot); err != nil {
		t.Fatalf("hard reboot after the restart: %v", err)
	}
	after := boot("after-restart")
	poll.WaitFor(t, "rebooted server ACTIVE", func() (bool, string) {
		got, err := c.GetServer(ctx, before)
		return err == nil && got.Status == peers.ServerActive, string(got.Status) + " " + got.Fault
	})
	localcloudtest.DeleteAll(t, c, []string{before, after})
	deleteSeeded(t, c, seeded)
}
