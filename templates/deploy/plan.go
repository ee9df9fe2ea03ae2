package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// Action is what a plan does to one instance.
type Action string

// Plan actions.
const (
	ActCreate  Action = "create"
	ActUpdate  Action = "update"
	ActReplace Action = "replace"
	ActDelete  Action = "delete"
	ActNoop    Action = "no-op"
)

// MaxInstances bounds a deployment's instances: its record (about 650
// bytes an instance) is one Store value, at most registry.MaxValueSize.
const MaxInstances = 300

// Step is the plan for one instance.
type Step struct {
	Key      string         `json:"key"`
	Resource string         `json:"resource"`
	Index    int            `json:"index"`
	Kind     templates.Kind `json:"kind"`
	Action   Action         `json:"action"`
	PeerID   string         `json:"peer_id"`
	PeerName string         `json:"peer_name"`
	// Reasons say why this peer (the policy's words) and why this action.
	Reasons []string `json:"reasons,omitempty"`
	// Changes name the properties that differ from what exists.
	Changes []string `json:"changes,omitempty"`
	Deps    []string `json:"deps,omitempty"`
	Props   string   `json:"props,omitempty"`
	// Placement is the placement block the peer was chosen by.
	Placement string `json:"placement,omitempty"`
}

// Plan is every step, dependencies first. Nothing has been touched.
type Plan struct {
	Steps []Step `json:"steps"`
	// render is what apply needs beyond the steps.
	render *rendered
}

// Counts sums the steps by action.
func (p *Plan) Counts() map[Action]int {
	out := map[Action]int{}
	for _, s := range p.Steps {
		out[s.Action]++
	}
	return out
}

// rendered is a template evaluated for planning.
type rendered struct {
	tpl        *templates.Template
	params     map[string]any
	conditions map[string]bool
	// instances by key, and the keys of each resource's instances.
	instances map[string]*Step
	byName    map[string][]string
	order     []string // resource names, dependencies first
}

// replicated kinds get one copy on every peer that needs them.
func replicated(k templates.Kind) bool {
	return k == templates.KindNetwork || k == templates.KindSubnet
}

// unplaced kinds live in the broker, not on a peer: a keypair is the
// user's (as in Nova), imported onto the peer of each server using it.
func unplaced(k templates.Kind) bool { return k == templates.KindKeypair }

