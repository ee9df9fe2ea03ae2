package network

import (
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

const attrsRoot = "neutron/attrs/"

// AttrsMemory holds every network resource's Attrs in memory on each
// replica, by kind, fed by a Store watch, so lists read no Store: Run it
// beside the Service it is set on. A change made on another replica shows
// here once the watch delivers it; changes themselves read the Store,
// since they CAS on the current version.
type AttrsMemory = registry.Records[registry.Keyed[Attrs]]

// NewAttrsMemory returns the Attrs kept in store; Run keeps them in memory.
func NewAttrsMemory(store registry.MirrorStore, log logrus.FieldLogger) *AttrsMemory {
	return registry.NewRecords(store, attrsRoot, registry.DecodeKeyed[Attrs], log)
}

// attrRecords returns the memory-held Attrs, or (without AttrsMemory)
// records that read the Store.
func (s *Service) attrRecords() *AttrsMemory {
	if s.AttrsMemory != nil {
		return s.AttrsMemory
	}
	return NewAttrsMemory(s.Store, s.Log)
}
