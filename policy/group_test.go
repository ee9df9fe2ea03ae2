package policy_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// TestGroupGate checks that a server group's policy holds whatever the
// placement policy decides: affinity keeps its peer, anti-affinity
// avoids its members' peers (up to max_server_per_host), the soft ones
// only reorder.
func TestGroupGate(t *testing.T) {
	peer := func(id string, freeRAM int64) registry.Peer {
		return registry.Peer{ID: id, Name: id, Status: registry.StatusUp,
			Capacity: registry.Capacity{RAMMiB: registry.Resource{Total: 100000, Used: 100000 - freeRAM}}}
	}
	// a has the most room, so the policy alone orders a, b, c.
	candidates := func() []registry.Peer { return []registry.Peer{peer("a", 90000), peer("b", 50000), peer("c", 10000)} }
	cases := []struct {
		name    string
		group   *policy.Group
		allowed []string
		reason  string // of a rejected peer
	}{
		{"no group", nil, []string{"a", "b", "c"}, ""},
		{"affinity, first member", &policy.Group{ID: "g", Policy: policy.GroupAffinity}, []string{"a", "b", "c"}, ""},
		{"affinity", &policy.Group{ID: "g", Policy: policy.GroupAffinity, Peers: map[string]int{"c": 2}}, []string{"c"}, "its members run on another peer"},
		{"anti-affinity", &policy.Group{ID: "g", Policy: policy.GroupAntiAffinity, Peers: map[string]int{"a": 1}}, []string{"b", "c"}, "at most 1 allowed"},
		{"anti-affinity, full", &policy.Group{ID: "g", Policy: policy.GroupAntiAffinity, Peers: map[string]int{"a": 1, "b": 1, "c": 1}}, nil, "holds 1 of its members"},
		{"anti-affinity, max 2 per peer", &policy.Group{ID: "g", Policy: policy.GroupAntiAffinity, Peers: map[string]int{"a": 2, "b": 1}, MaxPerPeer: 2}, []string{"b", "c"}, "at most 2 allowed"},
		{"soft-affinity", &policy.Group{ID: "g", Policy: policy.GroupSoftAffinity, Peers: map[string]int{"c": 2, "b": 1}}, []string{"c", "b", "a"}, ""},
		{"soft-anti-affinity", &policy.Group{ID: "g", Policy: policy.GroupSoftAntiAffinity, Peers: map[string]int{"a": 2, "b": 1}}, []string{"c", "b", "a"}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d, err := policy.Default{}.Place(context.Background(), policy.Request{Kind: "server", RAMMiB: 1, Group: tc.group}, candidates())
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range d.Allowed() {
				got = append(got, p.ID)
			}
			if !slices.Equal(got, tc.allowed) {
				t.Fatalf("allowed %v, want %v (%s)", got, tc.allowed, d.Explain())
			}
			if tc.reason != "" && !strings.Contains(d.Explain(), tc.reason) {
				t.Fatalf("rejections %q, want one saying %q", d.Explain(), tc.reason)
			}
		})
	}
}
