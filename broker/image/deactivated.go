package image

import (
	"context"
	"errors"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// deactivatedID is a deactivation record's image ID (its key's last part).
func deactivatedID(kv registry.KV) (string, error) {
	return strings.TrimPrefix(kv.Key, deactivatedPrefix), nil
}

// Deactivations holds which images are deactivated in memory on each
// replica, fed by a Store watch, so resolving and listing images reads no
// Store: Run it beside the Service it is set on. A deactivation made on
// another replica takes effect here once the watch delivers it.
type Deactivations = registry.Records[string]

// NewDeactivations returns the records kept in store; Run keeps them in
// memory.
func NewDeactivations(store registry.MirrorStore, log logrus.FieldLogger) *Deactivations {
	return registry.NewRecords(store, deactivatedPrefix, deactivatedID, log)
}

// deactivations returns the memory-held records, or (without
// Deactivations) records that read the Store.
func (s *Service) deactivations() *Deactivations {
	if s.Deactivations != nil {
		return s.Deactivations
	}
	return NewDeactivations(s.Store, s.Log)
}

func (s *Service) isDeactivated(ctx context.Context, id string) (bool, error) {
	_, err := s.deactivations().Get(ctx, deactivatedPrefix+id, false)
	if errors.Is(err, registry.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// deactivatedSet returns every deactivated image's ID.
func (s *Service) deactivatedSet(ctx context.Context) (map[string]bool, error) {
	ids, err := s.deactivations().List(ctx, "")
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ids))
	for _, id := range ids {
		out[id] = true
	}
	return out, nil
}
