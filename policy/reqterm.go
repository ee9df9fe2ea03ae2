package policy

import (
	"maps"
	"slices"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// requestMemo keeps the terms of a request's parts that change less
// often than requests come (the image, the hints, the spread, the
// deployment, usage and quota amounts), each with the value it was built
// from: building input.request was a third of a decision's own work at
// ten peers, most of it these parts, and a broker placing a burst of
// similar requests builds each once. A part's value is compared whole
// (maps and slices by content), so a term is reused only for an equal
// value; terms are never changed once built, so sharing them is safe.
type requestMemo struct {
	mu     sync.Mutex
	image  memoEntry[Image]
	hints  memoEntry[[3]map[string]string]
	spread memoEntry[spreadPart]
	deps   map[Deployment]*ast.Term
	usages map[Usage]*ast.Term
}

// memoEntry is the last value of a part and its term.
type memoEntry[T any] struct {
	v T
	t *ast.Term
}

// maxMemoTerms bounds the memo's maps; they start over when full.
const maxMemoTerms = 1024

type spreadPart struct {
	group string
	peers map[string]int
}

func (m *requestMemo) imageTerm(i *Image) *ast.Term {
	if i == nil {
		return noImageTerm
	}
	eq := func(a Image) bool {
		return a.ID == i.ID && a.MinRAMMiB == i.MinRAMMiB && a.MinDiskGiB == i.MinDiskGiB &&
			maps.Equal(a.Properties, i.Properties) && slices.Equal(a.Peers, i.Peers)
	}
	if m == nil {
		return buildImageTerm(i)
	}
	if m.image.t != nil && eq(m.image.v) {
		return m.image.t
	}
	t := buildImageTerm(i)
	m.image = memoEntry[Image]{Image{ID: i.ID, Properties: maps.Clone(i.Properties), MinRAMMiB: i.MinRAMMiB,
		MinDiskGiB: i.MinDiskGiB, Peers: slices.Clone(i.Peers)}, t}
	return t
}

func buildImageTerm(i *Image) *ast.Term {
	return obj("id", str(i.ID), "properties", strMap(i.Properties), "min_ram_mib", num(int64(i.MinRAMMiB)),
		"min_disk_gib", num(int64(i.MinDiskGiB)), "peers", strArray(i.Peers))
}

func (m *requestMemo) hintsTerm(req Request) *ast.Term {
	v := [3]map[string]string{req.RequiredLabels, req.PreferredLabels, req.Hints}
	build := func() *ast.Term {
		return obj("required_labels", strMap(v[0]), "preferred_labels", strMap(v[1]), "other", strMap(v[2]))
	}
	if m == nil {
		return build()
	}
	if e := m.hints; e.t != nil && maps.Equal(e.v[0], v[0]) && maps.Equal(e.v[1], v[1]) && maps.Equal(e.v[2], v[2]) {
		return e.t
	}
	m.hints = memoEntry[[3]map[string]string]{[3]map[string]string{maps.Clone(v[0]), maps.Clone(v[1]), maps.Clone(v[2])}, build()}
	return m.hints.t
}

func (m *requestMemo) spreadTerm(req Request) *ast.Term {
	v := spreadPart{spreadGroup(req), req.SpreadPeers}
	build := func() *ast.Term {
		peers := ast.InternedEmptyObject
		if len(v.peers) > 0 {
			items := make([][2]*ast.Term, 0, len(v.peers))
			for _, id := range slices.Sorted(maps.Keys(v.peers)) {
				items = append(items, [2]*ast.Term{str(id), num(int64(v.peers[id]))})
			}
			peers = ast.ObjectTerm(items...)
		}
		return obj("group", str(v.group), "peers", peers)
	}
	if m == nil {
		return build()
	}
	if e := m.spread; e.t != nil && e.v.group == v.group && maps.Equal(e.v.peers, v.peers) {
		return e.t
	}
	m.spread = memoEntry[spreadPart]{spreadPart{v.group, maps.Clone(v.peers)}, build()}
	return m.spread.t
}

func (m *requestMemo) deploymentTerm(d *Deployment) *ast.Term {
	if d == nil {
		return noDeploymentTerm
	}
	build := func() *ast.Term {
		return obj("id", str(d.ID), "template", str(d.Template), "resource", str(d.Resource), "replica", num(int64(d.Replica)))
	}
	if m == nil {
		return build()
	}
	if t := m.deps[*d]; t != nil {
		return t
	}
	if m.deps == nil || len(m.deps) >= maxMemoTerms {
		m.deps = map[Deployment]*ast.Term{}
	}
	t := build()
	m.deps[*d] = t
	return t
}

func (m *requestMemo) usageTerm(u *Usage) *ast.Term {
	if u == nil || m == nil {
		return usageTerm(u)
	}
	if t := m.usages[*u]; t != nil {
		return t
	}
	if m.usages == nil || len(m.usages) >= maxMemoTerms {
		m.usages = map[Usage]*ast.Term{}
	}
	t := usageTerm(u)
	m.usages[*u] = t
	return t
}

// The image and deployment of a request without them: every field, zero.
var (
	noImageTerm      = obj("id", str(""), "properties", ast.InternedEmptyObject, "min_ram_mib", num(0), "min_disk_gib", num(0), "peers", ast.InternedEmptyArray)
	noDeploymentTerm = obj("id", str(""), "template", str(""), "resource", str(""), "replica", num(0))
)

// requestTerm is input.request, its parts from m when not nil. Every
// documented field is present (zero values included) so a policy never
// trips over an undefined field.
func requestTerm(req Request, m *requestMemo) *ast.Term {
	if m != nil {
		m.mu.Lock()
		defer m.mu.Unlock()
	}
	return obj(
		"kind", str(req.Kind), "project", str(req.Project), "user", str(req.User),
		"resource_id", str(req.ResourceID), "name", str(req.Name), "flavor", str(req.Flavor),
		"resources", obj("vcpus", num(int64(req.VCPUs)), "ram_mib", num(int64(req.RAMMiB)), "disk_gib", num(int64(req.DiskGiB))),
		"image", m.imageTerm(req.Image), "tags", strArray(req.Tags),
		"hints", m.hintsTerm(req),
		"availability_zone", str(req.AvailabilityZone),
		"deployment", m.deploymentTerm(req.Deployment),
		"spread", m.spreadTerm(req), "group", groupTerm(req.Group),
		"usage", m.usageTerm(req.Usage), "quota", m.usageTerm(req.Quota), "takes", m.usageTerm(takes(req)),
	)
}
