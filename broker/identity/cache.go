package identity

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Cache is a Store that serves the records a signed request reads (EC2
// credentials, users, projects, domains, roles, role assignments) from
// memory, one registry.Mirror per prefix fed by a Store watch, so an EC2
// request costs no Store read. Build the Directory over it (NewDirectory
// of a Cache, or UseCache) and Run it.
//
// Writes pass through and are applied to memory at once, so the broker
// that writes reads its write (a user disabled here is refused by the
// next request here). Another replica's write arrives with its watch,
// within the Mirror's coalescing wait: a credential deleted or a user
// disabled on one broker stops working on every broker that promptly. A
// key memory lacks is read from the Store (a record another replica has
// just created), as is an empty listing; everything else under other
// prefixes (tokens, name indexes, per-user credential lists) passes
// through untouched.
type Cache struct {
	Store
	mirrors []cachedPrefix
}

type cachedPrefix struct {
	prefix string
	mirror *registry.Mirror[registry.KV]
	sink   *kvSink
}

var _ Store = (*Cache)(nil)

// cachedPrefixes are the records the signed-request path reads.
var cachedPrefixes = []string{ec2CredsPrefix, usersPrefix, projectsPrefix, domainsPrefix, rolesPrefix, assignmentsPrefix,
	groupsPrefix, userGroupsPrefix, groupMembersPrefix, impliedRolesPrefix, regionsPrefix, servicesPrefix, endpointsPrefix,
	ec2CredsByUserPrefix, credentialsPrefix, credentialsByUserPrefix, trustsPrefix, trustsByUserPrefix, accessRulesPrefix}

// NewCache returns a cache over store; call Run to fill it. Until it has
// loaded, reads go to the Store.
func NewCache(store Store, log logrus.FieldLogger) *Cache {
	c := &Cache{Store: store}
	for _, p := range cachedPrefixes {
		sink := &kvSink{byKey: map[string]registry.KV{}, byDir: map[string]map[string]struct{}{}}
		if p == assignmentsPrefix {
			sink.second, sink.bySecond = assignmentActor, map[string]map[string]struct{}{}
			sink.first, sink.byFirst = assignmentTarget, map[string]map[string]struct{}{}
		}
		m := registry.NewMirror(store, p, func(kv registry.KV) (registry.KV, error) { return kv, nil }, registry.Sink[registry.KV](sink), log)
		c.mirrors = append(c.mirrors, cachedPrefix{prefix: p, mirror: m, sink: sink})
	}
	return c
}

// UseCache makes d read and write through c. Call it before d serves.
func (d *Directory) UseCache(c *Cache) { d.store = c }

// Run follows every prefix until ctx ends.
func (c *Cache) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, p := range c.mirrors {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.mirror.Run(ctx)
		}()
	}
	wg.Wait()
	return ctx.Err()
}

