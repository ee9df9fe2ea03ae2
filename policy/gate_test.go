package policy

import (
	"context"
	"testing"

	"github.com/cloudmux/cloudmux/registry"
)

// permissive allows every peer: an admin's policy that forgot health.
const permissive = `package cloudmux.placement

import rego.v1

deny[p.id] contains "never" if {
	some p in input.peers
	p.name == "no such peer"
}

score[p.id] := 50 if {
	some p in input.peers
}
`

// TestHealthGatedInGo: a policy that allows every peer still cannot place
// on a down or drained one; the refusal names the status.
func TestHealthGatedInGo(t *testing.T) {
	ctx := context.Background()
	e := permissiveEngine(t)
	peers := []registry.Peer{
		{ID: "a", Name: "a", Status: registry.StatusDown},
		{ID: "b", Name: "b", Status: registry.StatusUp},
		{ID: "c", Name: "c", Status: registry.StatusMaintenance},
		{ID: "d", Name: "d", Status: registry.StatusDegraded},
	}
	tests := []struct {
		name  string
		place func() (Decision, error)
	}{
		{name: "place", place: func() (Decision, error) { return e.Place(ctx, Request{Kind: "server"}, peers) }},
		{name: "explain", place: func() (Decision, error) { return e.Explain(ctx, "", Request{Kind: "server"}, peers) }},
		{name: "default placer", place: func() (Decision, error) { return Default{}.Place(ctx, Request{Kind: "server"}, peers) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.place()
			if err != nil {
				t.Fatal(err)
			}
			allowed := map[string]bool{}
			for _, p := range d.Allowed() {
				allowed[p.ID] = true
			}
			if len(allowed) != 2 || !allowed["b"] || !allowed["d"] {
				t.Fatalf("allowed %v, want b and d", allowed)
			}
			for _, v := range d.Verdicts {
				if !v.Allowed && (len(v.Reasons) == 0 || v.Reasons[0] != "status is "+string(v.Peer.Status)) {
					t.Fatalf("%s rejected with %v, want its status first", v.Peer.ID, v.Reasons)
				}
			}
			if !d.Verdicts[0].Allowed || !d.Verdicts[1].Allowed {
				t.Fatalf("allowed peers not first: %+v", d.Verdicts)
			}
		})
	}
}

// TestGroupGatedInGo: a policy that allows every peer still keeps an
// anti-affinity group off the peer holding its member, and the policy
// sees the group in input.request.group.
func TestGroupGatedInGo(t *testing.T) {
	ctx := context.Background()
	e := permissiveEngine(t)
	peers := []registry.Peer{{ID: "a", Name: "a", Status: registry.StatusUp}, {ID: "b", Name: "b", Status: registry.StatusUp}}
	req := Request{Kind: "server", Group: &Group{ID: "g1", Policy: GroupAntiAffinity, Peers: map[string]int{"a": 1}}}
	for _, tt := range []struct {
		name  string
		place func() (Decision, error)
	}{
		{"place", func() (Decision, error) { return e.Place(ctx, req, peers) }},
		{"explain", func() (Decision, error) { return e.Explain(ctx, "", req, peers) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := tt.place()
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Allowed(); len(got) != 1 || got[0].ID != "b" {
				t.Fatalf("allowed %v, want only b: %s", got, d.Explain())
			}
		})
	}
	in := mustJSON(Input(req, peers)).(map[string]any)["request"].(map[string]any)["group"].(map[string]any)
	if in["id"] != "g1" || in["policy"] != GroupAntiAffinity || in["peers"].(map[string]any)["a"] == nil {
		t.Fatalf("input.request.group = %v", in)
	}
}

// permissiveEngine is an engine running the permissive policy.
func permissiveEngine(t *testing.T) *Engine {
	t.Helper()
	ctx := context.Background()
	e, err := NewEngine(ctx, EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := compile(ctx, "permissive", Bundle{Modules: map[string]string{"placement.rego": permissive}})
	if err != nil {
		t.Fatal(err)
	}
	e.use(c)
	return e
}
