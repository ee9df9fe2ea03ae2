package localcloud

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// volume is a Cinder volume: a pool volume on one host. Without shared
// storage it can only be attached to servers on that host.
type volume struct {
	peers.Volume
	host  string
	alloc int64 // GiB taken from host's disk; 0 once given back
	// snapshotOf, when set, makes this record a snapshot of that volume
	// (snapshots.go), not a volume.
	snapshotOf string
}

func (v *volume) view() peers.Volume {
	out := v.Volume
	out.Attachments = slices.Clone(v.Attachments)
	out.Metadata = maps.Clone(v.Metadata)
	return out
}

// saved is v's record in the state file and journal.
func (v *volume) saved() savedVolume {
	return savedVolume{Volume: v.view(), Host: v.host, Alloc: v.alloc, SnapshotOf: v.snapshotOf}
}

// The volume types on offer: Cinder's default type and the one backend.
var volumeTypes = []string{"", "__DEFAULT__", "local"}

// CreateVolume allocates a volume, empty or holding an image, and returns
// it creating; it becomes available (or error) in the background.
func (c *Cloud) CreateVolume(ctx context.Context, spec peers.VolumeSpec) (peers.Volume, error) {
	if err := ctx.Err(); err != nil {
		return peers.Volume{}, err
	}
	if err := requireProject("volume", spec.Project); err != nil {
		return peers.Volume{}, err
	}
	if err := checkMetadata(spec.Metadata); err != nil {
		return peers.Volume{}, fmt.Errorf("volume %q: %w", spec.Name, err)
	}
	if spec.SizeGiB < 1 {
		return peers.Volume{}, errf(peers.ErrInvalid, "volume %q: size %d GiB; want at least 1", spec.Name, spec.SizeGiB)
	}
	if !slices.Contains(volumeTypes, spec.VolumeType) {
		return peers.Volume{}, errf(peers.ErrNotFound, "volume type %q (this cloud has %q)", spec.VolumeType, "local")
	}
	forced, err := forcedHost(spec.AvailabilityZone)
	if err != nil {
		return peers.Volume{}, err
	}
	var vc VolumeCopier
	copied := spec.SnapshotID != "" || spec.SourceVolumeID != ""
	if copied {
		if (spec.SnapshotID != "") == (spec.SourceVolumeID != "") || spec.ImageID != "" {
			return peers.Volume{}, errf(peers.ErrInvalid, "volume %q: at most one of an image, a snapshot and a source volume", spec.Name)
		}
		if vc, err = c.copier(); err != nil {
			return peers.Volume{}, err
		}
	}
	if err := c.knowHosts(ctx); err != nil {
		return peers.Volume{}, err
	}
	if err := c.begin(ctx); err != nil {
		return peers.Volume{}, err
	}
	defer c.mu.Unlock()
	var src *volume
	if copied {
		if src, err = c.copySourceLocked(spec); err != nil {
			return peers.Volume{}, err
		}
		if forced != "" && forced != src.host {
			return peers.Volume{}, errf(peers.ErrInvalid, "volume %q: its source lives on host %s, not %s", spec.Name, src.host, forced)
		}
		forced = src.host // a copy is made in the source's pool
	}
	var imgData *os.File
	var imgSize int64
	var imgFormat string
	if spec.ImageID != "" {
		img, err := c.liveImage(spec.ImageID)
		if err != nil {
			return peers.Volume{}, err
		}
		switch {
		case img.Status != peers.ImageActive:
			return peers.Volume{}, errf(peers.ErrInvalid, "image %s is %s; a volume is made only from an active image", img.ID, img.Status)
		case int64(spec.SizeGiB)*gib < img.Size || spec.SizeGiB < img.MinDiskGiB:
			return peers.Volume{}, errf(peers.ErrInvalid, "volume %q: %d GiB is smaller than image %s (%d bytes, min_disk %d GiB)", spec.Name, spec.SizeGiB, img.ID, img.Size, img.MinDiskGiB)
		}
		if !bootableFormat(img.DiskFormat) {
			return peers.Volume{}, errf(peers.ErrInvalid, "image %s is %s; volumes are made from raw or qcow2 images", img.ID, img.DiskFormat)
		}
		imgSize, imgFormat = img.Size, poolFormat(img.DiskFormat)
		if imgData, err = c.openImageData(img); err != nil {
			return peers.Volume{}, err
		}
	}
	h, err := c.pickHost(HostResources{DiskGiB: int64(spec.SizeGiB)}, forced, mostFreeDisk)
	if err != nil {
		if imgData != nil {
			_ = imgData.Close()
		}
		return peers.Volume{}, fmt.Errorf("volume %q: %w", spec.Name, err)
	}
	v := &volume{
		Volume: peers.Volume{
			ID: newID(), Name: spec.Name, Description: spec.Description, Project: spec.Project, SizeGiB: spec.SizeGiB,
			Status: peers.VolumeCreating, VolumeType: cmp.Or(spec.VolumeType, "__DEFAULT__"), AvailabilityZone: defaultAZ,
			SourceImageID: spec.ImageID, Metadata: maps.Clone(spec.Metadata), CreatedAt: now(),
		},
		host:  h.cfg.Name,
		alloc: int64(spec.SizeGiB),
	}
	h.used.DiskGiB += v.alloc
	c.volumes[v.ID] = v
	log := c.log.WithFields(logrus.Fields{"volume": v.ID, "host": v.host, "size_gib": v.SizeGiB, "image": spec.ImageID})
	if src != nil {
		v.SnapshotID, v.SourceVolumeID, v.Bootable = spec.SnapshotID, spec.SourceVolumeID, src.Bootable
		c.copyInBackground(vc, v, src.ID, log.WithField("source", src.ID))
		log.Info("volume creating from a copy")
		c.markLocked(recVolume, v.ID)
		c.saveLocked()
		return v.view(), nil
	}
	pv, hostName := PoolVolume{ID: v.ID, Name: v.Name, SizeGiB: v.SizeGiB}, v.host
	c.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, spawnTimeout)
		defer cancel()
		var err error
		if imgData != nil {
			// A qcow2 overlay on the image's base volume, like a root disk.
			err = c.createOverlay(ctx, hostName, baseSource{imageID: spec.ImageID, format: imgFormat, size: imgSize, data: imgData}, pv)
			_ = imgData.Close()
		} else {
			err = c.driver.CreateVolume(ctx, hostName, pv)
		}
		if err != nil {
			// Whatever the driver made is of no use; a failure here leaves
			// an orphan in the pool, which the log names.
			if derr := ignoreNotFound(c.driver.DeleteVolume(context.WithoutCancel(ctx), hostName, pv.ID)); derr != nil {
				log.WithError(derr).Warn("removing a failed volume from the pool failed")
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		defer c.saveLocked()
		c.markLocked(recVolume, v.ID)
		if err != nil {
			log.WithError(err).Warn("volume creation failed")
			v.Status = peers.VolumeError
			c.releaseVolumeAllocLocked(v)
			return
		}
		v.Status, v.Bootable = peers.VolumeAvailable, imgData != nil
		log.Info("volume available")
	})
	log.Info("volume creating")
	view := v.view()
	c.markLocked(recVolume, v.ID)
	c.saveLocked()
	return view, nil
}

