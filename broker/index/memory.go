package index

import (
	"slices"
	"strings"
	"sync"
)

// memory is the index as every replica holds it: entries by kind and ID,
// and by kind, project and ID, so a project's list reads its own entries
// only. The Mirror feeds it (Set, Unset) and requests read it.
type memory struct {
	mu        sync.RWMutex
	byID      map[string]map[string]Entry            // kind -> id -> entry
	byProject map[string]map[string]map[string]Entry // kind -> project -> id -> entry
	flagged   map[string]map[string]Entry            // kind -> id -> entry marked Shared
}

func newMemory() *memory {
	return &memory{byID: map[string]map[string]Entry{}, byProject: map[string]map[string]map[string]Entry{}, flagged: map[string]map[string]Entry{}}
}

// Set implements registry.Sink.
func (m *memory) Set(_ string, e Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(e.Kind, e.ID)
	if m.byID[e.Kind] == nil {
		m.byID[e.Kind] = map[string]Entry{}
		m.byProject[e.Kind] = map[string]map[string]Entry{}
	}
	m.byID[e.Kind][e.ID] = e
	if m.byProject[e.Kind][e.Project] == nil {
		m.byProject[e.Kind][e.Project] = map[string]Entry{}
	}
	m.byProject[e.Kind][e.Project][e.ID] = e
	if e.Shared {
		if m.flagged[e.Kind] == nil {
			m.flagged[e.Kind] = map[string]Entry{}
		}
		m.flagged[e.Kind][e.ID] = e
	}
}

// Unset implements registry.Sink; key is index/<kind>/<id>.
func (m *memory) Unset(key string) {
	kind, id, ok := strings.Cut(strings.TrimPrefix(key, keyRoot), "/")
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.removeLocked(kind, id)
}

func (m *memory) removeLocked(kind, id string) {
	old, ok := m.byID[kind][id]
	if !ok {
		return
	}
	delete(m.byID[kind], id)
	delete(m.byProject[kind][old.Project], id)
	if len(m.byProject[kind][old.Project]) == 0 {
		delete(m.byProject[kind], old.Project)
	}
	delete(m.flagged[kind], id)
}

func (m *memory) get(kind, id string) (Entry, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.byID[kind][id]
	return e, ok
}

// list returns a project's entries of kind (every project's for ""), by ID.
func (m *memory) list(kind, project string) []Entry {
	m.mu.RLock()
	from := m.byID[kind]
	if project != "" {
		from = m.byProject[kind][project]
	}
	out := values(from)
	m.mu.RUnlock()
	return byID(out)
}

// shared returns the entries of kind marked Shared, by ID.
func (m *memory) shared(kind string) []Entry {
	m.mu.RLock()
	out := values(m.flagged[kind])
	m.mu.RUnlock()
	return byID(out)
}

// values copies a map's entries.
func values(from map[string]Entry) []Entry {
	out := make([]Entry, 0, len(from))
	for _, e := range from {
		out = append(out, e)
	}
	return out
}

// byID sorts entries by ID.
func byID(es []Entry) []Entry {
	slices.SortFunc(es, func(a, b Entry) int { return strings.Compare(a.ID, b.ID) })
	return es
}
