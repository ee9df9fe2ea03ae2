package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// Keys of the decision records. A record lives in the bucket of the hour it
// was made in; an empty-ish marker key per hour lets the collector and
// cloud-wide time queries find the buckets without listing records. Index
// keys per project, resource and deployment hold the record's key, so a
// query for one of them reads only its own keys. Entry names start with the
// time, so every listing is in time order.
const (
	recordsPrefix = "policies/decision-records/"     // <hour>/<time>-<id>: the record
	hoursPrefix   = "policies/decision-hours/"       // <hour>: hourMarker
	byProject     = "policies/decision-by-project/"  // <project>/<time>-<id>: record key
	byResource    = "policies/decision-by-resource/" // <resource>/<time>-<id>: record key
	byDeployment  = "policies/decision-by-deployment/"
	// The layout before buckets (every record under one prefix), removed
	// by the collector's first pass.
	legacyRecords = "policies/decisions/"
	legacyIndex   = "policies/decision-index/"
	keyTime       = "20060102T150405.000000000Z"
	hourKey       = "2006010215"
)

// Retention defaults: records beyond either bound are collected.
const (
	DefaultMaxRecords = 1000
	DefaultMaxAge     = 7 * 24 * time.Hour
	// maxRecordBytes keeps a record inside the store's value limit; a
	// decision over more peers than fit keeps its allowed verdicts and the
	// first denied ones.
	maxRecordBytes = 200 << 10
)

// Record is a stored decision: what was asked, what every peer got, which
// policy decided.
type Record struct {
	ID         string          `json:"decision_id"`
	Timestamp  time.Time       `json:"timestamp"`
	Policy     string          `json:"policy"`
	Kind       string          `json:"kind"`
	Project    string          `json:"project"`
	User       string          `json:"user,omitempty"`
	Resource   string          `json:"resource_id,omitempty"`
	Deployment string          `json:"deployment,omitempty"`
	Template   string          `json:"template,omitempty"`
	TemplateRe string          `json:"template_resource,omitempty"`
	Request    json.RawMessage `json:"request"`
	// Order is the allowed peers' names, best first: the broker tries
	// them in this order.
	Order     []string        `json:"order"`
	Verdicts  []VerdictRecord `json:"verdicts"`
	Truncated bool            `json:"truncated,omitempty"`
}

// VerdictRecord is one peer's verdict in a record.
type VerdictRecord struct {
	PeerID   string   `json:"peer_id"`
	PeerName string   `json:"peer_name"`
	Allowed  bool     `json:"allowed"`
	Score    int      `json:"score"`
	Reasons  []string `json:"reasons"`
}

// Verdicts renders a decision's verdicts for records and the API.
func Verdicts(d Decision) []VerdictRecord {
	out := make([]VerdictRecord, len(d.Verdicts))
	for i, v := range d.Verdicts {
		out[i] = VerdictRecord{PeerID: v.Peer.ID, PeerName: v.Peer.Name, Allowed: v.Allowed, Score: v.Score, Reasons: v.Reasons}
		if out[i].Reasons == nil {
			out[i].Reasons = []string{}
		}
	}
	return out
}

// NewRecord builds the record of decision d for req, made at.
func NewRecord(d Decision, req Request, at time.Time) Record {
	r := Record{ID: d.ID, Timestamp: at.UTC(), Policy: d.Policy, Kind: req.Kind, Project: req.Project, User: req.User,
		Resource: req.ResourceID, Verdicts: Verdicts(d), Order: []string{}}
	if dep := req.Deployment; dep != nil {
		r.Deployment, r.Template, r.TemplateRe = dep.ID, dep.Template, dep.Resource
	}
	if in, err := json.Marshal(mustJSON(requestTerm(req, nil).Value)); err == nil {
		r.Request = in
	}
	for _, v := range d.Verdicts {
		if v.Allowed {
			r.Order = append(r.Order, v.Peer.Name)
		}
	}
	return r
}

