package localcloud

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// VolumeExporter is the optional ability of a driver to read a standalone
// pool volume's bytes out of its host (its file as the pool holds it: a
// qcow2 volume's qcow2 image). With VolumeCopier it is what server
// snapshots (peers.ServerImager) take; without either they are
// ErrNotSupported.
type VolumeExporter interface {
	ExportVolume(ctx context.Context, host, id string, w io.Writer) error
}

var _ peers.ServerImager = (*Cloud)(nil)

// snapshotStates are the statuses a local server is snapshotted in: a
// running guest's disk is copied live (crash-consistent, as the volume
// snapshots are), a stopped or suspended (saved) one's offline. A paused
// guest is not: its QEMU holds the disk open without a job to copy it.
var snapshotStates = []peers.ServerStatus{peers.ServerActive, peers.ServerShutoff, peers.ServerSuspended}

// SnapshotVolume is the pool volume a server snapshot's copy of the root
// disk is made in on its host, removed once the image holds its bytes.
func SnapshotVolume(imageID string) string { return "snapshot-" + imageID }

// ImageServer snapshots a server's root disk into a qcow2 image of this
// cloud, as Nova's createImage does: the image is registered queued at
// once (spec's name, project, visibility, tags and properties), and the
// server's one task copies the disk on its host (VolumeCopier, flattening
// the overlay on its base image) and streams the copy into the image
// store (VolumeExporter, through UploadImage's checks), then removes the
// copy. A failure leaves the image killed, the server as it was.
func (c *Cloud) ImageServer(ctx context.Context, serverID string, spec peers.ImageSpec) (peers.Image, error) {
	vc, okc := c.driver.(VolumeCopier)
	ve, oke := c.driver.(VolumeExporter)
	if !okc || !oke {
		return peers.Image{}, errf(peers.ErrNotSupported, "the %s driver cannot read disks out of its hosts: no server snapshots", c.driver.Name())
	}
	if err := c.checkSnapshotable(ctx, serverID); err != nil {
		return peers.Image{}, err
	}
	spec.DiskFormat, spec.ContainerFormat, spec.Checksum = VolumeQCOW2, "bare", ""
	spec.Visibility = cmp.Or(spec.Visibility, "private") // Nova's snapshots are private
	img, err := c.CreateImage(ctx, spec)
	if err != nil {
		return peers.Image{}, err
	}
	// The server was checked before the image existed (CreateImage takes
	// c.mu itself): check again now that it is held to the end.
	s, err := lockOne(c, ctx, "server", c.servers, serverID)
	if err == nil {
		err = c.snapshotableLocked(s)
		if err != nil {
			c.mu.Unlock()
		}
	}
	if err != nil {
		if derr := c.DeleteImage(context.WithoutCancel(ctx), img.ID); derr != nil {
			c.log.WithError(derr).WithField("image", img.ID).Warn("a refused snapshot's image not removed")
		}
		return peers.Image{}, err
	}
	defer c.mu.Unlock()
	hostName, root, domainID := s.Host, s.rootDisk, ""
	if s.Status == peers.ServerActive {
		domainID = s.ID // a running guest: copied live
	}
	tmp := PoolVolume{ID: SnapshotVolume(img.ID), Name: "snapshot of " + s.ID}
	log := c.log.WithFields(logrus.Fields{"server": s.ID, "image": img.ID, "host": hostName})
	log.Info("server snapshot started")
	defer c.saveLocked()
	c.runTask(s, peers.TaskImageSnapshot, func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, spawnTimeout)
		defer cancel()
		err := c.exportDisk(ctx, vc, ve, hostName, root, domainID, tmp, img.ID)
		if err != nil {
			c.killImage(img.ID, err)
		}
		return err
	}, func(err error) {
		if err != nil {
			log.WithError(err).Warn("server snapshot failed; image killed")
			return
		}
		log.Info("server snapshot done")
	})
	return img, nil
}

// checkSnapshotable is snapshotableLocked under c.mu.
func (c *Cloud) checkSnapshotable(ctx context.Context, id string) error {
	s, err := lockOne(c, ctx, "server", c.servers, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	return c.snapshotableLocked(s)
}

// snapshotableLocked says why s cannot be snapshotted now, if it cannot.
func (c *Cloud) snapshotableLocked(s *server) error {
	switch {
	case s.task != "" || s.deleteWait:
		return errf(peers.ErrConflict, "server %s is busy (%s); try the snapshot later", s.ID, cmp.Or(s.task, "deleting"))
	case !slices.Contains(snapshotStates, s.Status) || !s.defined:
		return errf(peers.ErrConflict, "server %s is %s; a snapshot needs %v", s.ID, s.Status, snapshotStates)
	case s.rootDisk == "":
		return errf(peers.ErrNotSupported, "server %s boots from a volume: snapshot the volume instead", s.ID)
	}
	return nil
}

// exportDisk copies root into tmp on the host, streams tmp into image
// imageID's data, and removes tmp whatever happened.
func (c *Cloud) exportDisk(ctx context.Context, vc VolumeCopier, ve VolumeExporter, hostName, root, domainID string, tmp PoolVolume, imageID string) error {
	if err := vc.CopyVolume(ctx, hostName, root, domainID, tmp); err != nil {
		return fmt.Errorf("copying the root disk: %w", err)
	}
	defer func() {
		if err := ignoreNotFound(c.driver.DeleteVolume(context.WithoutCancel(ctx), hostName, tmp.ID)); err != nil {
			c.log.WithError(err).WithFields(logrus.Fields{"volume": tmp.ID, "host": hostName}).Warn("a snapshot's copy not removed from its pool")
		}
	}()
	pr, pw := io.Pipe()
	exported := make(chan error, 1)
	go func() {
		err := ve.ExportVolume(ctx, hostName, tmp.ID, pw)
		pw.CloseWithError(err) // nil: EOF for the reader
		exported <- err
	}()
	err := c.UploadImage(ctx, imageID, pr, -1)
	pr.CloseWithError(errors.New("upload ended")) // unblocks an export the upload stopped reading
	if xerr := <-exported; xerr != nil {
		return fmt.Errorf("reading the copy out of the host: %w", xerr)
	}
	return err
}

// killImage marks a queued image killed when its snapshot failed before
// any byte reached it (UploadImage kills the ones it started).
func (c *Cloud) killImage(id string, cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	img, ok := c.images[id]
	if !ok || img.Status != peers.ImageQueued {
		return
	}
	img.Status, img.UpdatedAt = peers.ImageKilled, now()
	c.markLocked(recImage, id)
	c.saveLocked()
	c.log.WithError(cause).WithField("image", id).Warn("snapshot image killed before its upload")
}
