package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
)

const oneServer = `eve_template_version: 1
resources:
  web:
    type: Server
    placement: {peer: local}
    properties: {flavor: m1.nano, image: ` + localcloud.SeedImageName + `}
`

// TestTimeoutRollsBack: an attempt still running at its deadline (the
// server create never returns) fails as timed out and rolls back; the
// deadline is recorded, so a resumed run keeps it.
func TestTimeoutRollsBack(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	e := env.engine("b1")
	d, _, err := e.Create(ctx, "slow", owner("p1"), Spec{Source: oneServer, TimeoutMinutes: 5})
	if err != nil {
		t.Fatal(err)
	}
	if d.Deadline.IsZero() || d.Deadline.Before(time.Now().Add(4*time.Minute)) {
		t.Fatalf("deadline %v for a 5 minute timeout", d.Deadline)
	}
	// Bring the recorded deadline close, as if the minutes had passed.
	kv, err := env.Store.Get(ctx, recordKey(d.ID))
	if err != nil {
		t.Fatal(err)
	}
	var rec Deployment
	_ = json.Unmarshal(kv.Value, &rec)
	rec.Deadline = time.Now().Add(300 * time.Millisecond)
	b, _ := json.Marshal(rec)
	if _, err := env.Store.Put(ctx, recordKey(d.ID), b); err != nil {
		t.Fatal(err)
	}
	env.hooks["local"].set(func(ctx context.Context, kind string) error {
		<-ctx.Done() // a create that never answers
		return ctx.Err()
	}, nil)
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusFailed || d.Error != "rolled back: timed out" {
		t.Fatalf("%s %q, want FAILED, rolled back: timed out", d.Status, d.Error)
	}
	if len(d.Resources) != 0 {
		t.Errorf("left after the rollback: %v", d.Resources)
	}
}

// TestCancelAndMarkUnhealthyStates: Cancel takes only an update in
// progress, MarkUnhealthy only a settled deployment's known resource.
func TestCancelAndMarkUnhealthyStates(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	e := env.engine("b1")
	d, _, err := e.Create(ctx, "one", owner("p1"), Spec{Source: oneServer})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Cancel(ctx, d.ID); !errors.Is(err, ErrState) {
		t.Errorf("cancel of a first apply: %v", err)
	}
	if _, err := e.MarkUnhealthy(ctx, d.ID, "web", true, ""); !errors.Is(err, ErrState) {
		t.Errorf("mark of a pending deployment: %v", err)
	}
	runToEnd(t, e, ctx, d.ID)
	if _, err := e.MarkUnhealthy(ctx, d.ID, "nope", true, ""); !errors.Is(err, ErrNoResource) {
		t.Errorf("mark of an unknown resource: %v", err)
	}
	d, err = e.MarkUnhealthy(ctx, d.ID, "web", true, "")
	if err != nil || d.Resources["web"].Unhealthy != "marked unhealthy" {
		t.Fatalf("mark: %v", err)
	}
	_, plan, err := e.Update(ctx, d.ID, d.Spec)
	if err != nil || len(plan.Steps) != 1 || plan.Steps[0].Action != ActReplace || !strings.Contains(strings.Join(plan.Steps[0].Reasons, " "), "marked unhealthy") {
		t.Fatalf("plan after the mark: %+v %v", plan, err)
	}
	if _, err := e.Cancel(ctx, d.ID); err != nil {
		t.Fatalf("cancel of an update: %v", err)
	}
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusFailed || d.Error != "rolled back: update cancelled" {
		t.Errorf("after cancel: %s %q", d.Status, d.Error)
	}
}
