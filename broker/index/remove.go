package index

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// ClaimPrefix holds removal claims: index-removing/<kind>/<id> names the
// caller removing that entry (see Remove).
const ClaimPrefix = "index-removing/"

// claimStale is how old a claim must be before another remover takes it
// over: its holder died mid-remove (each of its steps is a Store call its
// retries bound far below this).
const claimStale = 3 * time.Minute

func claimKey(kind, id string) string { return ClaimPrefix + kind + "/" + id }

// claim is a removal claim's value: random, so reading it back tells its
// writer it holds the claim.
type claim struct {
	Op string    `json:"op"`
	At time.Time `json:"at"`
}

// Remove deletes the entry of e's kind and ID and returns it as it was
// stored (with its Charge), reporting whether this call removed it: of two
// callers deleting one resource at once (two DELETEs, a delete and a
// rollback), exactly one learns it did, and only that one frees the
// resource's quota. An entry already gone is not removed.
//
// The remover first claims the entry (a create-only key of its own), then
// deletes it by compare-and-delete. The claim is what makes a lost answer
// (a Consul leader dying under the write) decidable: a claim is settled
// by reading it back (our random bytes), and, holding it, a
// compare-and-delete whose answer was lost and whose key is gone was
// ours. Only the index gc (entries of a removed peer) deletes entries
// without a claim: its compare-and-delete racing a claimant's whose answer
// was lost is taken as the claimant's, and the charge is freed twice (the
// project gains it back; a removed peer's resource deleted by a user
// through a Consul election is that narrow).
func (x *Index) Remove(ctx context.Context, e Entry) (Entry, bool, error) {
	key := primaryKey(e.Kind, e.ID)
	cur, index, err := x.readEntry(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		// The project's copy may outlive a cut delete: take it too.
		return e, false, x.store.Delete(ctx, projectKey(e.Kind, e.Project, e.ID))
	}
	if err != nil {
		return e, false, err
	}
	held, err := x.claimOrWait(ctx, e.Kind, e.ID)
	if err != nil {
		return cur, false, err
	}
	if !held {
		return cur, false, nil // another caller removed it
	}
	release := func() { x.release(ctx, e.Kind, e.ID) }
	for {
		err := x.store.DeleteCAS(ctx, key, index)
		if errors.Is(err, registry.ErrUnavailable) {
			err = x.settleDelete(ctx, key, &index)
		}
		switch {
		case err == nil:
		case errors.Is(err, registry.ErrConflict), errors.Is(err, registry.ErrNotFound):
			// Rewritten (a charge changed) or removed by the gc since we
			// read it: read it again.
			if cur, index, err = x.readEntry(ctx, key); errors.Is(err, registry.ErrNotFound) {
				release()
				return cur, false, nil
			} else if err != nil {
				release()
				return cur, false, err
			}
			continue
		default:
			release()
			return cur, false, fmt.Errorf("index %s %s: %w", e.Kind, e.ID, err)
		}
		break
	}
	x.mirror.Deleted(key, index)
	defer release()
	if err := x.store.Delete(context.WithoutCancel(ctx), projectKey(cur.Kind, cur.Project, cur.ID)); err != nil {
		return cur, true, fmt.Errorf("index %s %s: %w", e.Kind, e.ID, err)
	}
	return cur, true, nil
}

