package heat

import (
	"net/http"
	"regexp"
	"sort"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/templatesapi"
	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy"
)

// instanceKey splits an engine key: "web[2]@peer" is replica 2 of web
// (the peer suffix names a per-peer copy of a network or subnet).
var instanceKey = regexp.MustCompile(`^([^\[@]+)(?:\[(\d+)\])?(?:@(.+))?$`)

// group is one template resource and its instances.
type group struct {
	name      string
	typ       string
	counted   bool
	metadata  map[string]any
	instances []*deploy.Resource
}

// groups reads the stack's resources: every template resource (those
// not made yet too, as Heat lists them INIT), with its instances.
func groups(d *deploy.Deployment) ([]*group, *templates.Template) {
	tpl, _ := templates.Parse([]byte(d.Spec.Source))
	by := map[string]*group{}
	if tpl != nil {
		for name, res := range tpl.Resources {
			by[name] = &group{name: name, typ: res.Type, counted: res.Count != nil, metadata: res.Metadata}
		}
	}
	for _, res := range d.Resources {
		g := by[res.Resource]
		if g == nil {
			g = &group{name: res.Resource, typ: string(res.Kind)}
			by[res.Resource] = g
		}
		g.instances = append(g.instances, res)
	}
	out := make([]*group, 0, len(by))
	for _, g := range by {
		sort.Slice(g.instances, func(i, j int) bool { return g.instances[i].Key < g.instances[j].Key })
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, tpl
}

// instanceStatus is Heat's resource_status of one instance.
func instanceStatus(res *deploy.Resource) (string, string) {
	if res.Unhealthy != "" {
		return "CHECK_FAILED", res.Unhealthy
	}
	switch res.Status {
	case deploy.ResCreating, deploy.ResCreated:
		return actCreate + "_" + inProgress, "state changed"
	case deploy.ResUpdating:
		return actUpdate + "_" + inProgress, "state changed"
	case deploy.ResDeleting:
		return actDelete + "_" + inProgress, "state changed"
	case deploy.ResFailed:
		return actCreate + "_" + failed, res.Error
	}
	return actCreate + "_" + complete, "state changed"
}

// groupStatus sums a resource's instances: a failure, else work in
// progress, else complete; a resource with none yet is INIT_COMPLETE.
func groupStatus(g *group) (string, string) {
	if len(g.instances) == 0 {
		return "INIT_COMPLETE", ""
	}
	status, reason := instanceStatus(g.instances[0])
	for _, res := range g.instances[1:] {
		s, why := instanceStatus(res)
		if s == "CHECK_FAILED" || (s[len(s)-len(failed):] == failed && status != "CHECK_FAILED") ||
			(s[len(s)-len(inProgress):] == inProgress && status[len(status)-len(complete):] == complete) {
			status, reason = s, why
		}
	}
	return status, reason
}

// requiredBy names the resources whose instances depend on g's.
func requiredBy(d *deploy.Deployment, g *group) []string {
	keys := map[string]bool{}
	for _, res := range g.instances {
		keys[res.Key] = true
	}
	set := map[string]bool{}
	for _, res := range d.Resources {
		for _, dep := range res.Deps {
			if keys[dep] && res.Resource != g.name {
				set[res.Resource] = true
			}
		}
	}
	out := []string{}
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func resourceLinks(r *http.Request, d *deploy.Deployment, name string) []any {
	return []any{link(base(r)+stackPath(d)+"/resources/"+name, "self"), link(base(r)+stackPath(d), "stack")}
}

// resourceView is a template resource as Heat shows it: the physical ID
// is its (first) instance's broker ID; a counted resource (Heat's
// ResourceGroup) lists its members' IDs as the refs attribute.
func resourceView(r *http.Request, d *deploy.Deployment, g *group, m templatesapi.Masker) map[string]any {
	status, reason := groupStatus(g)
	v := map[string]any{
		"resource_name": g.name, "logical_resource_id": g.name, "resource_type": g.typ, "physical_resource_id": "",
		"resource_status": status, "resource_status_reason": m.String(reason), "required_by": requiredBy(d, g),
		"creation_time": timeOf(d.CreatedAt), "updated_time": timeOf(d.UpdatedAt), "links": resourceLinks(r, d, g.name),
	}
	if len(g.instances) > 0 && !g.counted {
		v["physical_resource_id"] = g.instances[0].ID
	}
	if g.counted {
		v["physical_resource_id"] = d.ID + "-" + g.name
	}
	return v
}

func memberView(r *http.Request, d *deploy.Deployment, g *group, res *deploy.Resource, m templatesapi.Masker) map[string]any {
	status, reason := instanceStatus(res)
	name := strconv.Itoa(res.Index)
	return map[string]any{
		"resource_name": name, "logical_resource_id": name, "resource_type": memberType(g.typ, res), "physical_resource_id": res.ID,
		"resource_status": status, "resource_status_reason": m.String(reason), "required_by": []string{},
		"parent_resource": g.name, "creation_time": timeOf(d.CreatedAt), "updated_time": timeOf(d.UpdatedAt),
		"links": resourceLinks(r, d, g.name),
	}
}

// memberType is a group member's type: resource_def's (the HOT type of
// its kind).
func memberType(groupType string, res *deploy.Resource) string {
	if groupType != "OS::Heat::ResourceGroup" {
		return groupType
	}
	for _, name := range templates.HOTTypeNames() {
		if t, ok := templates.HOTTypeOf(name); ok && t.Kind == res.Kind {
			return name
		}
	}
	return string(res.Kind)
}

func (a *API) listResources(w http.ResponseWriter, r *http.Request) {
	d, err := a.stack(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	depth := 0
	if s := r.URL.Query().Get("nested_depth"); s != "" {
		if depth, err = strconv.Atoi(s); err != nil || depth < 0 {
			a.fail(w, r, badRequest("nested_depth: want a non-negative integer"))
			return
		}
	}
	gs, _ := groups(d)
	m := a.masker(r.Context(), d)
	q := r.URL.Query()
	out := []any{}
	for _, g := range gs {
		v := resourceView(r, d, g, m)
		if matches(q, "name", g.name) && matches(q, "type", g.typ) && matches(q, "status", v["resource_status"].(string)) {
			out = append(out, v)
		}
		if !g.counted || depth < 1 {
			continue
		}
		for _, res := range g.instances {
			mv := memberView(r, d, g, res, m)
			if matches(q, "name", mv["resource_name"].(string)) && matches(q, "type", mv["resource_type"].(string)) {
				out = append(out, mv)
			}
		}
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"resources": out})
}

// resourceOf finds a template resource of the stack by name.
func (a *API) resourceOf(w http.ResponseWriter, r *http.Request) (*deploy.Deployment, *group, bool) {
	d, err := a.stack(r)
	if err != nil {
		a.fail(w, r, err)
		return nil, nil, false
	}
	name := chi.URLParam(r, "res")
	gs, _ := groups(d)
	for _, g := range gs {
		if g.name == name {
			return d, g, true
		}
	}
	a.fail(w, r, errNotFound("The Resource ("+name+") could not be found."))
	return nil, nil, false
}

func (a *API) showResource(w http.ResponseWriter, r *http.Request) {
	d, g, ok := a.resourceOf(w, r)
	if !ok {
		return
	}
	m := a.masker(r.Context(), d)
	v := resourceView(r, d, g, m)
	attrs := map[string]any{}
	switch {
	case g.counted:
		refs := []any{}
		for _, res := range g.instances {
			refs = append(refs, res.ID)
		}
		attrs["refs"] = refs
	case len(g.instances) > 0:
		for k, x := range g.instances[0].Attrs {
			attrs[k] = m.Value(x)
		}
		attrs["peer"] = g.instances[0].PeerName
	}
	v["attributes"], v["description"] = attrs, ""
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"resource": v})
}

