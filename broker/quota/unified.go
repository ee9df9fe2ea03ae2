package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// defaultsPrefix holds the defaults an admin changed, one record per
// dimension: Keystone's registered limits.
const defaultsPrefix = "quota-defaults/"

// ErrExists and ErrNotSet answer a create of a limit already set and a
// change of one never set (Keystone's 409 and 404).
var (
	ErrExists = errors.New("limit already set")
	ErrNotSet = errors.New("limit not set")
)

// DefaultRecord is a default an admin set for a dimension.
type DefaultRecord struct {
	Limit       int    `json:"limit"`
	Description string `json:"description,omitempty"`
}

// limitsMemory holds both prefixes in memory, fed by their watches.
type limitsMemory struct {
	projects *registry.Mirror[projectLimits]
	dflts    *registry.Mirror[DefaultRecord]

	mu    sync.RWMutex
	byKey map[string]projectLimits // quotas/<project>
	ids   map[string]LimitRef      // LimitID -> what it names
	dset  map[Resource]DefaultRecord
}

// LimitRef names one project limit.
type LimitRef struct {
	Project  string
	Resource Resource
}

// LimitID is the stable ID of a project's limit on a dimension (the same
// on every replica, and again after a delete and a new set).
func LimitID(project string, r Resource) string {
	return strings.ReplaceAll(uuid.NewSHA1(limitIDSpace, []byte(project+"/"+string(r))).String(), "-", "")
}

// DefaultID is the stable ID of a dimension's default.
func DefaultID(r Resource) string {
	return strings.ReplaceAll(uuid.NewSHA1(limitIDSpace, []byte("default/"+string(r))).String(), "-", "")
}

var limitIDSpace = uuid.MustParse("0c7c2f8e-5a3e-4d1b-9d57-3f3b8a1d6c21")

type projectSink struct{ m *limitsMemory }

func (s projectSink) Set(key string, v projectLimits) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	s.m.unindex(key)
	s.m.byKey[key] = v
	p := strings.TrimPrefix(key, "quotas/")
	for r := range v.Limits {
		s.m.ids[LimitID(p, r)] = LimitRef{Project: p, Resource: r}
	}
}

func (s projectSink) Unset(key string) {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	s.m.unindex(key)
	delete(s.m.byKey, key)
}

// unindex drops the IDs of key's limits; mu held.
func (m *limitsMemory) unindex(key string) {
	p := strings.TrimPrefix(key, "quotas/")
	for r := range m.byKey[key].Limits {
		delete(m.ids, LimitID(p, r))
	}
}

type defaultSink struct{ m *limitsMemory }

func (s defaultSink) Set(key string, v DefaultRecord) {
	s.m.mu.Lock()
	s.m.dset[Resource(strings.TrimPrefix(key, defaultsPrefix))] = v
	s.m.mu.Unlock()
}

func (s defaultSink) Unset(key string) {
	s.m.mu.Lock()
	delete(s.m.dset, Resource(strings.TrimPrefix(key, defaultsPrefix)))
	s.m.mu.Unlock()
}

func (m *limitsMemory) project(key string) projectLimits {
	m.mu.RLock()
	defer m.mu.RUnlock()
	rec := m.byKey[key]
	return projectLimits{Limits: rec.Limits.Clone(), Descriptions: maps.Clone(rec.Descriptions)}
}

func (m *limitsMemory) projectIDs() []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]string, 0, len(m.byKey))
	for k := range m.byKey {
		out = append(out, strings.TrimPrefix(k, "quotas/"))
	}
	slices.Sort(out)
	return out
}

func (m *limitsMemory) defaults() map[Resource]DefaultRecord {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.dset)
}

