package registry

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Op names a Store operation, for fault injection.
type Op string

// The operations a FaultFunc sees.
const (
	OpGet    Op = "get"
	OpPut    Op = "put"
	OpCAS    Op = "cas"
	OpDelete Op = "delete"
	OpList   Op = "list"
	OpWatch  Op = "watch"
	OpLock   Op = "lock"
)

// FaultFunc decides whether an operation fails. Returning nil lets it run.
type FaultFunc func(op Op, key string) error

// Memory is the in-memory Store: first-class, used by `serve -dev` and by
// unit tests, with Consul's semantics (one index counter, CAS by modify index,
// tombstones so a delete moves a prefix's index, reaped beyond
// maxTombstones as Consul reaps its own, blocking watches). Keys are kept
// sorted, so a List costs what its prefix holds, not what the store holds.
// Beyond Consul, it is a ChangeWatcher: a Mirror following a prefix of
// 10,000 keys reads the few that changed, not all of them per answer.
type Memory struct {
	mu    sync.Mutex
	index uint64
	data  map[string]*KV
	// keys are data's keys, sorted, so a List reads only its prefix's
	// range rather than every key in the store.
	keys       []string
	tombstones map[string]uint64 // deleted key -> index of its deletion
	tombKeys   []string          // tombstones' keys, sorted
	// reaped is the highest index of a tombstone reaped: no prefix
	// reports an index below it, so dropping tombstones never moves a
	// prefix's index backwards (Consul's rule after its tombstone GC).
	reaped  uint64
	changed chan struct{} // closed and replaced on every write
	// recent are the keys of the latest writes, by index (recent[i] was
	// written at index recentFrom+i, and the last at index), so a woken
	// watcher checks what changed instead of scanning the whole store for
	// its prefix, and WatchChanges answers from it.
	recent     []string
	recentFrom uint64
	fault      FaultFunc
	leases     map[string]*memLease // session id -> lease
}

var (
	_ Store         = (*Memory)(nil)
	_ ChangeWatcher = (*Memory)(nil)
)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{
		// Index 1 is the empty store, as a fresh Consul answers 1 for an
		// empty prefix: an answer at index i then holds every write up to
		// i, which watchers (Mirror) rely on. The first write is 2.
		index:      1,
		data:       map[string]*KV{},
		tombstones: map[string]uint64{},
		changed:    make(chan struct{}),
		leases:     map[string]*memLease{},
	}
}

// InjectFault makes every later operation consult fn first; nil removes it.
// Tests use it to exercise a broker whose store is failing.
func (m *Memory) InjectFault(fn FaultFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fault = fn
}

// ExpireLeases invalidates every live lease as if its holder had stopped
// renewing: the locks free and each Lost channel closes.
func (m *Memory) ExpireLeases() {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range m.leases {
		m.endLeaseLocked(l)
	}
}

// check runs the shared preamble of every operation: context, fault, key.
// Callers hold m.mu.
func (m *Memory) check(ctx context.Context, op Op, key string, prefix bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if m.fault != nil {
		if err := m.fault(op, key); err != nil {
			return err
		}
	}
	if prefix {
		return ValidatePrefix(key)
	}
	return ValidateKey(key)
}

// recentWrites bounds Memory.recent; a watcher that slept through more
// writes scans the store.
const recentWrites = 1024

func (m *Memory) bumpLocked(key string) uint64 {
	m.index++
	if len(m.recent) == recentWrites {
		n := copy(m.recent, m.recent[recentWrites/2:])
		m.recent = m.recent[:n]
		m.recentFrom += recentWrites / 2
	}
	if len(m.recent) == 0 {
		m.recentFrom = m.index
	}
	m.recent = append(m.recent, key)
	close(m.changed)
	m.changed = make(chan struct{})
	return m.index
}

