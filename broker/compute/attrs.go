package compute

import (
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// attrsRecord is a server's attrs with the server's ID (its key's last
// segment).
type attrsRecord struct {
	id string
	a  attrs
}

func decodeAttrs(kv registry.KV) (attrsRecord, error) {
	var a attrs
	if err := json.Unmarshal(kv.Value, &a); err != nil {
		return attrsRecord{}, err
	}
	return attrsRecord{id: kv.Key[strings.LastIndex(kv.Key, "/")+1:], a: a}, nil
}

// ServerAttrs holds every server's attrs in memory on each replica, fed
// by a Store watch, so showing and listing servers reads no Store: Run it
// beside the Servers it is set on. A rename made on another replica shows
// here once the watch delivers it; Update itself reads the Store, since it
// must CAS on the current version.
type ServerAttrs struct {
	records *registry.Records[attrsRecord]
}

// NewServerAttrs returns the attrs kept in store; Run keeps them in memory.
func NewServerAttrs(store registry.MirrorStore, log logrus.FieldLogger) *ServerAttrs {
	return &ServerAttrs{records: registry.NewRecords(store, attrsRoot, decodeAttrs, log)}
}

// Run loads the attrs and follows the Store until ctx ends.
func (a *ServerAttrs) Run(ctx context.Context) error { return a.records.Run(ctx) }

// WaitReady blocks until Run's first load has landed.
func (a *ServerAttrs) WaitReady(ctx context.Context) error { return a.records.WaitReady(ctx) }

// attrRecords returns the memory-held attrs, or (without Attrs) records
// that read the Store.
func (s *Servers) attrRecords() *registry.Records[attrsRecord] {
	if s.Attrs != nil {
		return s.Attrs.records
	}
	return registry.NewRecords(s.Store, attrsRoot, decodeAttrs, s.Log)
}

// viewAttrs returns a server's attrs for showing it (none: zero attrs).
func (s *Servers) viewAttrs(ctx context.Context, project, id string) (attrs, error) {
	r, err := s.attrRecords().Get(ctx, attrsKey(project, id), false)
	if errors.Is(err, registry.ErrNotFound) {
		return attrs{}, nil
	}
	return r.a, err
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
		out[r.id] = r.a
	}
	return out, nil
}
