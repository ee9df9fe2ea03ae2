package ec2

import (
	"context"
	"strings"

	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/registry"
)

// VPCCIDRPrefix holds the CIDR block each EC2 VPC was created with, by
// its network's broker ID.
const VPCCIDRPrefix = vpcCIDRRoot

// Unindexed is the part of the resource index VPCCIDRLeftovers reads.
type Unindexed interface {
	Unindexed(ctx context.Context, kvs []registry.KV, ref func(key string) (kind, id string, ok bool)) ([]registry.KV, error)
}

// VPCCIDRLeftovers returns a judge for a gc.Orphans over VPCCIDRPrefix:
// the blocks of VPCs whose network is gone. DeleteVpc removes its block,
// but a VPC's network deleted through Neutron (or a deployment, or a
// DeleteVpc cut short between the two deletes) leaves it behind, and every
// broker holds the blocks in memory.
func VPCCIDRLeftovers(idx Unindexed) func(context.Context, []registry.KV) ([]registry.KV, error) {
	return func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
		return idx.Unindexed(ctx, kvs, func(key string) (string, string, bool) {
			id, ok := strings.CutPrefix(key, vpcCIDRRoot)
			return network.KindNetwork, id, ok && id != ""
		})
	}
}
