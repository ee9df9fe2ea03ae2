package registrytest

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// CountingStore wraps a Store and counts every call that reaches it, so a
// test or benchmark can show a code path makes no store (Consul) calls.
type CountingStore struct {
	registry.Store
	calls atomic.Int64
	reads atomic.Int64
}

var _ registry.Store = (*CountingStore)(nil)

// NewCountingStore wraps s.
func NewCountingStore(s registry.Store) *CountingStore { return &CountingStore{Store: s} }

// Calls is the number of calls so far.
func (c *CountingStore) Calls() int64 { return c.calls.Load() }

// Reads is the number of Get and List calls so far: what a request reads,
// without the blocking Watch calls of the Store's watchers.
func (c *CountingStore) Reads() int64 { return c.reads.Load() }

// Reset zeroes the counts.
func (c *CountingStore) Reset() {
	c.calls.Store(0)
	c.reads.Store(0)
}

func (c *CountingStore) Get(ctx context.Context, key string) (registry.KV, error) {
	c.calls.Add(1)
	c.reads.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *CountingStore) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	c.calls.Add(1)
	return c.Store.Put(ctx, key, value)
}

func (c *CountingStore) CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error) {
	c.calls.Add(1)
	return c.Store.CAS(ctx, key, value, index)
}

func (c *CountingStore) Delete(ctx context.Context, key string) error {
	c.calls.Add(1)
	return c.Store.Delete(ctx, key)
}

func (c *CountingStore) DeleteCAS(ctx context.Context, key string, index uint64) error {
	c.calls.Add(1)
	return c.Store.DeleteCAS(ctx, key, index)
}

func (c *CountingStore) List(ctx context.Context, prefix string) ([]registry.KV, uint64, error) {
	c.calls.Add(1)
	c.reads.Add(1)
	return c.Store.List(ctx, prefix)
}

func (c *CountingStore) Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error) {
	c.calls.Add(1)
	return c.Store.Watch(ctx, prefix, index)
}

func (c *CountingStore) TryLock(ctx context.Context, key string, holder []byte, ttl time.Duration) (registry.Lease, error) {
	c.calls.Add(1)
	return c.Store.TryLock(ctx, key, holder, ttl)
}