// touchedSinceLocked reports whether a write after index since may have
// changed prefix: false only when the recent writes cover them all and
// none is under prefix. A tombstone reap after since counts as touching
// every prefix, since it may raise any prefix's index to m.reaped.
func (m *Memory) touchedSinceLocked(prefix string, since uint64) bool {
	if len(m.recent) == 0 || since+1 < m.recentFrom || m.reaped > since {
		return true
	}
	for _, k := range m.recent[since+1-m.recentFrom:] {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

func copyKV(kv *KV) KV {
	out := *kv
	out.Value = bytes.Clone(kv.Value)
	return out
}

// Get implements Store.
func (m *Memory) Get(ctx context.Context, key string) (KV, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, OpGet, key, false); err != nil {
		return KV{}, err
	}
	kv, ok := m.data[key]
	if !ok {
		return KV{}, fmt.Errorf("get %q: %w", key, ErrNotFound)
	}
	return copyKV(kv), nil
}

// Put implements Store.
func (m *Memory) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, OpPut, key, false); err != nil {
		return 0, err
	}
	if err := ValidateValue(value); err != nil {
		return 0, err
	}
	return m.writeLocked(key, value), nil
}

func (m *Memory) writeLocked(key string, value []byte) uint64 {
	if kv, ok := m.data[key]; ok && bytes.Equal(kv.Value, value) {
		return kv.ModifyIndex // unchanged: no new index, no wake-up (as Consul)
	}
	idx := m.bumpLocked(key)
	if kv, ok := m.data[key]; ok {
		kv.Value = bytes.Clone(value)
		kv.ModifyIndex = idx
		return idx
	}
	if _, ok := m.tombstones[key]; ok {
		delete(m.tombstones, key)
		m.tombKeys = removeSorted(m.tombKeys, key)
	}
	m.keys = insertSorted(m.keys, key)
	m.data[key] = &KV{Key: key, Value: bytes.Clone(value), CreateIndex: idx, ModifyIndex: idx}
	return idx
}

// CAS implements Store.
func (m *Memory) CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, OpCAS, key, false); err != nil {
		return 0, err
	}
	if err := ValidateValue(value); err != nil {
		return 0, err
	}
	kv, exists := m.data[key]
	switch {
	case index == 0 && exists:
		return 0, fmt.Errorf("create %q: already exists: %w", key, ErrConflict)
	case index != 0 && !exists:
		return 0, fmt.Errorf("cas %q at %d: key is gone: %w", key, index, ErrConflict)
	case index != 0 && kv.ModifyIndex != index:
		return 0, fmt.Errorf("cas %q at %d: now at %d: %w", key, index, kv.ModifyIndex, ErrConflict)
	}
	return m.writeLocked(key, value), nil
}

// Delete implements Store.
func (m *Memory) Delete(ctx context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, OpDelete, key, false); err != nil {
		return err
	}
	m.deleteLocked(key)
	return nil
}

func (m *Memory) deleteLocked(key string) {
	kv, ok := m.data[key]
	if !ok {
		return
	}
	delete(m.data, key)
	m.keys = removeSorted(m.keys, key)
	if _, ok := m.tombstones[key]; !ok {
		m.tombKeys = insertSorted(m.tombKeys, key)
	}
	m.tombstones[key] = m.bumpLocked(key)
	if len(m.tombstones) > maxTombstones {
		// Like Consul's tombstone GC: deletes are remembered only so long.
		m.reaped = m.index
		m.tombstones, m.tombKeys = map[string]uint64{}, nil
	}
	// Deleting a locked key ends its lease, as with Consul: otherwise the
	// next TryLock would succeed while the old holder still believes it
	// holds the lock.
	if l, ok := m.leases[kv.Session]; ok {
		l.ended = true
		delete(m.leases, l.id)
		close(l.lost)
	}
}

