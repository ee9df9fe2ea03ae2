package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/registry"
)

// LeftoverPrefixes hold every entry, in both its copies.
var LeftoverPrefixes = []string{"index/", "index-by-project/"}

// Dangling returns the judge of a gc.Orphans over the entries under
// LeftoverPrefixes: entries on a peer that is no longer registered
// (peers returns the registered peers' IDs), and project copies whose
// primary entry is gone (a Delete cut between the two). Rebuild drops the
// entries of resources a connected peer no longer holds; a removed peer is
// never listed again, so without this its entries would stay for good,
// 404 to every request that follows them.
func Dangling(peers func(ctx context.Context) (map[string]bool, error)) func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	return func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
		if len(kvs) == 0 {
			return nil, nil
		}
		live, err := peers(ctx)
		if err != nil {
			return nil, err
		}
		primaries := map[string]bool{}
		for _, kv := range kvs {
			primaries[kv.Key] = true
		}
		var out []registry.KV
		for _, kv := range kvs {
			var e Entry
			if json.Unmarshal(kv.Value, &e) != nil || e.PeerID == "" {
				continue // not an entry this judges
			}
			copyWithout := kv.Key == projectKey(e.Kind, e.Project, e.ID) && !primaries[primaryKey(e.Kind, e.ID)]
			if !live[e.PeerID] || copyWithout {
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

// Unindexed returns those of kvs (records kept beside a resource, keyed by
// its broker ID) whose resource has no entry: ref reads the resource's
// kind and ID from a record's key, and a key it does not recognise is
// kept. It is the body of the judges of the gc.Orphans over such records
// (deactivations, attributes): a resource deleted some way that skipped
// their cleanup leaves them behind.
func (x *Index) Unindexed(ctx context.Context, kvs []registry.KV, ref func(key string) (kind, id string, ok bool)) ([]registry.KV, error) {
	var out []registry.KV
	for _, kv := range kvs {
		kind, id, ok := ref(kv.Key)
		if !ok {
			continue
		}
		_, err := x.Get(ctx, kind, id, "")
		switch {
		case errors.Is(err, ErrNotFound):
			out = append(out, kv)
		case err != nil:
			return nil, err
		}
	}
	return out, nil
}
