package localcloud

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

var _ peers.ServerRebuilder = (*Cloud)(nil)

// rebuildFrom are the statuses Nova rebuilds from (ACTIVE, STOPPED, ERROR).
var rebuildFrom = []peers.ServerStatus{peers.ServerActive, peers.ServerShutoff, peers.ServerError}

// RebuildServer reprovisions a server on its own host, as Nova's libvirt
// driver does: the domain is destroyed and undefined, the root disk
// deleted and made again as an overlay on the new image's base volume,
// the domain defined again (a new config drive with the new key, user
// data and metadata; the same ports and attached volumes) and started;
// a server that was SHUTOFF is powered off again. A failure leaves the
// server in ERROR without a domain (delete it, or rebuild it again).
// A server booted from a volume is ErrInvalid: its disk is the volume's.
func (c *Cloud) RebuildServer(ctx context.Context, id string, spec peers.RebuildSpec) error {
	if err := checkMetadata(spec.Metadata); err != nil {
		return fmt.Errorf("server %s: %w", id, err)
	}
	s, err := lockOne(c, ctx, "server", c.servers, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	switch {
	case s.task != "" || s.deleteWait:
		return errf(peers.ErrConflict, "server %s is busy (%s); try the rebuild later", id, cmp.Or(s.task, "deleting"))
	case !slices.Contains(rebuildFrom, s.Status) || !s.defined:
		return errf(peers.ErrConflict, "server %s is %s; a rebuild needs %v", id, s.Status, rebuildFrom)
	case s.rootDisk == "":
		return errf(peers.ErrInvalid, "server %s boots from a volume: a rebuild would need a new root disk, which is the volume", id)
	}
	f, err := c.flavor(s.FlavorID)
	if err != nil {
		return errf(peers.ErrConflict, "server %s: its flavor %s is gone", id, s.FlavorID)
	}
	b := bootPlan{flavor: f}
	if b.img, err = c.liveImage(spec.ImageID); err != nil {
		return err
	}
	if err := checkImageFitsFlavor(&b.img.Image, f); err != nil {
		return err
	}
	if !bootableFormat(b.img.DiskFormat) {
		return errf(peers.ErrInvalid, "image %s is %s; servers boot from raw or qcow2 images", b.img.ID, b.img.DiskFormat)
	}
	b.rootGiB = f.DiskGiB
	if b.rootGiB == 0 {
		b.rootGiB = max(b.img.MinDiskGiB, int((b.img.Size+gib-1)/gib), 1)
	}
	if spec.KeyName != "" {
		kp, ok := c.keypairs[spec.KeyName]
		if !ok {
			return notFound("keypair", spec.KeyName)
		}
		b.keypair = kp
	}
	// A flavor without a root disk size takes the image's: the new one may
	// need more of the host than the old.
	need := flavorNeeds(f, false)
	need.DiskGiB += int64(b.rootGiB - f.DiskGiB)
	h := c.hostNamed(s.Host)
	if h == nil {
		return errf(peers.ErrConflict, "server %s: its host %s is not configured", id, s.Host)
	}
	if grow := need.sub(s.alloc); grow.DiskGiB > 0 && !(HostResources{DiskGiB: grow.DiskGiB}).fits(h.free(c.cfg.Overcommit)) {
		return errf(peers.ErrCapacity, "host %s has no room for image %s's root disk (%d GiB)", s.Host, b.img.ID, b.rootGiB)
	}
	data, err := c.openImageData(b.img)
	if err != nil {
		return err
	}
	h.used = h.used.sub(s.alloc).add(need)
	s.alloc = need
	wasOff, oldImage := s.Status == peers.ServerShutoff, s.ImageID
	s.Status, s.Fault, s.ImageID, s.KeyName = peers.ServerRebuild, "", b.img.ID, spec.KeyName
	s.Metadata, s.userData, s.publicKey = maps.Clone(spec.Metadata), append([]byte(nil), spec.UserData...), ""
	if b.keypair != nil {
		s.publicKey = b.keypair.PublicKey
	}
	if spec.Hostname != "" {
		s.Hostname = spec.Hostname
	}
	root := &rootDisk{
		base: baseSource{imageID: b.img.ID, format: poolFormat(b.img.DiskFormat), size: b.img.Size, data: data},
		vol:  PoolVolume{ID: s.rootDisk, Name: s.Name + "-disk", SizeGiB: b.rootGiB},
	}
	dom := c.domainSpecLocked(s, b, spec.UserData)
	dom.Disks = append(dom.Disks, c.attachedDisksLocked(s)...)
	hostName := s.Host
	log := c.log.WithFields(logrus.Fields{"server": id, "host": hostName, "image": b.img.ID})
	log.Info("server rebuild started")
	defer c.saveLocked()
	c.runTask(s, "rebuilding", func(ctx context.Context) error {
		if err := c.teardown(ctx, hostName, id, root.vol.ID); err != nil {
			root.base.data.Close()
			return err
		}
		if err := c.spawn(ctx, hostName, dom, root); err != nil {
			return err
		}
		if !wasOff {
			return nil
		}
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		return c.powerOff(ctx, hostName, id)
	}, func(err error) {
		if oldImage != s.ImageID {
			c.collectBasesLocked(hostName)
		}
		if err != nil {
			// spawn removed what it made: no domain is left.
			log.WithError(err).Warn("server rebuild failed")
			s.defined, s.Status, s.Fault = false, peers.ServerError, "rebuild failed: "+err.Error()
			c.setPortStatusLocked(s, "DOWN")
			return
		}
		s.Status = peers.ServerActive
		if wasOff {
			s.Status = peers.ServerShutoff
		}
		log.Info("server rebuilt")
	})
	return nil
}

// attachedDisksLocked are the volumes attached to s beside its root disk,
// as a domain defined again must name them.
func (c *Cloud) attachedDisksLocked(s *server) []Disk {
	var out []Disk
	for _, vid := range s.Volumes {
		v := c.volumes[vid]
		if v == nil || len(v.Attachments) == 0 || v.Attachments[0].ServerID != s.ID || v.Attachments[0].Device == "/dev/vda" {
			continue
		}
		out = append(out, Disk{VolumeID: v.ID, Device: strings.TrimPrefix(v.Attachments[0].Device, "/dev/")})
	}
	return out
}
