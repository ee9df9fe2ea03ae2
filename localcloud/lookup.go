package localcloud

import (
	"cmp"
	"context"
	"slices"
	"time"
)

// The Get and List calls of every resource are the same under the lock:
// look one up (not found names its kind) or filter all, and copy out what
// callers may see. getView and listViews are that, once.

// getView returns view of m[id], or peers.ErrNotFound naming kind.
func getView[T, V any](c *Cloud, ctx context.Context, kind string, m map[string]*T, id string, view func(*T) V) (V, error) {
	var zero V
	if err := c.begin(ctx); err != nil {
		return zero, err
	}
	defer c.mu.Unlock()
	r, ok := m[id]
	if !ok {
		return zero, notFound(kind, id)
	}
	return view(r), nil
}

// listViews returns the views of the values of m that keep passes, sorted
// by order.
func listViews[T, V any](c *Cloud, ctx context.Context, m map[string]*T, keep func(*T) bool, view func(*T) V, order func(a, b V) int) ([]V, error) {
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	var out []V
	for _, r := range m {
		if keep(r) {
			out = append(out, view(r))
		}
	}
	slices.SortFunc(out, order)
	return out, nil
}

// byNameThenID and byAgeThenID are the list orders: Neutron's resources
// by name, servers, volumes and images oldest first; the ID breaks ties.
func byNameThenID(aName, aID, bName, bID string) int {
	return cmp.Or(cmp.Compare(aName, bName), cmp.Compare(aID, bID))
}

func byAgeThenID(aAt time.Time, aID string, bAt time.Time, bID string) int {
	return cmp.Or(aAt.Compare(bAt), cmp.Compare(aID, bID))
}

// lockOne is begin plus a lookup: on success it returns m[id] with c.mu
// held; on failure (ctx done, cloud closed, peers.ErrNotFound naming kind)
// c.mu is not held.
func lockOne[T any](c *Cloud, ctx context.Context, kind string, m map[string]*T, id string) (*T, error) {
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	r, ok := m[id]
	if !ok {
		c.mu.Unlock()
		return nil, notFound(kind, id)
	}
	return r, nil
}
