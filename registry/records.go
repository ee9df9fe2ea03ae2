package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
)

// Records is a Mirror's records held by key and by group, where a key's
// group is its first segment after the prefix (a project, a user, a kind):
// prefix + group + "/" + rest. A group's list costs its own records.
//
// Writers write through the Store themselves and report it (Wrote,
// Deleted), so they read their writes at once. Records that are not
// running (Run never called, or not loaded yet) read the Store, as the
// code they replace did.
type Records[T any] struct {
	store  MirrorStore
	prefix string
	decode func(KV) (T, error)
	mirror *Mirror[T]

	mu      sync.RWMutex
	byKey   map[string]T
	byGroup map[string]map[string]T // group -> key -> record
}

// NewRecords returns the records under prefix (which ends in "/"); call
// Run to keep them in memory. A nil log discards.
func NewRecords[T any](store MirrorStore, prefix string, decode func(KV) (T, error), log logrus.FieldLogger) *Records[T] {
	r := &Records[T]{store: store, prefix: prefix, decode: decode, byKey: map[string]T{}, byGroup: map[string]map[string]T{}}
	r.mirror = NewMirror(store, prefix, decode, Sink[T](recordsSink[T]{r}), log)
	return r
}

// Run loads the records and follows the Store until ctx ends.
func (r *Records[T]) Run(ctx context.Context) error { return r.mirror.Run(ctx) }

// WaitReady blocks until Run's first load has landed.
func (r *Records[T]) WaitReady(ctx context.Context) error { return r.mirror.WaitReady(ctx) }

// Loaded reports whether the records are held in memory (Run's first
// load has landed): a caller about to look many keys up can tell whether
// each costs a Store read.
func (r *Records[T]) Loaded() bool { return r.mirror.Loaded() }

// WaitIndex blocks until every write up to store index idx is held.
func (r *Records[T]) WaitIndex(ctx context.Context, idx uint64) error {
	return r.mirror.WaitIndex(ctx, idx)
}

// Wrote records a write this process made at store index idx.
func (r *Records[T]) Wrote(key string, v T, idx uint64) { r.mirror.Wrote(key, v, idx) }

// Deleted records a delete this process made.
func (r *Records[T]) Deleted(key string) { r.mirror.Deleted(key, 0) }

// Get returns the record at key. In memory, a key it lacks is read from
// the Store only with fetch (a record another replica may just have
// written, which the caller must not take for missing); otherwise a miss
// is ErrNotFound at once. Not running, it reads the Store.
func (r *Records[T]) Get(ctx context.Context, key string, fetch bool) (T, error) {
	if r.mirror.Loaded() {
		r.mu.RLock()
		v, ok := r.byKey[key]
		r.mu.RUnlock()
		if ok {
			return v, nil
		}
		if !fetch {
			var zero T
			return zero, fmt.Errorf("get %q: %w", key, ErrNotFound)
		}
	}
	return r.mirror.Fetch(ctx, key)
}

// List returns a group's records (every record for group ""), by key.
func (r *Records[T]) List(ctx context.Context, group string) ([]T, error) {
	if r.mirror.Loaded() {
		r.mu.RLock()
		from := r.byKey
		if group != "" {
			from = r.byGroup[group]
		}
		keys := make([]string, 0, len(from))
		for k := range from {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		out := make([]T, 0, len(keys))
		for _, k := range keys {
			out = append(out, from[k])
		}
		r.mu.RUnlock()
		return out, nil
	}
	prefix := r.prefix
	if group != "" {
		prefix += group + "/"
	}
	kvs, _, err := r.store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(kvs))
	var bad []error
	for _, kv := range kvs {
		v, err := r.decode(kv)
		if err != nil {
			bad = append(bad, fmt.Errorf("decode %s: %w", kv.Key, err))
			continue
		}
		out = append(out, v)
	}
	return out, errors.Join(bad...)
}

// group is a key's first segment after the prefix ("" when it has none).
func (r *Records[T]) group(key string) string {
	g, _, ok := strings.Cut(strings.TrimPrefix(key, r.prefix), "/")
	if !ok {
		return ""
	}
	return g
}

// recordsSink feeds Records from its Mirror.
type recordsSink[T any] struct{ r *Records[T] }

func (s recordsSink[T]) Set(key string, v T) {
	r := s.r
	g := r.group(key)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.byKey[key] = v
	if g == "" {
		return
	}
	if r.byGroup[g] == nil {
		r.byGroup[g] = map[string]T{}
	}
	r.byGroup[g][key] = v
}

func (s recordsSink[T]) Unset(key string) {
	r := s.r
	g := r.group(key)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.byKey, key)
	if m := r.byGroup[g]; m != nil {
		delete(m, key)
		if len(m) == 0 {
			delete(r.byGroup, g)
		}
	}
}

// Keyed is a JSON record with the last segment of its key: the ID of what
// it describes, for records kept under <prefix>/<group>/<id>.
type Keyed[T any] struct {
	ID    string
	Value T
}

// DecodeJSON decodes a JSON record: the decoder of Records whose values
// are stored as JSON.
func DecodeJSON[T any](kv KV) (T, error) {
	var v T
	err := json.Unmarshal(kv.Value, &v)
	return v, err
}

// DecodeKeyed decodes a JSON record and names it by its key's last segment.
func DecodeKeyed[T any](kv KV) (Keyed[T], error) {
	var v T
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return Keyed[T]{}, err
	}
	return Keyed[T]{ID: kv.Key[strings.LastIndex(kv.Key, "/")+1:], Value: v}, nil
}
