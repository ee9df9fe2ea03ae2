package image

import (
	"context"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// DeactivationPrefix is where deactivation records live: the garbage
// collector lists it for DeactivationLeftovers.
const DeactivationPrefix = deactivatedPrefix

// DeactivationLeftovers returns those of kvs (deactivation records) whose
// image is no longer indexed: a delete whose cleanup failed, or an image
// that went from its peer some other way (the index rebuild dropped it),
// leaves its record behind. It is the judge of a gc.Orphans.
func (s *Service) DeactivationLeftovers(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	return s.Index.Unindexed(ctx, kvs, func(key string) (string, string, bool) {
		id, ok := strings.CutPrefix(key, deactivatedPrefix)
		return Kind, id, ok
	})
}
