package localcloud

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

var _ peers.ServerShelver = (*Cloud)(nil)

// shelveFrom are the statuses Nova shelves from.
var shelveFrom = []peers.ServerStatus{peers.ServerActive, peers.ServerShutoff, peers.ServerPaused, peers.ServerSuspended}

// ShelveServer shelves a server: the guest is powered off (SHELVED; a
// paused or suspended one is destroyed, its saved memory dropped), then
// offloaded at once as Nova's default shelved_offload_time of 0 does
// (OffloadServer's work). The root disk stays in its host's pool and the
// server goes back to that host when unshelved: hosts share no storage.
func (c *Cloud) ShelveServer(ctx context.Context, id string) error {
	s, err := lockOne(c, ctx, "server", c.servers, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	if err := busyOr(s, "shelve", shelveFrom); err != nil {
		return err
	}
	if !s.defined {
		return errf(peers.ErrConflict, "server %s has no domain to shelve", id)
	}
	hostName, was := s.Host, s.Status
	s.Status = peers.ServerShelved
	log := c.log.WithFields(logrus.Fields{"server": id, "host": hostName})
	log.Info("server shelve started")
	defer c.saveLocked()
	c.runTask(s, "shelving", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		var err error
		if was == peers.ServerActive {
			err = c.powerOff(ctx, hostName, id)
		} else if err = ignoreNotFound(c.driver.DestroyDomain(ctx, hostName, id)); err == nil {
			err = c.waitDomain(ctx, hostName, id, DomainShutoff)
		}
		if err != nil {
			return err
		}
		return c.offload(ctx, hostName, id)
	}, func(err error) {
		c.offloaded(s, log, err)
	})
	return nil
}

// OffloadServer offloads a SHELVED server whose offload did not happen
// (one failed): the domain is undefined and the host's vCPUs and memory
// freed.
func (c *Cloud) OffloadServer(ctx context.Context, id string) error {
	s, err := lockOne(c, ctx, "server", c.servers, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	if err := busyOr(s, "shelve offload", []peers.ServerStatus{peers.ServerShelved}); err != nil {
		return err
	}
	hostName := s.Host
	log := c.log.WithFields(logrus.Fields{"server": id, "host": hostName})
	defer c.saveLocked()
	c.runTask(s, "shelving_offloading", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		return c.offload(ctx, hostName, id)
	}, func(err error) {
		c.offloaded(s, log, err)
	})
	return nil
}

// offload undefines a shut-off domain; its disks stay in the pool.
func (c *Cloud) offload(ctx context.Context, hostName, id string) error {
	if err := ignoreNotFound(c.driver.UndefineDomain(ctx, hostName, id)); err != nil {
		return fmt.Errorf("undefining the domain: %w", err)
	}
	return nil
}

// offloaded settles a shelve or an offload: SHELVED_OFFLOADED with only
// the root disk's room kept on the host, or SHELVED (the domain still
// defined, off) when the work failed part way.
func (c *Cloud) offloaded(s *server, log logrus.FieldLogger, err error) {
	c.setPortStatusLocked(s, "DOWN")
	if err != nil {
		log.WithError(err).Warn("server shelve failed")
		s.Fault = "shelve failed: " + err.Error()
		return
	}
	keep := HostResources{DiskGiB: s.alloc.DiskGiB}
	if h := c.hostNamed(s.Host); h != nil {
		h.used = h.used.sub(s.alloc).add(keep)
	}
	s.alloc, s.defined, s.Status, s.Fault = keep, false, peers.ServerShelvedOffloaded, ""
	log.Info("server shelved and offloaded")
}

// UnshelveServer boots a shelved server again on its host: a SHELVED one
// is started, a SHELVED_OFFLOADED one gets its vCPUs and memory back
// (ErrCapacity when the host has no room) and its domain defined again as
// it was (same disks, ports, key and user data).
func (c *Cloud) UnshelveServer(ctx context.Context, id string) error {
	s, err := lockOne(c, ctx, "server", c.servers, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	if err := busyOr(s, "unshelve", []peers.ServerStatus{peers.ServerShelved, peers.ServerShelvedOffloaded}); err != nil {
		return err
	}
	hostName, offloaded := s.Host, s.Status == peers.ServerShelvedOffloaded
	var dom DomainSpec
	if offloaded {
		f, err := c.flavor(s.FlavorID)
		if err != nil {
			return errf(peers.ErrConflict, "server %s: its flavor %s is gone", id, s.FlavorID)
		}
		need := flavorNeeds(f, s.rootDisk == "")
		need.DiskGiB = s.alloc.DiskGiB
		h := c.hostNamed(hostName)
		if h == nil || !need.sub(s.alloc).fits(h.free(c.cfg.Overcommit)) {
			return errf(peers.ErrCapacity, "host %s has no room to unshelve server %s (flavor %s)", hostName, id, f.ID)
		}
		h.used = h.used.sub(s.alloc).add(need)
		s.alloc = need
		b := bootPlan{flavor: f}
		if s.rootDisk == "" {
			b.bootVol = c.bootVolumeLocked(s)
		}
		dom = c.domainSpecLocked(s, b, s.userData)
		dom.PublicKey = s.publicKey
		dom.Disks = append(dom.Disks, c.attachedDisksLocked(s)...)
	}
	log := c.log.WithFields(logrus.Fields{"server": id, "host": hostName})
	log.Info("server unshelve started")
	defer c.saveLocked()
	defined := !offloaded // read by done, which runs after work
	c.runTask(s, "spawning", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		if offloaded {
			if err := c.syncFilters(ctx); err != nil {
				return fmt.Errorf("filtering the NICs: %w", err)
			}
			if err := c.driver.DefineDomain(ctx, hostName, dom); err != nil {
				return fmt.Errorf("defining the domain: %w", err)
			}
			defined = true
		}
		if err := c.driver.StartDomain(ctx, hostName, id); err != nil {
			return err
		}
		return c.waitDomain(ctx, hostName, id, DomainRunning)
	}, func(err error) {
		s.defined = defined
		if err != nil {
			// Nova leaves a failed unshelve in ERROR.
			log.WithError(err).Warn("server unshelve failed")
			s.Status, s.Fault = peers.ServerError, "unshelve failed: "+err.Error()
			return
		}
		s.Status, s.Fault = peers.ServerActive, ""
		c.setPortStatusLocked(s, "ACTIVE")
		log.Info("server unshelved")
	})
	return nil
}

// busyOr refuses a server busy with a task, or in a status action does
// not start from.
func busyOr(s *server, action string, from []peers.ServerStatus) error {
	if s.task != "" || s.deleteWait {
		return errf(peers.ErrConflict, "server %s is busy (%s); try the %s later", s.ID, cmp.Or(s.task, "deleting"), action)
	}
	if !slices.Contains(from, s.Status) {
		return errf(peers.ErrConflict, "server %s is %s; %s needs %v", s.ID, s.Status, action, from)
	}
	return nil
}

// bootVolumeLocked is the volume s boots from (attached as /dev/vda).
func (c *Cloud) bootVolumeLocked(s *server) *volume {
	for _, vid := range s.Volumes {
		if v := c.volumes[vid]; v != nil && len(v.Attachments) > 0 && v.Attachments[0].ServerID == s.ID && v.Attachments[0].Device == "/dev/vda" {
			return v
		}
	}
	return nil
}
