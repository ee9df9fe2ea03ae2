package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/registry"
)

// Remove deletes the entry of e's kind and ID and returns it as it was
// stored (with its Charge), reporting whether this call removed it: of two
// callers deleting one resource at once (two DELETEs, a delete and a
// rollback), exactly one learns it did, and only that one frees the
// resource's quota. An entry already gone is not removed.
func (x *Index) Remove(ctx context.Context, e Entry) (Entry, bool, error) {
	key := primaryKey(e.Kind, e.ID)
	kv, err := x.store.Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		// The project's copy may outlive a cut delete: take it too.
		return e, false, x.store.Delete(ctx, projectKey(e.Kind, e.Project, e.ID))
	}
	if err != nil {
		return e, false, err
	}
	var cur Entry
	if err := json.Unmarshal(kv.Value, &cur); err != nil {
		return e, false, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	err = x.store.DeleteCAS(ctx, key, kv.ModifyIndex)
	if errors.Is(err, registry.ErrConflict) || errors.Is(err, registry.ErrNotFound) {
		return cur, false, nil // another caller removed (or rewrote) it first
	}
	if err != nil {
		return cur, false, fmt.Errorf("index %s %s: %w", e.Kind, e.ID, err)
	}
	x.mirror.Deleted(key, kv.ModifyIndex)
	if err := x.store.Delete(context.WithoutCancel(ctx), projectKey(cur.Kind, cur.Project, cur.ID)); err != nil {
		return cur, true, fmt.Errorf("index %s %s: %w", e.Kind, e.ID, err)
	}
	return cur, true, nil
}
