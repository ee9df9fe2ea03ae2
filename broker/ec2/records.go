package ec2

import (
	"context"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// projectRecords keeps the EC2 API's per-project records under root
// (root/<project>/...: tags, terminated instances) in memory, fed by a
// watch, so a Describe reads no Store prefix. The writing broker applies
// its writes at once (wrote, deleted); another replica's arrive with the
// watch. Until the first load lands, reads go to the Store.
type projectRecords struct {
	root   string
	store  Store
	mirror *registry.Mirror[[]byte]

	mu sync.RWMutex
	m  map[string]map[string][]byte // project -> key -> value
}

func newProjectRecords(store Store, root string, log logrus.FieldLogger) *projectRecords {
	r := &projectRecords{root: root, store: store, m: map[string]map[string][]byte{}}
	r.mirror = registry.NewMirror(store, root, func(kv registry.KV) ([]byte, error) { return kv.Value, nil },
		registry.Sink[[]byte](r), log)
	return r
}

func (r *projectRecords) project(key string) string {
	p, _, _ := strings.Cut(strings.TrimPrefix(key, r.root), "/")
	return p
}

// Set and Unset feed the mirror's records into the map.
func (r *projectRecords) Set(key string, v []byte) {
	p := r.project(key)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[p] == nil {
		r.m[p] = map[string][]byte{}
	}
	r.m[p][key] = v
}

func (r *projectRecords) Unset(key string) {
	p := r.project(key)
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m[p], key)
	if len(r.m[p]) == 0 {
		delete(r.m, p)
	}
}

// list returns a project's records under prefix (root/<project>/...),
// sorted by key, as Store.List would.
func (r *projectRecords) list(ctx context.Context, prefix string) ([]registry.KV, error) {
	if !r.mirror.Loaded() {
		kvs, _, err := r.store.List(ctx, prefix)
		return kvs, err
	}
	r.mu.RLock()
	var out []registry.KV
	for k, v := range r.m[r.project(prefix)] {
		if strings.HasPrefix(k, prefix) {
			out = append(out, registry.KV{Key: k, Value: v})
		}
	}
	r.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// wrote applies a write this broker made at idx.
func (r *projectRecords) wrote(key string, v []byte, idx uint64) { r.mirror.Wrote(key, v, idx) }

// delete deletes key from the Store and memory.
func (r *projectRecords) delete(ctx context.Context, key string) error {
	if err := r.store.Delete(ctx, key); err != nil {
		return err
	}
	r.mirror.Deleted(key, 0)
	return nil
}
