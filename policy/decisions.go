package policy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Keys of the decision records: one record per decision under a
// time-ordered key, and empty index keys naming it per resource and per
// deployment.
const (
	decisionsPrefix = "policies/decisions/"
	byResource      = "policies/decision-index/resource/"
	byDeployment    = "policies/decision-index/deployment/"
	keyTime         = "20060102T150405.000000000Z"
)

// Retention defaults: records beyond either bound are pruned.
const (
	DefaultMaxRecords = 1000
	DefaultMaxAge     = 7 * 24 * time.Hour
	// pruneEvery: a replica prunes after this many of its own writes, so
	// the store is not listed on every decision.
	pruneEvery = 50
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
	if in, err := json.Marshal(mustJSON(requestTerm(req).Value)); err == nil {
		r.Request = in
	}
	for _, v := range d.Verdicts {
		if v.Allowed {
			r.Order = append(r.Order, v.Peer.Name)
		}
	}
	return r
}

// Decisions stores decision records with bounded retention and answers
// queries by resource, deployment and time.
type Decisions struct {
	store      Store
	maxRecords int
	maxAge     time.Duration
	now        func() time.Time
	writes     atomic.Int64
	pruning    atomic.Bool
	log        logrus.FieldLogger
}

// WithLog sets where background pruning reports its failures.
func (ds *Decisions) WithLog(l logrus.FieldLogger) *Decisions {
	ds.log = l
	return ds
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

func recordKey(r Record) string {
	return decisionsPrefix + r.Timestamp.UTC().Format(keyTime) + "-" + r.ID
}

// indexSegment escapes an ID for use as one key segment.
func indexSegment(s string) string { return url.PathEscape(s) }

// Record stores r and its index keys, pruning now and then.
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
	key := recordKey(r)
	if _, err := ds.store.Put(ctx, key, raw); err != nil {
		return fmt.Errorf("record decision %s: %w", r.ID, err)
	}
	for _, ix := range indexKeys(r) {
		if _, err := ds.store.Put(ctx, ix, []byte(key)); err != nil {
			return fmt.Errorf("index decision %s: %w", r.ID, err)
		}
	}
	if ds.writes.Add(1)%pruneEvery == 1 && ds.pruning.CompareAndSwap(false, true) {
		// In the background: listing every record is no work for the
		// placement that happened to be the fiftieth.
		go func() {
			defer ds.pruning.Store(false)
			pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := ds.Prune(pctx); err != nil && ds.log != nil {
				ds.log.WithError(err).Warn("policy: pruning decision records failed")
			}
		}()
	}
	return nil
}

func indexKeys(r Record) []string {
	suffix := "/" + strings.TrimPrefix(recordKey(r), decisionsPrefix)
	var out []string
	if r.Resource != "" {
		out = append(out, byResource+indexSegment(r.Resource)+suffix)
	}
	if r.Deployment != "" {
		out = append(out, byDeployment+indexSegment(r.Deployment)+suffix)
	}
	return out
}

// Prune removes records (and their index keys) beyond the count bound or
// older than the age bound. Replicas may prune at once: deletes of deleted
// keys are harmless.
func (ds *Decisions) Prune(ctx context.Context) error {
	kvs, _, err := ds.store.List(ctx, decisionsPrefix)
	if err != nil {
		return err
	}
	cutoff := ds.now().Add(-ds.maxAge)
	var errs []error
	for i, kv := range kvs { // oldest first: keys sort by time
		if len(kvs)-i <= ds.maxRecords && !keyBefore(kv.Key, cutoff) {
			break
		}
		var r Record
		if json.Unmarshal(kv.Value, &r) == nil {
			for _, ix := range indexKeys(r) {
				errs = append(errs, ds.store.Delete(ctx, ix))
			}
		}
		errs = append(errs, ds.store.Delete(ctx, kv.Key))
	}
	return errors.Join(errs...)
}

func keyBefore(key string, t time.Time) bool {
	ts, _, _ := strings.Cut(strings.TrimPrefix(key, decisionsPrefix), "-")
	at, err := time.Parse(keyTime, ts)
	return err == nil && at.Before(t)
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

// Query returns the records matching q, newest first.
func (ds *Decisions) Query(ctx context.Context, q Query) ([]Record, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	var kvs []registry.KV
	var err error
	switch {
	case q.Resource != "" || q.Deployment != "":
		prefix := byResource + indexSegment(q.Resource) + "/"
		if q.Resource == "" {
			prefix = byDeployment + indexSegment(q.Deployment) + "/"
		}
		idx, _, err := ds.store.List(ctx, prefix)
		if err != nil {
			return nil, err
		}
		for _, ix := range idx {
			kv, err := ds.store.Get(ctx, string(ix.Value))
			if errors.Is(err, registry.ErrNotFound) {
				continue // pruned in between
			}
			if err != nil {
				return nil, err
			}
			kvs = append(kvs, kv)
		}
	default:
		if kvs, _, err = ds.store.List(ctx, decisionsPrefix); err != nil {
			return nil, err
		}
	}
	cutoff := ds.now().Add(-ds.maxAge)
	var out []Record
	for _, kv := range slices.Backward(kvs) {
		var r Record
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			continue
		}
		switch {
		case r.Timestamp.Before(cutoff),
			!q.Since.IsZero() && r.Timestamp.Before(q.Since),
			!q.Until.IsZero() && r.Timestamp.After(q.Until),
			q.Project != "" && r.Project != q.Project,
			q.Resource != "" && r.Resource != q.Resource,
			q.Deployment != "" && r.Deployment != q.Deployment:
			continue
		}
		out = append(out, r)
	}
	slices.SortStableFunc(out, func(a, b Record) int { return b.Timestamp.Compare(a.Timestamp) })
	if len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}