// releaseVolumeAllocLocked gives back the disk v took from its host.
func (c *Cloud) releaseVolumeAllocLocked(v *volume) {
	if h := c.hostNamed(v.host); h != nil {
		h.used.DiskGiB -= v.alloc
	}
	v.alloc = 0
}

// GetVolume returns a volume.
func (c *Cloud) GetVolume(ctx context.Context, id string) (peers.Volume, error) {
	if err := c.begin(ctx); err != nil {
		return peers.Volume{}, err
	}
	defer c.mu.Unlock()
	v, ok := c.volumeLocked(id)
	if !ok {
		return peers.Volume{}, notFound("volume", id)
	}
	return v.view(), nil
}

// ListVolumes returns the volumes passing opts, oldest first.
func (c *Cloud) ListVolumes(ctx context.Context, opts peers.ListOptions) ([]peers.Volume, error) {
	return listViews(c, ctx, c.volumes, func(v *volume) bool { return v.snapshotOf == "" && opts.Matches(v.Project, v.Metadata) }, (*volume).view,
		func(a, b peers.Volume) int { return byAgeThenID(a.CreatedAt, a.ID, b.CreatedAt, b.ID) })
}

// DeleteVolume starts deleting an available or error volume that has no
// snapshots and is no volume's source being copied (Cinder's rules); the
// volume is gone once the pool volume is.
func (c *Cloud) DeleteVolume(ctx context.Context, id string) error {
	v, err := c.lockVolume(ctx, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	if v.Status != peers.VolumeAvailable && v.Status != peers.VolumeError {
		return errf(peers.ErrConflict, "volume %s is %s; only an available or error volume can be deleted", id, v.Status)
	}
	if dep := c.dependentLocked(id); dep != "" {
		return errf(peers.ErrConflict, "volume %s still has dependents: %s", id, dep)
	}
	c.startVolumeDeleteLocked(v)
	c.markLocked(recVolume, v.ID)
	c.saveLocked()
	return nil
}

// startVolumeDeleteLocked marks v deleting and removes its pool volume in
// the background; the record goes once the pool volume has.
func (c *Cloud) startVolumeDeleteLocked(v *volume) {
	v.Status = peers.VolumeDeleting
	hostName, id := v.host, v.ID
	log := c.log.WithFields(logrus.Fields{"volume": id, "host": hostName})
	c.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		err := ignoreNotFound(c.driver.DeleteVolume(ctx, hostName, id))
		c.mu.Lock()
		defer c.mu.Unlock()
		defer c.saveLocked()
		c.markLocked(recVolume, id)
		if err != nil {
			log.WithError(err).Warn("volume delete failed")
			v.Status = peers.VolumeError
			return
		}
		c.releaseVolumeAllocLocked(v)
		delete(c.volumes, id)
		log.Info("volume deleted")
		c.collectBasesLocked(hostName)
	})
}