// Decisions stores decision records and answers queries by resource,
// deployment, project and time through index keys, so a query's cost
// follows what it matches, not how many decisions are stored. Retention
// (count and age) is enforced by Collect, which a broker's garbage
// collector runs.
type Decisions struct {
	store      Store
	maxRecords int
	maxAge     time.Duration
	now        func() time.Time
	// hour is the last hour this replica made sure has its marker.
	hour atomic.Pointer[string]
	// legacyGone is set once the pre-bucket layout has been removed.
	legacyGone atomic.Bool
}

// NewDecisions returns the record store over s; zero bounds take the
// defaults.
func NewDecisions(s Store, maxRecords int, maxAge time.Duration) *Decisions {
	if maxRecords <= 0 {
		maxRecords = DefaultMaxRecords
	}
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	return &Decisions{store: s, maxRecords: maxRecords, maxAge: maxAge, now: time.Now}
}

// entryName is the last key segment of a record and of its index keys:
// time first, so listings are in time order.
func entryName(r Record) string {
	return r.Timestamp.UTC().Format(keyTime) + "-" + r.ID
}

func hourOf(t time.Time) string { return t.UTC().Format(hourKey) }

func recordKey(r Record) string {
	return recordsPrefix + hourOf(r.Timestamp) + "/" + entryName(r)
}

// entryTime reads the time back out of an entry name (the key's last
// segment); ok is false for a key that is not an entry.
func entryTime(key string) (time.Time, bool) {
	name := key[strings.LastIndexByte(key, '/')+1:]
	ts, _, _ := strings.Cut(name, "-")
	at, err := time.Parse(keyTime, ts)
	return at, err == nil
}

// indexSegment escapes an ID for use as one key segment.
func indexSegment(s string) string { return url.PathEscape(s) }

func indexKeys(r Record) []string {
	name := "/" + entryName(r)
	var out []string
	if r.Project != "" {
		out = append(out, byProject+indexSegment(r.Project)+name)
	}
	if r.Resource != "" {
		out = append(out, byResource+indexSegment(r.Resource)+name)
	}
	if r.Deployment != "" {
		out = append(out, byDeployment+indexSegment(r.Deployment)+name)
	}
	return out
}

