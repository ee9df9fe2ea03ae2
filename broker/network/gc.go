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

// GroupsPrefix holds every project's security groups (the gc lists it).
const GroupsPrefix = groupsRoot

// GroupsOfGoneProjects returns the judge of a gc.Orphans over
// GroupsPrefix: the groups whose project no longer exists. Keystone
// deletes a project without asking the services; its groups, the default
// one included (which no user may delete), and their copies on peers
// would otherwise stay forever, each copy using one security group of the
// remote project's quota. projects lists the projects that exist; it is
// read after the groups, so a group made for a project created meanwhile
// is never judged gone.
func GroupsOfGoneProjects(projects func(context.Context) (map[string]bool, error)) func(context.Context, []registry.KV) ([]registry.KV, error) {
	return func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
		live, err := projects(ctx)
		if err != nil {
			return nil, err
		}
		var out []registry.KV
		for _, kv := range kvs {
			project, _, ok := strings.Cut(strings.TrimPrefix(kv.Key, groupsRoot), "/")
			if ok && !live[project] {
				out = append(out, kv)
			}
		}
		return out, nil
	}
}

// ReleaseGroupCopies deletes the copies of a group (its record kv) from
// the peers holding one (deleteCopies), before the gc forgets the group:
// the release hook of the gc.Orphans GroupsOfGoneProjects judges. A copy
// that could not be deleted keeps the record for the next pass.
func (s *Service) ReleaseGroupCopies(ctx context.Context, kv registry.KV) error {
	g, err := decodeGroup(kv)
	if err != nil {
		return nil // an undecodable record has no copies the broker could name
	}
	return s.deleteCopies(ctx, g)
}
