package localcloud

import (
	"context"
	"fmt"
	"maps"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// VolumeCopier is the optional ability of a driver to copy a pool volume:
// what the local cloud's snapshots (peers.Snapshots) and volumes made
// from snapshots or other volumes are. Without it they are
// ErrNotSupported.
type VolumeCopier interface {
	// CopyVolume makes dst a standalone volume (no backing volume, even
	// when src is an overlay) holding src's bytes, of src's capacity; a
	// larger dst.SizeGiB is grown to after the copy by ResizeVolume. When
	// domainID is not empty src is attached to that domain, and if it runs
	// src is copied live as its disk holds it at that moment
	// (crash-consistent).
	CopyVolume(ctx context.Context, host, srcID, domainID string, dst PoolVolume) error
}

var _ peers.Snapshots = (*Cloud)(nil)

// A snapshot is kept as a volume record whose snapshotOf names its
// volume: a full copy in the volume's host pool, so it is saved, journalled
// and reconciled after a restart as volumes are, and takes the host's disk
// as they do. Volume calls never see these records (volumeLocked).

func (v *volume) snapshotView() peers.Snapshot {
	return peers.Snapshot{ID: v.ID, Name: v.Name, Description: v.Description, Project: v.Project, VolumeID: v.snapshotOf,
		SizeGiB: v.SizeGiB, Status: peers.SnapshotStatus(v.Status), Metadata: maps.Clone(v.Metadata), CreatedAt: v.CreatedAt}
}

// volumeLocked returns the volume (not snapshot) record id.
func (c *Cloud) volumeLocked(id string) (*volume, bool) {
	v, ok := c.volumes[id]
	if !ok || v.snapshotOf != "" {
		return nil, false
	}
	return v, true
}

// lockVolume is lockOne for volumes: snapshot records are not found.
func (c *Cloud) lockVolume(ctx context.Context, id string) (*volume, error) {
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	v, ok := c.volumeLocked(id)
	if !ok {
		c.mu.Unlock()
		return nil, notFound("volume", id)
	}
	return v, nil
}

// snapshotRecordLocked returns the snapshot record id.
func (c *Cloud) snapshotRecordLocked(id string) (*volume, bool) {
	v, ok := c.volumes[id]
	if !ok || v.snapshotOf == "" {
		return nil, false
	}
	return v, true
}

// dependentLocked names a record that needs id's pool volume: a snapshot
// of it, or a volume being copied from it; "" when none does.
func (c *Cloud) dependentLocked(id string) string {
	for _, o := range c.volumes {
		switch {
		case o.snapshotOf == id:
			return "snapshot " + o.ID
		case o.Status == peers.VolumeCreating && (o.SnapshotID == id || o.SourceVolumeID == id):
			return "volume " + o.ID + " being made from it"
		}
	}
	return ""
}

func (c *Cloud) copier() (VolumeCopier, error) {
	vc, ok := c.driver.(VolumeCopier)
	if !ok {
		return nil, errf(peers.ErrNotSupported, "the %s driver cannot copy volumes: no snapshots or clones", c.driver.Name())
	}
	return vc, nil
}

// CreateSnapshot copies an available volume (or an in-use one, forced)
// into a new pool volume on its host; the snapshot is creating until the
// copy is done.
func (c *Cloud) CreateSnapshot(ctx context.Context, spec peers.SnapshotSpec) (peers.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return peers.Snapshot{}, err
	}
	if err := requireProject("snapshot", spec.Project); err != nil {
		return peers.Snapshot{}, err
	}
	if err := checkMetadata(spec.Metadata); err != nil {
		return peers.Snapshot{}, fmt.Errorf("snapshot %q: %w", spec.Name, err)
	}
	vc, err := c.copier()
	if err != nil {
		return peers.Snapshot{}, err
	}
	if err := c.begin(ctx); err != nil {
		return peers.Snapshot{}, err
	}
	defer c.mu.Unlock()
	v, ok := c.volumeLocked(spec.VolumeID)
	switch {
	case !ok:
		return peers.Snapshot{}, notFound("volume", spec.VolumeID)
	case v.Status == peers.VolumeInUse && !spec.Force:
		return peers.Snapshot{}, errf(peers.ErrConflict, "volume %s is in-use; a snapshot of it must be forced", v.ID)
	case v.Status != peers.VolumeAvailable && v.Status != peers.VolumeInUse:
		return peers.Snapshot{}, errf(peers.ErrConflict, "volume %s is %s; snapshots are taken of available (or, forced, in-use) volumes", v.ID, v.Status)
	}
	h := c.hostNamed(v.host)
	if h == nil || h.free(c.cfg.Overcommit).DiskGiB < int64(v.SizeGiB) {
		return peers.Snapshot{}, errf(peers.ErrCapacity, "snapshot of volume %s: host %s has no room for %d GiB", v.ID, v.host, v.SizeGiB)
	}
	sn := &volume{
		Volume: peers.Volume{ID: newID(), Name: spec.Name, Description: spec.Description, Project: spec.Project, SizeGiB: v.SizeGiB,
			Status: peers.VolumeCreating, Metadata: maps.Clone(spec.Metadata), CreatedAt: now()},
		host: v.host, alloc: int64(v.SizeGiB), snapshotOf: v.ID,
	}
	sn.Bootable = v.Bootable // what a volume made from it inherits
	h.used.DiskGiB += sn.alloc
	c.volumes[sn.ID] = sn
	log := c.log.WithFields(logrus.Fields{"snapshot": sn.ID, "volume": v.ID, "host": sn.host})
	c.copyInBackground(vc, sn, v.ID, log)
	log.Info("snapshot creating")
	c.markLocked(recVolume, sn.ID)
	c.saveLocked()
	return sn.snapshotView(), nil
}