// Record stores r, its hour's marker (once per hour per replica) and its
// index keys. The marker goes first and the index keys last: a writer
// that dies in between leaves a marker the collector finds, never a record
// it cannot.
func (ds *Decisions) Record(ctx context.Context, r Record) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	for len(raw) > maxRecordBytes && len(r.Verdicts) > 1 {
		// Keep the allowed verdicts (they are first) and as many denied as fit.
		r.Verdicts, r.Truncated = r.Verdicts[:len(r.Verdicts)*3/4], true
		if raw, err = json.Marshal(r); err != nil {
			return err
		}
	}
	if err := ds.markHour(ctx, hourOf(r.Timestamp)); err != nil {
		return fmt.Errorf("record decision %s: %w", r.ID, err)
	}
	key := recordKey(r)
	if _, err := ds.store.Put(ctx, key, raw); err != nil {
		return fmt.Errorf("record decision %s: %w", r.ID, err)
	}
	// The index keys at once: a placement waits for its record, and each
	// write is a round trip to Consul.
	ixs := indexKeys(r)
	errs := make([]error, len(ixs))
	var wg sync.WaitGroup
	for i, ix := range ixs {
		wg.Go(func() { _, errs[i] = ds.store.Put(ctx, ix, []byte(key)) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("index decision %s: %w", r.ID, err)
	}
	return nil
}

// markHour creates the hour's marker unless it exists: create-only, so the
// count the collector keeps in it is never overwritten.
func (ds *Decisions) markHour(ctx context.Context, hour string) error {
	if last := ds.hour.Load(); last != nil && *last == hour {
		return nil
	}
	if _, err := ds.store.CAS(ctx, hoursPrefix+hour, []byte("{}"), 0); err != nil && !errors.Is(err, registry.ErrConflict) {
		return err
	}
	ds.hour.Store(&hour)
	return nil
}

// Query selects records.
type Query struct {
	Resource   string
	Deployment string
	// Project, when set, limits the answer to the project's records.
	Project      string
	Since, Until time.Time
	// Limit caps the answer (newest first); 0 is 100.
	Limit int
}

// Query returns the records matching q, newest first. A query naming a
// resource, deployment or project reads that index's keys and then only
// the records it returns; a cloud-wide one reads the hour markers and then
// the buckets of the hours in range, newest first, until it has Limit.
func (ds *Decisions) Query(ctx context.Context, q Query) ([]Record, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if cutoff := ds.now().Add(-ds.maxAge); q.Since.Before(cutoff) {
		q.Since = cutoff // not collected yet, but past retention
	}
	var prefix string
	switch {
	case q.Resource != "":
		prefix = byResource + indexSegment(q.Resource) + "/"
	case q.Deployment != "":
		prefix = byDeployment + indexSegment(q.Deployment) + "/"
	case q.Project != "":
		prefix = byProject + indexSegment(q.Project) + "/"
	default:
		return ds.queryHours(ctx, q)
	}
	idx, _, err := ds.store.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var keys []string // the records in range, newest first
	for _, ix := range slices.Backward(idx) {
		if at, ok := entryTime(ix.Key); ok && q.inRange(at) {
			keys = append(keys, string(ix.Value))
		}
	}
	var out []Record
	for len(keys) > 0 && len(out) < q.Limit {
		// A batch at once (a round trip each on Consul), sized to what is
		// still missing: the index usually matches every record it names.
		batch := keys[:min(len(keys), q.Limit-len(out), getBatch)]
		keys = keys[len(batch):]
		recs, err := ds.getAll(ctx, batch)
		if err != nil {
			return nil, err
		}
		for _, raw := range recs {
			if r, ok := q.match(raw); ok && len(out) < q.Limit {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// getBatch bounds the records a query reads at once.
const getBatch = 16

// getAll reads the records at keys concurrently, in their order; a record
// collected in between is left out.
func (ds *Decisions) getAll(ctx context.Context, keys []string) ([][]byte, error) {
	vals := make([][]byte, len(keys))
	errs := make([]error, len(keys))
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Go(func() {
			kv, err := ds.store.Get(ctx, k)
			if errors.Is(err, registry.ErrNotFound) {
				return
			}
			vals[i], errs[i] = kv.Value, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.DeleteFunc(vals, func(v []byte) bool { return v == nil }), nil
}

// queryHours answers a query without an index: the hour buckets in range,
// newest first.
func (ds *Decisions) queryHours(ctx context.Context, q Query) ([]Record, error) {
	hours, _, err := ds.store.List(ctx, hoursPrefix)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, h := range slices.Backward(hours) {
		hour := strings.TrimPrefix(h.Key, hoursPrefix)
		start, err := time.Parse(hourKey, hour)
		if err != nil {
			continue
		}
		if !q.Until.IsZero() && start.After(q.Until) {
			continue
		}
		if start.Add(time.Hour).Before(q.Since) {
			break
		}
		kvs, _, err := ds.store.List(ctx, recordsPrefix+hour+"/")
		if err != nil {
			return nil, err
		}
		for _, kv := range slices.Backward(kvs) {
			if at, ok := entryTime(kv.Key); !ok || !q.inRange(at) {
				continue
			}
			if r, ok := q.match(kv.Value); ok {
				out = append(out, r)
				if len(out) == q.Limit {
					return out, nil
				}
			}
		}
	}
	return out, nil
}

func (q Query) inRange(at time.Time) bool {
	return !at.Before(q.Since) && (q.Until.IsZero() || !at.After(q.Until))
}

// match decodes a record and applies the filters an index did not.
func (q Query) match(raw []byte) (Record, bool) {
	var r Record
	if err := json.Unmarshal(raw, &r); err != nil {
		return r, false
	}
	switch {
	case q.Project != "" && r.Project != q.Project,
		q.Resource != "" && r.Resource != q.Resource,
		q.Deployment != "" && r.Deployment != q.Deployment:
		return r, false
	}
	return r, true
}
