package policy

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Server group policies (Nova's os-server-groups), across peers: a peer
// stands for Nova's host.
const (
	GroupAffinity         = "affinity"
	GroupAntiAffinity     = "anti-affinity"
	GroupSoftAffinity     = "soft-affinity"
	GroupSoftAntiAffinity = "soft-anti-affinity"
)

// Group is the server group a new server joins: its policy and where its
// members run. It is enforced in Go on every decision (groupGate), after
// the policy decided, like peer health: a policy an admin writes may be
// stricter, never looser. The policy sees it as input.request.group.
type Group struct {
	ID     string
	Policy string
	// Peers counts the group's members by peer ID.
	Peers map[string]int
	// MaxPerPeer is anti-affinity's max_server_per_host rule (Nova 2.64):
	// how many members one peer may hold; 0 is 1.
	MaxPerPeer int
}

// groupTerm is input.request.group; every field present, zero without
// a group.
func groupTerm(g *Group) *ast.Term {
	if g == nil {
		return obj("id", str(""), "policy", str(""), "peers", ast.InternedEmptyObject, "max_per_peer", num(0))
	}
	peers := make([][2]*ast.Term, 0, len(g.Peers))
	for _, id := range slices.Sorted(maps.Keys(g.Peers)) {
		peers = append(peers, [2]*ast.Term{str(id), num(int64(g.Peers[id]))})
	}
	return obj("id", str(g.ID), "policy", str(g.Policy), "peers", ast.ObjectTerm(peers...), "max_per_peer", num(int64(g.MaxPerPeer)))
}

// groupReason is why g rejects peer id ("" when it does not): affinity
// keeps the group on the peer its members run on (any peer for the
// first), anti-affinity off a peer holding MaxPerPeer of them already.
// The soft policies reject nothing; groupGate orders by them.
func groupReason(g *Group, id string) string {
	if g == nil {
		return ""
	}
	switch g.Policy {
	case GroupAffinity:
		if n := total(g.Peers); n > 0 && g.Peers[id] == 0 {
			return fmt.Sprintf("server group %s (affinity): its members run on another peer", g.ID)
		}
	case GroupAntiAffinity:
		if max := cmp.Or(g.MaxPerPeer, 1); g.Peers[id] >= max {
			return fmt.Sprintf("server group %s (anti-affinity): the peer holds %d of its members, at most %d allowed", g.ID, g.Peers[id], max)
		}
	}
	return ""
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// groupGate applies the request's server group to a decision: peers the
// group rules out are rejected with the reason (after the policy's), and
// for the soft policies the allowed peers are ordered by the group first
// (soft-affinity: most members first; soft-anti-affinity: fewest), the
// policy's order among equals, as Nova's weighers outrank the others.
func groupGate(d Decision, g *Group) Decision {
	if g == nil {
		return d
	}
	for i, v := range d.Verdicts {
		why := groupReason(g, v.Peer.ID)
		if why == "" {
			continue
		}
		if !slices.Contains(v.Reasons, why) {
			v.Reasons = append([]string{why}, v.Reasons...)
		}
		v.Allowed, v.Score = false, 0
		d.Verdicts[i] = v
	}
	rank := func(v Verdict) int {
		switch g.Policy {
		case GroupSoftAffinity:
			return -g.Peers[v.Peer.ID]
		case GroupSoftAntiAffinity:
			return g.Peers[v.Peer.ID]
		}
		return 0
	}
	slices.SortStableFunc(d.Verdicts, func(a, b Verdict) int {
		switch {
		case a.Allowed && !b.Allowed:
			return -1
		case b.Allowed && !a.Allowed:
			return 1
		case a.Allowed:
			return cmp.Compare(rank(a), rank(b))
		}
		return 0
	})
	return d
}

// GroupAllows reports whether g lets a new member run on peer id: the
// check the broker repeats when it records the member, against the
// group's membership as it is then (a concurrent create may have taken
// the place the decision saw free).
func GroupAllows(g *Group, id string) (bool, string) {
	why := groupReason(g, id)
	return why == "", why
}
