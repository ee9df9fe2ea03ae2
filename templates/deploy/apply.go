package deploy

import (
	"time"

	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// MetaAttempt marks a resource with the attempt that created it, so a
// rollback sweep finds what the attempt made even when no step recorded it.
const MetaAttempt = "cloudmux_attempt"

func (r *run) snapshot() *Deployment {
	var c Deployment
	r.view(func(d *Deployment) {
		c = *d
		c.Resources = maps.Clone(d.Resources)
		c.Retired = maps.Clone(d.Retired)
	})
	return &c
}

// apply plans the deployment's spec against what exists and carries the
// plan out; a failure rolls back (or is kept, when asked).
func (r *run) apply(outer context.Context) error {
	d := r.snapshot()
	// The attempt's work runs under its deadline; failing and rolling
	// back when it passes run under outer.
	ctx, stop := withDeadline(outer, d.Deadline)
	defer stop()
	plan, err := r.e.plan(ctx, d, d.Spec, false)
	if err != nil {
		if timedOut(outer, ctx) {
			return r.fail(outer, errTimedOut)
		}
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		if d.Status == StatusApplying && (errors.Is(err, ErrPlacement) || errors.Is(err, resource.ErrUnavailable)) {
			// Resuming while peers are not back yet: not the template's
			// fault. The deployment stays APPLYING for the next resume.
			r.event(ctx, Event{Action: "plan", Status: "WAITING", Message: "resume postponed: " + err.Error()})
			return fmt.Errorf("%w: %v", errRetryLater, err)
		}
		return r.settle(ctx, func(d *Deployment) { d.Status, d.Error = StatusFailed, "plan: "+err.Error() },
			Event{Action: "plan", Status: "FAILED", Message: err.Error()})
	}
	r.render = plan.render
	if err := r.save(ctx, func(d *Deployment) {
		if d.Goal == "apply" { // not when a cancel turned it into a rollback meanwhile
			d.Status = StatusApplying
		}
	}); err != nil {
		return err
	}
	counts := plan.Counts()
	r.event(ctx, Event{Action: "apply", Status: "IN_PROGRESS", Message: fmt.Sprintf("attempt %d: %d to create, %d to update, %d to replace, %d to delete",
		d.Attempt, counts[ActCreate], counts[ActUpdate], counts[ActReplace], counts[ActDelete])})
	var keys []string
	deps := map[string][]string{}
	var removals []string
	for _, st := range plan.Steps {
		switch st.Action {
		case ActCreate, ActReplace, ActUpdate:
			keys = append(keys, st.Key)
			deps[st.Key] = st.Deps
		case ActDelete:
			removals = append(removals, st.Key)
		}
	}
	if err := dag(ctx, keys, deps, r.step, false); err != nil {
		if timedOut(outer, ctx) {
			return r.fail(outer, errTimedOut)
		}
		if c := context.Cause(ctx); c != nil {
			return c
		}
		if errors.Is(err, errGoalChanged) {
			return errGoalChanged
		}
		return r.fail(outer, err)
	}
	// The attempt's work is done: cleanup is not bound by its deadline.
	ctx = outer
	// Success: what was superseded or dropped goes now.
	r.view(func(d *Deployment) {
		for k := range d.Retired {
			removals = append(removals, retiredPrefix+k)
		}
	})
	if err := r.remove(ctx, removals); err != nil {
		if c := context.Cause(ctx); c != nil {
			return c
		}
		return r.settle(ctx, func(d *Deployment) { d.Status, d.Error = StatusFailed, "cleanup: "+err.Error() },
			Event{Action: "apply", Status: "FAILED", Message: "cleanup: " + err.Error()})
	}
	outputs := r.outputs(ctx)
	var old *Spec
	if err := r.settle(ctx, func(d *Deployment) {
		old = d.Applied
		spec := d.Spec
		d.Status, d.Error, d.Outputs, d.Applied = StatusComplete, "", outputs, &spec
	}, Event{Action: "complete", Status: string(StatusComplete)}); err != nil {
		return err
	}
	if r.e.Uses != nil && old != nil && old.Template != "" && old.Template != d.Spec.Template {
		_ = r.e.Uses.ReleaseUse(ctx, d.Project, old.Template, "deployment:"+r.id)
	}
	return nil
}

// fail ends a failed attempt: kept as FAILED when the spec asks, else
// rolled back.
func (r *run) fail(ctx context.Context, cause error) error {
	msg := cause.Error()
	keep := false
	r.view(func(d *Deployment) { keep = d.Spec.KeepOnFailure })
	if keep {
		return r.settle(ctx, func(d *Deployment) { d.Status, d.Error = StatusFailed, msg },
			Event{Action: "failed", Status: string(StatusFailed), Message: msg + " (kept, as asked)"})
	}
	r.event(ctx, Event{Action: "rollback", Status: "IN_PROGRESS", Message: msg})
	if err := r.save(ctx, func(d *Deployment) { d.Status, d.Error = StatusRollingBack, msg }); err != nil {
		return err
	}
	return r.rollback(ctx, msg)
}

// rollback removes what the current attempt created, on every peer,
// sweeps the peers for anything tagged with the attempt that no step
// recorded, and restores what a replace retired.
func (r *run) rollback(ctx context.Context, cause string) error {
	var keys []string
	var attempt int
	r.view(func(d *Deployment) {
		attempt = d.Attempt
		for k, res := range d.Resources {
			if res.Attempt == attempt {
				keys = append(keys, k)
			}
		}
	})
	err := r.remove(ctx, keys)
	if err == nil {
		err = r.sweep(ctx, map[string]string{MetaDeployment: r.id, MetaAttempt: strconv.Itoa(attempt)})
	}
	if c := context.Cause(ctx); c != nil {
		return c
	}
	if err != nil {
		return r.settle(ctx, func(d *Deployment) {
			d.Status, d.Error = StatusFailed, fmt.Sprintf("%s; rollback incomplete: %v", cause, err)
		}, Event{Action: "rollback", Status: "FAILED", Message: err.Error()})
	}
	return r.settle(ctx, func(d *Deployment) {
		for k, old := range d.Retired {
			d.Resources[k] = old
		}
		d.Retired = map[string]*Resource{}
		d.Status, d.Error = StatusFailed, "rolled back: "+cause
	}, Event{Action: "rollback", Status: "COMPLETE", Message: cause})
}

// deleteAll removes every resource of the deployment, then sweeps the
// peers for anything still tagged with it.
func (r *run) deleteAll(ctx context.Context) error {
	var keys []string
	r.view(func(d *Deployment) {
		keys = slices.Collect(maps.Keys(d.Resources))
		for k := range d.Retired {
			keys = append(keys, retiredPrefix+k)
		}
	})
	r.event(ctx, Event{Action: "delete", Status: "IN_PROGRESS", Message: fmt.Sprintf("%d resources", len(keys))})
	err := r.remove(ctx, keys)
	if err == nil {
		err = r.sweep(ctx, map[string]string{MetaDeployment: r.id})
	}
	if c := context.Cause(ctx); c != nil {
		return c
	}
	if errors.Is(err, errGoalChanged) {
		return err
	}
	if err != nil {
		return r.settle(ctx, func(d *Deployment) { d.Status, d.Error = StatusFailed, "delete: "+err.Error() },
			Event{Action: "delete", Status: "FAILED", Message: err.Error()})
	}
	var applied *Spec
	if err := r.settle(ctx, func(d *Deployment) {
		applied = d.Applied
		d.Status, d.Outputs, d.Error = StatusDeleted, nil, ""
	}, Event{Action: "deleted", Status: string(StatusDeleted)}); err != nil {
		return err
	}
	if r.e.Uses != nil {
		d := r.snapshot()
		for _, s := range []*Spec{&d.Spec, applied} {
			if s != nil && s.Template != "" {
				_ = r.e.Uses.ReleaseUse(ctx, d.Project, s.Template, "deployment:"+r.id)
			}
		}
	}
	return nil
}

// step carries out one create, replace or update.
func (r *run) step(ctx context.Context, key string) (err error) {
	st := r.render.instances[key]
	start := time.Now()
	defer func() { r.e.Metrics.observeStep(string(st.Kind), string(st.Action), err, time.Since(start)) }()
	if st.Action == ActUpdate {
		return r.update(ctx, st)
	}
	return r.create(ctx, st)
}

// caller is the identity the deployment acts with (see resource.Caller).
func (r *run) caller() resource.Caller {
	var c resource.Caller
	r.view(func(d *Deployment) { c = resource.Caller{Project: d.Project, User: d.User} })
	return c
}

func (r *run) create(ctx context.Context, st *Step) error {
	resumed := false
	if err := r.save(ctx, func(d *Deployment) {
		cur := d.Resources[st.Key]
		if cur != nil && st.Action == ActReplace && cur.Attempt != d.Attempt {
			d.Retired[st.Key] = cur
			cur = nil
		}
		if cur != nil && cur.Status == ResReady && cur.Attempt != d.Attempt {
			cur = nil // a leftover record; the services are asked below
		}
		if cur == nil {
			cur = &Resource{Key: st.Key}
			d.Resources[st.Key] = cur
		} else {
			resumed = true
		}
		cur.Resource, cur.Index, cur.Kind, cur.PeerID, cur.PeerName = st.Resource, st.Index, st.Kind, st.PeerID, st.PeerName
		cur.Props, cur.Deps, cur.Attempt, cur.Error, cur.Placement = st.Props, st.Deps, d.Attempt, "", st.Placement
		if cur.Status != ResCreated || cur.ID == "" {
			cur.Status = ResCreating
		}
	}); err != nil {
		return err
	}
	res := r.resource(st.Key)
	var retiredID string
	if old := r.resource(retiredPrefix + st.Key); old != nil && old.PeerID == st.PeerID {
		retiredID = old.ID
	}
	action := string(st.Action)
	r.event(ctx, Event{Resource: st.Key, Peer: st.PeerName, Action: action, Status: "IN_PROGRESS"})
	failed := func(err error) error {
		if ctx.Err() == nil {
			_ = r.save(ctx, func(d *Deployment) {
				if cur := d.Resources[st.Key]; cur != nil {
					cur.Status, cur.Error = ResFailed, err.Error()
				}
			})
			r.event(ctx, Event{Resource: st.Key, Peer: st.PeerName, Action: action, Status: "FAILED", Message: err.Error()})
		}
		return err
	}
	pv, err := r.scope(st).Eval(r.render.tpl.Resources[st.Resource].Properties)
	if err != nil {
		return failed(fmt.Errorf("properties: %w", err))
	}
	p := props(asMap(pv))
	c := r.caller()
	marks := map[string]string{MetaDeployment: r.id, MetaResource: st.Key, MetaAttempt: strconv.Itoa(res.Attempt)}
	id, _, err := r.adopt(ctx, c, res, retiredID, resumed, p)
	if err != nil {
		return failed(err)
	}
	var extra map[string]any
	if id == "" {
		var defName string
		r.view(func(d *Deployment) { defName = sanitize(d.Name + "-" + st.Key) })
		err = r.e.call(ctx, st.PeerID, func() error {
			made, err := r.createVia(ctx, c, res, p, marks, defName)
			id, extra = made.ID, made.Attrs
			return err
		})
		if err != nil {
			return failed(err)
		}
	} else {
		r.event(ctx, Event{Resource: st.Key, Peer: st.PeerName, Action: "adopt", Status: "IN_PROGRESS", Message: "found " + id})
		action = "adopt"
	}
	if res.Kind == templates.KindVolumeAttachment {
		// The service's answer names the volume by broker ID.
		extra = merge2(map[string]any{"server_id": p.str("server"), "volume_id": p.str("volume")}, extra)
	}
	if err := r.save(ctx, func(d *Deployment) {
		cur := d.Resources[st.Key]
		cur.ID, cur.Status = id, ResCreated
		if len(extra) > 0 {
			cur.Attrs = merge2(cur.Attrs, extra)
		}
	}); err != nil {
		return err
	}
	res = r.resource(st.Key)
	var attrs map[string]any
	err = r.e.poll(ctx, st.Key, func() (bool, error) {
		var done bool
		err := r.e.call(ctx, st.PeerID, func() error {
			var err error
			done, attrs, err = r.settled(ctx, c, res)
			return err
		})
		return done, err
	})
	if err != nil {
		return failed(err)
	}
	if err := r.save(ctx, func(d *Deployment) {
		cur := d.Resources[st.Key]
		cur.Status, cur.Attrs = ResReady, merge2(cur.Attrs, attrs)
	}); err != nil {
		return err
	}
	r.event(ctx, Event{Resource: st.Key, Peer: st.PeerName, Action: action, Status: "COMPLETE", Message: id})
	return nil
}

func merge2(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	if out == nil {
		out = map[string]any{}
	}
	maps.Copy(out, b)
	return out
}

// adopt finds a resource an interrupted step made: by its recorded ID,
// else by its marks (excluding the instance a replace retires). Twins a
// retried create left are deleted. A keypair has no marks: it is adopted
// by name (the user's keypairs are the user's own); an attachment by its
// server and volume.
func (r *run) adopt(ctx context.Context, c resource.Caller, res *Resource, retiredID string, resumed bool, p props) (string, bool, error) {
	if !resumed {
		// The CREATING record was written just now, before any call for
		// it: nothing can exist yet.
		return "", false, nil
	}
	if res.ID != "" {
		g, err := r.gone(ctx, c, res, res.ID)
		if err != nil {
			return "", false, err
		}
		if !g {
			return res.ID, true, nil
		}
	}
	switch res.Kind {
	case templates.KindKeypair:
		if _, err := r.e.Resources.Get(ctx, c, templates.KindKeypair, p.str("name")); err == nil {
			return p.str("name"), true, nil
		}
		return "", false, nil
	case templates.KindVolumeAttachment:
		if st, err := r.e.Resources.Attached(ctx, c, p.str("server"), p.str("volume")); err == nil {
			if id, ok := st.Attrs["volume_id"].(string); ok {
				return id, true, nil
			}
			return p.str("volume"), true, nil
		}
		return "", false, nil
	}
	var ids []string
	err := r.e.call(ctx, res.PeerID, func() error {
		var err error
		ids, err = r.tagged(ctx, c, res.Kind, map[string]string{MetaDeployment: r.id, MetaResource: res.Key})
		return err
	})
	if err != nil {
		return "", false, err
	}
	ids = slices.DeleteFunc(ids, func(id string) bool { return id == retiredID })
	if len(ids) == 0 {
		return "", false, nil
	}
	for _, twin := range ids[1:] {
		r.event(ctx, Event{Resource: res.Key, Peer: res.PeerName, Action: "delete", Status: "IN_PROGRESS", Message: "twin " + twin})
		if err := r.destroy(ctx, c, res, twin); err != nil {
			return "", false, err
		}
	}
	return ids[0], true, nil
}

// update grows a volume in place (the only in-place change peers offer).
func (r *run) update(ctx context.Context, st *Step) error {
	if err := r.save(ctx, func(d *Deployment) { d.Resources[st.Key].Status = ResUpdating }); err != nil {
		return err
	}
	res := r.resource(st.Key)
	r.event(ctx, Event{Resource: st.Key, Peer: st.PeerName, Action: "update", Status: "IN_PROGRESS", Message: strings.Join(st.Changes, ", ")})
	pv, err := r.scope(st).Eval(r.render.tpl.Resources[st.Resource].Properties)
	if err != nil {
		return err
	}
	size := props(asMap(pv)).num("size")
	c := r.caller()
	var attrs map[string]any
	err = r.e.call(ctx, st.PeerID, func() error {
		_, a, err := r.settled(ctx, c, res)
		if err != nil || a["size"] == int64(size) {
			return err
		}
		return r.e.Resources.GrowVolume(ctx, c, res.ID, size)
	})
	if err == nil {
		err = r.e.poll(ctx, st.Key, func() (bool, error) {
			done, a, err := r.settled(ctx, c, res)
			attrs = a
			return done && a["size"] == int64(size), err
		})
	}
	if err != nil {
		r.event(ctx, Event{Resource: st.Key, Peer: st.PeerName, Action: "update", Status: "FAILED", Message: err.Error()})
		return err
	}
	if err := r.save(ctx, func(d *Deployment) {
		cur := d.Resources[st.Key]
		cur.Status, cur.Props, cur.Attrs = ResReady, st.Props, merge2(cur.Attrs, attrs)
	}); err != nil {
		return err
	}
	r.event(ctx, Event{Resource: st.Key, Peer: st.PeerName, Action: "update", Status: "COMPLETE"})
	return nil
}

// remove deletes instances (keys of Resources, or "retired:" keys),
// dependents first, in parallel; every one is tried.
func (r *run) remove(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	var all []*Resource
	byKey := map[string]string{} // instance key -> removal key
	r.view(func(d *Deployment) {
		for _, k := range keys {
			if res := lookup(d, k); res != nil {
				c := *res
				c.Key = k
				all = append(all, &c)
				byKey[k] = k
			}
		}
	})
	// Reverse dependencies: k waits for everything that depends on it.
	// Retired instances depend on the retired (or live) copies they name.
	rev := map[string][]string{}
	for _, res := range all {
		for _, d := range res.Deps {
			for _, cand := range []string{d, retiredPrefix + d} {
				if _, ok := byKey[cand]; ok {
					rev[cand] = append(rev[cand], res.Key)
				}
			}
		}
	}
	return dag(ctx, keys, rev, r.removeOne, true)
}

func (r *run) removeOne(ctx context.Context, key string) (err error) {
	res := r.resource(key)
	if res == nil {
		return nil
	}
	start := time.Now()
	defer func() { r.e.Metrics.observeStep(string(res.Kind), "delete", err, time.Since(start)) }()
	if err := r.save(ctx, func(d *Deployment) {
		if cur := lookup(d, key); cur != nil {
			cur.Status = ResDeleting
		}
	}); err != nil {
		return err
	}
	r.event(ctx, Event{Resource: key, Peer: res.PeerName, Action: "delete", Status: "IN_PROGRESS"})
	c := r.caller()
	ids := []string{res.ID}
	if res.ID == "" {
		found, err := r.tagged(ctx, c, res.Kind, map[string]string{MetaDeployment: r.id, MetaResource: res.Key})
		if err != nil {
			return err
		}
		ids = found
		if res.Kind == templates.KindKeypair {
			// Keypairs carry no marks: one the interrupted step may have
			// made is found by its name, among the user's.
			var p struct {
				Name string `json:"name"`
			}
			if json.Unmarshal([]byte(res.Props), &p) == nil && p.Name != "" && !isSymbol(p.Name) {
				if _, err := r.e.Resources.Get(ctx, c, templates.KindKeypair, p.Name); err == nil {
					ids = append(ids, p.Name)
				}
			}
		}
	}
	for _, id := range ids {
		if err := r.destroy(ctx, c, res, id); err != nil {
			r.event(ctx, Event{Resource: key, Peer: res.PeerName, Action: "delete", Status: "FAILED", Message: err.Error()})
			return err
		}
	}
	if err := r.save(ctx, func(d *Deployment) {
		if k, ok := cutPrefix(key, retiredPrefix); ok {
			delete(d.Retired, k)
		} else {
			delete(d.Resources, key)
		}
	}); err != nil {
		return err
	}
	r.event(ctx, Event{Resource: key, Peer: res.PeerName, Action: "delete", Status: "COMPLETE"})
	return nil
}

// destroy deletes one resource and waits until the service no longer
// has it. A conflict (a network whose ports a deleting server still
// holds) is retried until the peer lets go.
func (r *run) destroy(ctx context.Context, c resource.Caller, res *Resource, id string) error {
	started := false
	return r.e.poll(ctx, "delete "+res.Key, func() (bool, error) {
		var done bool
		err := r.e.call(ctx, res.PeerID, func() error {
			if !started {
				err := r.startDelete(ctx, c, res, id)
				if errors.Is(err, resource.ErrConflict) {
					return nil // retry on the next poll
				}
				if err != nil {
					return err
				}
				started = true
			}
			g, err := r.gone(ctx, c, res, id)
			done = g
			return err
		})
		return done, err
	})
}

// sweep deletes whatever the deployment's project still holds with these
// marks, on every peer (the services look on all of them).
func (r *run) sweep(ctx context.Context, tags map[string]string) error {
	var errs []error
	c := r.caller()
	for _, kind := range sweepOrder {
		ids, err := r.tagged(ctx, c, kind, tags)
		if err != nil {
			errs = append(errs, fmt.Errorf("list %s: %w", kind, err))
			continue
		}
		for _, id := range ids {
			res := &Resource{Key: "sweep", Kind: kind}
			r.event(ctx, Event{Resource: string(kind) + " " + id, Action: "delete", Status: "IN_PROGRESS", Message: "untracked, marked with this deployment"})
			if err := r.destroy(ctx, c, res, id); err != nil {
				errs = append(errs, fmt.Errorf("delete %s %s: %w", kind, id, err))
			}
		}
	}
	return errors.Join(errs...)
}

// scope resolves references for an instance on its peer.
func (r *run) scope(st *Step) *templates.Scope {
	return &templates.Scope{Params: r.render.params, Conditions: r.render.conditions, Index: st.Index,
		Resource: func(name string) (any, error) { return r.refValue(name, st.PeerID, "id") },
		Attr: func(name, attr string, path []any) (any, error) {
			v, err := r.refValue(name, st.PeerID, attr)
			if err != nil {
				return nil, err
			}
			return templates.Dig(v, path)
		}}
}

// refValue reads an attribute ("id" for get_resource) of resource name,
// as seen from peerID: the copy on that peer for a per-peer resource (the
// first copy when peerID is ""), a list for a counted one.
func (r *run) refValue(name, peerID, attr string) (any, error) {
	keys := r.render.byName[name]
	res := r.render.tpl.Resources[name]
	if res == nil {
		return nil, fmt.Errorf("no resource %q", name)
	}
	if len(keys) == 0 {
		if res.Count != nil {
			return []any{}, nil
		}
		return nil, fmt.Errorf("%w: %s has no instance", templates.ErrUnresolved, name)
	}
	if replicated(res.Kind) {
		pick := keys[0]
		for _, k := range keys {
			if r.render.instances[k].PeerID == peerID {
				pick = k
			}
		}
		keys = []string{pick}
	}
	var vals []any
	for _, k := range keys {
		inst := r.resource(k)
		if inst == nil || inst.ID == "" {
			return nil, fmt.Errorf("%w: %s", templates.ErrUnresolved, k)
		}
		switch attr {
		case "id":
			vals = append(vals, inst.ID)
		case "peer":
			vals = append(vals, inst.PeerName)
		default:
			vals = append(vals, inst.Attrs[attr])
		}
	}
	if res.Count != nil {
		return vals, nil
	}
	return vals[0], nil
}

// outputs evaluates the template's outputs; one that fails reads as its
// error, as Heat's output_error.
func (r *run) outputs(ctx context.Context) map[string]any {
	out := map[string]any{}
	s := r.scope(&Step{Index: -1})
	for name, o := range r.render.tpl.Outputs {
		if on, err := s.Condition(o.Condition); err != nil || !on {
			continue
		}
		v, err := s.Eval(o.Value)
		if err != nil {
			v = map[string]any{"error": err.Error()}
			r.event(ctx, Event{Action: "output", Status: "FAILED", Message: name + ": " + err.Error()})
		}
		out[name] = v
	}
	return out
}

// sanitize makes a peer resource name from a deployment and key.
func sanitize(s string) string {
	return strings.NewReplacer("[", "-", "]", "", "@", "-", ".", "-").Replace(s)
}