// resourceMetadata answers the resource's metadata section, as written
// in the template.
func (a *API) resourceMetadata(w http.ResponseWriter, r *http.Request) {
	d, g, ok := a.resourceOf(w, r)
	if !ok {
		return
	}
	md := map[string]any{}
	if g.metadata != nil {
		md, _ = a.masker(r.Context(), d).Value(g.metadata).(map[string]any)
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"metadata": md})
}

// markUnhealthy serves PATCH .../resources/NAME {"mark_unhealthy": bool,
// "resource_status_reason": text}: a marked resource is replaced by the
// next update.
func (a *API) markUnhealthy(w http.ResponseWriter, r *http.Request) {
	d, g, ok := a.resourceOf(w, r)
	if !ok {
		return
	}
	var body struct {
		MarkUnhealthy *bool  `json:"mark_unhealthy"`
		Reason        string `json:"resource_status_reason"`
	}
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if body.MarkUnhealthy == nil {
		a.fail(w, r, badRequest("mark_unhealthy is required"))
		return
	}
	if len(g.instances) == 0 {
		a.fail(w, r, badRequest("resource %s has not been created", g.name))
		return
	}
	if _, err := a.Engine.MarkUnhealthy(r.Context(), d.ID, g.name, *body.MarkUnhealthy, body.Reason); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
