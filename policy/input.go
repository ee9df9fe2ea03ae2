package policy

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/cloudmux/cloudmux/registry"
)

// CostLabel, when set on a peer to a number, is its cost for placement,
// overriding the record's rates.
const CostLabel = "cost"

// hoursPerMonth converts a monthly disk rate to an hourly one.
const hoursPerMonth = 730

// PeerCost is what running the request on p costs per hour: the peer's
// cost label when it holds a number, else the record's rates applied to
// the request's sizes. Zero means unknown, or free.
func PeerCost(req Request, p registry.Peer) float64 {
	if v, ok := p.Labels[CostLabel]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	c := p.Cost
	return c.VCPUHour*float64(req.VCPUs) + c.RAMGiBHour*float64(req.RAMMiB)/1024 + c.DiskGiBMonth*float64(req.DiskGiB)/hoursPerMonth
}

// Region is the peer's region: its region label, else its endpoint's.
func Region(p registry.Peer) string {
	if r := p.Labels["region"]; r != "" {
		return r
	}
	return p.Endpoint.Region
}

// The input is built straight into OPA's AST: converting a Go map through
// ast.InterfaceToValue (reflection, JSON round trips) would cost more than
// evaluating the stock policy.

func str(s string) *ast.Term { return ast.StringTerm(s) }
func num(n int64) *ast.Term  { return ast.InternedTerm(int(n)) }

func obj(kv ...any) *ast.Term {
	items := make([][2]*ast.Term, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		items = append(items, [2]*ast.Term{str(kv[i].(string)), kv[i+1].(*ast.Term)})
	}
	return ast.ObjectTerm(items...)
}

func strMap(m map[string]string) *ast.Term {
	items := make([][2]*ast.Term, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		items = append(items, [2]*ast.Term{str(k), str(m[k])})
	}
	return ast.ObjectTerm(items...)
}

func strArray(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = str(s)
	}
	return ast.ArrayTerm(ts...)
}

func usageTerm(u *Usage) *ast.Term {
	if u == nil {
		return ast.ObjectTerm()
	}
	return obj("vcpus", num(int64(u.VCPUs)), "ram_mib", num(int64(u.RAMMiB)), "disk_gib", num(int64(u.DiskGiB)),
		"instances", num(int64(u.Instances)), "volumes", num(int64(u.Volumes)))
}

func resourceTerm(r registry.Resource) *ast.Term {
	return obj("total", num(r.Total), "used", num(r.Used), "free", num(r.Free()))
}

// peerKey identifies what a cached peer term was built from: a peer from
// the store changes revision on every write, and the fields the broker
// may adjust in memory (status, capacity) are compared too.
type peerKey struct {
	id, name string
	rev      uint64
	status   registry.Status
	capacity registry.Capacity
	cost     registry.Cost
	nlabels  int
}

// peerCache keeps each peer's input term between decisions: building
// them is a large part of a decision's cost, and peers change far less
// often than decisions are made. The term depends on the peer (its key)
// and, through cost, on the request's sizes; the last term built for each
// peer is kept. Peers without a revision (not from a store) are built
// every time.
type peerCache struct {
	mu sync.Mutex
	m  map[string]cachedPeer
}

// shape is what of a request a peer's term depends on: its sizes (cost,
// short) and its kind (a server takes an instance slot).
type shape struct {
	vcpus, ram, disk int
	server           bool
}

// Private says whether p is a private peer: its tier label is "private"
// (or "local"), or it has no tier label and is a local cloud.
func Private(p registry.Peer) bool {
	tier, ok := p.Labels["tier"]
	if !ok {
		tier = string(p.Kind)
	}
	return tier == "private" || tier == "local"
}

// Short lists the dimensions on which p reports less free than req takes,
// in the order vcpus, ram_mib, disk_gib, instances. A server takes one
// instance slot; a dimension p does not report (total 0) is never short.
func Short(req Request, p registry.Peer) []string {
	var out []string
	c := p.Capacity
	var slot int64
	if req.Kind == "server" {
		slot = 1
	}
	for _, d := range []struct {
		name string
		want int64
		r    registry.Resource
	}{
		{"vcpus", int64(req.VCPUs), c.VCPUs},
		{"ram_mib", int64(req.RAMMiB), c.RAMMiB},
		{"disk_gib", int64(req.DiskGiB), c.DiskGiB},
		{"instances", slot, c.Instances},
	} {
		if d.want > 0 && d.r.Total > 0 && d.r.Free() < d.want {
			out = append(out, d.name)
		}
	}
	return out
}

type cachedPeer struct {
	key   peerKey
	shape shape
	term  *ast.Term
}

