package policy_test

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

func record(id, resource, deployment string, at time.Time) policy.Record {
	return policy.Record{ID: id, Timestamp: at, Policy: "stock", Kind: "server", Project: "p-" + resource[:1], Resource: resource, Deployment: deployment,
		Order: []string{"a"}, Verdicts: []policy.VerdictRecord{{PeerID: "a", PeerName: "a", Allowed: true, Score: 50, Reasons: []string{"score 50"}}}}
}

func ids(recs []policy.Record) string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return strings.Join(out, ",")
}

func TestDecisionQueries(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	ds := policy.NewDecisions(store, 0, 0)
	t0 := time.Now().UTC().Add(-time.Hour)
	for i, r := range []policy.Record{
		record("d0", "a-srv0", "dep0", t0.Add(-50*time.Hour)), // hours of buckets earlier
		record("d1", "a-srv1", "dep1", t0),
		record("d2", "a-srv2", "dep1", t0.Add(time.Minute)),
		record("d3", "b-srv3", "", t0.Add(2*time.Minute)),
		record("d4", "a-srv1", "", t0.Add(3*time.Minute)),  // a retried placement of srv1
		record("d5", "b-srv5", "", t0.Add(70*time.Minute)), // the next hour
		record("old", "a-srv1", "dep1", t0.Add(-8*24*time.Hour)),
	} {
		if err := ds.Record(ctx, r); err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
	}
	tests := []struct {
		name string
		q    policy.Query
		want string // decision IDs, newest first
	}{
		{"all, newest first, past retention left out", policy.Query{}, "d5,d4,d3,d2,d1,d0"},
		{"by resource", policy.Query{Resource: "a-srv1"}, "d4,d1"},
		{"by deployment", policy.Query{Deployment: "dep1"}, "d2,d1"},
		{"since", policy.Query{Since: t0.Add(90 * time.Second)}, "d5,d4,d3"},
		{"until", policy.Query{Until: t0.Add(30 * time.Second)}, "d1,d0"},
		{"since and until across hours", policy.Query{Since: t0.Add(-51 * time.Hour), Until: t0.Add(time.Minute)}, "d2,d1,d0"},
		{"range and resource", policy.Query{Resource: "a-srv1", Since: t0.Add(time.Second)}, "d4"},
		{"a project sees its own", policy.Query{Project: "p-b"}, "d5,d3"},
		{"a project's range", policy.Query{Project: "p-a", Until: t0.Add(2 * time.Minute)}, "d2,d1,d0"},
		{"a project asking for another's resource", policy.Query{Project: "p-b", Resource: "a-srv1"}, ""},
		{"a project asking for another's deployment", policy.Query{Project: "p-b", Deployment: "dep1"}, ""},
		{"limit", policy.Query{Limit: 1}, "d5"},
		{"limit on an index", policy.Query{Project: "p-a", Limit: 2}, "d4,d2"},
		{"unknown resource", policy.Query{Resource: "nope"}, ""},
		{"unknown project", policy.Query{Project: "nope"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := ds.Query(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(recs); got != tc.want {
				t.Fatalf("= %s, want %s", got, tc.want)
			}
		})
	}
}

// decisionKeys sorts the store's decision keys into records (by ID),
// index keys (by ID, one entry per key) and hour markers.
func decisionKeys(t *testing.T, store registry.Store) (records, index []string, hours int) {
	t.Helper()
	kvs, _, err := store.List(context.Background(), "policies/")
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range kvs {
		name := kv.Key[strings.LastIndexByte(kv.Key, '/')+1:]
		_, id, _ := strings.Cut(name, "-")
		switch {
		case strings.HasPrefix(kv.Key, "policies/decision-records/"):
			records = append(records, id)
		case strings.HasPrefix(kv.Key, "policies/decision-by-"):
			index = append(index, id)
		case strings.HasPrefix(kv.Key, "policies/decision-hours/"):
			hours++
		default:
			t.Errorf("unexpected key %s", kv.Key)
		}
	}
	slices.Sort(records)
	slices.Sort(index)
	return records, index, hours
}

// batch is records written before a collector pass: their IDs and how
// long before the pass each was made.
type batch struct {
	ids []string
	ago []time.Duration
}

type retentionCase struct {
	name       string
	maxRecords int
	maxAge     time.Duration
	// passes are collected one after the other at now, each after its
	// records were written.
	passes      []batch
	wantRemoved []int
	wantKept    string // sorted IDs
	wantHours   int
}

// TestDecisionRetention: Collect removes the records beyond the count
// bound and older than the age bound, with their index keys and the
// markers of hours it emptied, and nothing else; on the memory store and
// on Consul.
func TestDecisionRetention(t *testing.T) {
	// now is mid-hour, so the current hour is open and earlier ones closed.
	now := time.Now().UTC().Truncate(time.Hour).Add(30 * time.Minute)
	tests := []retentionCase{
		{name: "age", maxRecords: 100, maxAge: time.Hour,
			passes: []batch{{ids: []string{"h3", "h2", "h90m", "m30", "m1"},
				ago: []time.Duration{3 * time.Hour, 2 * time.Hour, 90 * time.Minute, 30 * time.Minute, time.Minute}}},
			wantRemoved: []int{3}, wantKept: "m1,m30", wantHours: 1},
		{name: "age cuts an hour in two", maxRecords: 100, maxAge: 45 * time.Minute,
			passes: []batch{{ids: []string{"m70", "m50", "m40", "m10"},
				ago: []time.Duration{70 * time.Minute, 50 * time.Minute, 40 * time.Minute, 10 * time.Minute}}},
			wantRemoved: []int{2}, wantKept: "m10,m40", wantHours: 2},
		{name: "count keeps the newest", maxRecords: 3, maxAge: 24 * time.Hour,
			passes: []batch{{ids: []string{"a", "b", "c", "d", "e"},
				ago: []time.Duration{5 * time.Hour, 4 * time.Hour, 3 * time.Hour, 2 * time.Minute, time.Minute}}},
			wantRemoved: []int{2}, wantKept: "c,d,e", wantHours: 2},
		{name: "count over hours counted on an earlier pass", maxRecords: 5, maxAge: 24 * time.Hour,
			passes: []batch{
				{ids: []string{"a1", "a2", "a3", "a4"}, ago: []time.Duration{3 * time.Hour, 3*time.Hour - time.Minute, 2 * time.Hour, 2*time.Hour - time.Minute}},
				{ids: []string{"b1", "b2", "b3"}, ago: []time.Duration{3 * time.Minute, 2 * time.Minute, time.Minute}}},
			wantRemoved: []int{0, 2}, wantKept: "a3,a4,b1,b2,b3", wantHours: 2},
		{name: "nothing past retention", maxRecords: 10, maxAge: 24 * time.Hour,
			passes: []batch{
				{ids: []string{"a", "b"}, ago: []time.Duration{5 * time.Hour, time.Hour}},
				{ids: []string{"c"}, ago: []time.Duration{time.Minute}}},
			wantRemoved: []int{0, 0}, wantKept: "a,b,c", wantHours: 3},
	}
	for _, be := range []struct {
		name string
		open func(t *testing.T) func(run int) registry.Store
	}{
		{"memory", func(*testing.T) func(int) registry.Store {
			return func(int) registry.Store { return registry.NewMemory() }
		}},
		{"consul", func(t *testing.T) func(int) registry.Store {
			if testing.Short() {
				t.Skip("starts a Consul agent")
			}
			agent := consultest.Start(t)
			log := logrus.New()
			log.SetOutput(io.Discard)
			return func(run int) registry.Store {
				s, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: fmt.Sprintf("retention-%d/", run)}, log)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		}},
	} {
		t.Run(be.name, func(t *testing.T) {
			open := be.open(t)
			for run, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { testRetention(t, open(run), now, tc) })
			}
		})
	}
}

