package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// Store is the part of registry.Store the engine uses.
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	DeleteCAS(ctx context.Context, key string, index uint64) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error)
	registry.Locker
}

var _ Store = registry.Store(nil)

// Uses records which deployments use which template versions (the Focus
// catalog implements it). A ref resolves as the deployment's project sees
// the catalog.
type Uses interface {
	RecordUse(ctx context.Context, project, ref, user string) error
	ReleaseUse(ctx context.Context, project, ref, user string) error
}

// Resolvers gives the catalog as one project sees it (its own templates,
// then public ones): a deployment's template extends and nests only what
// its project may use. The Focus catalog implements it.
type Resolvers interface {
	For(project string) templates.Resolver
}

// Engine plans and applies deployments. One engine per broker; several
// engines may share a Store, the lease on each deployment deciding which
// one works on it.
type Engine struct {
	Store Store
	// Resources is the broker's service layer: every resource is made,
	// read, found and deleted through it, with the deployment's identity.
	Resources Resources
	// Peers and Placer preview placement at plan time; the services
	// place for real (on the planned peer while the policy allows it).
	Peers  Peers
	Placer policy.Placer
	// Resolver resolves extends and nested templates (the Focus catalog)
	// in the deployment's project; nil refuses templates that use them.
	Resolver Resolvers
	// Uses, when set, records each deployment as a user of its template version.
	Uses Uses
	// Holder names this engine in lease records (the broker's ID).
	Holder string
	Log    logrus.FieldLogger
	// PerPeer bounds concurrent calls to one peer (default 8).
	PerPeer int
	// PollInterval caps the wait between polls of a settling resource
	// (default 2s; polls start at 5ms and double).
	PollInterval time.Duration
	// SettleTimeout bounds how long one resource may take to settle
	// (default 10 minutes).
	SettleTimeout time.Duration
	// LeaseTTL is the ownership lease's TTL (default registry.MinLockTTL).
	LeaseTTL time.Duration
	// ResumeInterval is how often Serve looks for orphaned deployments
	// (default 15s).
	ResumeInterval time.Duration
	// Records, when set (and Run), serves the lists of deployments (a
	// project's, and Resume's of all) from memory; without it they are
	// read from the Store.
	Records *Records
	// Metrics, when set, times every step (NewMetrics).
	Metrics *Metrics

	mu      sync.Mutex
	base    context.Context // Serve's context, for runs Start launches
	running map[string]bool
	sems    map[string]chan struct{}
	// listed: Resume gave every record its project list entry once.
	listed bool
}

const (
	recordPrefix = "deploy/deployments/"
	eventPrefix  = "deploy/events/"
	lockPrefix   = "deploy/locks/"
	// projectPrefix lists a project's deployments without reading every
	// project's records: deploy/projects/PROJECT/ID.
	projectPrefix = "deploy/projects/"
)

func recordKey(id string) string { return recordPrefix + id }

func projectKey(project, id string) string { return projectPrefix + project + "/" + id }

func (e *Engine) log() logrus.FieldLogger {
	if e.Log == nil {
		l := logrus.New()
		l.SetLevel(logrus.WarnLevel)
		return l
	}
	return e.Log
}

func (e *Engine) now() time.Time { return time.Now().UTC() }

// Create records a new deployment of spec, after planning it: a spec that
// does not plan (invalid parameters, no peer allowed) is refused and
// nothing is recorded. The deployment is PENDING; Start or Run applies it.
func (e *Engine) Create(ctx context.Context, name string, owner resource.Caller, spec Spec) (*Deployment, *Plan, error) {
	project := owner.Project
	if project == "" || strings.Contains(project, "/") {
		return nil, nil, fmt.Errorf("%w: project is required", ErrInvalid)
	}
	d := &Deployment{ID: uuid.NewString(), Name: name, Project: project, User: owner.User, Status: StatusPending, Goal: "apply",
		Spec: spec, Attempt: 1, Resources: map[string]*Resource{}, CreatedAt: e.now(), UpdatedAt: e.now(), Deadline: e.deadline(spec)}
	if d.Name == "" {
		d.Name = "deployment-" + d.ID[:8]
	}
	plan, err := e.Plan(ctx, d, spec)
	if err != nil {
		return nil, nil, err
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, nil, err
	}
	if _, err := e.Store.CAS(ctx, projectKey(project, d.ID), []byte(d.ID), 0); err != nil {
		return nil, nil, err
	}
	idx, err := e.Store.CAS(ctx, recordKey(d.ID), b, 0)
	if err != nil {
		_ = e.Store.Delete(context.WithoutCancel(ctx), projectKey(project, d.ID))
		return nil, nil, err
	}
	e.Records.wrote(d.ID, b, idx)
	e.recordUse(ctx, d, spec)
	return d, plan, nil
}

