// Package kept holds what the broker keeps of a resource because its peer
// cannot: a rename, a description or metadata set after the create, what
// an extend added. Each resource's attrs are one JSON record under
// Root + project + "/" + ID in the Store, and a watch-fed Memory on every
// replica (registry.Records grouped by project) serves showing and listing
// without a Store read. The servers and volume services keep their attrs
// through it, each with its own record type, so the key layout, the CAS
// rule and the memory's bookkeeping are one code.
package kept

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Memory holds every resource's attrs of one kind in memory, fed by a
// Store watch: Run it beside the service it is set on. A change made on
// another replica shows here once the watch delivers it; Load, CAS and
// Delete read or write the Store itself, since they act on the current
// version.
type Memory[T any] = registry.Records[registry.Keyed[T]]

// NewMemory returns the attrs kept in store under root (which ends in
// "/"); Run keeps them in memory.
func NewMemory[T any](store registry.MirrorStore, root string, log logrus.FieldLogger) *Memory[T] {
	return registry.NewRecords(store, root, registry.DecodeKeyed[T], log)
}

// Store is the part of registry.Store attrs are kept in.
type Store interface {
	registry.MirrorStore
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
}

// Attrs are one kind's attrs of type T: where they are kept and the
// memory that serves their reads. It is a value a service makes per call
// from its own fields.
type Attrs[T any] struct {
	Store Store
	// Root is the Store prefix of the kind, ending in "/".
	Root string
	// Memory, when set (and Run), serves View and Project; without it they
	// read the Store.
	Memory *Memory[T]
	Log    logrus.FieldLogger
}

// Key is where a resource's attrs are kept.
func (a Attrs[T]) Key(project, id string) string { return a.Root + project + "/" + id }

// records returns the Memory, or (without one) records that read the
// Store.
func (a Attrs[T]) records() *Memory[T] {
	if a.Memory != nil {
		return a.Memory
	}
	return NewMemory[T](a.Store, a.Root, a.Log)
}

// View returns a resource's attrs for showing it (none: the zero T). A
// stale answer only shows an older name or metadata for the watch's
// delay; nothing may be decided on it.
func (a Attrs[T]) View(ctx context.Context, project, id string) (T, error) {
	r, err := a.records().Get(ctx, a.Key(project, id), false)
	if errors.Is(err, registry.ErrNotFound) {
		var zero T
		return zero, nil
	}
	return r.Value, err
}

// Project returns the attrs of a project's resources by ID (every
// project's for "").
func (a Attrs[T]) Project(ctx context.Context, project string) (map[string]T, error) {
	rs, err := a.records().List(ctx, project)
	if err != nil {
		return nil, err
	}
	out := make(map[string]T, len(rs))
	for _, r := range rs {
		out[r.ID] = r.Value
	}
	return out, nil
}

// Load reads a resource's attrs from the Store and the index to CAS them
// at (the zero T and 0 when there are none).
func (a Attrs[T]) Load(ctx context.Context, project, id string) (T, uint64, error) {
	var v T
	kv, err := a.Store.Get(ctx, a.Key(project, id))
	if errors.Is(err, registry.ErrNotFound) {
		return v, 0, nil
	}
	if err != nil {
		return v, 0, err
	}
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		var zero T
		return zero, 0, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	return v, kv.ModifyIndex, nil
}

// CAS writes a resource's attrs if they are still at index at (0: if
// there are none); a lost race is registry.ErrConflict. The Memory holds
// the write at once.
func (a Attrs[T]) CAS(ctx context.Context, project, id string, v T, at uint64) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	key := a.Key(project, id)
	written, err := a.Store.CAS(ctx, key, raw, at)
	if err != nil {
		return err
	}
	if a.Memory != nil {
		a.Memory.Wrote(key, registry.Keyed[T]{ID: id, Value: v}, written)
	}
	return nil
}

// Delete forgets a resource's attrs (none kept is no error).
func (a Attrs[T]) Delete(ctx context.Context, project, id string) error {
	key := a.Key(project, id)
	if err := a.Store.Delete(ctx, key); err != nil && !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	if a.Memory != nil {
		a.Memory.Deleted(key)
	}
	return nil
}