func testRetention(t *testing.T, store registry.Store, now time.Time, tc retentionCase) {
	ctx := context.Background()
	ds := policy.NewDecisions(store, tc.maxRecords, tc.maxAge)
	for i, b := range tc.passes {
		for j, id := range b.ids {
			if err := ds.Record(ctx, record(id, "a-"+id, "dep", now.Add(-b.ago[j]))); err != nil {
				t.Fatal(err)
			}
		}
		n, err := ds.Collect(ctx, now)
		if err != nil {
			t.Fatal(err)
		}
		if n != tc.wantRemoved[i] {
			t.Errorf("pass %d removed %d, want %d", i+1, n, tc.wantRemoved[i])
		}
	}
	records, index, hours := decisionKeys(t, store)
	if got := strings.Join(records, ","); got != tc.wantKept {
		t.Errorf("kept %s, want %s", got, tc.wantKept)
	}
	var wantIndex []string
	for _, id := range records { // project, resource, deployment
		wantIndex = append(wantIndex, id, id, id)
	}
	if !slices.Equal(index, wantIndex) {
		t.Errorf("index keys of %v, want three for each kept record", index)
	}
	if hours != tc.wantHours {
		t.Errorf("%d hour markers, want %d", hours, tc.wantHours)
	}
}

// TestDecisionLegacyLayout: the first pass removes what the layout before
// hour buckets stored.
func TestDecisionLegacyLayout(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	for _, k := range []string{"policies/decisions/20260101T000000.000000000Z-x", "policies/decision-index/resource/r/20260101T000000.000000000Z-x"} {
		if _, err := store.Put(ctx, k, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	ds := policy.NewDecisions(store, 0, 0)
	if err := ds.Record(ctx, record("new", "a-1", "", time.Now())); err != nil {
		t.Fatal(err)
	}
	n, err := ds.Collect(ctx, time.Now())
	if err != nil || n != 1 {
		t.Fatalf("removed %d (%v), want the legacy record", n, err)
	}
	if records, index, _ := decisionKeys(t, store); fmt.Sprint(records, index) != "[new] [new new]" {
		t.Fatalf("left %v %v, want only the new record and its index keys", records, index)
	}
}

// countingStore counts the keys a query reads.
type countingStore struct {
	policy.Store
	read atomic.Int64
}

func (s *countingStore) Get(ctx context.Context, key string) (registry.KV, error) {
	s.read.Add(1)
	return s.Store.Get(ctx, key)
}

func (s *countingStore) List(ctx context.Context, prefix string) ([]registry.KV, uint64, error) {
	kvs, idx, err := s.Store.List(ctx, prefix)
	s.read.Add(int64(len(kvs)))
	return kvs, idx, err
}

// BenchmarkDecisionQuery stores 10 and then 10,000 decisions (spread over
// two days, 50 projects and 1,000 resources) beside the ten of one
// project, one resource of which has three, all in the last ten minutes,
// and reports the store keys each query reads: the same for a resource
// or a project whatever else is stored; a cloud-wide time range reads
// the hour markers too (one per hour holding decisions, at most the
// retention's hours). ns/op follows on both backends.
func BenchmarkDecisionQuery(b *testing.B) {
	parent := b // the agent outlives each backend's sub-benchmarks
	var agent *consultest.Agent
	backends := []struct {
		name string
		open func(b *testing.B, run string) policy.Store
	}{
		{"memory", func(*testing.B, string) policy.Store { return registry.NewMemory() }},
		{"consul", func(b *testing.B, run string) policy.Store {
			if testing.Short() {
				b.Skip("starts a Consul agent")
			}
			if agent == nil {
				agent = consultest.Start(parent)
			}
			log := logrus.New()
			log.SetOutput(io.Discard)
			s, err := consul.New(consul.Config{Address: agent.Addr, KeyPrefix: "bench-" + run + "/"}, log)
			if err != nil {
				b.Fatal(err)
			}
			return s
		}},
	}
	now := time.Now().UTC()
	for _, be := range backends {
		for _, stored := range []int{10, 10000} {
			b.Run(fmt.Sprintf("%s/stored=%d", be.name, stored), func(b *testing.B) {
				store := &countingStore{Store: be.open(b, strconv.Itoa(stored))}
				ds := policy.NewDecisions(store, 2*stored, 0)
				loadDecisions(b, ds, stored, now)
				for _, q := range []struct {
					name string
					q    policy.Query
					want int
				}{
					{"resource", policy.Query{Resource: "t-mine"}, 3},
					{"project", policy.Query{Project: "target"}, 10},
					{"last-15m", policy.Query{Since: now.Add(-15 * time.Minute)}, 10},
				} {
					b.Run(q.name, func(b *testing.B) {
						store.read.Store(0)
						for b.Loop() {
							recs, err := ds.Query(context.Background(), q.q)
							if err != nil || len(recs) != q.want {
								b.Fatalf("%d records (%v), want %d", len(recs), err, q.want)
							}
						}
						b.ReportMetric(float64(store.read.Load())/float64(b.N), "keys-read/op")
					})
				}
			})
		}
	}
}

// loadDecisions records stored decisions of other projects, in parallel,
// and the target project's ten.
func loadDecisions(b *testing.B, ds *policy.Decisions, stored int, now time.Time) {
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < stored; i += 8 {
				r := record(fmt.Sprintf("o%d", i), fmt.Sprintf("x-%d", i%1000), "", now.Add(-time.Hour-time.Duration(i)*48*time.Hour/time.Duration(stored)))
				r.Project = fmt.Sprintf("other-%d", i%50)
				if err := ds.Record(ctx, r); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	for i := range 10 {
		res := fmt.Sprintf("t-%d", i)
		if i < 3 {
			res = "t-mine"
		}
		r := record(fmt.Sprintf("t%d", i), res, "", now.Add(-time.Duration(i)*time.Minute))
		r.Project = "target"
		if err := ds.Record(ctx, r); err != nil {
			b.Fatal(err)
		}
	}
}