func (e *Engine) recordUse(ctx context.Context, d *Deployment, spec Spec) {
	if e.Uses != nil && spec.Template != "" {
		if err := e.Uses.RecordUse(ctx, d.Project, spec.Template, "deployment:"+d.ID); err != nil {
			e.log().WithError(err).WithField("deployment", d.ID).Warn("recording the template use failed")
		}
	}
}

// Get reads a deployment.
func (e *Engine) Get(ctx context.Context, id string) (*Deployment, error) {
	d, _, err := e.load(ctx, id)
	return d, err
}

func (e *Engine) load(ctx context.Context, id string) (*Deployment, uint64, error) {
	if id == "" || strings.ContainsAny(id, "/") {
		return nil, 0, ErrNotFound
	}
	kv, err := e.Store.Get(ctx, recordKey(id))
	if errors.Is(err, registry.ErrNotFound) {
		return nil, 0, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, 0, err
	}
	var d Deployment
	if err := json.Unmarshal(kv.Value, &d); err != nil {
		return nil, 0, err
	}
	if d.Resources == nil {
		d.Resources = map[string]*Resource{}
	}
	if d.Retired == nil {
		d.Retired = map[string]*Resource{}
	}
	for _, r := range d.Resources {
		r.Attrs = normalizeAttrs(r.Attrs)
	}
	upgradeIDs(&d)
	return &d, kv.ModifyIndex, nil
}

// upgradeIDs moves a record written when the engine called the peers
// itself onto broker IDs: those instances recorded the peer's ID, and the
// broker ID they were indexed under beside it. Attachments named their
// server and volume by peer IDs too.
func upgradeIDs(d *Deployment) {
	byPeerID := map[string]string{}
	for _, m := range []map[string]*Resource{d.Resources, d.Retired} {
		for _, r := range m {
			if r.LegacyBrokerID != "" && r.ID != "" && r.Kind != templates.KindKeypair && r.Kind != templates.KindVolumeAttachment {
				byPeerID[r.PeerID+"/"+r.ID] = r.LegacyBrokerID
				r.ID = r.LegacyBrokerID
			}
			r.LegacyBrokerID = ""
		}
	}
	for _, m := range []map[string]*Resource{d.Resources, d.Retired} {
		for _, r := range m {
			if r.Kind != templates.KindVolumeAttachment {
				continue
			}
			for _, attr := range []string{"server_id", "volume_id"} {
				if old, ok := r.Attrs[attr].(string); ok && byPeerID[r.PeerID+"/"+old] != "" {
					r.Attrs[attr] = byPeerID[r.PeerID+"/"+old]
				}
			}
			if v, ok := r.Attrs["volume_id"].(string); ok && r.ID != "" {
				r.ID = v
			}
		}
	}
}

func normalizeAttrs(a map[string]any) map[string]any {
	if a == nil {
		return nil
	}
	m, _ := templates.NormalizeValue(a).(map[string]any)
	return m
}