// AttachVolume attaches an available volume to an ACTIVE or SHUTOFF server
// on the same host as the next free /dev/vdX. The volume is attaching until
// the driver is done, then in-use and listed in the server's Volumes.
func (c *Cloud) AttachVolume(ctx context.Context, serverID, volumeID string) (peers.VolumeAttachment, error) {
	s, err := lockOne(c, ctx, "server", c.servers, serverID)
	if err != nil {
		return peers.VolumeAttachment{}, err
	}
	defer c.mu.Unlock()
	v, ok := c.volumeLocked(volumeID)
	if !ok {
		return peers.VolumeAttachment{}, notFound("volume", volumeID)
	}
	switch {
	case s.task != "" || s.deleteWait:
		return peers.VolumeAttachment{}, errf(peers.ErrConflict, "server %s is busy (%s)", serverID, cmp.Or(s.task, "deleting"))
	case !s.defined || (s.Status != peers.ServerActive && s.Status != peers.ServerShutoff):
		return peers.VolumeAttachment{}, errf(peers.ErrConflict, "server %s is %s; volumes attach to ACTIVE or SHUTOFF servers", serverID, s.Status)
	case v.Status != peers.VolumeAvailable:
		return peers.VolumeAttachment{}, errf(peers.ErrConflict, "volume %s is %s, not available", volumeID, v.Status)
	case v.host != s.Host:
		return peers.VolumeAttachment{}, errf(peers.ErrConflict, "volume %s lives on host %s and server %s runs on %s; hosts share no storage", volumeID, v.host, serverID, s.Host)
	}
	dev, err := c.nextDeviceLocked(s)
	if err != nil {
		return peers.VolumeAttachment{}, err
	}
	att := peers.VolumeAttachment{ID: newID(), ServerID: serverID, VolumeID: volumeID, Device: dev}
	v.Status = peers.VolumeAttaching
	hostName := s.Host
	log := c.log.WithFields(logrus.Fields{"server": serverID, "volume": volumeID, "device": dev})
	c.runTask(s, "attaching_volume", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		return c.driver.AttachDisk(ctx, hostName, serverID, Disk{VolumeID: volumeID, Device: strings.TrimPrefix(dev, "/dev/")})
	}, func(err error) {
		c.markLocked(recVolume, volumeID)
		if err != nil {
			log.WithError(err).Warn("volume attach failed")
			v.Status = peers.VolumeAvailable
			return
		}
		c.markAttachedLocked(v, s, att)
		log.Info("volume attached")
	})
	c.markLocked(recVolume, volumeID)
	c.saveLocked()
	return att, nil
}

