// Package index is the broker's resource index: for every resource the
// broker created, its broker-wide ID, the peer it lives on, the peer's own
// ID for it, and the project owning it. The same facts ride on the resource
// itself (peers.MetaID, MetaProject, MetaBrokerID), so the index can be
// rebuilt by scanning the peers.
package index

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/registry"
)

// ErrNotFound: no such resource in this project (or at all: callers must
// not tell the two apart, so a tenant learns nothing of others' IDs).
var ErrNotFound = errors.New("index: resource not found")

// Its text is an internal name: faults cuts it from what a tenant reads.
var _ = faults.Register(ErrNotFound)

// Entry is one indexed resource.
type Entry struct {
	Kind           string    `json:"kind"`
	ID             string    `json:"id"`
	Project        string    `json:"project"`
	PeerID         string    `json:"peer_id"`
	PeerResourceID string    `json:"peer_resource_id"`
	Name           string    `json:"name,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	// IndexedAt is when the entry was written, on the writing broker's
	// clock; Rebuild never removes an entry younger than its scan.
	IndexedAt time.Time `json:"indexed_at,omitzero"`
	// Charge is what the resource counts against its project's quota,
	// freed when the entry is removed (Remove says whether this caller
	// removed it, so two concurrent deletes free it once). Entries a
	// Rebuild adopted carry none: their resource was never counted.
	Charge quota.Amounts `json:"charge,omitempty"`
	// Parent is the broker ID of the resource this one exists for, if
	// any (a port a peer made for a server names the server), so it is
	// forgotten with it.
	Parent string `json:"parent,omitempty"`
	// Shared marks a resource every project may see (a network created
	// shared), so every replica knows from its watch which peers hold
	// such resources: another project's list must read those peers too.
	Shared bool `json:"shared,omitempty"`
}

// sameResource reports whether two entries point at one resource.
func (e Entry) sameResource(o Entry) bool {
	return e.Kind == o.Kind && e.ID == o.ID && e.Project == o.Project && e.PeerID == o.PeerID && e.PeerResourceID == o.PeerResourceID
}

// Store is the part of registry.Store the index uses.
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	DeleteCAS(ctx context.Context, key string, index uint64) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error)
}

// Index keeps entries under index/<kind>/<id>, and a copy under
// index-by-project/<kind>/<project>/<id>. Entries never change once
// written (but for the quota charge a creator adds to an entry a Rebuild
// adopted first), so the copies agree.
//
// Once Run has loaded them, every replica serves reads from memory (a
// registry.Mirror of index/ fed by one Store watch), by kind and ID and by
// kind and project, so a lookup and a project's list read no Store,
// whatever the cloud holds. The writer reads its writes at once; an ID
// memory lacks is read from the Store (one key), since another replica
// may just have written it. An index that is not running reads the Store
// (tools and tests that need no watch).
type Index struct {
	store  Store
	freer  Freer
	mirror *registry.Mirror[Entry]
	mem    *memory
}

const keyRoot = "index/"

// New returns an index over store; Run keeps it in memory.
func New(store Store) *Index {
	mem := newMemory()
	return &Index{store: store, mem: mem, mirror: registry.NewMirror(store, keyRoot, decode, registry.Sink[Entry](mem), nil)}
}

// WithLog sets where watch failures are logged; call it before Run.
func (x *Index) WithLog(log logrus.FieldLogger) *Index {
	x.mirror = registry.NewMirror(x.store, keyRoot, decode, registry.Sink[Entry](x.mem), log)
	return x
}

// Run loads the index into memory and follows the Store until ctx ends.
func (x *Index) Run(ctx context.Context) error { return x.mirror.Run(ctx) }

// WaitReady blocks until Run's first load has landed.
func (x *Index) WaitReady(ctx context.Context) error { return x.mirror.WaitReady(ctx) }

// WaitIndex blocks until memory holds every write up to store index idx
// (another replica's write this one must see).
func (x *Index) WaitIndex(ctx context.Context, idx uint64) error { return x.mirror.WaitIndex(ctx, idx) }

func decode(kv registry.KV) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(kv.Value, &e); err != nil {
		return Entry{}, err
	}
	if kv.Key != primaryKey(e.Kind, e.ID) {
		return Entry{}, fmt.Errorf("the entry names %s %s", e.Kind, e.ID)
	}
	return e, nil
}

// Freer gives back what a removed resource counted against its
// project's quota: quota.Ledger.
type Freer interface {
	Free(ctx context.Context, s quota.Scope, amounts quota.Amounts) error
}

// WithFreer returns the index over the same store whose Rebuild frees the
// charge of every entry it removes (a resource deleted behind the
// broker's back stops counting against its project's quota). Without
// one, Rebuild removes entries and frees nothing.
func (x *Index) WithFreer(f Freer) *Index {
	return &Index{store: x.store, freer: f, mirror: x.mirror, mem: x.mem}
}

func primaryKey(kind, id string) string { return keyRoot + kind + "/" + id }
func projectKey(kind, project, id string) string {
	return "index-by-project/" + kind + "/" + project + "/" + id
}

// Put records a new entry; an ID already taken by another resource is
// registry.ErrConflict. Writing an entry for the resource the ID already
// names succeeds without change: a Rebuild may have indexed a fresh
// resource before its creator did, and the creator must not mistake that
// for a clash (and undo its create).
func (x *Index) Put(ctx context.Context, e Entry) error {
	if e.IndexedAt.IsZero() {
		e.IndexedAt = time.Now().UTC()
	}
	raw, err := json.Marshal(e)
	if err != nil {
		return err
	}
	at, err := x.casOwned(ctx, primaryKey(e.Kind, e.ID), raw, 0)
	if err != nil {
		if errors.Is(err, registry.ErrConflict) {
			if cur, gerr := x.Get(ctx, e.Kind, e.ID, ""); gerr == nil && cur.sameResource(e) {
				return x.complete(ctx, cur, e)
			}
		}
		return fmt.Errorf("index %s %s: %w", e.Kind, e.ID, err)
	}
	x.mirror.Wrote(primaryKey(e.Kind, e.ID), e, at)
	if _, err := x.casOwned(ctx, projectKey(e.Kind, e.Project, e.ID), raw, 0); err != nil {
		if x.store.Delete(context.WithoutCancel(ctx), primaryKey(e.Kind, e.ID)) == nil {
			x.mirror.Deleted(primaryKey(e.Kind, e.ID), at)
		}
		return fmt.Errorf("index %s %s: %w", e.Kind, e.ID, err)
	}
	return nil
}

// complete gives an entry a Rebuild adopted what its creator's entry e
// adds, in both copies: the charge the creator committed (an adopted entry
// carries none: nothing was counted for it), so deleting the resource
// frees it, and the Shared mark (a rebuild cannot tell), so other
// projects' lists find it. What an entry carries already stays.
func (x *Index) complete(ctx context.Context, cur, e Entry) error {
	add := func(got Entry) (Entry, bool) {
		changed := false
		if len(got.Charge) == 0 && len(e.Charge) > 0 {
			got.Charge, changed = e.Charge, true
		}
		if e.Shared && !got.Shared {
			got.Shared, changed = true, true
		}
		return got, changed
	}
	if _, changed := add(cur); !changed {
		return nil
	}
	return x.rewrite(ctx, cur, add)
}

// SetCharge replaces what deleting the resource of e frees, in both
// copies of its entry: a resized server's new flavor.
func (x *Index) SetCharge(ctx context.Context, e Entry, charge quota.Amounts) error {
	return x.rewrite(ctx, e, func(got Entry) (Entry, bool) {
		got.Charge = charge.Clone()
		return got, true
	})
}

// rewrite applies change to both copies of cur's entry, each with a CAS
// tried again on a concurrent write; a copy removed meanwhile, or now
// naming another resource, is left alone.
func (x *Index) rewrite(ctx context.Context, cur Entry, change func(Entry) (Entry, bool)) error {
	for _, key := range []string{primaryKey(cur.Kind, cur.ID), projectKey(cur.Kind, cur.Project, cur.ID)} {
		for {
			kv, err := x.store.Get(ctx, key)
			if errors.Is(err, registry.ErrNotFound) {
				break // removed meanwhile: its remover freed nothing, and nothing is left to carry it
			}
			if err != nil {
				return fmt.Errorf("index %s %s: %w", cur.Kind, cur.ID, err)
			}
			var got Entry
			if err := json.Unmarshal(kv.Value, &got); err != nil || !got.sameResource(cur) {
				break
			}
			want, changed := change(got)
			if !changed {
				break
			}
			raw, err := json.Marshal(want)
			if err != nil {
				return err
			}
			at, err := x.store.CAS(ctx, key, raw, kv.ModifyIndex)
			if errors.Is(err, registry.ErrConflict) {
				continue
			} else if err != nil {
				return fmt.Errorf("index %s %s: %w", cur.Kind, cur.ID, err)
			}
			if key == primaryKey(cur.Kind, cur.ID) {
				x.mirror.Wrote(key, want, at)
			}
			break
		}
	}
	return nil
}

// Get returns the entry for id if it belongs to project (any project when
// project is ""); otherwise ErrNotFound. An ID memory lacks is read from
// the Store (one key): another replica may have just written it.
func (x *Index) Get(ctx context.Context, kind, id, project string) (Entry, error) {
	key := primaryKey(kind, id)
	if registry.ValidateKey(key) != nil {
		return Entry{}, fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
	}
	e, ok := x.mem.get(kind, id)
	if !ok || !x.mirror.Loaded() {
		var err error
		e, err = x.mirror.Fetch(ctx, key)
		if errors.Is(err, registry.ErrNotFound) {
			return Entry{}, fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
		}
		if err != nil {
			return Entry{}, err
		}
	}
	if project != "" && e.Project != project {
		return Entry{}, fmt.Errorf("%s %s: %w", kind, id, ErrNotFound)
	}
	return e, nil
}

// List returns a project's entries of a kind (every project's when
// project is ""), by ID.
func (x *Index) List(ctx context.Context, kind, project string) ([]Entry, error) {
	if x.mirror.Loaded() {
		return x.mem.list(kind, project), nil
	}
	prefix := keyRoot + kind + "/"
	if project != "" {
		prefix = "index-by-project/" + kind + "/" + project + "/"
	}
	return x.read(ctx, prefix)
}

// read decodes the entries under prefix from the Store, in key order.
func (x *Index) read(ctx context.Context, prefix string) ([]Entry, error) {
	kvs, _, err := x.store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(kvs))
	for _, kv := range kvs {
		var e Entry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kv.Key, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Delete removes an entry.
func (x *Index) Delete(ctx context.Context, e Entry) error {
	key := primaryKey(e.Kind, e.ID)
	version, _ := x.mirror.Version(key)
	err := x.store.Delete(ctx, key)
	if err == nil {
		x.mirror.Deleted(key, version)
	}
	return errors.Join(err, x.store.Delete(context.WithoutCancel(ctx), projectKey(e.Kind, e.Project, e.ID)))
}