// WaitReady blocks until every prefix has loaded.
func (c *Cache) WaitReady(ctx context.Context) error {
	for _, p := range c.mirrors {
		if err := p.mirror.WaitReady(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Sync blocks until memory holds every write the Store held when Sync was
// called, by any replica (one List per prefix: for tests and tools, not
// for requests).
func (c *Cache) Sync(ctx context.Context) error {
	for _, p := range c.mirrors {
		kvs, idx, err := c.Store.List(ctx, p.prefix)
		if err != nil {
			return err
		}
		if len(kvs) == 0 && p.sink.empty() {
			// Nothing to wait for; and an untouched prefix answers the
			// Store's current index, which no answer of its watch reaches
			// until something under it changes.
			continue
		}
		if err := p.mirror.WaitIndex(ctx, idx); err != nil {
			return err
		}
	}
	return nil
}

// storeReads marks a context whose reads skip memory.
type storeReads struct{}

// ReadStore returns ctx marked so that a Cache answers reads under it from
// the Store, not memory. For what must not act on another replica's
// write memory has not received yet and is not hot: issuing a token,
// which freezes the user's roles for the token's life (a grant removed on
// another replica, whose revocation event came before this issue, would
// otherwise stay in the token).
func ReadStore(ctx context.Context) context.Context {
	return context.WithValue(ctx, storeReads{}, true)
}

func readsStore(ctx context.Context) bool { return ctx.Value(storeReads{}) != nil }

// of returns the loaded mirror holding key, if any.
func (c *Cache) of(key string) (cachedPrefix, bool) {
	for _, p := range c.mirrors {
		if strings.HasPrefix(key, p.prefix) {
			return p, p.mirror.Loaded()
		}
	}
	return cachedPrefix{}, false
}

// Get reads memory, then the Store for a key memory lacks.
func (c *Cache) Get(ctx context.Context, key string) (registry.KV, error) {
	p, ok := c.of(key)
	if !ok || readsStore(ctx) {
		return c.Store.Get(ctx, key)
	}
	if kv, found := p.sink.get(key); found {
		return kv, nil
	}
	return p.mirror.Fetch(ctx, key)
}

// List answers a whole cached prefix, one level below it, or the
// assignments of one user on one project, from memory, with index 0 (identity's readers never watch
// what they list; Watch goes to the Store). An empty answer is checked
// with the Store, which may hold what another replica has just written.
func (c *Cache) List(ctx context.Context, prefix string) ([]registry.KV, uint64, error) {
	if p, ok := c.of(prefix); ok && !readsStore(ctx) {
		whole := prefix == p.prefix
		rest := prefix[len(p.prefix):]
		userOnProject := p.prefix == assignmentsPrefix && strings.HasSuffix(prefix, "/") && strings.Count(rest, "/") == 2
		// One level down ("credentials-by-user/<user>/"), for the
		// per-owner index keys of credentials and trusts, and a user's
		// access rules.
		oneLevel := p.prefix != assignmentsPrefix && strings.HasSuffix(prefix, "/") && strings.Count(rest, "/") == 1
		if whole || userOnProject || oneLevel {
			if kvs := p.sink.list(prefix, whole); len(kvs) > 0 {
				return kvs, 0, nil
			}
		}
	}
	return c.Store.List(ctx, prefix)
}

// Put writes through and applies the write to memory.
func (c *Cache) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	idx, err := c.Store.Put(ctx, key, value)
	c.wrote(key, value, idx, err)
	return idx, err
}

// CAS writes through and applies the write to memory.
func (c *Cache) CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error) {
	idx, err := c.Store.CAS(ctx, key, value, index)
	c.wrote(key, value, idx, err)
	return idx, err
}

func (c *Cache) wrote(key string, value []byte, idx uint64, err error) {
	if err != nil {
		return
	}
	for _, p := range c.mirrors {
		if strings.HasPrefix(key, p.prefix) {
			p.mirror.Wrote(key, registry.KV{Key: key, Value: value, ModifyIndex: idx}, idx)
		}
	}
}

// Delete deletes through and from memory.
func (c *Cache) Delete(ctx context.Context, key string) error {
	err := c.Store.Delete(ctx, key)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return err
	}
	for _, p := range c.mirrors {
		if strings.HasPrefix(key, p.prefix) {
			p.mirror.Deleted(key, 0)
		}
	}
	return err
}

// assignmentActor is the actor an assignment key names
// (identity/assignments/TARGET/ACTOR/ROLE): a user ID or "group:ID".
func assignmentActor(key string) string { return assignmentPart(key, 1) }

// assignmentTarget is the target an assignment key names.
func assignmentTarget(key string) string { return assignmentPart(key, 0) }

func assignmentPart(key string, i int) string {
	parts := strings.Split(strings.TrimPrefix(key, assignmentsPrefix), "/")
	if len(parts) != 3 {
		return ""
	}
	return parts[i]
}

