package network

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

const attrsRoot = "neutron/attrs/"

// attrsRecord is a resource's Attrs with its broker ID (its key's last
// segment).
type attrsRecord struct {
	id string
	a  Attrs
}

func decodeAttrs(kv registry.KV) (attrsRecord, error) {
	var a Attrs
	if err := json.Unmarshal(kv.Value, &a); err != nil {
		return attrsRecord{}, err
	}
	return attrsRecord{id: kv.Key[strings.LastIndex(kv.Key, "/")+1:], a: a}, nil
}

// AttrsMemory holds every network resource's Attrs in memory on each
// replica, by kind, fed by a Store watch, so lists read no Store: Run it
// beside the Service it is set on. A change made on another replica shows
// here once the watch delivers it; changes themselves read the Store,
// since they CAS on the current version.
type AttrsMemory struct {
	records *registry.Records[attrsRecord]
}

// NewAttrsMemory returns the Attrs kept in store; Run keeps them in memory.
func NewAttrsMemory(store registry.MirrorStore, log logrus.FieldLogger) *AttrsMemory {
	return &AttrsMemory{records: registry.NewRecords(store, attrsRoot, decodeAttrs, log)}
}

// Run loads the Attrs and follows the Store until ctx ends.
func (m *AttrsMemory) Run(ctx context.Context) error { return m.records.Run(ctx) }

// WaitReady blocks until Run's first load has landed.
func (m *AttrsMemory) WaitReady(ctx context.Context) error { return m.records.WaitReady(ctx) }

// attrRecords returns the memory-held Attrs, or (without AttrsMemory)
// records that read the Store.
func (s *Service) attrRecords() *registry.Records[attrsRecord] {
	if s.AttrsMemory != nil {
		return s.AttrsMemory.records
	}
	return registry.NewRecords(s.Store, attrsRoot, decodeAttrs, s.Log)
}
