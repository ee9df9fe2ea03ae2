package volume

import (
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/kept"
	"github.com/cloudmux/cloudmux/registry"
)

// AttrsMemory holds every volume's broker-kept attrs in memory on each
// replica, fed by a Store watch (registry.Records grouped by project), so
// showing and listing volumes reads no Store: Run it beside the Service
// it is set on. An edit made on another replica shows here once the watch
// delivers it, as server and network attrs do. Update, Extend and Delete
// still read the Store, since they CAS on (or free by) the current
// version.
type AttrsMemory = kept.Memory[attrs]

// NewAttrsMemory returns the attrs kept in store; Run keeps them in
// memory.
func NewAttrsMemory(store registry.MirrorStore, log logrus.FieldLogger) *AttrsMemory {
	return kept.NewMemory[attrs](store, attrsRoot, log)
}

// attrStore returns the volumes' attrs, read from memory with Attrs (from
// the Store without).
func (s *Service) attrStore() kept.Attrs[attrs] {
	return kept.Attrs[attrs]{Store: s.Store, Root: attrsRoot, Memory: s.Attrs, Log: s.Log}
}
