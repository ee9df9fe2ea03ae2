package localcloud

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// Timeouts of background work. A boot copies the image into the root disk,
// so it gets longest.
const (
	spawnTimeout = 30 * time.Minute
	powerTimeout = 5 * time.Minute
	// shutdownGrace is how long a guest gets to power off after ACPI
	// shutdown before it is destroyed (Nova's shutdown_timeout).
	shutdownGrace = 60 * time.Second
	// hostOutageGrace is how long a wait for a domain's state rides out a
	// host that does not answer: a libvirtd restart takes seconds.
	hostOutageGrace = time.Minute
)

// runTask starts work in the background as s's one task. The caller holds
// c.mu, has checked that s is idle, and has made the part of the change a
// reader sees at once (status REBOOT, say). done runs under c.mu with
// work's error; a DeleteServer that came meanwhile starts after it.
func (c *Cloud) runTask(s *server, task string, work func(ctx context.Context) error, done func(err error)) {
	s.task = task
	c.markLocked(recServer, s.ID)
	c.background(func(ctx context.Context) {
		err := work(ctx)
		c.mu.Lock()
		defer c.mu.Unlock()
		s.task = ""
		s.UpdatedAt = now()
		done(err)
		if s.deleteWait && !c.closed {
			c.startDeleteLocked(s)
		}
		c.markServerLocked(s) // gone from c.servers when done deleted it
		c.saveLocked()
	})
}

// rootDisk is a server's root disk to build: an overlay on its image's
// base volume.
type rootDisk struct {
	base baseSource
	vol  PoolVolume
}

// spawn builds and boots a server's domain: root disk (when root is set) as
// a qcow2 overlay on the image's base volume, which is uploaded first if the
// host lacks it; definition; power on. On failure it removes what it made.
func (c *Cloud) spawn(ctx context.Context, hostName string, dom DomainSpec, root *rootDisk) (err error) {
	ctx, cancel := context.WithTimeout(ctx, spawnTimeout)
	defer cancel()
	rootID := ""
	if root != nil {
		rootID = root.vol.ID
		defer root.base.data.Close()
	}
	defer func() {
		if err != nil {
			cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), powerTimeout)
			defer ccancel()
			if terr := c.teardown(cctx, hostName, dom.ID, rootID); terr != nil {
				c.log.WithError(terr).WithField("server", dom.ID).Warn("cleaning up after a failed build failed")
			}
		}
	}()
	if root != nil {
		if err := c.createOverlay(ctx, hostName, root.base, root.vol); err != nil {
			return fmt.Errorf("creating the root disk: %w", err)
		}
	}
	// The NICs' filters exist before the domain that names them.
	if err := c.syncFilters(ctx); err != nil {
		return fmt.Errorf("filtering the NICs: %w", err)
	}
	if err := c.driver.DefineDomain(ctx, hostName, dom); err != nil {
		return fmt.Errorf("defining the domain: %w", err)
	}
	if err := c.driver.StartDomain(ctx, hostName, dom.ID); err != nil {
		return fmt.Errorf("starting the domain: %w", err)
	}
	return c.waitDomain(ctx, hostName, dom.ID, DomainRunning)
}

// teardown removes a server's domain and root disk, whatever exists of
// them; it is safe to repeat.
func (c *Cloud) teardown(ctx context.Context, hostName, id, rootDisk string) error {
	if err := ignoreNotFound(c.driver.DestroyDomain(ctx, hostName, id)); err != nil {
		return fmt.Errorf("destroying the domain: %w", err)
	}
	if err := ignoreNotFound(c.driver.UndefineDomain(ctx, hostName, id)); err != nil {
		return fmt.Errorf("undefining the domain: %w", err)
	}
	if rootDisk != "" {
		if err := ignoreNotFound(c.driver.DeleteVolume(ctx, hostName, rootDisk)); err != nil {
			return fmt.Errorf("deleting the root disk: %w", err)
		}
	}
	return nil
}