// nextDeviceLocked is the first /dev/vdX (from vdb; vda is the root) s does
// not use.
func (c *Cloud) nextDeviceLocked(s *server) (string, error) {
	used := map[string]bool{"/dev/vda": true}
	for _, vid := range s.Volumes {
		if v := c.volumes[vid]; v != nil {
			for _, a := range v.Attachments {
				used[a.Device] = true
			}
		}
	}
	for l := 'b'; l <= 'z'; l++ {
		if d := "/dev/vd" + string(l); !used[d] {
			return d, nil
		}
	}
	return "", errf(peers.ErrCapacity, "server %s has no free disk device left", s.ID)
}

// markAttachedLocked records v as attached to s.
func (c *Cloud) markAttachedLocked(v *volume, s *server, att peers.VolumeAttachment) {
	c.markLocked(recVolume, v.ID)
	c.markLocked(recServer, s.ID)
	v.Status = peers.VolumeInUse
	v.Attachments = []peers.VolumeAttachment{att}
	s.Volumes = append(s.Volumes, v.ID)
}

// unmarkAttachedLocked makes v available again and drops it from s.
func (c *Cloud) unmarkAttachedLocked(v *volume, s *server) {
	c.markLocked(recVolume, v.ID)
	c.markLocked(recServer, s.ID)
	v.Status, v.Attachments = peers.VolumeAvailable, nil
	s.Volumes = slices.DeleteFunc(s.Volumes, func(id string) bool { return id == v.ID })
}

// detachAllLocked makes every volume of s available again, for a server
// whose domain is gone.
func (c *Cloud) detachAllLocked(s *server) {
	for _, vid := range slices.Clone(s.Volumes) {
		if v := c.volumes[vid]; v != nil {
			c.unmarkAttachedLocked(v, s)
		}
	}
	s.Volumes = nil
}

// DetachVolume detaches a volume from a server; the volume is detaching
// until the driver is done, then available. The root volume of a server
// booted from a volume stays (Nova: 400).
func (c *Cloud) DetachVolume(ctx context.Context, serverID, volumeID string) error {
	s, err := lockOne(c, ctx, "server", c.servers, serverID)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	v, ok := c.volumeLocked(volumeID)
	if !ok {
		return notFound("volume", volumeID)
	}
	if !slices.Contains(s.Volumes, volumeID) {
		return errf(peers.ErrNotFound, "volume %s is not attached to server %s", volumeID, serverID)
	}
	switch {
	case s.task != "" || s.deleteWait:
		return errf(peers.ErrConflict, "server %s is busy (%s)", serverID, cmp.Or(s.task, "deleting"))
	case v.Status != peers.VolumeInUse:
		return errf(peers.ErrConflict, "volume %s is %s, not in-use", volumeID, v.Status)
	case len(v.Attachments) > 0 && v.Attachments[0].Device == "/dev/vda":
		return errf(peers.ErrConflict, "volume %s is the root disk of server %s", volumeID, serverID)
	}
	v.Status = peers.VolumeDetaching
	hostName := s.Host
	log := c.log.WithFields(logrus.Fields{"server": serverID, "volume": volumeID})
	c.runTask(s, "detaching_volume", func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		return ignoreNotFound(c.driver.DetachDisk(ctx, hostName, serverID, volumeID))
	}, func(err error) {
		c.markLocked(recVolume, volumeID)
		if err != nil {
			log.WithError(err).Warn("volume detach failed")
			v.Status = peers.VolumeInUse
			return
		}
		c.unmarkAttachedLocked(v, s)
		log.Info("volume detached")
	})
	c.markLocked(recVolume, volumeID)
	c.saveLocked()
	return nil
}