func (pc *peerCache) peerTerm(req Request, p registry.Peer) *ast.Term {
	k := peerKey{p.ID, p.Name, p.Revision, p.Status, p.Capacity, p.Cost, len(p.Labels)}
	sh := shape{req.VCPUs, req.RAMMiB, req.DiskGiB, req.Kind == "server"}
	if p.Revision != 0 {
		pc.mu.Lock()
		c, ok := pc.m[p.ID]
		pc.mu.Unlock()
		if ok && c.key == k && c.shape == sh {
			return c.term
		}
	}
	c := p.Capacity
	// Cost in whole millionths: Rego does integer arithmetic on a fast
	// path and floats through math/big, ten times slower. private and
	// short are facts derived here once per peer and request shape: in
	// Rego each test costs about a microsecond per peer per decision (a
	// builtin call), a lookup of a precomputed fact a fifth of that.
	t := obj("id", str(p.ID), "name", str(p.Name), "kind", str(string(p.Kind)),
		"labels", strMap(p.Labels), "region", str(Region(p)), "status", str(string(p.Status)),
		"private", ast.InternedTerm(Private(p)), "short", strArray(Short(req, p)),
		"capacity", obj("vcpus", resourceTerm(c.VCPUs), "ram_mib", resourceTerm(c.RAMMiB),
			"disk_gib", resourceTerm(c.DiskGiB), "instances", resourceTerm(c.Instances)),
		"cost", num(int64(math.Round(PeerCost(req, p)*1e6))),
		"cost_rates", obj("currency", str(p.Cost.Currency), "vcpu_hour", ast.FloatNumberTerm(p.Cost.VCPUHour),
			"ram_gib_hour", ast.FloatNumberTerm(p.Cost.RAMGiBHour), "disk_gib_month", ast.FloatNumberTerm(p.Cost.DiskGiBMonth)))
	if p.Revision != 0 {
		pc.mu.Lock()
		if pc.m == nil || len(pc.m) > 4096 { // peers that left the pool go with the next reset
			pc.m = map[string]cachedPeer{}
		}
		pc.m[p.ID] = cachedPeer{key: k, shape: sh, term: t}
		pc.mu.Unlock()
	}
	return t
}

// requestTerm is input.request. Every documented field is present (zero
// values included) so a policy never trips over an undefined field.
func requestTerm(req Request) *ast.Term {
	img := obj("id", str(""), "properties", ast.ObjectTerm(), "min_ram_mib", num(0), "min_disk_gib", num(0), "peers", ast.ArrayTerm())
	if i := req.Image; i != nil {
		img = obj("id", str(i.ID), "properties", strMap(i.Properties), "min_ram_mib", num(int64(i.MinRAMMiB)),
			"min_disk_gib", num(int64(i.MinDiskGiB)), "peers", strArray(i.Peers))
	}
	dep := obj("id", str(""), "template", str(""), "resource", str(""), "replica", num(0))
	group := ""
	if d := req.Deployment; d != nil {
		dep = obj("id", str(d.ID), "template", str(d.Template), "resource", str(d.Resource), "replica", num(int64(d.Replica)))
		if group = d.SpreadGroup; group == "" && d.Resource != "" {
			group = d.ID + "/" + d.Resource
		}
	}
	spreadPeers := make([][2]*ast.Term, 0, len(req.SpreadPeers))
	for _, id := range slices.Sorted(maps.Keys(req.SpreadPeers)) {
		spreadPeers = append(spreadPeers, [2]*ast.Term{str(id), num(int64(req.SpreadPeers[id]))})
	}
	quota := ast.ObjectTerm()
	if req.Quota != nil {
		quota = usageTerm(req.Quota)
	}
	tags := req.Tags
	if tags == nil {
		tags = []string{}
	}
	return obj(
		"kind", str(req.Kind), "project", str(req.Project), "user", str(req.User),
		"resource_id", str(req.ResourceID), "name", str(req.Name), "flavor", str(req.Flavor),
		"resources", obj("vcpus", num(int64(req.VCPUs)), "ram_mib", num(int64(req.RAMMiB)), "disk_gib", num(int64(req.DiskGiB))),
		"image", img, "tags", strArray(tags),
		"hints", obj("required_labels", strMap(req.RequiredLabels), "preferred_labels", strMap(req.PreferredLabels), "other", strMap(req.Hints)),
		"availability_zone", str(req.AvailabilityZone),
		"deployment", dep,
		"spread", obj("group", str(group), "peers", ast.ObjectTerm(spreadPeers...)),
		"usage", usageTerm(req.Usage), "quota", quota,
	)
}

// Input builds the policy's input document for req and candidates.
func Input(req Request, candidates []registry.Peer) ast.Value {
	return (&peerCache{}).input(req, candidates)
}

func (pc *peerCache) input(req Request, candidates []registry.Peer) ast.Value {
	ps := make([]*ast.Term, len(candidates))
	for i, p := range candidates {
		ps[i] = pc.peerTerm(req, p)
	}
	return obj("request", requestTerm(req), "peers", ast.ArrayTerm(ps...)).Value
}

// mustJSON converts a value built here back to Go (for records and logs);
// the values built here always convert.
func mustJSON(v ast.Value) any {
	out, err := ast.JSON(v)
	if err != nil {
		return nil
	}
	return out
}
