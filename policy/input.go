package policy

import (
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

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

// Empty values are OPA's interned terms (input terms are never changed
// once built, so sharing them is safe): a request without an image or a
// deployment then costs no allocation for them.
func str(s string) *ast.Term {
	if s == "" {
		return ast.InternedEmptyString
	}
	return ast.StringTerm(s)
}

func num(n int64) *ast.Term { return ast.InternedTerm(int(n)) }

// keyTerms are the input document's keys, made once: the input is built
// per decision, and a key made each time is an allocation each time.
var keyTerms = func() map[string]*ast.Term {
	m := map[string]*ast.Term{}
	for _, k := range strings.Fields(`kind project user resource_id name flavor resources image tags hints
		availability_zone deployment spread usage quota takes vcpus ram_mib disk_gib instances volumes id
		properties min_ram_mib min_disk_gib peers required_labels preferred_labels other template resource
		replica group total used free request peer pool allowed private public cost private_cost public_cost
		spread_min min max currency vcpu_hour ram_gib_hour disk_gib_month want object_bytes policy max_per_peer`) {
		m[k] = ast.StringTerm(k)
	}
	return m
}()

func obj(kv ...any) *ast.Term {
	items := make([][2]*ast.Term, 0, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k := kv[i].(string)
		kt := keyTerms[k]
		if kt == nil {
			kt = str(k)
		}
		items = append(items, [2]*ast.Term{kt, kv[i+1].(*ast.Term)})
	}
	return ast.ObjectTerm(items...)
}

func strMap(m map[string]string) *ast.Term {
	if len(m) == 0 {
		return ast.InternedEmptyObject
	}
	items := make([][2]*ast.Term, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		items = append(items, [2]*ast.Term{str(k), str(m[k])})
	}
	return ast.ObjectTerm(items...)
}

func strArray(ss []string) *ast.Term {
	if len(ss) == 0 {
		return ast.InternedEmptyArray
	}
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = str(s)
	}
	return ast.ArrayTerm(ts...)
}

