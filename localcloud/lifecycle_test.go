package localcloud_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/localcloudtest"
	"github.com/cloudmux/cloudmux/peers"
)

// TestRecoverPausedAndSuspended: a paused server's domain is paused and a
// suspended one's is off with its memory saved; a restarted cloud shows
// them PAUSED and SUSPENDED (not ACTIVE and SHUTOFF) and brings them back.
func TestRecoverPausedAndSuspended(t *testing.T) {
	cfg, drv, c1, seeded := crashable(t)
	ids := localcloudtest.CreateActive(t, c1, seeded, 2)
	paused, suspended := ids[0], ids[1]
	for id, a := range map[string]peers.ServerAction{paused: peers.ActionPause, suspended: peers.ActionSuspend} {
		if err := c1.ServerAction(t.Context(), id, a); err != nil {
			t.Fatal(err)
		}
	}
	waitStatus(t, c1, paused, peers.ServerPaused)
	waitStatus(t, c1, suspended, peers.ServerSuspended)
	if _, st, _ := drv.Domain("host-a", paused); st != localcloud.DomainPaused {
		t.Fatalf("paused server's domain is %s", st)
	}
	localcloud.Halt(c1)

	c2, _ := reopen(t, cfg, drv)
	for _, tc := range []struct {
		id     string
		status peers.ServerStatus
		back   peers.ServerAction
	}{
		{paused, peers.ServerPaused, peers.ActionUnpause},
		{suspended, peers.ServerSuspended, peers.ActionResume},
	} {
		t.Run(string(tc.status), func(t *testing.T) {
			s, err := c2.GetServer(t.Context(), tc.id)
			if err != nil || s.Status != tc.status {
				t.Fatalf("after the restart: %s, %v; want %s", s.Status, err, tc.status)
			}
			if err := c2.ServerAction(t.Context(), tc.id, tc.back); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, c2, tc.id, peers.ServerActive)
		})
	}
	out, err := c2.ConsoleOutput(t.Context(), suspended, 0)
	if err != nil || !strings.Contains(out, "restored from its saved memory") {
		t.Fatalf("console of the resumed server = %q, %v; want a restore, not a boot", out, err)
	}
}

func waitStatus(t *testing.T, c *localcloud.Cloud, id string, want peers.ServerStatus) {
	t.Helper()
	fastPoll.WaitFor(t, fmt.Sprintf("server %s %s", id, want), func() (bool, string) {
		s, err := c.GetServer(context.Background(), id)
		return err == nil && s.Status == want, fmt.Sprintf("%s %v", s.Status, err)
	})
}

// TestResizeHoldsBothFlavors: a resizing server holds its host's room for
// both flavors until the confirm (the old one's goes back) or the revert
// (the new one's does), also across a restart in VERIFY_RESIZE; the
// domain has the new size.
func TestResizeHoldsBothFlavors(t *testing.T) {
	cfg, drv, c1, seeded := crashable(t)
	id := localcloudtest.CreateActive(t, c1, seeded, 1)[0] // m1.nano: 1 vCPU, 128 MiB, 1 GiB
	ram := func(t *testing.T, c *localcloud.Cloud, want int64) {
		t.Helper()
		capa, err := c.Capacity(t.Context())
		if err != nil || capa.RAMMiB.Used != want {
			t.Fatalf("RAM used = %d, %v; want %d", capa.RAMMiB.Used, err, want)
		}
	}
	if err := c1.ResizeServer(t.Context(), id, "3"); err != nil { // m1.medium: 2 vCPU, 4096 MiB, 40 GiB
		t.Fatal(err)
	}
	waitStatus(t, c1, id, peers.ServerVerifyResize)
	ram(t, c1, 128+4096)
	if spec, st, _ := drv.Domain("host-a", id); spec.VCPUs != 2 || spec.RAMMiB != 4096 || st != localcloud.DomainRunning {
		t.Fatalf("resized domain: %d vCPU, %d MiB, %s; want 2, 4096, running", spec.VCPUs, spec.RAMMiB, st)
	}
	localcloud.Halt(c1)
	c2, _ := reopen(t, cfg, drv)
	waitStatus(t, c2, id, peers.ServerVerifyResize)
	ram(t, c2, 128+4096)
	for _, tc := range []struct {
		name   string
		action peers.ServerAction
		flavor string
		ram    int64
	}{
		{"revert", peers.ActionRevertResize, "42", 128},
		{"confirm", peers.ActionConfirmResize, "3", 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.action == peers.ActionConfirmResize {
				if err := c2.ResizeServer(t.Context(), id, "3"); err != nil {
					t.Fatal(err)
				}
				waitStatus(t, c2, id, peers.ServerVerifyResize)
			}
			if err := c2.ServerAction(t.Context(), id, tc.action); err != nil {
				t.Fatal(err)
			}
			waitStatus(t, c2, id, peers.ServerActive)
			if s, _ := c2.GetServer(t.Context(), id); s.FlavorID != tc.flavor {
				t.Fatalf("flavor %s; want %s", s.FlavorID, tc.flavor)
			}
			ram(t, c2, tc.ram)
		})
	}
	if err := c2.ResizeServer(t.Context(), id, "42"); err == nil || !errors.Is(err, peers.ErrInvalid) {
		t.Fatalf("a resize to a flavor with a smaller disk: %v; want ErrInvalid", err)
	}
}
