package localcloud

import (
	"cmp"
	"context"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

var _ peers.ServerResizer = (*Cloud)(nil)

// ResizeServer resizes a server offline on its own host, as Nova's
// libvirt driver does with allow_resize_to_same_host: the guest is shut
// down, its root disk grown to the new flavor's size (never shrunk), its
// domain's vCPUs and memory rewritten, and it is started again if it ran.
// The host holds both flavors' needs until the resize is confirmed
// (the old one's are freed) or reverted (the new one's are), as Nova's
// placement holds the migration's allocation; a host without room for the
// new flavor is ErrCapacity.
func (c *Cloud) ResizeServer(ctx context.Context, id, flavorID string) error {
	s, err := lockOne(c, ctx, "server", c.servers, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	if s.task != "" || s.deleteWait {
		return errf(peers.ErrConflict, "server %s is busy (%s); try the resize later", id, cmp.Or(s.task, "deleting"))
	}
	if (s.Status != peers.ServerActive && s.Status != peers.ServerShutoff) || !s.defined {
		return errf(peers.ErrConflict, "server %s is %s; a resize needs ACTIVE or SHUTOFF", id, s.Status)
	}
	to, err := c.flavor(flavorID)
	if err != nil {
		return err
	}
	from, err := c.flavor(s.FlavorID)
	if err != nil {
		return errf(peers.ErrConflict, "server %s: its flavor %s is gone, so what it holds is unknown", id, s.FlavorID)
	}
	bootVolume := s.rootDisk == ""
	switch {
	case to.ID == from.ID:
		return errf(peers.ErrInvalid, "server %s already has flavor %s", id, to.ID)
	case !bootVolume && to.DiskGiB < from.DiskGiB:
		return errf(peers.ErrInvalid, "flavor %s's root disk (%d GiB) is smaller than the server's (%d GiB); a disk does not shrink", to.ID, to.DiskGiB, from.DiskGiB)
	}
	need := flavorNeeds(to, bootVolume)
	h := c.hostNamed(s.Host)
	if h == nil || !need.fits(h.free(c.cfg.Overcommit)) {
		return errf(peers.ErrCapacity, "host %s has no room for flavor %s beside the server's current one", s.Host, to.ID)
	}
	h.used = h.used.add(need)
	s.alloc = s.alloc.add(need)
	s.resizeFrom, s.resizeOff = from.ID, s.Status == peers.ServerShutoff
	s.Status = peers.ServerResize
	hostName, rootDisk, wasOn := s.Host, s.rootDisk, !s.resizeOff
	log := c.log.WithFields(logrus.Fields{"server": id, "host": hostName, "from": from.ID, "to": to.ID})
	log.Info("server resize started")
	defer c.saveLocked()
	c.runTask(s, "resize", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		grow := 0
		if !bootVolume && to.DiskGiB > from.DiskGiB {
			grow = to.DiskGiB
		}
		return c.setSize(ctx, hostName, id, rootDisk, grow, to, wasOn)
	}, func(err error) {
		if err != nil {
			// Nova leaves a failed resize in ERROR; the allocations stay
			// until the server is deleted.
			log.WithError(err).Warn("server resize failed")
			s.Status, s.Fault = peers.ServerError, fmt.Sprintf("resize failed: %v", err)
			return
		}
		s.Status, s.FlavorID, s.Fault = peers.ServerVerifyResize, to.ID, ""
		log.Info("server resized; waiting for a confirm or a revert")
	})
	return nil
}

// setSize is a resize's work on the host: power off (if on), grow the root
// disk (to growGiB, when not zero), set the domain's size, power on (if
// it was on).
func (c *Cloud) setSize(ctx context.Context, hostName, id, rootDisk string, growGiB int, f peers.Flavor, on bool) error {
	if on {
		if err := c.powerOff(ctx, hostName, id); err != nil {
			return err
		}
	}
	if growGiB > 0 {
		if err := c.driver.ResizeVolume(ctx, hostName, rootDisk, growGiB, id); err != nil { // the domain is off: an offline resize
			return fmt.Errorf("growing the root disk: %w", err)
		}
	}
	if err := c.driver.SetDomainSize(ctx, hostName, id, f.VCPUs, f.RAMMiB); err != nil {
		return fmt.Errorf("resizing the domain: %w", err)
	}
	if !on {
		return nil
	}
	if err := c.driver.StartDomain(ctx, hostName, id); err != nil {
		return err
	}
	return c.waitDomain(ctx, hostName, id, DomainRunning)
}

// confirmResizeLocked ends a VERIFY_RESIZE: the old flavor's needs go
// back to the host. Nothing happens on the host itself.
func (c *Cloud) confirmResizeLocked(s *server) {
	if from, err := c.flavor(s.resizeFrom); err == nil {
		old := flavorNeeds(from, s.rootDisk == "")
		if h := c.hostNamed(s.Host); h != nil {
			h.used = h.used.sub(old)
		}
		s.alloc = s.alloc.sub(old)
	}
	s.Status = peers.ServerActive
	if s.resizeOff {
		s.Status = peers.ServerShutoff
	}
	s.resizeFrom, s.resizeOff, s.UpdatedAt = "", false, now()
	c.markLocked(recServer, s.ID)
	c.log.WithField("server", s.ID).Info("server resize confirmed")
}

// revertResizeLocked starts going back to the old flavor: REVERT_RESIZE,
// the domain set to the old size, then the status the server had before
// the resize. A grown root disk stays grown (the guest's partitions do
// not shrink back either). The caller saves.
func (c *Cloud) revertResizeLocked(s *server) error {
	from, err := c.flavor(s.resizeFrom)
	if err != nil {
		return errf(peers.ErrConflict, "server %s: the flavor it was resized from (%s) is gone", s.ID, s.resizeFrom)
	}
	cur, err := c.flavor(s.FlavorID)
	if err != nil {
		return errf(peers.ErrConflict, "server %s: its flavor %s is gone", s.ID, s.FlavorID)
	}
	hostName, id, on := s.Host, s.ID, !s.resizeOff
	s.Status = peers.ServerRevertResize
	log := c.log.WithFields(logrus.Fields{"server": id, "host": hostName, "to": from.ID})
	c.runTask(s, "revert_resize", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		return c.setSize(ctx, hostName, id, "", 0, from, on)
	}, func(err error) {
		if err != nil {
			log.WithError(err).Warn("server resize revert failed")
			s.Status, s.Fault = peers.ServerError, fmt.Sprintf("resize revert failed: %v", err)
			return
		}
		now := flavorNeeds(cur, s.rootDisk == "")
		if h := c.hostNamed(s.Host); h != nil {
			h.used = h.used.sub(now)
		}
		s.alloc = s.alloc.sub(now)
		s.FlavorID, s.Status, s.Fault = from.ID, peers.ServerActive, ""
		if s.resizeOff {
			s.Status = peers.ServerShutoff
		}
		s.resizeFrom, s.resizeOff = "", false
		log.Info("server resize reverted")
	})
	return nil
}
