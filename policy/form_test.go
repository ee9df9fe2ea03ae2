package policy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

func refs(rs []ast.Ref) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.String()
	}
	return out
}

// TestAnalyze: the form, the cacheability and the paths the per-peer
// rules read come from the compiled modules.
func TestAnalyze(t *testing.T) {
	stock, err := compile(context.Background(), StockVersion, Stock())
	if err != nil {
		t.Fatal(err)
	}
	p := stock.plan
	if !p.perPeer || !p.cacheable || !p.deny || !p.score || !p.requestDeny {
		t.Fatalf("stock plan = %+v, want per-peer, cacheable, deny, score and request_deny", p)
	}
	// What the stock per-peer rules read: never usage or quota (read once
	// per decision by request_deny), never raw capacity (only its coarse
	// facts), never the vCPUs' room (the score reads the room of the
	// dimension the request needs most, by name).
	for _, c := range []struct {
		name      string
		got, want []string
	}{
		{"deny of the peer", refs(p.denyReads.peer), []string{`labels`, `name`, `shortfall.disk_gib`, `shortfall.instances`, `shortfall.ram_mib`, `shortfall.vcpus`, `status`}},
		{"deny of the request", refs(p.denyReads.request), []string{`availability_zone`, `hints.required_labels`, `image.properties.architecture`}},
		{"score of the peer", refs(p.scoreReads.peer), []string{`cost`, `id`, `labels`, `private`, `room.disk_gib`, `room.ram_mib`, `status`}},
		{"score of the request", refs(p.scoreReads.request), []string{`kind`, `hints.preferred_labels`, `image.id`, `image.peers`, `spread.group`, `spread.peers`}},
		{"score of the pool", refs(p.scoreReads.pool), []string{`spread_min`, `public_cost.max`, `public_cost.min`}},
	} {
		got := slices.Sorted(slices.Values(c.got))
		want := slices.Sorted(slices.Values(c.want))
		if !slices.Equal(got, toRefStrings(want)) {
			t.Errorf("%s reads %q, want %q", c.name, got, want)
		}
	}
	tests := []struct {
		name               string
		rego               string
		perPeer, cacheable bool
	}{
		{"reads input.peers: the pool form", "deny[p.id] contains \"x\" if some p in input.peers", false, true},
		{"reads input.peer: per peer", "deny contains \"x\" if input.peer.status == \"down\"", true, true},
		{"reads input.pool: per peer", "score := input.pool.allowed", true, true},
		{"reads the whole input: the pool form", "deny contains \"x\" if { some k, _ in input; k == \"peer\" }", false, true},
		{"reads input.peer and input.peers: the pool form", "deny contains \"x\" if input.peer.a == count(input.peers)", false, true},
		{"a helper reads input.peers: the pool form", "deny contains \"x\" if input.peer.a == n\nn := count(input.peers)", false, true},
		{"time.now_ns: never cached", "deny contains \"x\" if input.peer.until < time.now_ns()", true, false},
		{"rand.intn in a helper: never cached", "score := r if input.peer.a\nr := rand.intn(\"x\", 100)", true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := compile(context.Background(), "t", Bundle{Modules: map[string]string{"p.rego": "package cloudmux.placement\n" + tc.rego + "\n"}})
			if err != nil {
				t.Fatal(err)
			}
			if c.plan.perPeer != tc.perPeer || c.plan.cacheable != tc.cacheable {
				t.Fatalf("per-peer %v cacheable %v, want %v and %v", c.plan.perPeer, c.plan.cacheable, tc.perPeer, tc.cacheable)
			}
		})
	}
}

func toRefStrings(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = fmt.Sprint(ast.MustParseRef("x." + p)[1:])
	}
	return out
}

// TestPerPeerMisreadsRefused: a per-peer rule reading what its evaluation
// does not give it (deny reading input.pool, request_deny reading
// input.peer) would be undefined for every peer, a deny that silently never
// denies: the policy is refused at compile, naming the rule.
func TestPerPeerMisreadsRefused(t *testing.T) {
	tests := []struct {
		name, rego, want string // want "" compiles
	}{
		{"deny reads input.pool", "deny contains \"x\" if input.pool.allowed > 3", "data.cloudmux.placement.deny reads input.pool"},
		{"a helper of deny reads input.pool", "deny contains \"x\" if input.peer.a > n\nn := input.pool.allowed", "data.cloudmux.placement.deny reads input.pool"},
		{"request_deny reads input.peer", "score := 1 if input.peer.a\nrequest_deny contains \"x\" if input.peer.b", "data.cloudmux.placement.request_deny reads input.peer"},
		{"score reads input.pool", "deny contains \"x\" if input.peer.a\nscore := input.pool.allowed", ""},
		{"the pool form may read anything", "deny[p.id] contains \"x\" if { some p in input.peers; input.pool }", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compile(context.Background(), "t", Bundle{Modules: map[string]string{"p.rego": "package cloudmux.placement\n" + tc.rego + "\n"}})
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
		})
	}
}
