package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// Garbage collection defaults.
const (
	// DefaultRetention is how long a DELETED deployment stays readable
	// (its record and events) before collection removes it.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultMaxEvents bounds one deployment's event log; collection
	// drops the oldest beyond it.
	DefaultMaxEvents = 1000
)

// Collector is the deployments' garbage collector (a broker/gc
// Collector, run on one broker at a time under the gc lease): a DELETED
// deployment past Retention loses its events, its template use, its
// project list entry and its record; a live one whose event log grew past
// MaxEvents loses its oldest events.
type Collector struct {
	e         *Engine
	retention time.Duration
	maxEvents int
	// since: logs of deployments unchanged since the last complete pass
	// are not listed again.
	since time.Time
}

// Collector returns the engine's garbage collector; zero settings take
// the defaults.
func (e *Engine) Collector(retention time.Duration, maxEvents int) *Collector {
	if retention <= 0 {
		retention = DefaultRetention
	}
	if maxEvents <= 0 {
		maxEvents = DefaultMaxEvents
	}
	return &Collector{e: e, retention: retention, maxEvents: maxEvents}
}

// Name implements gc.Collector.
func (c *Collector) Name() string { return "deployments" }

// Collect implements gc.Collector: it removes what is past retention at
// now and returns how many records (deployments and events) went. It
// lists the deployment prefix once a pass (never per request), and each
// log only of deployments changed since the previous pass.
func (c *Collector) Collect(ctx context.Context, now time.Time) (int, error) {
	kvs, _, err := c.e.Store.List(ctx, recordPrefix)
	if err != nil {
		return 0, err
	}
	cutoff := now.Add(-c.retention)
	removed := 0
	var errs []error
	for _, kv := range kvs {
		if ctx.Err() != nil {
			return removed, ctx.Err()
		}
		var d Deployment
		if err := json.Unmarshal(kv.Value, &d); err != nil {
			errs = append(errs, err)
			continue
		}
		var n int
		switch {
		case d.Status == StatusDeleted && !d.UpdatedAt.After(cutoff):
			n, err = c.purge(ctx, &d, kv.ModifyIndex)
		case c.since.IsZero() || !d.UpdatedAt.Before(c.since):
			n, err = c.trimEvents(ctx, d.ID)
		}
		removed += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return removed, err
	}
	// Logs written while this pass ran are looked at again next time.
	c.since = now.Add(-time.Minute)
	return removed, nil
}

// purge removes a deployment for good: events first, then its template
// use, record (only if unchanged since read), lock and list entry, so a
// pass cut short leaves a record the next one finishes.
func (c *Collector) purge(ctx context.Context, d *Deployment, index uint64) (int, error) {
	kvs, _, err := c.e.Store.List(ctx, eventPrefix+d.ID+"/")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, kv := range kvs {
		if err := c.e.Store.Delete(ctx, kv.Key); err != nil {
			return n, err
		}
		n++
	}
	if c.e.Uses != nil {
		for _, s := range []*Spec{&d.Spec, d.Applied} {
			if s != nil && s.Template != "" {
				_ = c.e.Uses.ReleaseUse(ctx, d.Project, s.Template, "deployment:"+d.ID)
			}
		}
	}
	if err := c.e.Store.DeleteCAS(ctx, recordKey(d.ID), index); err != nil {
		return n, err
	}
	c.e.Records.deleted(d.ID)
	n++
	if err := c.e.Store.Delete(ctx, lockPrefix+d.ID); err != nil {
		return n, err
	}
	if d.Project != "" {
		return n, c.e.Store.Delete(ctx, projectKey(d.Project, d.ID))
	}
	return n, nil
}

// trimEvents drops the oldest events of a log longer than maxEvents.
func (c *Collector) trimEvents(ctx context.Context, id string) (int, error) {
	kvs, _, err := c.e.Store.List(ctx, eventPrefix+id+"/")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, kv := range kvs[:max(0, len(kvs)-c.maxEvents)] {
		if err := c.e.Store.Delete(ctx, kv.Key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ensureListed writes the deployment's per-project list entry if missing
// (records written before the entries existed).
func (e *Engine) ensureListed(ctx context.Context, d *Deployment) error {
	if d.Project == "" {
		return nil
	}
	_, err := e.Store.CAS(ctx, projectKey(d.Project, d.ID), []byte(d.ID), 0)
	if errors.Is(err, registry.ErrConflict) {
		return nil
	}
	return err
}
