package compute

import (
	"context"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// AttrsPrefix holds the attributes the broker keeps beside servers, per
// project.
const AttrsPrefix = attrsRoot

// AttrsLeftovers returns those of kvs (listed under AttrsPrefix) whose
// server is no longer indexed: a server that vanished from its peer (the
// index rebuild dropped it) leaves its attributes behind. It is the judge
// of a gc.Orphans.
func (s *Servers) AttrsLeftovers(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	return s.Index.Unindexed(ctx, kvs, func(key string) (string, string, bool) {
		rest, ok := strings.CutPrefix(key, attrsRoot)
		_, id, found := strings.Cut(rest, "/")
		return KindServer, id, ok && found && id != ""
	})
}
