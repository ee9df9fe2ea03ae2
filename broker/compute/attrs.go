package compute

import (
	"context"
	"errors"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// ServerAttrs holds every server's attrs in memory on each replica, fed
// by a Store watch, so showing and listing servers reads no Store: Run it
// beside the Servers it is set on. A rename made on another replica shows
// here once the watch delivers it; Update itself reads the Store, since it
// must CAS on the current version.
type ServerAttrs = registry.Records[registry.Keyed[attrs]]

// NewServerAttrs returns the attrs kept in store; Run keeps them in memory.
func NewServerAttrs(store registry.MirrorStore, log logrus.FieldLogger) *ServerAttrs {
	return registry.NewRecords(store, attrsRoot, registry.DecodeKeyed[attrs], log)
}

// attrRecords returns the memory-held attrs, or (without Attrs) records
// that read the Store.
func (s *Servers) attrRecords() *ServerAttrs {
	if s.Attrs != nil {
		return s.Attrs
	}
	return NewServerAttrs(s.Store, s.Log)
}

// viewAttrs returns a server's attrs for showing it (none: zero attrs).
func (s *Servers) viewAttrs(ctx context.Context, project, id string) (attrs, error) {
	r, err := s.attrRecords().Get(ctx, attrsKey(project, id), false)
	if errors.Is(err, registry.ErrNotFound) {
		return attrs{}, nil
	}
	return r.Value, err
}

// projectAttrs returns a project's servers' attrs by server ID (every
// project's for "").
func (s *Servers) projectAttrs(ctx context.Context, project string) (map[string]attrs, error) {
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