// waitDomain polls the driver until the domain is in state want. A crash
// ends the wait; so does ctx. A host that stops answering for less than
// hostOutageGrace (its libvirtd restarting: the guest runs on) is waited
// for.
func (c *Cloud) waitDomain(ctx context.Context, hostName, id string, want DomainState) error {
	delay := time.Millisecond
	st := DomainState("unknown")
	var silentSince time.Time
	for {
		got, err := c.driver.DomainState(ctx, hostName, id)
		switch {
		case err == nil:
			st, silentSince = got, time.Time{}
		case errors.Is(err, peers.ErrUnavailable) && ctx.Err() == nil:
			if silentSince.IsZero() {
				silentSince = time.Now()
				c.log.WithError(err).WithField("server", id).Warn("host not answering; still waiting for the domain")
			}
			if time.Since(silentSince) > hostOutageGrace {
				return fmt.Errorf("reading the domain's state: host silent for over %s: %w", hostOutageGrace, err)
			}
		default:
			return fmt.Errorf("reading the domain's state: %w", err)
		}
		if st == want {
			return nil
		}
		if st == DomainCrashed {
			return fmt.Errorf("domain crashed while waiting for it to be %s", want)
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("domain still %s, not %s: %w", st, want, ctx.Err())
		case <-t.C:
		}
		delay = min(delay*2, 500*time.Millisecond)
	}
}

// powerOff asks the guest to shut down and, if it has not within
// shutdownGrace, destroys the domain.
func (c *Cloud) powerOff(ctx context.Context, hostName, id string) error {
	if err := c.driver.ShutdownDomain(ctx, hostName, id); err != nil {
		return fmt.Errorf("shutting the domain down: %w", err)
	}
	gctx, cancel := context.WithTimeout(ctx, shutdownGrace)
	err := c.waitDomain(gctx, hostName, id, DomainShutoff)
	cancel()
	if err == nil || ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	c.log.WithField("server", id).Warn("guest ignored the shutdown request; destroying the domain")
	if err := c.driver.DestroyDomain(ctx, hostName, id); err != nil {
		return fmt.Errorf("destroying the domain: %w", err)
	}
	return c.waitDomain(ctx, hostName, id, DomainShutoff)
}

// actionFrom is the statuses each action may start from, as Nova's
// check_instance_state allows them. A hard reboot of a SUSPENDED server,
// which Nova allows, is left out: it would restore the saved memory
// instead of booting afresh.
var actionFrom = map[peers.ServerAction][]peers.ServerStatus{
	peers.ActionStart:      {peers.ServerShutoff},
	peers.ActionStop:       {peers.ServerActive},
	peers.ActionReboot:     {peers.ServerActive},
	peers.ActionHardReboot: {peers.ServerActive, peers.ServerShutoff, peers.ServerError, peers.ServerPaused},
	peers.ActionPause:      {peers.ServerActive},
	peers.ActionUnpause:    {peers.ServerPaused},
	peers.ActionSuspend:    {peers.ServerActive},
	peers.ActionResume:     {peers.ServerSuspended},
	// resize.go
	peers.ActionConfirmResize: {peers.ServerVerifyResize},
	peers.ActionRevertResize:  {peers.ServerVerifyResize},
}

