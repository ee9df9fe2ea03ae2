package index

import (
	"context"
	"encoding/json"

	"github.com/cloudmux/cloudmux/registry"
)

// LeftoverPrefixes hold every entry, in both its copies.
var LeftoverPrefixes = []string{"index/", "index-by-project/"}

// OnRemovedPeers returns the judge of a gc.Orphans over the entries under
// LeftoverPrefixes: entries on a peer that is no longer registered
// (peers returns the registered peers' IDs). Rebuild drops the entries of
// resources a connected peer no longer holds; a removed peer is never
// listed again, so without this its entries would stay for good, 404 to
// every request that follows them.
func OnRemovedPeers(peers func(ctx context.Context) (map[string]bool, error)) func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	return func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
		if len(kvs) == 0 {
			return nil, nil
		}
		live, err := peers(ctx)
		if err != nil {
			return nil, err
		}
		var out []registry.KV
		for _, kv := range kvs {
			var e Entry
			if json.Unmarshal(kv.Value, &e) != nil || e.PeerID == "" {
				continue // not an entry this judges
			}
			if !live[e.PeerID] {
				out = append(out, kv)
			}
		}
		return out, nil
	}
}
