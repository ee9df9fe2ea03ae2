package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// lostSettle bounds how long a write whose answer was lost (a Consul
// leader dying under it) is settled by reading its key back.
const lostSettle = 30 * time.Second

// casOwned is a compare-and-swap of a value no other writer can write
// (it names a fresh ID, a write time to the nanosecond, a random op), so
// reading the key back settles a write whose answer was lost: our bytes
// there mean it landed; the key as the write expected it (missing for a
// create, at index otherwise) means it did not, and it is sent again;
// anything else is a conflict. The Store alone cannot settle that, since
// for it identical bytes may be another writer's.
func (x *Index) casOwned(ctx context.Context, key string, raw []byte, index uint64) (uint64, error) {
	at, err := x.store.CAS(ctx, key, raw, index)
	if err == nil || !errors.Is(err, registry.ErrUnavailable) {
		return at, err
	}
	lost := err
	deadline := time.Now().Add(lostSettle)
	for pause := 50 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		kv, gerr := x.store.Get(ctx, key)
		switch {
		case gerr == nil && bytes.Equal(kv.Value, raw):
			return kv.ModifyIndex, nil
		case gerr == nil && kv.ModifyIndex != index,
			errors.Is(gerr, registry.ErrNotFound) && index != 0:
			return 0, fmt.Errorf("%s changed while a write to it was lost: %w", key, registry.ErrConflict)
		case gerr == nil, errors.Is(gerr, registry.ErrNotFound):
			// Not landed (or a read from before the election, which the
			// resend's compare settles): send it again.
			at, err := x.store.CAS(ctx, key, raw, index)
			switch {
			case err == nil:
				return at, nil
			case errors.Is(err, registry.ErrConflict), errors.Is(err, registry.ErrUnavailable):
				// Landed meanwhile, or lost again: read once more.
			default:
				return 0, err
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return 0, lost
		}
		wait(ctx, pause)
	}
}

// wait sleeps d, or until ctx ends.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
