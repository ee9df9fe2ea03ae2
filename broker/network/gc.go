package network

import (
	"context"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// AttrsPrefixes hold the Neutron attributes the broker keeps beside
// networks, subnets and ports.
var AttrsPrefixes = []string{"neutron/attrs/" + KindNetwork + "/", "neutron/attrs/" + KindSubnet + "/", "neutron/attrs/" + KindPort + "/"}

// AttrsLeftovers returns those of kvs (listed under AttrsPrefixes) whose
// resource is no longer indexed: one that vanished from its peer (the
// index rebuild dropped it) leaves its attributes behind. It is the judge
// of a gc.Orphans.
func (s *Service) AttrsLeftovers(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	return s.Index.Unindexed(ctx, kvs, func(key string) (string, string, bool) {
		for _, kind := range []string{KindNetwork, KindSubnet, KindPort} {
			if id, ok := strings.CutPrefix(key, "neutron/attrs/"+kind+"/"); ok && id != "" {
				return kind, id, true
			}
		}
		return "", "", false
	})
}
