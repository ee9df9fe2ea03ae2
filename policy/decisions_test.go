package policy_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

func record(id, resource, deployment string, at time.Time) policy.Record {
	return policy.Record{ID: id, Timestamp: at, Policy: "stock", Kind: "server", Project: "p-" + resource[:1], Resource: resource, Deployment: deployment,
		Order: []string{"a"}, Verdicts: []policy.VerdictRecord{{PeerID: "a", PeerName: "a", Allowed: true, Score: 50, Reasons: []string{"score 50"}}}}
}

func TestDecisionQueries(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	ds := policy.NewDecisions(store, 0, 0)
	t0 := time.Now().UTC().Add(-time.Hour)
	for i, r := range []policy.Record{
		record("d1", "a-srv1", "dep1", t0),
		record("d2", "a-srv2", "dep1", t0.Add(time.Minute)),
		record("d3", "b-srv3", "", t0.Add(2*time.Minute)),
		record("d4", "a-srv1", "", t0.Add(3*time.Minute)), // a retried placement of srv1
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
		{"all, newest first", policy.Query{}, "d4,d3,d2,d1"},
		{"by resource", policy.Query{Resource: "a-srv1"}, "d4,d1"},
		{"by deployment", policy.Query{Deployment: "dep1"}, "d2,d1"},
		{"since", policy.Query{Since: t0.Add(90 * time.Second)}, "d4,d3"},
		{"until", policy.Query{Until: t0.Add(30 * time.Second)}, "d1"},
		{"range and resource", policy.Query{Resource: "a-srv1", Since: t0.Add(time.Second)}, "d4"},
		{"a project sees its own", policy.Query{Project: "p-b"}, "d3"},
		{"limit", policy.Query{Limit: 1}, "d4"},
		{"unknown resource", policy.Query{Resource: "nope"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			recs, err := ds.Query(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			for i, r := range recs {
				if i > 0 {
					got += ","
				}
				got += r.ID
			}
			if got != tc.want {
				t.Fatalf("= %s, want %s", got, tc.want)
			}
		})
	}
}

// TestDecisionRetention: records beyond the count bound, and older than
// the age bound, are pruned with their index keys.
func TestDecisionRetention(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemory()
	ds := policy.NewDecisions(store, 5, time.Hour)
	now := time.Now().UTC()
	if err := ds.Record(ctx, record("old", "a-old", "dep", now.Add(-2*time.Hour))); err != nil {
		t.Fatal(err)
	}
	for i := range 8 {
		if err := ds.Record(ctx, record(fmt.Sprintf("n%d", i), fmt.Sprintf("a-%d", i), "dep", now.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	if err := ds.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := ds.Query(ctx, policy.Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || recs[0].ID != "n7" || recs[4].ID != "n3" {
		t.Fatalf("kept %d records, newest %v; want n7..n3", len(recs), recs)
	}
	byDep, err := ds.Query(ctx, policy.Query{Deployment: "dep"})
	if err != nil || len(byDep) != 5 {
		t.Fatalf("by deployment %d records (%v), want 5", len(byDep), err)
	}
	kvs, _, err := store.List(ctx, "policies/decision-index/")
	if err != nil || len(kvs) != 10 { // 5 records x (resource, deployment)
		t.Fatalf("index keys %d (%v), want 10: pruned records leave none", len(kvs), err)
	}
}