// List returns the deployments of project ("" for all), by creation:
// from Records when it runs; else a project's are read through its list
// entries, not by reading every project's records.
func (e *Engine) List(ctx context.Context, project string) ([]*Deployment, error) {
	if e.Records.loaded() {
		if strings.Contains(project, "/") {
			return nil, nil
		}
		return e.Records.list(project)
	}
	if project != "" {
		return e.listProject(ctx, project)
	}
	kvs, _, err := e.Store.List(ctx, recordPrefix)
	if err != nil {
		return nil, err
	}
	var out []*Deployment
	for _, kv := range kvs {
		var d Deployment
		if err := json.Unmarshal(kv.Value, &d); err != nil {
			return nil, err
		}
		out = append(out, &d)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

func (e *Engine) listProject(ctx context.Context, project string) ([]*Deployment, error) {
	if strings.Contains(project, "/") {
		return nil, nil
	}
	kvs, _, err := e.Store.List(ctx, projectPrefix+project+"/")
	if err != nil {
		return nil, err
	}
	var out []*Deployment
	for _, kv := range kvs {
		d, err := e.Get(ctx, strings.TrimPrefix(kv.Key, projectPrefix+project+"/"))
		if errors.Is(err, ErrNotFound) {
			continue // being created, or collected
		}
		if err != nil {
			return nil, err
		}
		if d.Project == project {
			out = append(out, d)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// transition changes a deployment that is not being worked on: the
// mutation runs on the latest record and is written with CAS.
func (e *Engine) transition(ctx context.Context, id string, fn func(d *Deployment) error) (*Deployment, error) {
	for range 10 {
		d, index, err := e.load(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := fn(d); err != nil {
			return nil, err
		}
		d.UpdatedAt = e.now()
		b, err := json.Marshal(d)
		if err != nil {
			return nil, err
		}
		written, err := e.Store.CAS(ctx, recordKey(id), b, index)
		if errors.Is(err, registry.ErrConflict) {
			continue
		} else if err != nil {
			return nil, err
		}
		e.Records.wrote(id, b, written)
		return d, nil
	}
	return nil, fmt.Errorf("%w: %s changes too often", ErrBusy, id)
}

// Update points a settled deployment at a new spec (a new template or
// binding version) and starts a new attempt: the next run plans the
// difference and applies it.
func (e *Engine) Update(ctx context.Context, id string, spec Spec) (*Deployment, *Plan, error) {
	cur, err := e.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	plan, err := e.Plan(ctx, cur, spec)
	if err != nil {
		return nil, nil, err
	}
	d, err := e.transition(ctx, id, func(d *Deployment) error {
		if d.Status.InProgress() || d.Status == StatusDeleted {
			return fmt.Errorf("%w: %s is %s", ErrState, id, d.Status)
		}
		d.Spec, d.Goal, d.Status, d.Error, d.Deadline = spec, "apply", StatusPending, "", e.deadline(spec)
		d.Attempt++
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	e.recordUse(ctx, d, spec)
	return d, plan, nil
}

// Retry starts a new attempt at a FAILED deployment's goal.
func (e *Engine) Retry(ctx context.Context, id string) (*Deployment, error) {
	return e.transition(ctx, id, func(d *Deployment) error {
		if d.Status != StatusFailed {
			return fmt.Errorf("%w: only a FAILED deployment is retried; %s is %s", ErrState, id, d.Status)
		}
		d.Error = ""
		if d.Goal == "delete" {
			d.Status = StatusDeleting
			return nil
		}
		d.Status, d.Goal, d.Deadline = StatusPending, "apply", e.deadline(d.Spec)
		d.Attempt++
		return nil
	})
}

// Delete asks for the deployment's resources to be removed. A deployment
// being applied is deleted once its owner notices (at its next step).
func (e *Engine) Delete(ctx context.Context, id string) (*Deployment, error) {
	return e.transition(ctx, id, func(d *Deployment) error {
		if d.Status == StatusDeleted {
			return nil
		}
		d.Goal, d.Status, d.Error = "delete", StatusDeleting, ""
		return nil
	})
}

// Serve resumes orphaned in-progress deployments (their owner died and
// its lease expired) as soon as their lease is freed, now and every
// ResumeInterval, and runs those Start is given, until ctx ends.
func (e *Engine) Serve(ctx context.Context) error {
	e.mu.Lock()
	e.base = ctx
	e.mu.Unlock()
	interval := e.ResumeInterval
	if interval <= 0 {
		interval = 15 * time.Second
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	go e.watchLocks(ctx)
	for {
		e.Resume(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Resume starts a run for every in-progress deployment no engine holds.
// Its first pass also lists every deployment in its project (records from
// before the project lists existed).
func (e *Engine) Resume(ctx context.Context) {
	ds, err := e.List(ctx, "")
	if err != nil {
		e.log().WithError(err).Warn("listing deployments to resume failed")
		return
	}
	e.mu.Lock()
	backfill := !e.listed
	e.mu.Unlock()
	for _, d := range ds {
		if backfill {
			if err := e.ensureListed(ctx, d); err != nil {
				e.log().WithError(err).WithField("deployment", d.ID).Warn("listing the deployment in its project failed")
				backfill = false
			}
		}
	}
	if backfill {
		e.mu.Lock()
		e.listed = true
		e.mu.Unlock()
	}
	for _, d := range ds {
		if d.Status.InProgress() {
			e.startWith(ctx, d.ID)
		}
	}
}

// Start runs the deployment in the background (on Serve's context when
// Serve runs).
func (e *Engine) Start(id string) {
	e.mu.Lock()
	ctx := e.base
	e.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	e.startWith(ctx, id)
}

func (e *Engine) startWith(ctx context.Context, id string) {
	go func() {
		if err := e.Run(ctx, id); err != nil && !errors.Is(err, ErrBusy) && ctx.Err() == nil {
			e.log().WithError(err).WithField("deployment", id).Warn("deployment run ended with an error")
		}
	}()
}

// Run takes the deployment's lease and drives it until it settles
// (COMPLETE, FAILED or DELETED), the lease is lost, or ctx ends. A
// deployment another engine holds is ErrBusy.
func (e *Engine) Run(ctx context.Context, id string) error {
	e.mu.Lock()
	if e.running == nil {
		e.running = map[string]bool{}
	}
	if e.running[id] {
		e.mu.Unlock()
		return ErrBusy
	}
	e.running[id] = true
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.running, id)
		e.mu.Unlock()
	}()
	ttl := e.LeaseTTL
	if ttl <= 0 {
		ttl = registry.MinLockTTL
	}
	lease, err := e.Store.TryLock(ctx, lockPrefix+id, []byte(e.Holder), ttl)
	if errors.Is(err, registry.ErrLockHeld) {
		return fmt.Errorf("%w: %s", ErrBusy, id)
	}
	if err != nil {
		return err
	}
	r := &run{e: e, id: id}
	outer := ctx
	defer func() {
		bg := context.WithoutCancel(outer)
		if outer.Err() == nil && r.d != nil && r.d.Status.InProgress() {
			e.stepAside(bg, id, lease)
		}
		_ = lease.Release(bg)
	}()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-lease.Lost():
			cancel(ErrLeaseLost)
		case <-ctx.Done():
		}
	}()
	if err := r.reload(ctx); err != nil {
		return err
	}
	// Which broker runs a deployment, and from when: after a broker's
	// death, where its runs went on.
	e.log().WithFields(logrus.Fields{"deployment": id, "status": r.d.Status}).Info("deploy: run started")
	cancelNoted := false
	for {
		if err := context.Cause(ctx); err != nil {
			return err
		}
		var err error
		switch r.d.Status {
		case StatusPending, StatusApplying:
			err = r.apply(ctx)
		case StatusRollingBack:
			if r.goal == "rollback" && !cancelNoted {
				// A cancelled update (Cancel): its attempt ends failed
				// before it is rolled back, as every failed attempt does.
				cancelNoted = true
				r.event(ctx, Event{Action: "failed", Status: string(StatusFailed), Message: r.d.Error})
				r.event(ctx, Event{Action: "rollback", Status: "IN_PROGRESS", Message: r.d.Error})
			}
			err = r.rollback(ctx, r.d.Error)
		case StatusDeleting:
			err = r.deleteAll(ctx)
		default:
			return nil
		}
		if errors.Is(err, errGoalChanged) {
			if err := r.reload(ctx); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			if c := context.Cause(ctx); c != nil {
				return c
			}
			return err
		}
	}
}
