package volume

import (
	"context"
	"errors"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// AttrsMemory holds every volume's broker-kept attrs in memory on each
// replica, fed by a Store watch (registry.Records grouped by project), so
// showing and listing volumes reads no Store: Run it beside the Service
// it is set on. An edit made on another replica shows here once the watch
// delivers it, as server and network attrs do. Update, Extend and Delete
// still read the Store, since they CAS on (or free by) the current
// version.
type AttrsMemory = registry.Records[registry.Keyed[attrs]]

// NewAttrsMemory returns the attrs kept in store; Run keeps them in
// memory.
func NewAttrsMemory(store registry.MirrorStore, log logrus.FieldLogger) *AttrsMemory {
	return registry.NewRecords(store, attrsRoot, registry.DecodeKeyed[attrs], log)
}

// attrRecords returns the memory-held attrs, or (without Attrs) records
// that read the Store.
func (s *Service) attrRecords() *AttrsMemory {
	if s.Attrs != nil {
		return s.Attrs
	}
	return NewAttrsMemory(s.Store, s.Log)
}

// viewAttrs returns a volume's attrs for showing it (none: zero attrs).
// A stale answer only shows an older name or metadata for the watch's
// delay; nothing is decided on it.
func (s *Service) viewAttrs(ctx context.Context, project, id string) (attrs, error) {
	r, err := s.attrRecords().Get(ctx, attrsKey(project, id), false)
	if errors.Is(err, registry.ErrNotFound) {
		return attrs{}, nil
	}
	return r.Value, err
}

// projectAttrs returns the attrs of a project's volumes, by volume ID.
func (s *Service) projectAttrs(ctx context.Context, project string) (map[string]attrs, error) {
	rs, err := s.attrRecords().List(ctx, project)
	if err != nil {
		return nil, err
	}
	out := make(map[string]attrs, len(rs))
	for _, r := range rs {
		out[r.ID] = r.Value
	}
	return out, nil
}
