package index

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cloudmux/cloudmux/broker/quota"
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

// FreeCharges returns what a gc.Orphans over LeftoverPrefixes calls for
// each record it removed: the charge of a primary entry is freed in its
// project (the project's copy carries the same charge and frees nothing),
// so the servers and volumes of a removed peer stop counting against
// their projects' quotas. Orphans removes a record by compare-and-delete,
// so each is freed once. Without a Freer it is nil: nothing is freed.
func FreeCharges(f Freer) func(ctx context.Context, kv registry.KV) error {
	if f == nil {
		return nil
	}
	return func(ctx context.Context, kv registry.KV) error {
		if !strings.HasPrefix(kv.Key, "index/") {
			return nil
		}
		var e Entry
		if err := json.Unmarshal(kv.Value, &e); err != nil || len(e.Charge) == 0 {
			return nil
		}
		if err := f.Free(ctx, quota.Scope{Project: e.Project}, e.Charge); err != nil {
			return fmt.Errorf("freeing the quota of %s %s: %w", e.Kind, e.ID, err)
		}
		return nil
	}
}
