package deploy

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Records holds every deployment record in memory on each replica, by ID
// and by project, fed by one Store watch of the records: set it as
// Engine.Records and Run it. Listing a project's deployments then reads
// no Store (it listed the project's IDs and read each record), and
// neither does Serve's look for orphaned deployments every
// ResumeInterval (it listed every record of every project).
//
// Lists only show; nothing is decided on them: a record is held as the
// bytes the Store holds (each list decodes its own copies), the engine
// applies its own writes at once, and another replica's progress shows
// once the watch delivers it. Get, and everything that changes a
// deployment, still reads the Store (one key), and a run takes the
// deployment's lease before it works, so a stale "in progress" found by
// Resume costs one lease attempt, never a second run.
type Records struct {
	mirror *registry.Mirror[held]

	mu        sync.RWMutex
	byID      map[string]held
	byProject map[string]map[string]bool
}

// held is one record as stored, with its project.
type held struct {
	project string
	status  Status
	raw     []byte
}

// NewRecords returns the deployments' records over store; Run keeps them
// in memory. A nil log discards.
func NewRecords(store registry.MirrorStore, log logrus.FieldLogger) *Records {
	r := &Records{byID: map[string]held{}, byProject: map[string]map[string]bool{}}
	r.mirror = registry.NewMirror(store, recordPrefix, decodeHeld, registry.Sink[held](r), log)
	return r
}

func decodeHeld(kv registry.KV) (held, error) {
	var d struct {
		Project string `json:"project"`
		Status  Status `json:"status"`
	}
	if err := json.Unmarshal(kv.Value, &d); err != nil {
		return held{}, err
	}
	return held{project: d.Project, status: d.Status, raw: kv.Value}, nil
}

// Run loads the records and follows the Store until ctx ends.
func (r *Records) Run(ctx context.Context) error { return r.mirror.Run(ctx) }

// WaitReady blocks until Run's first load has landed.
func (r *Records) WaitReady(ctx context.Context) error { return r.mirror.WaitReady(ctx) }

// Set and Unset feed the mirror's records into the maps.
func (r *Records) Set(key string, h held) {
	id := strings.TrimPrefix(key, recordPrefix)
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byID[id]; ok && old.project != h.project {
		r.unproject(old.project, id)
	}
	r.byID[id] = h
	if r.byProject[h.project] == nil {
		r.byProject[h.project] = map[string]bool{}
	}
	r.byProject[h.project][id] = true
}

func (r *Records) Unset(key string) {
	id := strings.TrimPrefix(key, recordPrefix)
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.byID[id]; ok {
		r.unproject(old.project, id)
		delete(r.byID, id)
	}
}

func (r *Records) unproject(project, id string) {
	delete(r.byProject[project], id)
	if len(r.byProject[project]) == 0 {
		delete(r.byProject, project)
	}
}

// loaded reports whether r answers (nil or not loaded: read the Store).
func (r *Records) loaded() bool { return r != nil && r.mirror.Loaded() }

// wrote applies a record this engine wrote at store index idx.
func (r *Records) wrote(id string, raw []byte, idx uint64) {
	if r == nil {
		return
	}
	if h, err := decodeHeld(registry.KV{Key: recordKey(id), Value: raw}); err == nil {
		r.mirror.Wrote(recordKey(id), h, idx)
	}
}

// deleted applies a delete this engine made.
func (r *Records) deleted(id string) {
	if r != nil {
		r.mirror.Deleted(recordKey(id), 0)
	}
}

// list decodes the records of project (every project's for ""), by
// creation.
func (r *Records) list(project string) ([]*Deployment, error) {
	r.mu.RLock()
	var raws [][]byte
	if project == "" {
		for _, h := range r.byID {
			raws = append(raws, h.raw)
		}
	} else {
		for id := range r.byProject[project] {
			raws = append(raws, r.byID[id].raw)
		}
	}
	r.mu.RUnlock()
	out := make([]*Deployment, 0, len(raws))
	for _, raw := range raws {
		var d Deployment
		if err := json.Unmarshal(raw, &d); err != nil {
			return nil, err
		}
		out = append(out, &d)
	}
	byCreation(out)
	return out, nil
}

// byCreation orders deployments oldest first (then by ID, so the order
// does not depend on the map it came from).
func byCreation(ds []*Deployment) {
	slices.SortStableFunc(ds, func(a, b *Deployment) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

// countByStatus counts the held deployments by status, for the metrics.
func (r *Records) countByStatus() map[Status]int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := map[Status]int{}
	for _, h := range r.byID {
		n[h.status]++
	}
	return n
}

// status is the status of deployment id as last delivered, if held.
func (r *Records) status(id string) (Status, bool) {
	if !r.loaded() {
		return "", false
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	h, ok := r.byID[id]
	return h.status, ok
}