// ServerAction runs a power action. Like Nova: start needs SHUTOFF; stop,
// a soft reboot, pause and suspend need ACTIVE; unpause PAUSED and resume
// SUSPENDED; a hard reboot also rescues a SHUTOFF, PAUSED or ERROR server
// whose domain exists. Anything else, or any action while another task
// runs, is ErrConflict; an unknown action is ErrInvalid. A paused or
// suspended server keeps its place on the host (Nova's claim stays too).
func (c *Cloud) ServerAction(ctx context.Context, id string, action peers.ServerAction) error {
	s, err := lockOne(c, ctx, "server", c.servers, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	if s.task != "" || s.deleteWait {
		return errf(peers.ErrConflict, "server %s is busy (%s); try %s later", id, cmp.Or(s.task, "deleting"), action)
	}
	states, known := actionFrom[action]
	if !known {
		return errf(peers.ErrInvalid, "server %s: unknown action %q", id, action)
	}
	if !slices.Contains(states, s.Status) || !s.defined {
		return errf(peers.ErrConflict, "server %s is %s; %s needs %v", id, s.Status, action, states)
	}
	switch action {
	case peers.ActionConfirmResize:
		c.confirmResizeLocked(s)
		c.saveLocked()
		return nil
	case peers.ActionRevertResize:
		err := c.revertResizeLocked(s)
		c.saveLocked()
		return err
	}
	hostName, was := s.Host, s.Status
	log := c.log.WithFields(logrus.Fields{"server": id, "host": hostName, "action": string(action)})
	var work func(ctx context.Context) error
	after := peers.ServerActive
	switch action {
	case peers.ActionStart, peers.ActionResume: // a start restores a saved domain
		work = func(ctx context.Context) error {
			if err := c.driver.StartDomain(ctx, hostName, id); err != nil {
				return err
			}
			return c.waitDomain(ctx, hostName, id, DomainRunning)
		}
	case peers.ActionPause:
		after = peers.ServerPaused
		work = func(ctx context.Context) error {
			if err := c.driver.PauseDomain(ctx, hostName, id); err != nil {
				return err
			}
			return c.waitDomain(ctx, hostName, id, DomainPaused)
		}
	case peers.ActionUnpause:
		work = func(ctx context.Context) error {
			if err := c.driver.UnpauseDomain(ctx, hostName, id); err != nil {
				return err
			}
			return c.waitDomain(ctx, hostName, id, DomainRunning)
		}
	case peers.ActionSuspend:
		after = peers.ServerSuspended
		work = func(ctx context.Context) error {
			if err := c.driver.SaveDomain(ctx, hostName, id); err != nil {
				return err
			}
			return c.waitDomain(ctx, hostName, id, DomainShutoff)
		}
	case peers.ActionStop:
		after = peers.ServerShutoff
		work = func(ctx context.Context) error { return c.powerOff(ctx, hostName, id) }
	case peers.ActionReboot, peers.ActionHardReboot:
		hard := action == peers.ActionHardReboot
		s.Status = peers.ServerReboot
		if hard {
			s.Status = peers.ServerHardReboot
		}
		work = func(ctx context.Context) error {
			var err error
			if was == peers.ServerActive {
				err = c.driver.RebootDomain(ctx, hostName, id, hard)
			} else {
				// Off, paused or broken: a hard reboot is a fresh power-on.
				if err = c.driver.DestroyDomain(ctx, hostName, id); err == nil {
					err = c.driver.StartDomain(ctx, hostName, id)
				}
			}
			if err != nil {
				return err
			}
			return c.waitDomain(ctx, hostName, id, DomainRunning)
		}
	}
	log.Info("server action started")
	defer c.saveLocked()
	c.runTask(s, string(action), func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		return work(ctx)
	}, func(err error) {
		if err != nil {
			// Nova keeps the state and records the fault; a failed reboot
			// leaves the server in an unknown state, which is ERROR.
			log.WithError(err).Warn("server action failed")
			s.Fault = fmt.Sprintf("%s failed: %v", action, err)
			if s.Status == peers.ServerReboot || s.Status == peers.ServerHardReboot {
				s.Status = peers.ServerError
			}
			return
		}
		s.Status, s.Fault = after, ""
		log.WithField("status", string(after)).Info("server action done")
	})
	return nil
}

// ConsoleOutput returns the last lines of a server's serial console (all of
// it when lines <= 0). A server without a domain yet is ErrConflict.
func (c *Cloud) ConsoleOutput(ctx context.Context, serverID string, lines int) (string, error) {
	s, err := lockOne(c, ctx, "server", c.servers, serverID)
	if err != nil {
		return "", err
	}
	defined, status, hostName := s.defined, s.Status, s.Host
	c.mu.Unlock()
	if !defined {
		return "", errf(peers.ErrConflict, "server %s is %s and has no console yet", serverID, status)
	}
	out, err := c.driver.ConsoleOutput(ctx, hostName, serverID)
	if err != nil {
		return "", fmt.Errorf("server %s console: %w", serverID, err)
	}
	return lastLines(out, lines), nil
}

// lastLines keeps the last n lines of s (all when n <= 0).
func lastLines(s string, n int) string {
	if n <= 0 || s == "" {
		return s
	}
	trimmed := strings.TrimRight(s, "\n")
	all := strings.Split(trimmed, "\n")
	if len(all) <= n {
		return s
	}
	return strings.Join(all[len(all)-n:], "\n") + "\n"
}
