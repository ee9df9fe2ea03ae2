package image

import (
	"context"
	"errors"
	"strings"

	"github.com/cloudmux/cloudmux/broker/index"
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
	var out []registry.KV
	for _, kv := range kvs {
		_, err := s.Index.Get(ctx, Kind, strings.TrimPrefix(kv.Key, deactivatedPrefix), "")
		switch {
		case errors.Is(err, index.ErrNotFound):
			out = append(out, kv)
		case err != nil:
			return nil, err
		}
	}
	return out, nil
}
