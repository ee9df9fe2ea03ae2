package deploy

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/templates/focus"
)

const gcTemplate = `eve_template_version: 1
resources:
  net: {type: Network}
`

// keysUnder counts the Store keys under prefix.
func keysUnder(t *testing.T, env *testEnv, prefix string) int {
	t.Helper()
	kvs, _, err := env.Store.List(env.Ctx, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return len(kvs)
}

func TestGarbageCollection(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	cat := &focus.Catalog{Store: env.Store}
	v, _, err := cat.Push(ctx, "p1", "net", []byte(gcTemplate), "alice")
	if err != nil {
		t.Fatal(err)
	}
	e := env.engine("broker-1")
	e.Resolver, e.Uses = cat, cat
	deploy := func(name string) *Deployment {
		d, _, err := e.Create(ctx, name, "p1", Spec{Template: v.Ref(), Source: v.Source})
		if err != nil {
			t.Fatal(err)
		}
		if d = runToEnd(t, e, ctx, d.ID); d.Status != StatusComplete {
			t.Fatalf("%s: %s %s", name, d.Status, d.Error)
		}
		return d
	}
	gone, live := deploy("gone"), deploy("live")
	if _, err := e.Delete(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if d := runToEnd(t, e, ctx, gone.ID); d.Status != StatusDeleted {
		t.Fatalf("delete: %s %s", d.Status, d.Error)
	}
	// A deployment written before the per-project list existed.
	legacy := &Deployment{ID: "legacy-1", Name: "legacy", Project: "p1", Status: StatusComplete, Goal: "apply",
		Resources: map[string]*Resource{}, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	b, _ := json.Marshal(legacy)
	if _, err := env.Store.Put(ctx, recordKey(legacy.ID), b); err != nil {
		t.Fatal(err)
	}
	if ds, _ := e.List(ctx, "p1"); len(ds) != 2 {
		t.Fatalf("p1 lists %d deployments before the sweep, want the 2 it made", len(ds))
	}
	liveEvents := keysUnder(t, env, eventPrefix+live.ID+"/")
	if liveEvents < 3 {
		t.Fatalf("live has %d events", liveEvents)
	}

	for _, tc := range []struct {
		name      string
		retention time.Duration
		maxEvents int
		want      GCReport
		goneKept  bool
	}{
		{"within retention", time.Hour, 0, GCReport{Indexed: 1}, true},
		{"past retention, logs bounded", time.Nanosecond, 2, GCReport{Deployments: 1, Events: keysUnder(t, env, eventPrefix+gone.ID+"/") + liveEvents - 2}, false},
		{"nothing left to do", time.Nanosecond, 2, GCReport{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.Retention, e.MaxEvents = tc.retention, tc.maxEvents
			rep, err := e.Collect(ctx, time.Time{})
			if err != nil {
				t.Fatal(err)
			}
			if rep != tc.want {
				t.Fatalf("report %+v, want %+v", rep, tc.want)
			}
			_, err = e.Get(ctx, gone.ID)
			if kept := err == nil; kept != tc.goneKept {
				t.Fatalf("the deleted deployment kept: %v (%v)", kept, err)
			}
			if !tc.goneKept {
				if !errors.Is(err, ErrNotFound) {
					t.Fatal(err)
				}
				for _, prefix := range []string{eventPrefix + gone.ID + "/", projectKey("p1", gone.ID), lockPrefix + gone.ID} {
					if n := keysUnder(t, env, prefix); n != 0 {
						t.Fatalf("%d keys left under %s", n, prefix)
					}
				}
				if n := keysUnder(t, env, eventPrefix+live.ID+"/"); n != 2 {
					t.Fatalf("live's log has %d events, want the bound 2", n)
				}
				uses, err := cat.UsedBy(ctx, "p1", "net", "1", false)
				if err != nil || len(uses) != 1 || uses[0].Ref != live.ID {
					t.Fatalf("net@1 used by %+v %v", uses, err)
				}
			}
			ds, err := e.List(ctx, "p1")
			if err != nil {
				t.Fatal(err)
			}
			wantListed := 2 // live and legacy
			if tc.goneKept {
				wantListed = 3
			}
			if len(ds) != wantListed {
				t.Fatalf("p1 lists %d deployments, want %d", len(ds), wantListed)
			}
		})
	}
	// The newest event survives trimming, so a later run numbers on.
	evs, _, err := e.Events(ctx, live.ID, 0)
	if err != nil || len(evs) != 2 || evs[1].Action != "complete" {
		t.Fatalf("live's events after trimming: %+v %v", evs, err)
	}
}

func TestGarbageCollectorLease(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	e1, e2 := env.engine("broker-1"), env.engine("broker-2")
	e1.Retention, e2.Retention = time.Nanosecond, time.Nanosecond
	gone := &Deployment{ID: "gone-1", Project: "p1", Status: StatusDeleted, UpdatedAt: time.Now().UTC()}
	b, _ := json.Marshal(gone)
	if _, err := env.Store.Put(ctx, recordKey(gone.ID), b); err != nil {
		t.Fatal(err)
	}
	c1, c2 := &collector{e: e1}, &collector{e: e2}
	defer c1.release(ctx)
	defer c2.release(ctx)
	for _, tc := range []struct {
		name  string
		c     *collector
		swept bool
		want  GCReport
	}{
		{"broker-1 takes the lease and sweeps", c1, true, GCReport{Deployments: 1}},
		{"broker-2 stays out while broker-1 holds it", c2, false, GCReport{}},
		{"broker-1 keeps it", c1, true, GCReport{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			swept, rep, err := tc.c.tick(ctx)
			if err != nil || swept != tc.swept || rep != tc.want {
				t.Fatalf("swept %v, %+v, %v; want %v, %+v", swept, rep, err, tc.swept, tc.want)
			}
		})
	}
	// broker-1 goes away: broker-2 becomes the collector.
	c1.release(ctx)
	if swept, _, err := c2.tick(ctx); !swept || err != nil {
		t.Fatalf("broker-2 after broker-1 left: swept %v, %v", swept, err)
	}
}