// DeleteCAS implements Store.
func (m *Memory) DeleteCAS(ctx context.Context, key string, index uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, OpDelete, key, false); err != nil {
		return err
	}
	kv, ok := m.data[key]
	if !ok {
		return fmt.Errorf("delete %q at %d: key is gone: %w", key, index, ErrConflict)
	}
	if kv.ModifyIndex != index {
		return fmt.Errorf("delete %q at %d: now at %d: %w", key, index, kv.ModifyIndex, ErrConflict)
	}
	m.deleteLocked(key)
	return nil
}

// List implements Store.
func (m *Memory) List(ctx context.Context, prefix string) ([]KV, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, OpList, prefix, true); err != nil {
		return nil, 0, err
	}
	kvs, idx := m.listLocked(prefix)
	return kvs, idx, nil
}

// maxTombstones bounds the deletions the memory store remembers for
// prefix indexes; beyond it they are reaped at once.
const maxTombstones = 4096

// listLocked returns the keys under prefix and the prefix index: the highest
// modify or deletion index under it, and at least the last reaped
// tombstone's. Like Consul, an untouched prefix reports the store's current
// index so a watcher does not spin on 0.
func (m *Memory) listLocked(prefix string) ([]KV, uint64) {
	var out []KV
	var idx uint64
	for _, k := range keysUnder(m.keys, prefix) {
		kv := m.data[k]
		out = append(out, copyKV(kv))
		idx = max(idx, kv.ModifyIndex)
	}
	for _, k := range keysUnder(m.tombKeys, prefix) {
		idx = max(idx, m.tombstones[k])
	}
	if idx == 0 {
		return out, m.index
	}
	return out, max(idx, m.reaped)
}

// keysUnder returns the run of sorted keys that start with prefix.
func keysUnder(keys []string, prefix string) []string {
	i, _ := slices.BinarySearch(keys, prefix)
	j := i
	for j < len(keys) && strings.HasPrefix(keys[j], prefix) {
		j++
	}
	return keys[i:j]
}

func insertSorted(keys []string, k string) []string {
	i, found := slices.BinarySearch(keys, k)
	if found {
		return keys
	}
	return slices.Insert(keys, i, k)
}

func removeSorted(keys []string, k string) []string {
	i, found := slices.BinarySearch(keys, k)
	if !found {
		return keys
	}
	return slices.Delete(keys, i, i+1)
}

// Watch implements Store.
func (m *Memory) Watch(ctx context.Context, prefix string, index uint64) ([]KV, uint64, error) {
	var checked uint64 // the store index up to which prefix is known unchanged
	for {
		m.mu.Lock()
		if err := m.check(ctx, OpWatch, prefix, true); err != nil {
			m.mu.Unlock()
			return nil, 0, err
		}
		if checked == 0 || m.touchedSinceLocked(prefix, checked) {
			kvs, idx := m.listLocked(prefix)
			// idx < index means the caller holds an index from another
			// store (a restart): like Consul's reset rule, answer at once.
			if idx != index {
				m.mu.Unlock()
				return kvs, idx, nil
			}
		}
		checked = m.index
		if err := m.waitUnlock(ctx); err != nil {
			return nil, 0, err
		}
	}
}

