package staging

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// LeftoverPrefixes are the staging records that outlive their use: lock
// keys (a lease that ends leaves its key, without a holder) and replica
// records (forgotten when their image is deleted through the broker, but
// not when the delete's cleanup failed, the image went another way, or
// the peer holding the copy was removed).
var LeftoverPrefixes = []string{"staging/locks/", "staging/replicas/"}

// Live is what a replica record needs to be kept: the IDs its image has on
// its home peer, for every indexed image (a Replica's ImageID), and the
// registered peers' IDs.
type Live func(ctx context.Context) (images, peers map[string]bool, err error)

// Leftovers returns the judge of the broker's garbage collector (a
// gc.Orphans' Orphaned) over the records under LeftoverPrefixes: lock keys
// no lease holds, and replicas of images or on peers that live no longer
// reports.
func Leftovers(live Live) func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	return func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
		var images, peers map[string]bool
		var out []registry.KV
		for _, kv := range kvs {
			switch {
			case strings.HasPrefix(kv.Key, "staging/locks/"):
				if kv.Session == "" {
					out = append(out, kv)
				}
			case strings.HasPrefix(kv.Key, "staging/replicas/"):
				if images == nil {
					var err error
					if images, peers, err = live(ctx); err != nil {
						return nil, err
					}
				}
				var r Replica
				if json.Unmarshal(kv.Value, &r) != nil {
					continue // not ours to judge
				}
				if !images[r.ImageID] || !peers[r.PeerID] {
					out = append(out, kv)
				}
			}
		}
		return out, nil
	}
}
