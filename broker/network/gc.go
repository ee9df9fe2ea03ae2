package network

import (
	"context"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// AttrsPrefixes hold the Neutron attributes the broker keeps beside
// networks, subnets, ports, routers and floating IPs.
var AttrsPrefixes = []string{"neutron/attrs/" + KindNetwork + "/", "neutron/attrs/" + KindSubnet + "/", "neutron/attrs/" + KindPort + "/",
	"neutron/attrs/" + kindServer + "/", "neutron/attrs/" + KindRouter + "/", "neutron/attrs/" + KindFloatingIP + "/"}

// AttrsLeftovers returns those of kvs (listed under AttrsPrefixes) whose
// resource is no longer indexed: one that vanished from its peer (the
// index rebuild dropped it) leaves its attributes behind. A port's are
// kept while it is indexed as any kind of port: one the broker made, one
// a peer made for a server (whose name or security groups a user may
// have set), or one a peer made for a router's interface. It is the judge of a gc.Orphans.
func (s *Service) AttrsLeftovers(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	gone, err := s.Index.Unindexed(ctx, kvs, func(key string) (string, string, bool) {
		for _, kind := range []string{KindNetwork, KindSubnet, KindPort, kindServer, KindRouter, KindFloatingIP} {
			if id, ok := strings.CutPrefix(key, "neutron/attrs/"+kind+"/"); ok && id != "" {
				return kind, id, true
			}
		}
		return "", "", false
	})
	if err != nil {
		return nil, err
	}
	var ports, out []registry.KV
	for _, kv := range gone {
		if strings.HasPrefix(kv.Key, "neutron/attrs/"+KindPort+"/") {
			ports = append(ports, kv)
		} else {
			out = append(out, kv)
		}
	}
	for _, kind := range []string{kindServerPort, kindRouterPort} {
		ports, err = s.Index.Unindexed(ctx, ports, func(key string) (string, string, bool) {
			return kind, strings.TrimPrefix(key, "neutron/attrs/"+KindPort+"/"), true
		})
		if err != nil {
			return nil, err
		}
	}
	return append(out, ports...), nil
}
