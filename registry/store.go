package registry

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// KV is one stored key with the indexes the store assigned it. Indexes come
// from one counter per store, so they order every write across keys.
type KV struct {
	Key         string
	Value       []byte
	CreateIndex uint64
	ModifyIndex uint64
	// Session names the lease holding this key as a lock, if any.
	Session string
}

// Store is the durable key-value contract every cloudmux record lives in.
// Semantics follow Consul's KV store, so the memory backend and the Consul
// backend are interchangeable (registrytest.Exercise holds both to it).
type Store interface {
	// Get returns the key or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// Put writes unconditionally and returns the new modify index. Writing
	// the value a key already holds changes nothing (Consul's rule): the
	// index stays and watchers do not wake, so a same-value write is no
	// fence or heartbeat.
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	// CAS writes only if the key's modify index equals index; index 0 means
	// "only if the key does not exist". A lost race wraps ErrConflict.
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	// Delete removes the key; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// DeleteCAS removes the key only if its modify index equals index.
	DeleteCAS(ctx context.Context, key string, index uint64) error
	// List returns the keys under prefix sorted by key, and the prefix's
	// index: a value that grows whenever anything under prefix changes,
	// deletes included. Pass it to Watch.
	List(ctx context.Context, prefix string) ([]KV, uint64, error)
	// Watch blocks until something under prefix changes after index, then
	// returns what List would. It returns at once when index is behind.
	// It returns ctx.Err() when ctx ends first.
	Watch(ctx context.Context, prefix string, index uint64) ([]KV, uint64, error)
	Locker
}

// Locker hands out leases on keys: the primitive later issues use for
// deployment ownership. A lease is kept alive by its holder until Release or
// until the holder stops renewing (the process died), after which the lock
// frees itself within the TTL.
type Locker interface {
	// TryLock takes the lock at key for holder (a value written to the key,
	// e.g. a broker ID) or fails at once with ErrLockHeld.
	TryLock(ctx context.Context, key string, holder []byte, ttl time.Duration) (Lease, error)
}

// Lease is a held lock.
type Lease interface {
	// Key is the locked key.
	Key() string
	// Lost is closed when the lease ends for any reason: released, expired,
	// or invalidated by the backend. Work guarded by the lock stops then.
	Lost() <-chan struct{}
	// Release frees the lock and ends renewal. Releasing twice is harmless.
	Release(ctx context.Context) error
}

// MinLockTTL and MaxLockTTL bound lease TTLs the way Consul sessions do.
const (
	MinLockTTL = 10 * time.Second
	MaxLockTTL = 24 * time.Hour
)

// MaxValueSize bounds a stored value. Consul's transaction API (which the
// Consul backend writes through to learn the new index) carries values
// base64-encoded under a 512 KiB request cap; 256 KiB leaves room for the
// encoding and the envelope. Records are far smaller.
const MaxValueSize = 256 << 10

// ValidateValue applies the value rules both backends share.
func ValidateValue(value []byte) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("%w: %d bytes, more than %d", ErrValueTooLarge, len(value), MaxValueSize)
	}
	return nil
}

// ValidateKey applies the key rules both backends share. Beyond the obvious,
// two come from Consul's HTTP API and bind the memory backend too, so code
// tested on memory cannot write a key Consul would mangle: a "." or ".."
// segment (Consul's router redirects to the cleaned path, so "a/../b" would
// read "b") and invalid UTF-8 (keys travel in JSON, which replaces it).
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty key", ErrInvalidKey)
	case strings.HasPrefix(key, "/"):
		return fmt.Errorf("%w: %q starts with '/'", ErrInvalidKey, key)
	case strings.Contains(key, "//"):
		return fmt.Errorf("%w: %q has an empty path segment", ErrInvalidKey, key)
	case len(key) > 512:
		return fmt.Errorf("%w: longer than 512 bytes", ErrInvalidKey)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: %q is not valid UTF-8", ErrInvalidKey, key)
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("%w: %q holds a control character", ErrInvalidKey, key)
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: %q has a %q path segment", ErrInvalidKey, key, seg)
		}
	}
	return nil
}

// ValidatePrefix accepts "" (everything) or a valid key.
func ValidatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	return ValidateKey(prefix)
}

// ClampTTL brings a requested TTL inside [MinLockTTL, MaxLockTTL].
func ClampTTL(ttl time.Duration) time.Duration {
	return min(max(ttl, MinLockTTL), MaxLockTTL)
}
