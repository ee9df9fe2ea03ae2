package gc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// OrphanStore is the part of registry.Store Orphans uses.
type OrphanStore interface {
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	DeleteCAS(ctx context.Context, key string, index uint64) error
}

// Orphans collects records that outlived what they belong to (the health
// record of a removed peer, the deactivation record of a deleted image),
// for record kinds that carry no time of their own. The owner's package
// says which records are orphans; Orphans makes removing them safe: a
// record goes only once it has been seen orphaned and unchanged (same
// modify index) on passes at least Grace apart, and then by
// compare-and-delete, so a record written just before its owner (a create
// in progress) or rewritten since is never taken. The sightings live in
// memory: a broker that takes the lease over starts afresh, which only
// delays a removal.
type Orphans struct {
	// Kind names the collector (Name).
	Kind  string
	Store OrphanStore
	// Prefixes are listed every pass.
	Prefixes []string
	// Orphaned returns those of the listed records whose owner is gone.
	Orphaned func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error)
	// Grace is how long a record must stay an orphan before it goes.
	Grace time.Duration
	// Removed, when set, is told of each record this collector removed,
	// once (the compare-and-delete succeeded): what the record held that
	// counts elsewhere (an index entry's quota charge) is given back.
	Removed func(ctx context.Context, kv registry.KV) error
	// Release, when set, is called on each record that is due, before it
	// is removed: what the record stands for outside the Store (a security
	// group's copies on peers) goes first, so that a failure keeps the
	// record, and with it what to release, for the next pass.
	Release func(ctx context.Context, kv registry.KV) error

	mu   sync.Mutex
	seen map[string]sighting
}

type sighting struct {
	index uint64
	at    time.Time
}

// Name implements Collector.
func (o *Orphans) Name() string { return o.Kind }

// Collect implements Collector.
func (o *Orphans) Collect(ctx context.Context, now time.Time) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	var kvs []registry.KV
	for _, p := range o.Prefixes {
		got, _, err := o.Store.List(ctx, p)
		if err != nil {
			return 0, err
		}
		kvs = append(kvs, got...)
	}
	orphans, err := o.Orphaned(ctx, kvs)
	if err != nil {
		return 0, err
	}
	seen := make(map[string]sighting, len(orphans))
	removed := 0
	var errs []error
	for _, kv := range orphans {
		s, ok := o.seen[kv.Key]
		switch {
		case !ok || s.index != kv.ModifyIndex:
			seen[kv.Key] = sighting{index: kv.ModifyIndex, at: now}
		case now.Sub(s.at) < o.Grace:
			seen[kv.Key] = s
		default:
			if o.Release != nil {
				if err := o.Release(ctx, kv); err != nil {
					seen[kv.Key] = s
					errs = append(errs, fmt.Errorf("release %s: %w", kv.Key, err))
					continue
				}
			}
			err := o.Store.DeleteCAS(ctx, kv.Key, kv.ModifyIndex)
			switch {
			case err == nil:
				removed++
				if o.Removed != nil {
					if rerr := o.Removed(ctx, kv); rerr != nil {
						errs = append(errs, fmt.Errorf("after removing %s: %w", kv.Key, rerr))
					}
				}
			case errors.Is(err, registry.ErrConflict):
				// Rewritten or removed meanwhile: judged afresh next pass.
			default:
				seen[kv.Key] = s
				errs = append(errs, fmt.Errorf("remove %s: %w", kv.Key, err))
			}
		}
	}
	o.seen = seen
	return removed, errors.Join(errs...)
}
