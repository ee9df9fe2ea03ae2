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
		d, _, err := e.Create(ctx, name, owner("p1"), Spec{Template: v.Ref(), Source: v.Source})
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
	gone = runToEnd(t, e, ctx, gone.ID)
	if gone.Status != StatusDeleted {
		t.Fatalf("delete: %s %s", gone.Status, gone.Error)
	}
	goneEvents, liveEvents := keysUnder(t, env, eventPrefix+gone.ID+"/"), keysUnder(t, env, eventPrefix+live.ID+"/")
	if liveEvents < 3 || goneEvents < 3 {
		t.Fatalf("events: gone %d, live %d", goneEvents, liveEvents)
	}
	deleted := gone.UpdatedAt
	for _, tc := range []struct {
		name      string
		retention time.Duration
		maxEvents int
		now       time.Time
		removed   int
		goneKept  bool
	}{
		{"within retention", time.Hour, 0, deleted.Add(59 * time.Minute), 0, true},
		{"past retention, logs bounded", time.Hour, 2, deleted.Add(time.Hour), goneEvents + 1 + liveEvents - 2, false},
		{"nothing left to do", time.Hour, 2, deleted.Add(2 * time.Hour), 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := e.Collector(tc.retention, tc.maxEvents).Collect(ctx, tc.now)
			if err != nil || n != tc.removed {
				t.Fatalf("removed %d (%v), want %d", n, err, tc.removed)
			}
			_, err = e.Get(ctx, gone.ID)
			if kept := err == nil; kept != tc.goneKept {
				t.Fatalf("the deleted deployment kept: %v (%v)", kept, err)
			}
			listed := 1
			if tc.goneKept {
				listed = 2
			} else {
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
			if ds, err := e.List(ctx, "p1"); err != nil || len(ds) != listed {
				t.Fatalf("p1 lists %d deployments (%v), want %d", len(ds), err, listed)
			}
		})
	}
	// The newest events survive trimming, so a later run numbers on.
	evs, _, err := e.Events(ctx, live.ID, 0)
	if err != nil || len(evs) != 2 || evs[1].Action != "complete" {
		t.Fatalf("live's events after trimming: %+v %v", evs, err)
	}
}

// TestProjectListBackfill: a deployment recorded before the per-project
// lists existed is listed in its project once an engine resumes.
func TestProjectListBackfill(t *testing.T) {
	env := newEnv(t)
	e := env.engine("broker-1")
	old := &Deployment{ID: "legacy-1", Name: "legacy", Project: "p1", Status: StatusComplete, Goal: "apply",
		Resources: map[string]*Resource{}, CreatedAt: time.Now().UTC(), UpdatedAt: time.Now().UTC()}
	b, _ := json.Marshal(old)
	if _, err := env.Store.Put(env.Ctx, recordKey(old.ID), b); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		resume bool
		want   int
	}{
		{"before", false, 0},
		{"after the first resume", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.resume {
				e.Resume(env.Ctx)
			}
			ds, err := e.List(env.Ctx, "p1")
			if err != nil || len(ds) != tc.want {
				t.Fatalf("p1 lists %d (%v), want %d", len(ds), err, tc.want)
			}
			if others, _ := e.List(env.Ctx, "p2"); len(others) != 0 {
				t.Fatalf("p2 lists %d", len(others))
			}
		})
	}
}
