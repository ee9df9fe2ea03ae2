package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Garbage collection defaults.
const (
	// DefaultRetention is how long a DELETED deployment stays readable
	// (its record and events) before the sweep removes it.
	DefaultRetention = 7 * 24 * time.Hour
	// DefaultMaxEvents bounds one deployment's event log; the sweep drops
	// the oldest beyond it.
	DefaultMaxEvents = 1000
	// DefaultGCInterval is how often the lease holder sweeps.
	DefaultGCInterval = 10 * time.Minute
)

// gcLockKey is the lease that makes one engine of those sharing a Store
// the collector.
const gcLockKey = "deploy/gc-lock"

// GCReport says what one sweep did.
type GCReport struct {
	// Deployments counts DELETED deployments removed (past retention).
	Deployments int
	// Events counts events removed (of those deployments, and the oldest
	// of logs over MaxEvents).
	Events int
	// Indexed counts deployments given the per-project list entry they
	// lacked (records written before the entry existed).
	Indexed int
}

func (e *Engine) retention() time.Duration {
	if e.Retention > 0 {
		return e.Retention
	}
	return DefaultRetention
}

func (e *Engine) maxEvents() int {
	if e.MaxEvents > 0 {
		return e.MaxEvents
	}
	return DefaultMaxEvents
}

// Collect is one garbage-collection sweep over every deployment: a
// DELETED deployment older than Retention loses its events, its template
// use and then its record; a live one whose event log grew past MaxEvents
// loses the oldest events. Only logs of deployments changed since since
// are counted (zero: all). It lists the whole deployment prefix, so it
// runs from the leased periodic sweep, never per request.
func (e *Engine) Collect(ctx context.Context, since time.Time) (GCReport, error) {
	var rep GCReport
	kvs, _, err := e.Store.List(ctx, recordPrefix)
	if err != nil {
		return rep, err
	}
	cutoff := e.now().Add(-e.retention())
	var errs []error
	for _, kv := range kvs {
		if ctx.Err() != nil {
			return rep, ctx.Err()
		}
		var d Deployment
		if err := json.Unmarshal(kv.Value, &d); err != nil {
			errs = append(errs, err)
			continue
		}
		switch {
		case d.Status == StatusDeleted && !d.UpdatedAt.After(cutoff):
			n, err := e.purge(ctx, &d, kv.ModifyIndex)
			rep.Events += n
			if err != nil {
				errs = append(errs, err)
				continue
			}
			rep.Deployments++
		default:
			added, err := e.ensureListed(ctx, &d)
			if added {
				rep.Indexed++
			}
			if err != nil {
				errs = append(errs, err)
			}
			if !since.IsZero() && d.UpdatedAt.Before(since) {
				continue
			}
			n, err := e.trimEvents(ctx, d.ID)
			rep.Events += n
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return rep, errors.Join(errs...)
}

// purge removes a deployment for good: events first, then the list entry
// and the record (only if unchanged since read), so a crash halfway leaves
// a record the next sweep finishes.
func (e *Engine) purge(ctx context.Context, d *Deployment, index uint64) (int, error) {
	kvs, _, err := e.Store.List(ctx, eventPrefix+d.ID+"/")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, kv := range kvs {
		if err := e.Store.Delete(ctx, kv.Key); err != nil {
			return n, err
		}
		n++
	}
	if e.Uses != nil {
		for _, s := range []*Spec{&d.Spec, d.Applied} {
			if s != nil && s.Template != "" {
				_ = e.Uses.ReleaseUse(ctx, d.Project, s.Template, "deployment:"+d.ID)
			}
		}
	}
	if err := e.Store.DeleteCAS(ctx, recordKey(d.ID), index); err != nil {
		return n, err
	}
	if err := e.Store.Delete(ctx, lockPrefix+d.ID); err != nil {
		return n, err
	}
	if d.Project != "" {
		return n, e.Store.Delete(ctx, projectKey(d.Project, d.ID))
	}
	return n, nil
}

// trimEvents drops the oldest events of a log longer than MaxEvents.
func (e *Engine) trimEvents(ctx context.Context, id string) (int, error) {
	kvs, _, err := e.Store.List(ctx, eventPrefix+id+"/")
	if err != nil {
		return 0, err
	}
	n := 0
	for _, kv := range kvs[:max(0, len(kvs)-e.maxEvents())] {
		if err := e.Store.Delete(ctx, kv.Key); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// ensureListed writes the deployment's per-project list entry if missing.
func (e *Engine) ensureListed(ctx context.Context, d *Deployment) (bool, error) {
	if d.Project == "" {
		return false, nil
	}
	_, err := e.Store.CAS(ctx, projectKey(d.Project, d.ID), []byte(d.ID), 0)
	if errors.Is(err, registry.ErrConflict) {
		return false, nil
	}
	return err == nil, err
}

// serveGC makes this engine the collector while it holds the GC lease:
// it sweeps at once and every GCInterval; another engine takes over
// within the lease TTL when this one dies. Engines without the lease try
// again each interval.
func (e *Engine) serveGC(ctx context.Context) {
	interval := e.GCInterval
	if interval <= 0 {
		interval = DefaultGCInterval
	}
	c := &collector{e: e}
	defer c.release(context.WithoutCancel(ctx))
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		swept, rep, err := c.tick(ctx)
		l := e.log().WithFields(logrus.Fields{"deployments": rep.Deployments, "events": rep.Events, "indexed": rep.Indexed})
		switch {
		case err != nil && ctx.Err() == nil:
			l.WithError(err).Warn("deployment garbage collection incomplete")
		case swept && rep != (GCReport{}):
			l.Info("deployment garbage collected")
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// collector is one engine's side of the GC lease.
type collector struct {
	e     *Engine
	lease registry.Lease
	// since: logs unchanged since the last complete sweep are not counted.
	since time.Time
}

// tick sweeps if this engine holds the GC lease or can take it, and
// reports whether it swept. A sweep stops when the lease is lost.
func (c *collector) tick(ctx context.Context) (bool, GCReport, error) {
	if c.lease != nil {
		select {
		case <-c.lease.Lost():
			c.lease, c.since = nil, time.Time{}
		default:
		}
	}
	if c.lease == nil {
		ttl := c.e.LeaseTTL
		if ttl <= 0 {
			ttl = registry.MinLockTTL
		}
		lease, err := c.e.Store.TryLock(ctx, gcLockKey, []byte(c.e.Holder), ttl)
		if errors.Is(err, registry.ErrLockHeld) {
			return false, GCReport{}, nil
		}
		if err != nil {
			return false, GCReport{}, err
		}
		c.lease = lease
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lost := c.lease.Lost()
	go func() {
		select {
		case <-lost:
			cancel()
		case <-ctx.Done():
		}
	}()
	// Logs changed while this sweep runs are counted again next time.
	start := c.e.now().Add(-time.Minute)
	rep, err := c.e.Collect(ctx, c.since)
	if err == nil {
		c.since = start
	}
	return true, rep, err
}

func (c *collector) release(ctx context.Context) {
	if c.lease != nil {
		_ = c.lease.Release(ctx)
		c.lease = nil
	}
}