// NewLimits returns limits served from memory once Run has loaded them.
func NewLimits(store registry.Store, log logrus.FieldLogger) *Limits {
	m := &limitsMemory{byKey: map[string]projectLimits{}, ids: map[string]LimitRef{}, dset: map[Resource]DefaultRecord{}}
	m.projects = registry.NewMirror(store, "quotas/", func(kv registry.KV) (projectLimits, error) {
		return decodeProjectLimits(kv.Value)
	}, projectSink{m}, log)
	m.dflts = registry.NewMirror(store, defaultsPrefix, func(kv registry.KV) (DefaultRecord, error) {
		var d DefaultRecord
		err := json.Unmarshal(kv.Value, &d)
		return d, err
	}, defaultSink{m}, log)
	return &Limits{Store: store, mem: m}
}

// Run follows both prefixes until ctx ends.
func (l *Limits) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 1)
	go func() { errs <- l.mem.dflts.Run(ctx) }()
	err := l.mem.projects.Run(ctx)
	cancel()
	return errors.Join(err, <-errs)
}

// WaitReady blocks until both prefixes are loaded.
func (l *Limits) WaitReady(ctx context.Context) error {
	if err := l.mem.projects.WaitReady(ctx); err != nil {
		return err
	}
	return l.mem.dflts.WaitReady(ctx)
}

// Default is one dimension's default as Keystone's registered limit
// shows it.
type Default struct {
	Resource    Resource
	Limit       int
	Description string
	// Set: an admin set it (else it is the built-in one).
	Set bool
}

// ListDefaults returns every enforced dimension's default, sorted.
func (l *Limits) ListDefaults() []Default {
	var set map[Resource]DefaultRecord
	if l.mem != nil {
		set = l.mem.defaults()
	}
	b := l.builtin()
	out := make([]Default, 0, len(b))
	for _, r := range slices.Sorted(maps.Keys(b)) {
		d := Default{Resource: r, Limit: b[r]}
		if rec, ok := set[r]; ok {
			d.Limit, d.Description, d.Set = rec.Limit, rec.Description, true
		}
		out = append(out, d)
	}
	return out
}

// SetDefault sets dimension r's default for every project that did not
// set its own. With create, one an admin already set is ErrExists (a
// built-in one is not: it is then set). limit or description nil keep
// what is there.
func (l *Limits) SetDefault(ctx context.Context, r Resource, limit *int, description *string, create bool) (Default, error) {
	if !Known(r) {
		return Default{}, fmt.Errorf("%w: unknown quota resource %s", ErrInvalid, r)
	}
	if limit != nil {
		if err := (Amounts{r: *limit}).Validate(); err != nil {
			return Default{}, err
		}
	}
	key := defaultsPrefix + string(r)
	for {
		rec := DefaultRecord{Limit: l.builtin()[r]}
		var index uint64
		kv, err := l.Store.Get(ctx, key)
		switch {
		case err == nil:
			if create {
				return Default{}, fmt.Errorf("%w: the default of %s was set already", ErrExists, r)
			}
			if err := json.Unmarshal(kv.Value, &rec); err != nil {
				return Default{}, fmt.Errorf("decoding %s: %w", key, err)
			}
			index = kv.ModifyIndex
		case !errors.Is(err, registry.ErrNotFound):
			return Default{}, fmt.Errorf("reading %s: %w", key, err)
		}
		if limit != nil {
			rec.Limit = *limit
		}
		if description != nil {
			rec.Description = *description
		}
		b, err := json.Marshal(rec)
		if err != nil {
			return Default{}, err
		}
		idx, err := l.Store.CAS(ctx, key, b, index)
		if errors.Is(err, registry.ErrConflict) && ctx.Err() == nil {
			if create {
				return Default{}, fmt.Errorf("%w: the default of %s was set already", ErrExists, r)
			}
			continue
		}
		if err != nil {
			return Default{}, fmt.Errorf("writing %s: %w", key, err)
		}
		if l.mem != nil {
			l.mem.dflts.Wrote(key, rec, idx)
		}
		return Default{Resource: r, Limit: rec.Limit, Description: rec.Description, Set: true}, nil
	}
}

