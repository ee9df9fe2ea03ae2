package compute

import (
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/kept"
	"github.com/cloudmux/cloudmux/registry"
)

// ServerAttrs holds every server's attrs in memory on each replica, fed
// by a Store watch, so showing and listing servers reads no Store: Run it
// beside the Servers it is set on. A rename made on another replica shows
// here once the watch delivers it; Update itself reads the Store, since it
// must CAS on the current version.
type ServerAttrs = kept.Memory[attrs]

// NewServerAttrs returns the attrs kept in store; Run keeps them in memory.
func NewServerAttrs(store registry.MirrorStore, log logrus.FieldLogger) *ServerAttrs {
	return kept.NewMemory[attrs](store, attrsRoot, log)
}

// attrStore returns the servers' attrs, read from memory with Attrs (from
// the Store without).
func (s *Servers) attrStore() kept.Attrs[attrs] {
	return kept.Attrs[attrs]{Store: s.Store, Root: attrsRoot, Memory: s.Attrs, Log: s.Log}
}
