package localcloud_test

import (
	"errors"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// TestImageTombstones: the collector forgets the tombstones of images
// deleted more than the retention ago, in memory and in the saved state,
// and nothing else: not a live image, not a recent tombstone, not an
// image still pending delete.
func TestImageTombstones(t *testing.T) {
	const retention = 24 * time.Hour
	tests := []struct {
		name  string
		delay time.Duration // ImageDeleteDelay
		// after is how long after the delete the collector runs, beyond
		// the retention.
		after  time.Duration
		purged bool
	}{
		{"deleted, past retention", 0, time.Minute, true},
		{"deleted, within retention", 0, -time.Minute, false},
		{"pending delete, past retention", time.Hour, time.Minute, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := oneHost(t)
			cfg.ImageDeleteDelay = tc.delay
			c, _ := newCloud(t, cfg)
			live, gone := activeImage(t, c), activeImage(t, c)
			if err := c.DeleteImage(t.Context(), gone.ID); err != nil {
				t.Fatal(err)
			}
			deletedAt := time.Now()
			n, err := localcloud.ImageTombstones{Cloud: c, Retention: retention}.Collect(t.Context(), deletedAt.Add(retention+tc.after))
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]int{true: 1}[tc.purged]; n != want {
				t.Fatalf("purged %d, want %d", n, want)
			}
			if _, err := c.GetImage(t.Context(), live.ID); err != nil {
				t.Fatalf("live image: %v", err)
			}
			if err := c.Close(); err != nil {
				t.Fatal(err)
			}
			// What the next start loads agrees.
			again, _ := newCloud(t, cfg)
			_, err = again.DeletedImage(t.Context(), gone.ID)
			if purged := errors.Is(err, peers.ErrNotFound); purged != tc.purged {
				t.Fatalf("tombstone after a restart: %v; want purged %t", err, tc.purged)
			}
			if _, err := again.GetImage(t.Context(), live.ID); err != nil {
				t.Fatalf("live image after a restart: %v", err)
			}
		})
	}
}
