package deploy

import (
	"testing"

	"github.com/cloudmux/cloudmux/policy"
)

// TestDeployWithTheOPAPlacer runs the two-peer deployment through the
// Rego engine (its stock policy) instead of policy.Default: the engine
// depends on policy.Placer only.
func TestDeployWithTheOPAPlacer(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	opa, err := policy.NewEngine(ctx, policy.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	e := env.engine("b1")
	e.Placer = opa
	d, plan, err := e.Create(ctx, "web", owner("p1"), Spec{Source: webV1})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range plan.Steps {
		if want := map[string]string{"web": "local", "app": "remote", "data": "remote"}[s.Key]; want != "" && s.PeerName != want {
			t.Fatalf("%s on %s, want %s (%v)", s.Key, s.PeerName, want, s.Reasons)
		}
	}
	if d = runToEnd(t, e, ctx, d.ID); d.Status != StatusComplete {
		t.Fatalf("%s: %s", d.Status, d.Error)
	}
	if _, err := e.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if d = runToEnd(t, e, ctx, d.ID); d.Status != StatusDeleted {
		t.Fatalf("%s: %s", d.Status, d.Error)
	}
	if got := env.projectResources(t, "p1"); got["local"]+got["remote"] != 0 {
		t.Fatalf("left behind %v", got)
	}
}