// readEntry reads and decodes the entry at key.
func (x *Index) readEntry(ctx context.Context, key string) (Entry, uint64, error) {
	kv, err := x.store.Get(ctx, key)
	if err != nil {
		return Entry{}, 0, err
	}
	var cur Entry
	if err := json.Unmarshal(kv.Value, &cur); err != nil {
		return Entry{}, 0, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	return cur, kv.ModifyIndex, nil
}

// claimWait bounds how long a remover waits for another caller's claim
// on the same entry to end before it answers "try again".
const claimWait = 45 * time.Second

// claimOrWait takes the removal claim of an entry. While another caller
// holds it, it waits for that caller to finish: it reports false once the
// entry is gone (the other removed it), and tries again when the claim
// goes without the entry (the other failed). A claim its holder left
// (stale) is taken over. Waiting out claimWait is ErrUnavailable: the
// caller cannot tell the entry removed.
func (x *Index) claimOrWait(ctx context.Context, kind, id string) (bool, error) {
	key := claimKey(kind, id)
	mine, err := json.Marshal(claim{Op: rand.Text(), At: time.Now().UTC()})
	if err != nil {
		return false, err
	}
	deadline := time.Now().Add(claimWait)
	for pause := 50 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		_, err = x.casOwned(ctx, key, mine, 0)
		if !errors.Is(err, registry.ErrConflict) {
			return err == nil, err
		}
		kv, err := x.store.Get(ctx, key)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			// Released since: removed, or given up.
		case err != nil:
			return false, err
		default:
			var theirs claim
			if json.Unmarshal(kv.Value, &theirs) != nil || time.Since(theirs.At) >= claimStale {
				switch _, err := x.casOwned(ctx, key, mine, kv.ModifyIndex); {
				case err == nil:
					return true, nil
				case !errors.Is(err, registry.ErrConflict):
					return false, err
				}
			}
		}
		switch _, err := x.store.Get(ctx, primaryKey(kind, id)); {
		case errors.Is(err, registry.ErrNotFound):
			return false, nil // the other caller removed it
		case err != nil:
			return false, err
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return false, fmt.Errorf("%s %s is being removed by another caller: %w", kind, id, registry.ErrUnavailable)
		}
		wait(ctx, pause)
	}
}

// release drops this remover's claim, tried again through a short Store
// outage: a claim left behind holds off other removers until it is stale.
func (x *Index) release(ctx context.Context, kind, id string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lostSettle)
	defer cancel()
	for pause := 50 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		err := x.store.Delete(ctx, claimKey(kind, id))
		if err == nil || ctx.Err() != nil {
			return
		}
		wait(ctx, pause)
	}
}

// settleDelete settles a compare-and-delete of key at *index whose answer
// was lost, by reading the key back: still there at *index, it is sent
// again; gone, it was ours (we hold the claim); there at another index, it
// was rewritten, a conflict. It gives up (ErrUnavailable) after
// lostSettle.
func (x *Index) settleDelete(ctx context.Context, key string, index *uint64) error {
	deadline := time.Now().Add(lostSettle)
	for pause := 50 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		kv, err := x.store.Get(ctx, key)
		switch {
		case errors.Is(err, registry.ErrNotFound):
			return nil
		case err == nil && kv.ModifyIndex != *index:
			return fmt.Errorf("%s rewritten: %w", key, registry.ErrConflict)
		case err == nil:
			// Not landed (or a read from before the election): again.
			switch derr := x.store.DeleteCAS(ctx, key, *index); {
			case derr == nil:
				return nil
			case errors.Is(derr, registry.ErrConflict), errors.Is(derr, registry.ErrNotFound), errors.Is(derr, registry.ErrUnavailable):
				// The first copy may have landed meanwhile (still queued
				// when the key was read): read again.
			default:
				return derr
			}
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("deleting %s: its answer was lost: %w", key, registry.ErrUnavailable)
		}
		wait(ctx, pause)
	}
}

// StaleClaims returns the judge of a gc.Orphans over ClaimPrefix: claims
// whose entry is gone (their remover died after deleting it, before
// dropping the claim). A claim whose entry is still there stays for the
// next remover to take over.
func (x *Index) StaleClaims(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	var out []registry.KV
	for _, kv := range kvs {
		kind, id, ok := strings.Cut(strings.TrimPrefix(kv.Key, ClaimPrefix), "/")
		if !ok {
			out = append(out, kv) // not a claim this index writes
			continue
		}
		switch _, err := x.Get(ctx, kind, id, ""); {
		case errors.Is(err, ErrNotFound):
			out = append(out, kv)
		case err != nil:
			return nil, err
		}
	}
	return out, nil
}
