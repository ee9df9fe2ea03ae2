package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// closeGrace is how long after its end an hour is taken as closed: no
// replica (allowing for clock skew) still writes into it, so the count the
// collector keeps in its marker stays true.
const closeGrace = time.Minute

// hourMarker is the value of an hour's marker key. Records is set by the
// collector once the hour is closed: later passes trust it instead of
// reading the bucket, so a pass reads only the open hours and the ones it
// collects from.
type hourMarker struct {
	Records *int `json:"records,omitempty"`
}

// Name implements the broker's gc.Collector.
func (ds *Decisions) Name() string { return "policy-decisions" }

// Collect removes the records (and their index keys) older than the age
// bound, and the oldest beyond the count bound, and returns how many
// records it removed. It walks the hour markers newest first, keeping
// count: an hour that ended before the age cutoff, or that holds records
// beyond the count bound, is read and collected; a closed hour within both
// bounds is counted from its marker without being read. Two collectors at
// once would only repeat deletes, but the broker runs one at a time.
func (ds *Decisions) Collect(ctx context.Context, now time.Time) (int, error) {
	removed, err := ds.collectLegacy(ctx)
	if err != nil {
		return removed, err
	}
	hours, _, err := ds.store.List(ctx, hoursPrefix)
	if err != nil {
		return removed, err
	}
	cutoff := now.Add(-ds.maxAge)
	kept := 0
	for _, h := range slices.Backward(hours) {
		hour := strings.TrimPrefix(h.Key, hoursPrefix)
		start, err := time.Parse(hourKey, hour)
		if err != nil {
			continue // not a marker this code writes
		}
		var m hourMarker
		_ = json.Unmarshal(h.Value, &m) // an unreadable marker is recounted
		closed := start.Add(time.Hour + closeGrace).Before(now)
		expired := !start.Add(time.Hour).After(cutoff)
		if closed && !expired && m.Records != nil && kept+*m.Records <= ds.maxRecords {
			kept += *m.Records
			continue
		}
		n, live, err := ds.collectHour(ctx, hour, cutoff, ds.maxRecords-kept)
		removed += n
		if err != nil {
			return removed, err
		}
		kept += live
		if !closed {
			continue
		}
		if live == 0 {
			err = ds.store.Delete(ctx, h.Key)
		} else if m.Records == nil || *m.Records != live {
			raw, _ := json.Marshal(hourMarker{Records: &live})
			_, err = ds.store.CAS(ctx, h.Key, raw, h.ModifyIndex)
			if errors.Is(err, registry.ErrConflict) {
				err = nil // a late write: the next pass counts again
			}
		}
		if err != nil {
			return removed, fmt.Errorf("decision hour %s: %w", hour, err)
		}
	}
	return removed, nil
}

// collectHour removes the hour's records older than cutoff and all but the
// newest room of the rest; it returns how many it removed and kept. Index
// keys go before their record, so a pass cut short leaves no index key
// without its record for long: the next pass finds the record again.
func (ds *Decisions) collectHour(ctx context.Context, hour string, cutoff time.Time, room int) (removed, live int, err error) {
	kvs, _, err := ds.store.List(ctx, recordsPrefix+hour+"/")
	if err != nil {
		return 0, 0, err
	}
	for _, kv := range slices.Backward(kvs) {
		at, ok := entryTime(kv.Key)
		if ok && !at.Before(cutoff) && live < room {
			live++
			continue
		}
		if err := ds.remove(ctx, kv); err != nil {
			return removed, live, err
		}
		removed++
	}
	return removed, live, nil
}

// remove deletes a record and its index keys.
func (ds *Decisions) remove(ctx context.Context, kv registry.KV) error {
	var r Record
	if json.Unmarshal(kv.Value, &r) == nil {
		for _, ix := range indexKeys(r) {
			if err := ds.store.Delete(ctx, ix); err != nil {
				return err
			}
		}
	}
	return ds.store.Delete(ctx, kv.Key)
}

// collectLegacy removes, once per process, what the layout before hour
// buckets left: every record under one prefix, and its index keys.
func (ds *Decisions) collectLegacy(ctx context.Context) (int, error) {
	if ds.legacyGone.Load() {
		return 0, nil
	}
	removed := 0
	for _, prefix := range []string{legacyIndex, legacyRecords} {
		kvs, _, err := ds.store.List(ctx, prefix)
		if err != nil {
			return removed, err
		}
		for _, kv := range kvs {
			if err := ds.store.Delete(ctx, kv.Key); err != nil {
				return removed, err
			}
			if prefix == legacyRecords {
				removed++
			}
		}
	}
	ds.legacyGone.Store(true)
	return removed, nil
}
