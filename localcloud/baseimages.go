package localcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// baseImage is one image's base volume on one host: uploaded once, then
// shared read-only by the overlays of every root disk (and volume) made
// from the image there. mu is held during the upload, so concurrent boots
// of the same image on the same host upload it once; ready is set under
// both mu and the cloud's c.mu (setBaseReady).
type baseImage struct {
	mu    sync.Mutex
	ready bool
}

// baseSource is what a base volume is made from.
type baseSource struct {
	imageID string
	format  string // VolumeRaw or VolumeQCOW2
	size    int64  // bytes
	data    io.ReadCloser
}

// bootableFormat reports whether a server can boot from an image of this
// disk_format: the driver attaches raw and qcow2 disks.
func bootableFormat(diskFormat string) bool {
	return diskFormat == VolumeRaw || diskFormat == VolumeQCOW2
}

// poolFormat is the pool volume format holding an image's bytes.
func poolFormat(diskFormat string) string {
	if diskFormat == VolumeQCOW2 {
		return VolumeQCOW2
	}
	return VolumeRaw
}

// ensureBase makes sure host has src's base volume, uploading it if this
// process has not yet. A base volume an earlier process left is reused as
// it is: it was complete if any overlay was ever made on it.
func (c *Cloud) ensureBase(ctx context.Context, hostName string, src baseSource) error {
	key := hostName + "\x00" + src.imageID
	c.mu.Lock()
	b := c.bases[key]
	if b == nil {
		b = &baseImage{}
		c.bases[key] = b
	}
	c.mu.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.ready {
		return nil
	}
	id := BaseImageVolume(src.imageID)
	err := c.driver.CreateVolume(ctx, hostName, PoolVolume{ID: id, Name: "image " + src.imageID, SizeBytes: max(src.size, 1), Format: src.format})
	if errors.Is(err, peers.ErrConflict) {
		c.setBaseReady(b)
		return nil
	}
	if err != nil {
		return fmt.Errorf("creating base volume of image %s: %w", src.imageID, err)
	}
	if err := c.driver.UploadVolume(ctx, hostName, id, src.data, src.size); err != nil {
		if derr := ignoreNotFound(c.driver.DeleteVolume(context.WithoutCancel(ctx), hostName, id)); derr != nil {
			c.log.WithError(derr).WithField("volume", id).Warn("removing a partial base volume failed")
		}
		return fmt.Errorf("uploading image %s to its base volume: %w", src.imageID, err)
	}
	c.setBaseReady(b)
	return nil
}

// setBaseReady marks b uploaded. ready is written under both b.mu (held
// by the caller) and c.mu, so ensureBase reads it under b.mu and
// collectBasesLocked under c.mu.
func (c *Cloud) setBaseReady(b *baseImage) {
	c.mu.Lock()
	b.ready = true
	c.mu.Unlock()
}

// createOverlay makes vol a qcow2 overlay on src's base volume, which it
// uploads first if needed.
func (c *Cloud) createOverlay(ctx context.Context, hostName string, src baseSource, vol PoolVolume) error {
	if err := c.ensureBase(ctx, hostName, src); err != nil {
		return err
	}
	vol.Format, vol.BackingID, vol.BackingFormat = VolumeQCOW2, BaseImageVolume(src.imageID), src.format
	return c.driver.CreateVolume(ctx, hostName, vol)
}

// collectBases deletes, in the background, the base volumes on hostName
// whose image is deleted and which no root disk or volume there is an
// overlay on any more. It runs after a server or a volume goes, when an
// image is purged, and on recovery. Callers hold c.mu.
func (c *Cloud) collectBasesLocked(hostName string) {
	var drop []string
	for key, b := range c.bases {
		h, imageID, _ := strings.Cut(key, "\x00")
		if h != hostName || !b.ready {
			continue
		}
		if img, ok := c.images[imageID]; ok && !img.gone() {
			continue
		}
		if c.baseInUseLocked(hostName, imageID) {
			continue
		}
		drop = append(drop, imageID)
		delete(c.bases, key)
	}
	if len(drop) == 0 {
		return
	}
	c.background(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, powerTimeout)
		defer cancel()
		for _, imageID := range drop {
			log := c.log.WithFields(logrus.Fields{"host": hostName, "image": imageID})
			if err := ignoreNotFound(c.driver.DeleteVolume(ctx, hostName, BaseImageVolume(imageID))); err != nil {
				log.WithError(err).Warn("deleting the base volume of a deleted image failed")
				continue
			}
			log.Info("base volume of a deleted image removed")
		}
	})
}

// baseInUseLocked reports whether a root disk or a volume on hostName is
// an overlay on imageID's base.
func (c *Cloud) baseInUseLocked(hostName, imageID string) bool {
	for _, s := range c.servers {
		if s.Host == hostName && s.ImageID == imageID && s.rootDisk != "" {
			return true
		}
	}
	for _, v := range c.volumes {
		if v.host == hostName && v.SourceImageID == imageID {
			return true
		}
	}
	return false
}