// ExtendVolume grows a volume to newSizeGiB, as Cinder's os-extend: an
// available volume in the pool, an in-use one live, through its server's
// running guest (which sees the new size at once). The volume is extending
// until the driver is done, then back to its status with the new size; a
// failed extend keeps the old size and logs why. A size not larger than
// the current one is ErrInvalid; a volume in any other status, or whose
// server is busy, ErrConflict; a host without the room, ErrCapacity.
func (c *Cloud) ExtendVolume(ctx context.Context, id string, newSizeGiB int) (peers.Volume, error) {
	v, err := c.lockVolume(ctx, id)
	if err != nil {
		return peers.Volume{}, err
	}
	defer c.mu.Unlock()
	if newSizeGiB <= v.SizeGiB {
		return peers.Volume{}, errf(peers.ErrInvalid, "volume %s: new size %d GiB must be larger than its %d GiB", id, newSizeGiB, v.SizeGiB)
	}
	var s *server
	switch v.Status {
	case peers.VolumeAvailable:
	case peers.VolumeInUse:
		if len(v.Attachments) > 0 {
			s = c.servers[v.Attachments[0].ServerID]
		}
		switch {
		case s == nil:
			return peers.Volume{}, errf(peers.ErrConflict, "volume %s is in-use by a server that is gone", id)
		case s.task != "" || s.deleteWait:
			return peers.Volume{}, errf(peers.ErrConflict, "volume %s: its server %s is busy (%s)", id, s.ID, cmp.Or(s.task, "deleting"))
		}
	default:
		return peers.Volume{}, errf(peers.ErrConflict, "volume %s is %s; only an available or in-use volume can be extended", id, v.Status)
	}
	h := c.hostNamed(v.host)
	delta := int64(newSizeGiB - v.SizeGiB)
	if h == nil || h.free(c.cfg.Overcommit).DiskGiB < delta {
		return peers.Volume{}, errf(peers.ErrCapacity, "volume %s: host %s has no room for %d more GiB", id, v.host, delta)
	}
	h.used.DiskGiB += delta
	v.alloc += delta
	was := v.Status
	v.Status = peers.VolumeExtending
	hostName, domainID := v.host, ""
	if s != nil {
		domainID = s.ID
	}
	log := c.log.WithFields(logrus.Fields{"volume": id, "host": hostName, "size_gib": newSizeGiB, "server": domainID})
	work := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		return c.driver.ResizeVolume(ctx, hostName, id, newSizeGiB, domainID)
	}
	done := func(err error) {
		c.markLocked(recVolume, v.ID)
		v.Status = was
		if err != nil {
			log.WithError(err).Warn("volume extend failed")
			if hh := c.hostNamed(hostName); hh != nil && v.alloc >= delta {
				hh.used.DiskGiB -= delta
				v.alloc -= delta
			}
			return
		}
		v.SizeGiB = newSizeGiB
		log.Info("volume extended")
	}
	if s != nil {
		c.runTask(s, "extending_volume", work, done)
	} else {
		c.background(func(ctx context.Context) {
			err := work(ctx)
			c.mu.Lock()
			defer c.mu.Unlock()
			done(err)
			c.markLocked(recVolume, v.ID)
			c.saveLocked()
		})
	}
	log.Info("volume extending")
	view := v.view()
	c.markLocked(recVolume, v.ID)
	c.saveLocked()
	return view, nil
}
