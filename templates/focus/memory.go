package focus

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Memory holds what the catalog lists in memory on each replica, fed by
// one Store watch of focus/: every version's summary (a template
// version without its source, a binding version, a publication), by
// version series. Set it as Catalog.Memory and Run it; then listing a
// project's templates or bindings, the public templates, and finding a
// template's latest version read no Store prefix (they listed every
// version, bodies included, and every project's publications). A
// version's source is still read from the Store, one key, when asked for.
//
// Versions are written once and never change, so memory is never wrong,
// only late: the writing broker applies its writes at once; another
// replica's push arrives with the watch. Finding the latest version
// checks the Store for the next number (one key), so a push on another
// replica is never missed by a deploy of "latest".
type Memory struct {
	mirror *registry.Mirror[summary]

	mu sync.RWMutex
	// series: a versions prefix (".../NAME/versions/") -> number -> summary.
	series map[string]map[int]summary
	// names: the folder holding series (".../templates/",
	// ".../bindings/", "focus/public/templates/") -> names in it.
	names map[string]map[string]bool
}

// summary is one version record, decoded by its key's kind; a key that
// is not a version decodes to the zero summary and is not held.
type summary struct {
	Version     *Version
	Binding     *Binding
	Publication *Publication
}

// NewMemory returns the catalog's memory over store; Run fills it. A nil
// log discards.
func NewMemory(store registry.MirrorStore, log logrus.FieldLogger) *Memory {
	m := &Memory{series: map[string]map[int]summary{}, names: map[string]map[string]bool{}}
	m.mirror = registry.NewMirror(store, prefix, decodeSummary, registry.Sink[summary](m), log)
	return m
}

// Run loads focus/ and follows it until ctx ends.
func (m *Memory) Run(ctx context.Context) error { return m.mirror.Run(ctx) }

// WaitReady blocks until the first load has landed.
func (m *Memory) WaitReady(ctx context.Context) error { return m.mirror.WaitReady(ctx) }

// seriesOf splits a version key into its series prefix, folder, name and
// number.
func seriesOf(key string) (series, dir, name string, n int, ok bool) {
	i := strings.LastIndex(key, "/versions/")
	if i < 0 {
		return "", "", "", 0, false
	}
	n, err := strconv.Atoi(key[i+len("/versions/"):])
	if err != nil {
		return "", "", "", 0, false
	}
	j := strings.LastIndexByte(key[:i], '/')
	if j < 0 {
		return "", "", "", 0, false
	}
	return key[:i+len("/versions/")], key[:j+1], key[j+1 : i], n, true
}

func decodeSummary(kv registry.KV) (summary, error) {
	_, dir, _, _, ok := seriesOf(kv.Key)
	if !ok {
		return summary{}, nil
	}
	var s summary
	var err error
	switch {
	case dir == prefix+"public/templates/":
		s.Publication = &Publication{}
		err = json.Unmarshal(kv.Value, s.Publication)
	case strings.HasSuffix(dir, "/templates/"):
		s.Version = &Version{}
		err = json.Unmarshal(kv.Value, s.Version)
		s.Version.Source = "" // read from the Store when asked for: memory keeps summaries
	case strings.HasSuffix(dir, "/bindings/"):
		s.Binding = &Binding{}
		err = json.Unmarshal(kv.Value, s.Binding)
	default:
		return summary{}, nil
	}
	return s, err
}

// Set and Unset feed the mirror's records into the maps.
func (m *Memory) Set(key string, s summary) {
	series, dir, name, n, ok := seriesOf(key)
	if !ok || (s.Version == nil && s.Binding == nil && s.Publication == nil) {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.series[series] == nil {
		m.series[series] = map[int]summary{}
	}
	m.series[series][n] = s
	if m.names[dir] == nil {
		m.names[dir] = map[string]bool{}
	}
	m.names[dir][name] = true
}

func (m *Memory) Unset(key string) {
	series, dir, name, n, ok := seriesOf(key)
	if !ok {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.series[series], n)
	if len(m.series[series]) == 0 {
		delete(m.series, series)
		delete(m.names[dir], name)
		if len(m.names[dir]) == 0 {
			delete(m.names, dir)
		}
	}
}

// loaded reports whether m answers (nil or not loaded: read the Store).
func (m *Memory) loaded() bool { return m != nil && m.mirror.Loaded() }

// wrote applies a version record this broker wrote at idx.
func (m *Memory) wrote(key string, raw []byte, idx uint64) {
	if m == nil {
		return
	}
	if s, err := decodeSummary(registry.KV{Key: key, Value: raw}); err == nil {
		m.mirror.Wrote(key, s, idx)
	}
}

// latest is the highest version number of a series (0: none).
func (m *Memory) latest(series string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for v := range m.series[series] {
		n = max(n, v)
	}
	return n
}

// versions returns a series' summaries, oldest first.
func (m *Memory) versions(series string) []summary {
	m.mu.RLock()
	defer m.mu.RUnlock()
	ns := slices.Sorted(maps.Keys(m.series[series]))
	out := make([]summary, 0, len(ns))
	for _, n := range ns {
		out = append(out, m.series[series][n])
	}
	return out
}

// latestIn returns the latest version's summary of every series in dir,
// by name.
func (m *Memory) latestIn(dir string) []summary {
	names := m.namesIn(dir)
	out := make([]summary, 0, len(names))
	for _, name := range names {
		series := dir + name + "/versions/"
		n := m.latest(series)
		m.mu.RLock()
		s, ok := m.series[series][n]
		m.mu.RUnlock()
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// all returns every summary of every series in dir, by name then version.
func (m *Memory) all(dir string) []summary {
	var out []summary
	for _, name := range m.namesIn(dir) {
		out = append(out, m.versions(dir+name+"/versions/")...)
	}
	return out
}

// namesIn returns the names of the series in dir, sorted.
func (m *Memory) namesIn(dir string) []string {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Sorted(maps.Keys(m.names[dir]))
}

// get returns one version's summary.
func (m *Memory) get(key string) (summary, bool) {
	series, _, _, n, ok := seriesOf(key)
	if !ok {
		return summary{}, false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	s, ok := m.series[series][n]
	return s, ok
}

// latestStored reads the highest version number under a versions prefix
// from the Store: the versions' records, bodies included.
func (c *Catalog) latestStored(ctx context.Context, versions string) (int, error) {
	kvs, _, err := c.Store.List(ctx, versions)
	if err != nil {
		return 0, err
	}
	if len(kvs) == 0 {
		return 0, nil
	}
	k := kvs[len(kvs)-1].Key
	return strconv.Atoi(k[strings.LastIndexByte(k, '/')+1:])
}

// latest is the highest version number under a versions prefix (0:
// none). Memory's answer n stands once the Store holds no version n+1
// (one key): versions are numbered in order, so a later one another
// replica pushed, which the watch has not brought yet, shows there; then
// the Store's list decides. (Numbers have no gaps: a push claims its
// content hash before it takes one.)
func (c *Catalog) latest(ctx context.Context, versions string) (int, error) {
	if !c.Memory.loaded() {
		return c.latestStored(ctx, versions)
	}
	n := c.Memory.latest(versions)
	_, err := c.Store.Get(ctx, versionIn(versions, n+1))
	switch {
	case errors.Is(err, registry.ErrNotFound):
		return n, nil
	case err != nil:
		return 0, err
	}
	return c.latestStored(ctx, versions)
}
