package index

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/registry"
)

// Remove deletes e's entry and reports whether this call removed it: of
// two callers deleting one resource at once (two DELETEs, a delete and a
// rollback), exactly one learns it did, and only that one frees the
// resource's quota. An entry already gone, or replaced, is not removed.
func (x *Index) Remove(ctx context.Context, e Entry) (bool, error) {
	key := primaryKey(e.Kind, e.ID)
	kv, err := x.store.Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	err = x.store.DeleteCAS(ctx, key, kv.ModifyIndex)
	if errors.Is(err, registry.ErrConflict) || errors.Is(err, registry.ErrNotFound) {
		return false, nil // another caller removed (or rewrote) it first
	}
	if err != nil {
		return false, fmt.Errorf("index %s %s: %w", e.Kind, e.ID, err)
	}
	if err := x.store.Delete(context.WithoutCancel(ctx), projectKey(e.Kind, e.Project, e.ID)); err != nil {
		return true, fmt.Errorf("index %s %s: %w", e.Kind, e.ID, err)
	}
	return true, nil
}
