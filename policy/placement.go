package policy

import (
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/cloudmux/cloudmux/registry"
)

// Request is what is being placed.
type Request struct {
	Kind    string // "server", "volume", ...
	Project string
	// Resources the new thing takes; zero fields are not checked.
	VCPUs, RAMMiB, DiskGiB int
	// AvailabilityZone pins a peer by name (each peer is a zone).
	AvailabilityZone string
	// RequiredLabels must all be on a peer; PreferredLabels raise its score.
	RequiredLabels, PreferredLabels map[string]string

	// The fields below feed the OPA engine (Default ignores them); zero
	// values are fine. See doc.go for the input document they become.

	// User is the requesting user's ID.
	User string
	// ResourceID is the broker ID of the resource being placed: decision
	// records are found by it (GET /v1/decisions?resource=).
	ResourceID string
	// Name is the new resource's name.
	Name string
	// Flavor names the flavor (ID or name) a server is created from; its
	// sizes are VCPUs, RAMMiB and DiskGiB.
	Flavor string
	// Image is the image a server boots from, when any.
	Image *Image
	// Tags are the request's tags.
	Tags []string
	// Hints are further scheduler hints, passed to the policy as they are.
	Hints map[string]string
	// Deployment names the template deployment and resource the request
	// comes from, when it does.
	Deployment *Deployment
	// SpreadPeers counts the replicas of the deployment's spread group
	// already placed, by peer ID.
	SpreadPeers map[string]int
	// Usage is the project's current usage summed over every peer, Quota
	// its limits (a negative limit is unlimited; nil Quota is no quota).
	Usage, Quota *Usage
	// Group is the server group a new server joins, when any: enforced in
	// Go whatever the policy says (see Group).
	Group *Group
}

// Image is what placement knows about an image.
type Image struct {
	ID         string
	Properties map[string]string
	MinRAMMiB  int
	MinDiskGiB int
	// Peers are the IDs of the peers that already hold the image.
	Peers []string
}

// Deployment is the template resource a request places.
type Deployment struct {
	ID       string // deployment ID
	Template string // template name (and version)
	Resource string // resource name in the template
	Replica  int    // replica index, from 0
	// SpreadGroup groups the replicas that spread over peers; empty means
	// deployment ID + "/" + resource.
	SpreadGroup string
}

// Usage counts what a project holds, or may hold.
type Usage struct {
	VCPUs     int `json:"vcpus"`
	RAMMiB    int `json:"ram_mib"`
	DiskGiB   int `json:"disk_gib"`
	Instances int `json:"instances"`
	Volumes   int `json:"volumes"`
}

// Verdict is what placement decided about one candidate peer.
type Verdict struct {
	// Peer points at the candidate in the slice the decision was made
	// over, not a copy: copying every candidate (half a kilobyte each)
	// into every decision was a tenth of a decision's cost. Callers hand
	// Place a slice they do not change while they use the decision.
	Peer    *registry.Peer
	Allowed bool
	// Score is 0-100 for allowed peers; higher is better.
	Score int
	// Reasons say why a peer was rejected (every rule that rejected it) or
	// how it scored.
	Reasons []string
}

// Decision is a placement: every candidate's verdict, allowed peers first,
// best first.
type Decision struct {
	Verdicts []Verdict
	// ID names the decision in the decision log and records (the OPA
	// engine sets it; Default leaves it empty).
	ID string
	// Policy is the policy version that decided.
	Policy string
}

// Allowed returns the allowed peers, best first.
func (d Decision) Allowed() []registry.Peer {
	var out []registry.Peer
	for _, v := range d.Verdicts {
		if v.Allowed {
			out = append(out, *v.Peer)
		}
	}
	return out
}

// Explain summarises the rejections, for an error a user can act on.
func (d Decision) Explain() string {
	s := ""
	for _, v := range d.Verdicts {
		if !v.Allowed {
			s += fmt.Sprintf("; %s: %v", v.Peer.Name, v.Reasons)
		}
	}
	if s == "" {
		return "no peers in the pool"
	}
	return s[2:]
}