// copyInBackground fills the pool volume of the creating record dst with
// srcID's bytes (grown to dst's size), then makes it available, or error
// (its pool volume removed, its disk given back).
func (c *Cloud) copyInBackground(vc VolumeCopier, dst *volume, srcID string, log logrus.FieldLogger) {
	pv, hostName := PoolVolume{ID: dst.ID, Name: dst.Name, SizeGiB: dst.SizeGiB}, dst.host
	src := c.volumes[srcID]
	srcGiB, domainID := dst.SizeGiB, ""
	if src != nil {
		srcGiB = src.SizeGiB
		if src.Status == peers.VolumeInUse && len(src.Attachments) > 0 {
			domainID = src.Attachments[0].ServerID
		}
	}
	c.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, spawnTimeout)
		defer cancel()
		err := vc.CopyVolume(ctx, hostName, srcID, domainID, pv)
		if err == nil && pv.SizeGiB > srcGiB {
			err = c.driver.ResizeVolume(ctx, hostName, pv.ID, pv.SizeGiB, "")
		}
		if err != nil {
			if derr := ignoreNotFound(c.driver.DeleteVolume(context.WithoutCancel(ctx), hostName, pv.ID)); derr != nil {
				log.WithError(derr).Warn("removing a failed copy from the pool failed")
			}
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		defer c.saveLocked()
		c.markLocked(recVolume, dst.ID)
		if err != nil {
			log.WithError(err).Warn("copy failed")
			dst.Status = peers.VolumeError
			c.releaseVolumeAllocLocked(dst)
			return
		}
		dst.Status = peers.VolumeAvailable
		log.Info("copy available")
	})
}

// GetSnapshot returns a snapshot.
func (c *Cloud) GetSnapshot(ctx context.Context, id string) (peers.Snapshot, error) {
	if err := c.begin(ctx); err != nil {
		return peers.Snapshot{}, err
	}
	defer c.mu.Unlock()
	sn, ok := c.snapshotRecordLocked(id)
	if !ok {
		return peers.Snapshot{}, notFound("snapshot", id)
	}
	return sn.snapshotView(), nil
}

// ListSnapshots returns the snapshots passing opts, oldest first.
func (c *Cloud) ListSnapshots(ctx context.Context, opts peers.ListOptions) ([]peers.Snapshot, error) {
	return listViews(c, ctx, c.volumes, func(v *volume) bool { return v.snapshotOf != "" && opts.Matches(v.Project, v.Metadata) }, (*volume).snapshotView,
		func(a, b peers.Snapshot) int { return byAgeThenID(a.CreatedAt, a.ID, b.CreatedAt, b.ID) })
}

// DeleteSnapshot starts deleting an available or error snapshot no
// volume is being made from.
func (c *Cloud) DeleteSnapshot(ctx context.Context, id string) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	defer c.mu.Unlock()
	sn, ok := c.snapshotRecordLocked(id)
	if !ok {
		return notFound("snapshot", id)
	}
	if sn.Status != peers.VolumeAvailable && sn.Status != peers.VolumeError {
		return errf(peers.ErrConflict, "snapshot %s is %s; only an available or error snapshot can be deleted", id, sn.Status)
	}
	if dep := c.dependentLocked(id); dep != "" {
		return errf(peers.ErrConflict, "snapshot %s: %s", id, dep)
	}
	c.startVolumeDeleteLocked(sn)
	c.markLocked(recVolume, sn.ID)
	c.saveLocked()
	return nil
}

// copySourceLocked checks a volume spec's snapshot or source volume: it
// must be available (a source volume may be in-use) and no larger than
// the new volume. It returns the record to copy.
func (c *Cloud) copySourceLocked(spec peers.VolumeSpec) (*volume, error) {
	var src *volume
	var ok bool
	kind, id := "snapshot", spec.SnapshotID
	if id != "" {
		src, ok = c.snapshotRecordLocked(id)
	} else {
		kind, id = "source volume", spec.SourceVolumeID
		src, ok = c.volumeLocked(id)
	}
	switch {
	case !ok:
		return nil, notFound(kind, id)
	case src.Status != peers.VolumeAvailable && !(src.snapshotOf == "" && src.Status == peers.VolumeInUse):
		return nil, errf(peers.ErrConflict, "%s %s is %s, not available", kind, id, src.Status)
	case spec.SizeGiB < src.SizeGiB:
		return nil, errf(peers.ErrInvalid, "volume %q: %d GiB is smaller than %s %s (%d GiB)", spec.Name, spec.SizeGiB, kind, id, src.SizeGiB)
	}
	return src, nil
}