// assignmentsBy returns the grants on a target (byTarget) or of an actor
// from memory, sorted by key; ok is false until the cache has loaded.
func (c *Cache) assignmentsBy(byTarget bool, k string) (kvs []registry.KV, ok bool) {
	p, ok := c.of(assignmentsPrefix)
	if !ok || k == "" {
		return nil, false
	}
	if byTarget {
		return p.sink.byIndex(p.sink.byFirst, k), true
	}
	return p.sink.byIndex(p.sink.bySecond, k), true
}

// dir returns the records directly under dir from memory; ok is false when
// no loaded cached prefix holds dir.
func (c *Cache) dir(dir string) ([]registry.KV, bool) {
	p, ok := c.of(dir)
	if !ok {
		return nil, false
	}
	return p.sink.list(dir, false), true
}

// kvSink holds a prefix's records by key, and their keys by parent
// ("a/b/" for "a/b/c") for one-level listings, and, when first or second
// is set, by what it names of a key (a role assignment's target, actor).
type kvSink struct {
	mu            sync.RWMutex
	byKey         map[string]registry.KV
	byDir         map[string]map[string]struct{}
	first, second func(key string) string
	byFirst       map[string]map[string]struct{}
	bySecond      map[string]map[string]struct{}
}

func indexAdd(idx map[string]map[string]struct{}, name func(string) string, key string) {
	if name == nil {
		return
	}
	if k := name(key); k != "" {
		if idx[k] == nil {
			idx[k] = map[string]struct{}{}
		}
		idx[k][key] = struct{}{}
	}
}

func indexRemove(idx map[string]map[string]struct{}, name func(string) string, key string) {
	if name == nil {
		return
	}
	k := name(key)
	delete(idx[k], key)
	if len(idx[k]) == 0 {
		delete(idx, k)
	}
}

func parent(key string) string { return key[:strings.LastIndex(key, "/")+1] }

func (s *kvSink) Set(key string, kv registry.KV) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byKey[key] = kv
	dir := s.byDir[parent(key)]
	if dir == nil {
		dir = map[string]struct{}{}
		s.byDir[parent(key)] = dir
	}
	dir[key] = struct{}{}
	indexAdd(s.byFirst, s.first, key)
	indexAdd(s.bySecond, s.second, key)
}

func (s *kvSink) Unset(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byKey, key)
	if dir := s.byDir[parent(key)]; dir != nil {
		delete(dir, key)
		if len(dir) == 0 {
			delete(s.byDir, parent(key))
		}
	}
	indexRemove(s.byFirst, s.first, key)
	indexRemove(s.bySecond, s.second, key)
}

func (s *kvSink) empty() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byKey) == 0
}

func (s *kvSink) get(key string) (registry.KV, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	kv, ok := s.byKey[key]
	return kv, ok
}

// list returns the records directly under dir, or every record when all,
// sorted by key as Store.List does.
func (s *kvSink) list(dir string, all bool) []registry.KV {
	s.mu.RLock()
	var out []registry.KV
	if all {
		out = make([]registry.KV, 0, len(s.byKey))
		for _, kv := range s.byKey {
			out = append(out, kv)
		}
	} else {
		out = s.records(s.byDir[dir])
	}
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// records returns the records of keys; the caller holds the lock.
func (s *kvSink) records(keys map[string]struct{}) []registry.KV {
	out := make([]registry.KV, 0, len(keys))
	for key := range keys {
		out = append(out, s.byKey[key])
	}
	return out
}

// bySecondKey returns the records second names k, sorted by key.
func (s *kvSink) bySecondKey(k string) []registry.KV { return s.byIndex(s.bySecond, k) }

// byIndex returns the records idx (byFirst or bySecond) holds under k,
// sorted by key.
func (s *kvSink) byIndex(idx map[string]map[string]struct{}, k string) []registry.KV {
	s.mu.RLock()
	out := s.records(idx[k])
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}