// Placer decides where a request may run and where it should: filter, then
// score, like Nomad's feasibility and ranking stack. The OPA engine
// implements it with admin-written Rego; Default is the built-in policy.
type Placer interface {
	Place(ctx context.Context, req Request, candidates []registry.Peer) (Decision, error)
}

// Default places on healthy peers with room, pinned by availability zone
// and required labels when asked, preferring the peer with the most free
// memory (then vCPUs) after placement, and preferred labels.
type Default struct{}

var _ Placer = Default{}

// Place implements Placer.
func (Default) Place(ctx context.Context, req Request, candidates []registry.Peer) (Decision, error) {
	if err := ctx.Err(); err != nil {
		return Decision{}, err
	}
	var d Decision
	for i := range candidates {
		p := &candidates[i]
		v := Verdict{Peer: p}
		reject := func(format string, args ...any) { v.Reasons = append(v.Reasons, fmt.Sprintf(format, args...)) }
		if p.Status != registry.StatusUp && p.Status != registry.StatusDegraded {
			reject("status is %s", p.Status)
		}
		if req.AvailabilityZone != "" && req.AvailabilityZone != p.Name {
			reject("not availability zone %q", req.AvailabilityZone)
		}
		for _, k := range sortedKeys(req.RequiredLabels) {
			if p.Labels[k] != req.RequiredLabels[k] {
				reject("lacks required label %s=%s", k, req.RequiredLabels[k])
			}
		}
		c := p.Capacity
		for _, dim := range []struct {
			name string
			want int
			r    registry.Resource
		}{{"vCPUs", req.VCPUs, c.VCPUs}, {"RAM MiB", req.RAMMiB, c.RAMMiB}, {"disk GiB", req.DiskGiB, c.DiskGiB}} {
			// A peer that reports no total has not said; trust it.
			if dim.want > 0 && dim.r.Total > 0 && dim.r.Free() < int64(dim.want) {
				reject("needs %d %s, %d free", dim.want, dim.name, dim.r.Free())
			}
		}
		if c.Instances.Total > 0 && req.Kind == "server" && c.Instances.Free() < 1 {
			reject("no instance slots free")
		}
		if v.Allowed = len(v.Reasons) == 0; v.Allowed {
			v.Score, v.Reasons = score(req, *p)
		}
		d.Verdicts = append(d.Verdicts, v)
	}
	sort.SliceStable(d.Verdicts, func(i, j int) bool {
		a, b := d.Verdicts[i], d.Verdicts[j]
		if a.Allowed != b.Allowed {
			return a.Allowed
		}
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		return a.Peer.Name < b.Peer.Name
	})
	return groupGate(d, req.Group), nil
}

// score gives 70 points for room left after placement on the dimension
// the request needs most (memory for servers, disk for volumes) as a share
// of the peer's total, 20 for preferred labels held, 10 for being up rather
// than degraded. A peer that reports no total on that dimension gets half
// the room points: unknown is neither best nor worst.
func score(req Request, p registry.Peer) (int, []string) {
	r, want, dim := p.Capacity.RAMMiB, int64(req.RAMMiB), "memory"
	if req.Kind == "volume" {
		r, want, dim = p.Capacity.DiskGiB, int64(req.DiskGiB), "disk"
	}
	room := 35
	if r.Total > 0 {
		left := min(max(r.Total-r.Used-want, 0), r.Total)
		room = int(left * 70 / r.Total)
	}
	labels := 20
	if n := len(req.PreferredLabels); n > 0 {
		held := 0
		for k, v := range req.PreferredLabels {
			if p.Labels[k] == v {
				held++
			}
		}
		labels = held * 20 / n
	}
	health := 10
	if p.Status == registry.StatusDegraded {
		health = 0
	}
	total := min(max(room+labels+health, 0), 100)
	return total, []string{fmt.Sprintf("%s room %d/70, preferred labels %d/20, health %d/10", dim, room, labels, health)}
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