// UnsetDefault forgets the default an admin set for r: the built-in one
// applies again. One never set is ErrNotSet.
func (l *Limits) UnsetDefault(ctx context.Context, r Resource) error {
	key := defaultsPrefix + string(r)
	kv, err := l.Store.Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) || !Known(r) {
		return fmt.Errorf("%w: the default of %s is built in", ErrNotSet, r)
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", key, err)
	}
	if err := l.Store.Delete(ctx, key); err != nil {
		return fmt.Errorf("deleting %s: %w", key, err)
	}
	if l.mem != nil {
		l.mem.dflts.Deleted(key, kv.ModifyIndex)
	}
	return nil
}

// Limit is one dimension a project set its own limit for (Keystone's
// project limit).
type Limit struct {
	ID          string
	Project     string
	Resource    Resource
	Limit       int
	Description string
}

// ProjectLimits lists what project set, sorted by dimension.
func (l *Limits) ProjectLimits(ctx context.Context, project string) ([]Limit, error) {
	rec, err := l.set(ctx, project)
	if err != nil {
		return nil, err
	}
	var out []Limit
	for _, r := range slices.Sorted(maps.Keys(rec.Limits)) {
		if Known(r) {
			out = append(out, Limit{ID: LimitID(project, r), Project: project, Resource: r, Limit: rec.Limits[r], Description: rec.Descriptions[r]})
		}
	}
	return out, nil
}

// AllLimits lists every project's limits (an admin's listing), from
// memory.
func (l *Limits) AllLimits(ctx context.Context) ([]Limit, error) {
	projects, err := l.Overridden(ctx)
	if err != nil {
		return nil, err
	}
	slices.Sort(projects)
	var out []Limit
	for _, p := range projects {
		ls, err := l.ProjectLimits(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, ls...)
	}
	return out, nil
}

// LimitByID finds a project limit by its ID, from memory (ErrNotSet
// when none has it).
func (l *Limits) LimitByID(ctx context.Context, id string) (Limit, error) {
	if l.mem == nil {
		return Limit{}, fmt.Errorf("%w: limit %s", ErrNotSet, id)
	}
	l.mem.mu.RLock()
	ref, ok := l.mem.ids[id]
	l.mem.mu.RUnlock()
	if !ok {
		return Limit{}, fmt.Errorf("%w: limit %s", ErrNotSet, id)
	}
	ls, err := l.ProjectLimits(ctx, ref.Project)
	if err != nil {
		return Limit{}, err
	}
	for _, x := range ls {
		if x.Resource == ref.Resource {
			return x, nil
		}
	}
	return Limit{}, fmt.Errorf("%w: limit %s", ErrNotSet, id)
}

// SetLimit sets project's own limit on r. With create, one already set
// is ErrExists; without, one never set is ErrNotSet. limit or
// description nil keep what is there.
func (l *Limits) SetLimit(ctx context.Context, project string, r Resource, limit *int, description *string, create bool) (Limit, error) {
	if !Known(r) {
		return Limit{}, fmt.Errorf("%w: unknown quota resource %s", ErrInvalid, r)
	}
	if limit != nil {
		if err := (Amounts{r: *limit}).Validate(); err != nil {
			return Limit{}, err
		}
	}
	var out Limit
	err := l.change(ctx, project, func(rec *projectLimits) error {
		cur, ok := rec.Limits[r]
		switch {
		case ok && create:
			return fmt.Errorf("%w: project %s has a limit on %s already", ErrExists, project, r)
		case !ok && !create:
			return fmt.Errorf("%w: project %s has no limit on %s", ErrNotSet, project, r)
		}
		if limit != nil {
			cur = *limit
		}
		rec.Limits[r] = cur
		if description != nil {
			if rec.Descriptions == nil {
				rec.Descriptions = map[Resource]string{}
			}
			rec.Descriptions[r] = *description
			if *description == "" {
				delete(rec.Descriptions, r)
			}
		}
		out = Limit{ID: LimitID(project, r), Project: project, Resource: r, Limit: cur, Description: rec.Descriptions[r]}
		return nil
	})
	return out, err
}
