package localcloud

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// DefaultImageTombstoneRetention is how long a deleted image's tombstone
// is kept by default: long enough for an admin to ask what was there
// (DeletedImage) after the fact.
const DefaultImageTombstoneRetention = 7 * 24 * time.Hour

// PurgeImageTombstones forgets the deleted images whose delete finished
// before cutoff, as `glance-manage db purge` drops old deleted rows, and
// returns how many it forgot. Images pending delete stay until scrubbed.
// Without it, every image ever deleted would stay in memory and in the
// saved state for good. A purged image's ID may be taken again, which the
// broker's own index already allows.
func (c *Cloud) PurgeImageTombstones(ctx context.Context, cutoff time.Time) (int, error) {
	if err := c.begin(ctx); err != nil {
		return 0, err
	}
	defer c.mu.Unlock()
	var purged []string
	for id, img := range c.images {
		if img.Status == peers.ImageDeleted && img.UpdatedAt.Before(cutoff) {
			delete(c.images, id)
			c.markLocked(recImage, id)
			purged = append(purged, id)
		}
	}
	if len(purged) > 0 {
		c.saveLocked()
		c.log.WithFields(logrus.Fields{"images": purged, "cutoff": cutoff}).Debug("image tombstones purged")
	}
	return len(purged), nil
}

// ImageTombstones is the garbage collector of the local cloud's deleted
// images (the broker's gc.Collector). The local cloud is its broker's own,
// so each broker runs it for the cloud it hosts, not under the shared
// lease.
type ImageTombstones struct {
	Cloud *Cloud
	// Retention is how long a tombstone is kept after its delete.
	Retention time.Duration
}

// Name implements gc.Collector.
func (t ImageTombstones) Name() string { return "localcloud-image-tombstones" }

// Collect implements gc.Collector.
func (t ImageTombstones) Collect(ctx context.Context, now time.Time) (int, error) {
	return t.Cloud.PurgeImageTombstones(ctx, now.Add(-t.Retention))
}