// waitUnlock releases m.mu, which the caller holds, and waits for the
// next write or ctx's end.
func (m *Memory) waitUnlock(ctx context.Context) error {
	changed := m.changed
	m.mu.Unlock()
	select {
	case <-changed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WatchChanges implements ChangeWatcher from the log of recent writes.
func (m *Memory) WatchChanges(ctx context.Context, prefix string, index uint64) ([]Change, uint64, error) {
	for {
		m.mu.Lock()
		if err := m.check(ctx, OpWatch, prefix, true); err != nil {
			m.mu.Unlock()
			return nil, 0, err
		}
		changes, err := m.changesLocked(prefix, index)
		if err != nil || len(changes) > 0 {
			next := m.index
			m.mu.Unlock()
			return changes, next, err
		}
		index = m.index // nothing under prefix changed up to here
		if err := m.waitUnlock(ctx); err != nil {
			return nil, 0, err
		}
	}
}

// changesLocked returns the keys under prefix written after index, as
// they now are, sorted by key. When the log no longer reaches index+1 it
// answers from the keys' own indexes whether anything under prefix
// changed: ErrChangesGone if so (what, the log has forgotten), none if
// not, so a quiet prefix in a busy store is not listed again and again.
func (m *Memory) changesLocked(prefix string, index uint64) ([]Change, error) {
	switch {
	case index > m.index:
		return nil, fmt.Errorf("changes under %q after %d: the store is at %d: %w", prefix, index, m.index, ErrChangesGone)
	case index == m.index:
		return nil, nil
	case len(m.recent) == 0 || index+1 < m.recentFrom:
		if m.changedSinceLocked(prefix, index) {
			return nil, fmt.Errorf("changes under %q after %d: the log starts at %d: %w", prefix, index, m.recentFrom, ErrChangesGone)
		}
		return nil, nil
	}
	last := map[string]uint64{} // key -> index of its last write
	for i, k := range m.recent[index+1-m.recentFrom:] {
		if strings.HasPrefix(k, prefix) {
			last[k] = index + 1 + uint64(i)
		}
	}
	keys := slices.Sorted(maps.Keys(last))
	changes := make([]Change, 0, len(keys))
	for _, k := range keys {
		if kv, ok := m.data[k]; ok {
			changes = append(changes, Change{KV: copyKV(kv)})
		} else {
			changes = append(changes, Change{KV: KV{Key: k, ModifyIndex: last[k]}, Deleted: true})
		}
	}
	return changes, nil
}

// changedSinceLocked reports whether a key under prefix was written or
// deleted after index, from the keys and tombstones (a reap after index
// may have dropped one under prefix, so it counts as a change).
func (m *Memory) changedSinceLocked(prefix string, index uint64) bool {
	if m.reaped > index {
		return true
	}
	for _, k := range keysUnder(m.keys, prefix) {
		if m.data[k].ModifyIndex > index {
			return true
		}
	}
	for _, k := range keysUnder(m.tombKeys, prefix) {
		if m.tombstones[k] > index {
			return true
		}
	}
	return false
}

// memLease is a lease on the memory store. Memory leases never expire on
// their own (the process holding them is the process holding the store);
// ExpireLeases simulates a holder that died.
type memLease struct {
	m       *Memory
	id, key string
	lost    chan struct{}
	ended   bool
}

// TryLock implements Locker.
func (m *Memory) TryLock(ctx context.Context, key string, holder []byte, ttl time.Duration) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(ctx, OpLock, key, false); err != nil {
		return nil, err
	}
	if kv, ok := m.data[key]; ok && kv.Session != "" {
		return nil, fmt.Errorf("lock %q: %w", key, ErrLockHeld)
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	l := &memLease{m: m, id: hex.EncodeToString(b[:]), key: key, lost: make(chan struct{})}
	m.writeLocked(key, holder)
	kv := m.data[key]
	kv.Session = l.id
	kv.ModifyIndex = m.bumpLocked(key) // taking the lock is a change even when the value is not
	m.leases[l.id] = l
	return l, nil
}

// endLeaseLocked frees the lease's key (Consul's "release" behavior: the key
// stays, its session is cleared) and closes Lost.
func (m *Memory) endLeaseLocked(l *memLease) {
	if l.ended {
		return
	}
	l.ended = true
	delete(m.leases, l.id)
	if kv, ok := m.data[l.key]; ok && kv.Session == l.id {
		kv.Session = ""
		kv.ModifyIndex = m.bumpLocked(l.key)
	}
	close(l.lost)
}

func (l *memLease) Key() string           { return l.key }
func (l *memLease) Lost() <-chan struct{} { return l.lost }

func (l *memLease) Release(ctx context.Context) error {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	l.m.endLeaseLocked(l)
	return ctx.Err()
}