// render parses, flattens (as project sees the catalog) and evaluates
// spec's template.
func (e *Engine) render(ctx context.Context, project string, spec Spec) (*rendered, error) {
	t, err := templates.Parse([]byte(spec.Source))
	if err != nil {
		return nil, err
	}
	if len(t.Uses()) > 0 {
		if e.Resolver == nil {
			return nil, fmt.Errorf("%w: the template extends or nests others and the engine has no catalog", ErrInvalid)
		}
		if t, err = templates.Flatten(ctx, t, e.Resolver.For(project)); err != nil {
			return nil, err
		}
	}
	r := &rendered{tpl: t, instances: map[string]*Step{}, byName: map[string][]string{}}
	if r.params, err = t.ResolveParameters(spec.Parameters); err != nil {
		return nil, err
	}
	if r.conditions, err = templates.EvalConditions(t.Conditions, r.params); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if r.order, err = t.Order(); err != nil {
		return nil, err
	}
	var errs []error
	bad := func(path, format string, args ...any) {
		errs = append(errs, &templates.Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
	}
	for rn := range spec.Placement {
		if t.Resources[rn] == nil {
			bad("placement."+rn, "no such resource")
		}
	}
	sym := &templates.Scope{Params: r.params, Conditions: r.conditions, Index: -1}
	enabled := map[string]bool{}
	for _, name := range r.order {
		res := t.Resources[name]
		on, err := sym.Condition(res.Condition)
		if err != nil {
			bad("resources."+name+".condition", "%v", err)
			continue
		}
		if !on {
			continue
		}
		enabled[name] = true
		count := -1
		if res.Count != nil {
			v, err := sym.Eval(res.Count)
			n, ok := v.(int64)
			if f, isF := v.(float64); isF && f == float64(int64(f)) {
				n, ok = int64(f), true
			}
			if err != nil || !ok || n < 0 || n > templates.MaxCount {
				bad("resources."+name+".count", "want a whole number from 0 to %d, got %v", templates.MaxCount, v)
				continue
			}
			count = int(n)
		}
		for _, idx := range indexes(count) {
			key := name
			if idx >= 0 {
				key = fmt.Sprintf("%s[%d]", name, idx)
			}
			sc := &templates.Scope{Params: r.params, Conditions: r.conditions, Index: idx}
			props, err := sc.Eval(res.Properties)
			if err != nil {
				bad("resources."+name+".properties", "%v", err)
				continue
			}
			r.instances[key] = &Step{Key: key, Resource: name, Index: idx, Kind: res.Kind, Props: templates.Canonical(props)}
			r.byName[name] = append(r.byName[name], key)
		}
	}
	deps := t.Dependencies()
	for _, name := range r.order {
		if !enabled[name] {
			continue
		}
		for _, d := range deps[name] {
			if !enabled[d] {
				bad("resources."+name, "depends on %s, which its condition leaves out", d)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return r, nil
}

func indexes(count int) []int {
	if count < 0 {
		return []int{-1}
	}
	out := make([]int, count)
	for i := range out {
		out[i] = i
	}
	return out
}

// leaders maps a resource that must sit with another to that one: a port
// to the server plugging it, an attachment to its server, a volume to the
// server it is attached to or boots.
func leaders(t *templates.Template) map[string]string {
	out := map[string]string{}
	refsIn := func(v any) []string {
		var names []string
		for _, n := range refNames(v) {
			if t.Resources[n] != nil {
				names = append(names, n)
			}
		}
		return names
	}
	for _, name := range sortedKeys(t.Resources) {
		r := t.Resources[name]
		switch r.Kind {
		case templates.KindServer:
			if nets, ok := r.Properties["networks"].([]any); ok {
				for _, n := range nets {
					if m, ok := n.(map[string]any); ok {
						for _, p := range refsIn(m["port"]) {
							out[p] = name
						}
					}
				}
			}
			for _, v := range refsIn(r.Properties["boot_volume"]) {
				out[v] = name
			}
		case templates.KindVolumeAttachment:
			if s := refsIn(r.Properties["server"]); len(s) > 0 {
				out[name] = s[0]
				for _, v := range refsIn(r.Properties["volume"]) {
					if _, taken := out[v]; !taken {
						out[v] = s[0]
					}
				}
			}
		}
	}
	return out
}

// refNames lists the resources an expression refers to.
func refNames(v any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if len(x) == 1 {
				if a, ok := x["get_resource"].(string); ok {
					out = append(out, a)
					return
				}
				if l, ok := x["get_attr"].([]any); ok && len(l) > 0 {
					if a, ok := l[0].(string); ok {
						out = append(out, a)
					}
					return
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(v)
	return out
}

// Plan computes what applying spec to deployment d would do. Nothing is
// touched: flavors and images are looked up (images as d's project sees
// them), placement is previewed, and what the plan creates is checked
// against the project's quota.
func (e *Engine) Plan(ctx context.Context, d *Deployment, spec Spec) (*Plan, error) {
	return e.plan(ctx, d, spec, true)
}

// plan is Plan; a run re-planning its own deployment skips the quota
// preview (what an interrupted attempt made is counted already, and the
// services reserve each create anyway).
func (e *Engine) plan(ctx context.Context, d *Deployment, spec Spec, quota bool) (*Plan, error) {
	if e.Resources == nil || e.Peers == nil || e.Placer == nil {
		return nil, errors.New("deploy: the engine has no Resources, Peers or Placer")
	}
	r, err := e.render(ctx, d.Project, spec)
	if err != nil {
		return nil, err
	}
	pl := &planner{e: e, d: d, spec: spec, r: r, caller: resource.Caller{Project: d.Project, User: d.User}, quota: quota,
		flavors: map[string]*resource.Flavor{}, images: map[string]bool{}, refs: map[refKey]error{}}
	return pl.run(ctx)
}

type planner struct {
	e       *Engine
	d       *Deployment
	spec    Spec
	r       *rendered
	caller  resource.Caller
	quota   bool // check the plan against the project's quota
	members []registry.Peer
	flavors map[string]*resource.Flavor // by reference; nil when unknown
	images  map[string]bool             // by reference: whether the caller may use it
	// refs: whether the caller may use the existing resource of a kind a
	// literal reference names (nil: it may), by kind and reference.
	refs map[refKey]error
	// declared: the names the template's own resources of a kind bear,
	// which a literal may name before they exist.
	declared map[refKey]bool
	errs     []error
}

// refKey is a kind and a reference (or name) of that kind, as seen from
// a peer ("" for declared names, which any copy bears).
type refKey struct {
	kind templates.Kind
	ref  string
	peer string
}

func (pl *planner) bad(path, format string, args ...any) {
	pl.errs = append(pl.errs, &templates.Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
}

func (pl *planner) run(ctx context.Context) (*Plan, error) {
	t, r := pl.r.tpl, pl.r
	pl.members = pl.e.Peers.Usable()
	lead := leaders(t)
	deps := t.Dependencies()
	// Anchors first, in dependency order: servers and free-standing
	// resources the policy places.
	for _, name := range r.order {
		res := t.Resources[name]
		if _, follows := lead[name]; follows || replicated(res.Kind) {
			continue
		}
		if unplaced(res.Kind) {
			for _, key := range r.byName[name] {
				r.instances[key].Reasons = []string{"kept by the broker for the deployment's user, not on a peer"}
			}
			continue
		}
		used := map[string]int{}
		for _, key := range r.byName[name] {
			if err := pl.place(ctx, r.instances[key], res, used); err != nil {
				pl.errs = append(pl.errs, err)
			}
		}
	}
	// Followers take their leader's peer (chains resolved through the leader).
	var follow func(name string, idx int, depth int) *Step
	follow = func(name string, idx int, depth int) *Step {
		keys := r.byName[name]
		if len(keys) == 0 || depth > 8 {
			return nil
		}
		inst := r.instances[keys[0]]
		for _, k := range keys {
			if r.instances[k].Index == idx {
				inst = r.instances[k]
			}
		}
		if l, ok := lead[name]; ok && inst.PeerID == "" {
			if li := follow(l, idx, depth+1); li != nil {
				inst.PeerID, inst.PeerName = li.PeerID, li.PeerName
				inst.Reasons = append(inst.Reasons, fmt.Sprintf("follows %s to %s", li.Key, li.PeerName))
				if pin := pl.effectivePlacement(t.Resources[name]).Peer; pin != "" && pin != li.PeerName {
					pl.bad("resources."+name+".placement.peer", "pinned to %s, but it must sit with %s, which is on %s", pin, li.Key, li.PeerName)
				}
			}
		}
		return inst
	}
	for _, name := range r.order {
		if _, ok := lead[name]; ok {
			for _, key := range r.byName[name] {
				if inst := follow(name, r.instances[key].Index, 0); inst != nil && inst.PeerID == "" {
					pl.bad("resources."+name, "its %s %s could not be placed", t.Resources[lead[name]].Kind, lead[name])
				}
			}
		}
	}
	// Replicated resources: a copy on every peer of whatever needs them,
	// dependents first so their peers are known.
	for i := len(r.order) - 1; i >= 0; i-- {
		name := r.order[i]
		res := t.Resources[name]
		if !replicated(res.Kind) || len(r.byName[name]) == 0 {
			continue
		}
		peersOf := map[string]string{} // ID -> name
		var users []string
		for _, other := range r.order {
			if !slices.Contains(deps[other], name) {
				continue
			}
			for _, k := range r.byName[other] {
				if inst := r.instances[k]; inst.PeerID != "" {
					peersOf[inst.PeerID] = inst.PeerName
					users = append(users, k)
				}
			}
		}
		base := r.instances[r.byName[name][0]]
		delete(r.instances, base.Key)
		r.byName[name] = nil
		if len(peersOf) == 0 {
			if err := pl.place(ctx, base, res, map[string]int{}); err != nil {
				pl.errs = append(pl.errs, err)
				continue
			}
			peersOf[base.PeerID] = base.PeerName
		}
		for _, id := range sortedKeys(peersOf) {
			inst := *base
			inst.PeerID, inst.PeerName = id, peersOf[id]
			inst.Key = name + "@" + inst.PeerName
			inst.Reasons = slices.Clone(base.Reasons)
			if len(users) > 0 {
				inst.Reasons = []string{fmt.Sprintf("a copy on %s, for %s", inst.PeerName, strings.Join(usersOn(r, users, id), ", "))}
			}
			r.instances[inst.Key] = &inst
			r.byName[name] = append(r.byName[name], inst.Key)
		}
	}
	// Instance dependencies.
	for _, name := range r.order {
		for _, key := range r.byName[name] {
			inst := r.instances[key]
			for _, d := range deps[name] {
				for _, dk := range r.byName[d] {
					if di := r.instances[dk]; !replicated(di.Kind) || di.PeerID == inst.PeerID {
						inst.Deps = append(inst.Deps, dk)
					}
				}
			}
			sort.Strings(inst.Deps)
		}
	}
	if n := len(r.instances); n > MaxInstances {
		pl.bad("resources", "%d instances; a deployment holds at most %d (its record must fit one Store value)", n, MaxInstances)
	}
	if err := errors.Join(pl.errs...); err != nil {
		return nil, err
	}
	plan := &Plan{render: r}
	pl.actions(ctx, plan)
	if err := errors.Join(pl.errs...); err != nil {
		return nil, err
	}
	if pl.quota {
		if err := pl.checkQuota(ctx, plan); err != nil {
			return nil, err
		}
	}
	return plan, nil
}

func usersOn(r *rendered, users []string, peerID string) []string {
	var out []string
	for _, k := range users {
		if r.instances[k] != nil && r.instances[k].PeerID == peerID {
			out = append(out, k)
		}
	}
	return out
}

// effectivePlacement is the binding's override, else the template's.
func (pl *planner) effectivePlacement(res *templates.Resource) templates.Placement {
	if p, ok := pl.spec.Placement[res.Name]; ok {
		return p
	}
	if res.Placement != nil {
		return *res.Placement
	}
	return templates.Placement{}
}

// place asks the policy for inst's peer. An instance that exists stays
// where it is while the policy still allows that peer.
func (pl *planner) place(ctx context.Context, inst *Step, res *templates.Resource, used map[string]int) error {
	p := pl.effectivePlacement(res)
	inst.Placement = templates.Canonical(p)
	// An instance whose placement block did not change stays where it is
	// while its peer is in the pool, usable or not: a peer that is down for
	// a moment (or a policy edit) must not move running resources.
	if cur := pl.d.Resources[inst.Key]; cur != nil && cur.PeerID != "" && cur.Placement == inst.Placement {
		if p, ok := pl.e.Peers.Peer(cur.PeerID); ok {
			inst.PeerID, inst.PeerName = cur.PeerID, p.Name
			inst.Reasons = []string{p.Name + ": already there, and its placement did not change"}
			used[cur.PeerID]++
			return nil
		}
	}
	req := policy.Request{Kind: strings.ToLower(string(res.Kind)), Project: pl.d.Project,
		AvailabilityZone: p.Peer, RequiredLabels: p.RequiredLabels, PreferredLabels: p.PreferredLabels}
	var props map[string]any
	_ = json.Unmarshal([]byte(inst.Props), &props)
	if n, ok := props["size"].(float64); ok && res.Kind == templates.KindVolume {
		req.DiskGiB = int(n)
	}
	if f, ok := props["flavor"].(string); ok && res.Kind == templates.KindServer {
		if fl, ok := pl.anyFlavor(ctx, f); ok {
			req.VCPUs, req.RAMMiB, req.DiskGiB = fl.VCPUs, fl.RAMMiB, fl.DiskGiB
		}
	}
	candidates := pl.members
	dec, err := pl.e.Placer.Place(ctx, req, candidates)
	if err != nil {
		return fmt.Errorf("resources.%s: placement: %w", res.Name, err)
	}
	allowed := dec.Allowed()
	if len(allowed) == 0 {
		return fmt.Errorf("%w: resources.%s: %s", ErrPlacement, res.Name, dec.Explain())
	}
	reasons := map[string][]string{}
	for _, v := range dec.Verdicts {
		reasons[v.Peer.ID] = v.Reasons
	}
	chosen := allowed[0]
	why := "best allowed peer"
	if cur := pl.d.Resources[inst.Key]; cur != nil && cur.PeerID != "" {
		for _, a := range allowed {
			if a.ID == cur.PeerID {
				chosen, why = a, "already there, and still allowed"
			}
		}
	} else if p.Spread {
		// The allowed peer holding the fewest replicas; ties go to the
		// better score (allowed is best first).
		for _, a := range allowed {
			if used[a.ID] < used[chosen.ID] {
				chosen = a
			}
		}
		why = fmt.Sprintf("spread: allowed peer with the fewest replicas (%d)", used[chosen.ID])
	}
	used[chosen.ID]++
	inst.PeerID, inst.PeerName = chosen.ID, chosen.Name
	inst.Reasons = append([]string{fmt.Sprintf("%s: %s (%d allowed of %d)", chosen.Name, why, len(allowed), len(candidates))},
		reasons[chosen.ID]...)
	return nil
}

// anyFlavor finds a flavor by broker ID or name, to size a placement
// request and the quota check.
func (pl *planner) anyFlavor(ctx context.Context, f string) (resource.Flavor, bool) {
	fl, seen := pl.flavors[f]
	if !seen {
		if got, err := pl.e.Resources.Flavor(ctx, f); err == nil {
			fl = &got
		}
		pl.flavors[f] = fl
	}
	if fl == nil {
		return resource.Flavor{}, false
	}
	return *fl, true
}

// actions compares the placed instances with the deployment's and checks
// literal flavor and image references on the chosen peers.
func (pl *planner) actions(ctx context.Context, plan *Plan) {
	r := pl.r
	missing := pl.missing(ctx)
	replacing := map[string]bool{}
	for _, name := range r.order {
		for _, key := range r.byName[name] {
			inst := r.instances[key]
			cur := pl.d.Resources[key]
			switch {
			case cur == nil:
				inst.Action = ActCreate
			case cur.Status == ResCreating || cur.Status == ResCreated || cur.Status == ResFailed:
				inst.Action = ActCreate
				inst.Reasons = append(inst.Reasons, "unfinished ("+string(cur.Status)+"): adopt what the peer made, or create")
			case cur.PeerID != inst.PeerID:
				inst.Action = ActReplace
				inst.Reasons = append(inst.Reasons, fmt.Sprintf("moves from %s to %s", cur.PeerName, inst.PeerName))
			case missing[key]:
				inst.Action = ActCreate
				inst.Reasons = append(inst.Reasons, fmt.Sprintf("%s is gone from %s (deleted outside the deployment): created again", cur.ID, cur.PeerName))
			default:
				inst.Changes = changedProps(cur.Props, inst.Props)
				switch {
				case len(inst.Changes) == 0 && cur.Status != ResUpdating:
					inst.Action = ActNoop
				case updatable(inst.Kind, cur.Props, inst.Props, inst.Changes):
					inst.Action = ActUpdate
				default:
					inst.Action = ActReplace
					inst.Reasons = append(inst.Reasons, fmt.Sprintf("%s changes; peers cannot change that in place", strings.Join(inst.Changes, ", ")))
				}
			}
			if cur != nil && cur.Unhealthy != "" && (inst.Action == ActNoop || inst.Action == ActUpdate) {
				inst.Action = ActReplace
				inst.Reasons = append(inst.Reasons, "marked unhealthy: "+cur.Unhealthy)
			}
			if inst.Action == ActNoop || inst.Action == ActUpdate {
				for _, d := range inst.Deps {
					if replacing[d] && refersTo(inst.Props, r.instances[d].Resource) {
						inst.Action = ActReplace
						inst.Reasons = append(inst.Reasons, d+" is replaced and this refers to it")
						break
					}
				}
			}
			if inst.Action == ActReplace || missing[key] {
				replacing[key] = true // its ID changes
			}
			if inst.Action == ActCreate || inst.Action == ActReplace {
				pl.checkRefs(ctx, inst)
			}
			plan.Steps = append(plan.Steps, *inst)
		}
	}
	// What exists and is no longer wanted goes, dependents first.
	var gone []*Resource
	for _, key := range sortedKeys(pl.d.Resources) {
		if r.instances[key] == nil {
			gone = append(gone, pl.d.Resources[key])
		}
	}
	for _, key := range reverseOrder(gone) {
		cur := pl.d.Resources[key]
		plan.Steps = append(plan.Steps, Step{Key: key, Resource: cur.Resource, Index: cur.Index, Kind: cur.Kind,
			Action: ActDelete, PeerID: cur.PeerID, PeerName: cur.PeerName, Deps: cur.Deps,
			Reasons: []string{"no longer in the template (or no longer needed on this peer)"}})
	}
}

// missing finds the deployment's settled instances the services no
// longer have (deleted through the OpenStack APIs, say), asking in
// parallel. A service that cannot answer is not taken to have lost
// anything.
func (pl *planner) missing(ctx context.Context) map[string]bool {
	var mu sync.Mutex
	var wg sync.WaitGroup
	out := map[string]bool{}
	r := &run{e: pl.e, id: pl.d.ID, d: pl.d}
	for key, cur := range pl.d.Resources {
		if cur.Status != ResReady || cur.ID == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var g bool
			err := pl.e.call(ctx, cur.PeerID, func() error {
				var err error
				g, err = r.gone(ctx, pl.caller, cur, cur.ID)
				return err
			})
			if err == nil && g {
				mu.Lock()
				out[key] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return out
}

// isSymbol reports whether a planned string stands for a value not known
// until apply (Symbols encode as their expression).
func isSymbol(s string) bool {
	return strings.HasPrefix(s, "get_resource:") || strings.HasPrefix(s, "get_attr:") ||
		strings.HasPrefix(s, "join:") || strings.HasPrefix(s, "str_replace:")
}

// changedProps names the top-level properties that differ.
func changedProps(oldJSON, newJSON string) []string {
	if oldJSON == newJSON {
		return nil
	}
	var a, b map[string]json.RawMessage
	_ = json.Unmarshal([]byte(oldJSON), &a)
	_ = json.Unmarshal([]byte(newJSON), &b)
	var out []string
	for k, v := range b {
		if string(a[k]) != string(v) {
			out = append(out, k)
		}
	}
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	if len(out) == 0 {
		out = []string{"properties"}
	}
	return out
}

// updatable: the only in-place change peers offer is growing a volume.
func updatable(k templates.Kind, oldJSON, newJSON string, changes []string) bool {
	if k != templates.KindVolume || !slices.Equal(changes, []string{"size"}) {
		return false
	}
	var a, b map[string]any
	_ = json.Unmarshal([]byte(oldJSON), &a)
	_ = json.Unmarshal([]byte(newJSON), &b)
	oa, ok1 := a["size"].(float64)
	ob, ok2 := b["size"].(float64)
	return ok1 && ok2 && ob > oa
}

// refersTo reports whether planned properties refer to resource name.
func refersTo(propsJSON, name string) bool {
	return strings.Contains(propsJSON, "get_resource:"+name+`"`) || strings.Contains(propsJSON, "get_attr:"+name+".") ||
		strings.Contains(propsJSON, "${get_resource:"+name+"}")
}

// reverseOrder orders instances so dependents come before what they
// depend on (the order to delete them in).
func reverseOrder(rs []*Resource) []string {
	deps := map[string][]string{}
	in := map[string]bool{}
	for _, r := range rs {
		in[r.Key] = true
	}
	for _, r := range rs {
		for _, d := range r.Deps {
			if in[d] {
				deps[r.Key] = append(deps[r.Key], d)
			}
		}
		if _, ok := deps[r.Key]; !ok {
			deps[r.Key] = nil
		}
	}
	order := topoKeys(deps)
	slices.Reverse(order)
	return order
}

func topoKeys(deps map[string][]string) []string {
	done := map[string]bool{}
	var out []string
	var visit func(n string)
	visit = func(n string) {
		if done[n] {
			return
		}
		done[n] = true
		for _, d := range deps[n] {
			visit(d)
		}
		out = append(out, n)
	}
	for _, n := range sortedKeys(deps) {
		visit(n)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