func usageTerm(u *Usage) *ast.Term {
	if u == nil {
		return ast.InternedEmptyObject
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

// peerCache keeps each peer's input terms between decisions: building
// them is a large part of a decision's cost, and peers change far less
// often than decisions are made. A term depends on the peer (its key)
// and, through cost, short, shortfall and room, on the request's shape;
// the terms of the last maxShapes shapes are kept per peer, so requests
// mixing a few flavors do not rebuild every peer on every decision. Peers
// without a revision (not from a store) are built every time.
type peerCache struct {
	mu sync.Mutex
	m  map[string]*peerEntry
	// last is, per request shape and number of candidates, the last
	// call's peers (their keys) and terms by index: the candidates of a
	// decision are mostly the last one's, in the same order, so a peer
	// whose key is the one at its index takes that term without a map
	// lookup or a walk of its entry. (The number keeps a background
	// refresh, over a few peers, from displacing the decisions' run.)
	last map[lastKey]*lastTerms
}

type lastKey struct {
	shape shape
	n     int
}

// lastTerms is one call's peer keys and terms, by index.
type lastTerms struct {
	keys  []peerKey
	terms []*peerTerm
}

// maxShapes is how many request shapes a peer's terms are kept for.
const maxShapes = 8

type peerEntry struct {
	key    peerKey
	static *peerStatic
	// The terms of the last shapes built, most recent first, with their
	// shapes beside them: finding a peer's term touches its entry only.
	n      int
	shapes [maxShapes]shape
	terms  [maxShapes]*peerTerm
}

// peerTerm is one peer's input term for one request shape, with the keys
// the verdict cache reads from it (worked out once per compiled policy).
type peerTerm struct {
	shape shape
	term  *ast.Term
	keys  atomic.Pointer[peerKeys]
	// What the pool facts read of the term, kept in Go.
	cost    int64
	private bool
}

// shape is what of a request a peer's term depends on: its sizes (cost,
// short, shortfall, room) and its kind (a server takes an instance slot).
type shape struct {
	vcpus, ram, disk int
	server           bool
}

func shapeOf(req Request) shape {
	return shape{req.VCPUs, req.RAMMiB, req.DiskGiB, req.Kind == "server"}
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

// dimension is one capacity dimension the request takes from a peer.
type dimension struct {
	name string
	want int64
	r    registry.Resource
}

func dimensions(req Request, p registry.Peer) [4]dimension {
	c := p.Capacity
	var slot int64
	if req.Kind == "server" {
		slot = 1
	}
	return [4]dimension{
		{"vcpus", int64(req.VCPUs), c.VCPUs},
		{"ram_mib", int64(req.RAMMiB), c.RAMMiB},
		{"disk_gib", int64(req.DiskGiB), c.DiskGiB},
		{"instances", slot, c.Instances},
	}
}

// short says whether d is short: the peer reports less free than the
// request takes. A dimension not reported (total 0) is never short.
func (d dimension) short() bool { return d.want > 0 && d.r.Total > 0 && d.r.Free() < d.want }

// Short lists the dimensions on which p reports less free than req takes,
// in the order vcpus, ram_mib, disk_gib, instances. A server takes one
// instance slot; a dimension p does not report (total 0) is never short.
func Short(req Request, p registry.Peer) []string {
	var out []string
	for _, d := range dimensions(req, p) {
		if d.short() {
			out = append(out, d.name)
		}
	}
	return out
}

// Room is the share of p's total on dim ("vcpus", "ram_mib" or
// "disk_gib") left free once req is placed there, in tenths, rounded
// down: 0-10, or -1 when p does not report a total. A coarse fact: most
// capacity changes leave it as it was, so verdicts that read it stay
// cached.
func Room(req Request, p registry.Peer, dim string) int {
	dims := dimensions(req, p)
	for _, d := range dims[:3] {
		if d.name == dim {
			return room(d)
		}
	}
	return -1
}

func room(d dimension) int {
	if d.r.Total <= 0 {
		return -1
	}
	return int(min(10, 10*max(d.r.Free()-d.want, 0)/d.r.Total))
}

// terms puts the term of each candidate for req's shape in out, under
// one lock, and appends to built the indexes of the terms it had to build
// (the peers that changed since a decision of this shape last saw them).
func (pc *peerCache) terms(req Request, candidates []registry.Peer, out []*peerTerm, built []int) []int {
	sh := shapeOf(req)
	pc.mu.Lock()
	defer pc.mu.Unlock()
	lk := lastKey{sh, len(candidates)}
	lt := pc.last[lk]
	if lt == nil {
		lt = &lastTerms{keys: make([]peerKey, len(candidates)), terms: make([]*peerTerm, len(candidates))}
		if pc.last == nil || len(pc.last) >= maxLastShapes { // shapes seen long ago go with the next reset
			pc.last = map[lastKey]*lastTerms{}
		}
		pc.last[lk] = lt
	}
	for i := range candidates {
		p := &candidates[i]
		if p.Revision != 0 {
			k := keyOf(p)
			if lt.terms[i] != nil && lt.keys[i] == k {
				out[i] = lt.terms[i]
				continue
			}
			lt.keys[i] = k
		}
		var fresh bool
		out[i], fresh = pc.termLocked(req, p, sh)
		if p.Revision != 0 {
			lt.terms[i] = out[i]
			if fresh {
				built = append(built, i)
			}
		}
	}
	return built
}

// maxLastShapes bounds peerCache.last.
const maxLastShapes = 64

func keyOf(p *registry.Peer) peerKey {
	return peerKey{p.ID, p.Name, p.Revision, p.Status, p.Capacity, p.Cost, len(p.Labels)}
}

// termLocked returns p's term for sh, and whether it was built now.
func (pc *peerCache) termLocked(req Request, p *registry.Peer, sh shape) (*peerTerm, bool) {
	if p.Revision == 0 {
		return buildPeerTerm(req, p, sh, buildStatic(p, nil)), true
	}
	k := keyOf(p)
	e := pc.m[p.ID]
	if e != nil && e.key == k {
		for i := range e.n {
			if e.shapes[i] == sh {
				t := e.terms[i]
				if i > 0 { // keep the most recent first
					copy(e.shapes[1:i+1], e.shapes[:i])
					copy(e.terms[1:i+1], e.terms[:i])
					e.shapes[0], e.terms[0] = sh, t
				}
				return t, false
			}
		}
	} else {
		if pc.m == nil || len(pc.m) > 4096 { // peers that left the pool go with the next reset
			pc.m = map[string]*peerEntry{}
		}
		var old *peerStatic
		if e != nil {
			old = e.static
		}
		e = &peerEntry{key: k, static: buildStatic(p, old)}
		pc.m[p.ID] = e
	}
	t := buildPeerTerm(req, p, sh, e.static)
	e.n = min(e.n+1, maxShapes)
	copy(e.shapes[1:e.n], e.shapes[:e.n-1])
	copy(e.terms[1:e.n], e.terms[:e.n-1])
	e.shapes[0], e.terms[0] = sh, t
	return t, true
}

// peerStatic is what of a peer's term no request changes, built once per
// peer key and shared by its terms for every shape.
type peerStatic struct {
	id, name, kind, labels, region, status, capacity, costRates *ast.Term
	private                                                     bool
	// What the terms above that outlive a capacity report were built
	// from: a peer's new revision that changes none of it (most often
	// only its capacity changed) reuses them.
	from peerIdentity
}

// peerIdentity is what of a peer its slowly changing terms are built
// from; labels is a copy.
type peerIdentity struct {
	id, name, kind, region string
	labels                 map[string]string
	cost                   registry.Cost
}

func (a peerIdentity) same(p *registry.Peer) bool {
	return a.id == p.ID && a.name == p.Name && a.kind == string(p.Kind) && a.region == p.Endpoint.Region &&
		a.cost == p.Cost && maps.Equal(a.labels, p.Labels)
}

// buildStatic builds p's static terms, reusing old's (the peer's
// previous ones, or nil) where p is the same peer with the same labels,
// rates and region.
func buildStatic(p *registry.Peer, old *peerStatic) *peerStatic {
	c := p.Capacity
	st := &peerStatic{status: str(string(p.Status)),
		capacity: obj("vcpus", resourceTerm(c.VCPUs), "ram_mib", resourceTerm(c.RAMMiB),
			"disk_gib", resourceTerm(c.DiskGiB), "instances", resourceTerm(c.Instances),
			"object_bytes", resourceTerm(c.ObjectBytes))}
	if old != nil && old.from.same(p) {
		st.id, st.name, st.kind, st.labels, st.region, st.costRates, st.private, st.from =
			old.id, old.name, old.kind, old.labels, old.region, old.costRates, old.private, old.from
		return st
	}
	st.id, st.name, st.kind, st.labels = str(p.ID), str(p.Name), str(string(p.Kind)), strMap(p.Labels)
	st.region, st.private = str(Region(*p)), Private(*p)
	st.costRates = obj("currency", str(p.Cost.Currency), "vcpu_hour", ast.FloatNumberTerm(p.Cost.VCPUHour),
		"ram_gib_hour", ast.FloatNumberTerm(p.Cost.RAMGiBHour), "disk_gib_month", ast.FloatNumberTerm(p.Cost.DiskGiBMonth))
	st.from = peerIdentity{id: p.ID, name: p.Name, kind: string(p.Kind), region: p.Endpoint.Region, labels: maps.Clone(p.Labels), cost: p.Cost}
	return st
}

// Keys of a peer's term, made once.
var (
	dimTerms     = map[string]*ast.Term{"vcpus": str("vcpus"), "ram_mib": str("ram_mib"), "disk_gib": str("disk_gib"), "instances": str("instances")}
	peerTermKeys = func() (ks [13]*ast.Term) {
		for i, k := range []string{"id", "name", "kind", "labels", "region", "status", "private", "short", "shortfall", "room", "capacity", "cost", "cost_rates"} {
			ks[i] = str(k)
		}
		return ks
	}()
	wantTerm, freeTerm = str("want"), str("free")
)

func buildPeerTerm(req Request, p *registry.Peer, sh shape, st *peerStatic) *peerTerm {
	dims := dimensions(req, *p)
	var short []*ast.Term
	var shortfall [][2]*ast.Term
	var rooms [3]int
	for i, d := range dims {
		if d.short() {
			short = append(short, dimTerms[d.name])
			shortfall = append(shortfall, [2]*ast.Term{dimTerms[d.name], ast.ObjectTerm([2]*ast.Term{wantTerm, num(d.want)}, [2]*ast.Term{freeTerm, num(d.r.Free())})})
		}
		if i < 3 {
			rooms[i] = room(d)
		}
	}
	// A peer with room on every dimension (most) shares the empty terms.
	shortTerm, shortfallTerm := ast.InternedEmptyArray, ast.InternedEmptyObject
	if len(short) > 0 {
		shortTerm, shortfallTerm = ast.ArrayTerm(short...), ast.ObjectTerm(shortfall...)
	}
	// Cost in whole millionths: Rego does integer arithmetic on a fast
	// path and floats through math/big, ten times slower. private, short,
	// shortfall and room are facts derived here once per peer and request
	// shape: in Rego each test costs about a microsecond per peer per
	// decision (a builtin call), a lookup of a precomputed fact a fifth of
	// that.
	cost := int64(math.Round(PeerCost(req, *p) * 1e6))
	k := &peerTermKeys
	t := ast.ObjectTerm(
		[2]*ast.Term{k[0], st.id}, [2]*ast.Term{k[1], st.name}, [2]*ast.Term{k[2], st.kind},
		[2]*ast.Term{k[3], st.labels}, [2]*ast.Term{k[4], st.region}, [2]*ast.Term{k[5], st.status},
		[2]*ast.Term{k[6], ast.InternedTerm(st.private)}, [2]*ast.Term{k[7], shortTerm},
		[2]*ast.Term{k[8], shortfallTerm}, [2]*ast.Term{k[9], roomTerm(rooms)},
		[2]*ast.Term{k[10], st.capacity}, [2]*ast.Term{k[11], num(cost)}, [2]*ast.Term{k[12], st.costRates})
	return &peerTerm{shape: sh, term: t, cost: cost, private: st.private}
}

// roomTerms are the room objects built, by value: a room is a tenth from
// -1 to 10 on each of three dimensions, so there are few, and a peer term
// built after a capacity report most often has one built already.
var roomTerms sync.Map // [3]int -> *ast.Term

func roomTerm(r [3]int) *ast.Term {
	if t, ok := roomTerms.Load(r); ok {
		return t.(*ast.Term)
	}
	t := ast.ObjectTerm([2]*ast.Term{dimTerms["vcpus"], num(int64(r[0]))}, [2]*ast.Term{dimTerms["ram_mib"], num(int64(r[1]))},
		[2]*ast.Term{dimTerms["disk_gib"], num(int64(r[2]))})
	roomTerms.Store(r, t)
	return t
}

// takes is what req counts against the project's quota: a server one
// instance, a volume one volume and its size in gigabytes (a server's root
// disk never counts against them, as in Cinder).
func takes(req Request) *Usage {
	u := &Usage{VCPUs: req.VCPUs, RAMMiB: req.RAMMiB}
	switch req.Kind {
	case "server":
		u.Instances = 1
	case "volume":
		u.Volumes, u.DiskGiB = 1, req.DiskGiB
	}
	return u
}

// Input builds the policy's input document for req and candidates.
func Input(req Request, candidates []registry.Peer) ast.Value {
	return (&peerCache{}).input(req, candidates)
}

func (pc *peerCache) input(req Request, candidates []registry.Peer) ast.Value {
	ts := make([]*peerTerm, len(candidates))
	pc.terms(req, candidates, ts, nil)
	ps := make([]*ast.Term, len(candidates))
	for i, t := range ts {
		ps[i] = t.term
	}
	return obj("request", requestTerm(req, nil), "peers", ast.ArrayTerm(ps...)).Value
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
