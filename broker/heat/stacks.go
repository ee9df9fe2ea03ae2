package heat

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/templatesapi"
	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// byName finds the project's live stack (not deleted) of that name.
func (a *API) byName(ctx context.Context, project, name string) (*deploy.Deployment, error) {
	ds, err := a.Engine.List(ctx, project)
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		if d.Name == name && d.Status != deploy.StatusDeleted {
			return d, nil
		}
	}
	return nil, nil
}

// find resolves a name or ID to the project's stack; another project's
// is not found.
func (a *API) find(r *http.Request, ref string) (*deploy.Deployment, error) {
	if _, err := uuid.Parse(ref); err == nil {
		d, err := a.Engine.Get(r.Context(), ref)
		if err == nil && d.Project == project(r) {
			return d, nil
		}
		if err != nil && !errors.Is(err, deploy.ErrNotFound) {
			return nil, err
		}
	}
	d, err := a.byName(r.Context(), project(r), ref)
	if err != nil {
		return nil, err
	}
	if d == nil {
		return nil, stackNotFound(ref)
	}
	return d, nil
}

// stack loads /stacks/{name}/{id}: the ID decides, the name must match.
func (a *API) stack(r *http.Request) (*deploy.Deployment, error) {
	name, id := chi.URLParam(r, "name"), chi.URLParam(r, "id")
	d, err := a.Engine.Get(r.Context(), id)
	if errors.Is(err, deploy.ErrNotFound) || (err == nil && (d.Project != project(r) || d.Name != name)) {
		return nil, stackNotFound(name + "/" + id)
	}
	return d, err
}

// lookup answers a name or ID with a 302 to the stack's canonical path
// (and the sub-path asked for), as Heat's stacks:lookup.
func (a *API) lookup(w http.ResponseWriter, r *http.Request) {
	d, err := a.find(r, chi.URLParam(r, "name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	loc := base(r) + stackPath(d)
	if sub := chi.URLParam(r, "sub"); sub != "" {
		loc += "/" + sub
	}
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	osapi.WriteJSON(w, http.StatusFound, map[string]any{})
}

func (a *API) masker(ctx context.Context, d *deploy.Deployment) templatesapi.Masker {
	return a.Templates.MaskerFor(ctx, d.Project, &d.Spec, d.Applied)
}

func timeOf(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format("2006-01-02T15:04:05Z")
}

// summary is a stack as the list shows it.
func summary(r *http.Request, d *deploy.Deployment, m templatesapi.Masker, desc string) map[string]any {
	action, state := stackStatus(d)
	v := map[string]any{
		"id": d.ID, "stack_name": d.Name, "description": desc, "creation_time": timeOf(d.CreatedAt),
		"updated_time": nil, "deletion_time": nil, "stack_status": action + "_" + state,
		"stack_status_reason": m.String(statusReason(d, action, state)), "stack_owner": nil, "parent": nil, "tags": nil,
		"links": []any{link(base(r)+stackPath(d), "self")},
	}
	if d.Attempt > 1 || d.Goal == "delete" {
		v["updated_time"] = timeOf(d.UpdatedAt)
	}
	if d.Status == deploy.StatusDeleted {
		v["deletion_time"] = timeOf(d.UpdatedAt)
	}
	return v
}

// detail is a stack as show presents it.
func (a *API) detail(r *http.Request, d *deploy.Deployment, m templatesapi.Masker, outputs bool) map[string]any {
	tpl, _ := templates.Parse([]byte(d.Spec.Source))
	desc := ""
	if tpl != nil {
		desc = tpl.Description
	}
	v := summary(r, d, m, desc)
	v["template_description"] = desc
	v["disable_rollback"] = d.Spec.KeepOnFailure
	v["timeout_mins"] = nil
	if d.Spec.TimeoutMinutes > 0 {
		v["timeout_mins"] = d.Spec.TimeoutMinutes
	}
	v["capabilities"], v["notification_topics"] = []any{}, []any{}
	v["parameters"] = parameterView(d, tpl, m)
	if outputs {
		v["outputs"] = outputList(d, tpl, m, true)
	}
	return v
}

// parameterView is every parameter's value (defaults included) as
// strings, hidden ones masked, with Heat's pseudo parameters.
func parameterView(d *deploy.Deployment, tpl *templates.Template, m templatesapi.Masker) map[string]any {
	values := d.Spec.Parameters
	if tpl != nil {
		if resolved, err := tpl.ResolveParameters(d.Spec.Parameters); err == nil {
			values = resolved
		}
	}
	out := map[string]any{"OS::stack_id": d.ID, "OS::stack_name": d.Name, "OS::project_id": d.Project}
	for name, v := range values {
		if m.Hidden(name) {
			out[name] = templatesapi.Mask
			continue
		}
		out[name] = stringOf(m.Value(v))
	}
	return out
}

func stringOf(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = stringOf(e)
		}
		return strings.Join(parts, ",")
	case map[string]any:
		b, _ := json.Marshal(x)
		return string(b)
	}
	return fmt.Sprint(v)
}

func outputList(d *deploy.Deployment, tpl *templates.Template, m templatesapi.Masker, values bool) []any {
	var names []string
	descs := map[string]string{}
	if tpl != nil {
		for name, o := range tpl.Outputs {
			names = append(names, name)
			descs[name] = o.Description
		}
	} else {
		for name := range d.Outputs {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	out := []any{}
	for _, name := range names {
		o := map[string]any{"output_key": name, "description": descs[name]}
		if values {
			if v, ok := d.Outputs[name]; ok {
				o["output_value"] = m.Value(v)
			} else {
				o["output_value"] = nil
			}
		}
		out = append(out, o)
	}
	return out
}

func (a *API) listStacks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ds, err := a.Engine.List(r.Context(), project(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	showDeleted := q.Get("show_deleted") == "true" || q.Get("show_deleted") == "True"
	var rows []map[string]any
	for _, d := range ds {
		if d.Status == deploy.StatusDeleted && !showDeleted {
			continue
		}
		m := a.masker(r.Context(), d)
		var desc string
		if tpl, err := templates.Decode([]byte(d.Spec.Source)); err == nil {
			desc = tpl.Description
		}
		v := summary(r, d, m, desc)
		if !matches(q, "name", d.Name) || !matches(q, "id", d.ID) || !matches(q, "status", statusState(v)) && !matches(q, "status", v["stack_status"].(string)) ||
			!matches(q, "action", strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(v["stack_status"].(string), "_"+inProgress), "_"+complete), "_"+failed)) {
			continue
		}
		rows = append(rows, v)
	}
	if err := sortRows(rows, q); err != nil {
		a.fail(w, r, err)
		return
	}
	rows, err = page(rows, q)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if rows == nil {
		rows = []map[string]any{}
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"stacks": rows})
}

func statusState(v map[string]any) string {
	s := v["stack_status"].(string)
	return s[strings.LastIndex(s, "_")+1:]
}

// matches applies a list filter (repeatable, any value matches).
func matches(q url.Values, key, have string) bool {
	want, ok := q[key]
	if !ok {
		return true
	}
	for _, w := range want {
		if w == have || (key == "status" && (w == "IN_PROGRESS" && strings.HasSuffix(have, "PROGRESS"))) {
			return true
		}
	}
	return false
}

var sortable = map[string]string{"stack_name": "stack_name", "stack_status": "stack_status", "creation_time": "creation_time",
	"updated_time": "updated_time", "created_at": "creation_time", "updated_at": "updated_time", "name": "stack_name", "status": "stack_status"}

// sortRows sorts by sort_keys and sort_dir (Heat's default: newest first).
func sortRows(rows []map[string]any, q url.Values) error {
	key := "creation_time"
	if k := q.Get("sort_keys"); k != "" {
		var ok bool
		if key, ok = sortable[k]; !ok {
			return badRequest("sort_keys: %s is not a sort key (stack_name, stack_status, creation_time, updated_time)", k)
		}
	}
	dir := q.Get("sort_dir")
	if dir == "" {
		dir = "desc"
	}
	if dir != "asc" && dir != "desc" {
		return badRequest("sort_dir: want asc or desc")
	}
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := fmt.Sprint(rows[i][key]), fmt.Sprint(rows[j][key])
		if dir == "desc" {
			return a > b
		}
		return a < b
	})
	return nil
}

// page applies marker (a stack ID) and limit.
func page(rows []map[string]any, q url.Values) ([]map[string]any, error) {
	if marker := q.Get("marker"); marker != "" {
		at := -1
		for i, v := range rows {
			if v["id"] == marker {
				at = i
			}
		}
		if at < 0 {
			return nil, stackNotFound(marker)
		}
		rows = rows[at+1:]
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return nil, badRequest("limit: want a non-negative integer")
		}
		if n < len(rows) {
			rows = rows[:n]
		}
	}
	return rows, nil
}

func (a *API) showStack(w http.ResponseWriter, r *http.Request) {
	d, err := a.stack(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	outputs := r.URL.Query().Get("resolve_outputs") != "False" && r.URL.Query().Get("resolve_outputs") != "false"
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"stack": a.detail(r, d, a.masker(r.Context(), d), outputs)})
}

// spec builds the engine's spec from a create or update request over
// cur (nil for a create; an update's current spec, whose values a PATCH
// keeps).
func (a *API) spec(q *stackRequest, cur *deploy.Spec, patch bool) (deploy.Spec, *templates.Template, error) {
	if err := q.refuseUnserved(); err != nil {
		return deploy.Spec{}, nil, err
	}
	src, given, err := q.source()
	if err != nil {
		return deploy.Spec{}, nil, err
	}
	spec := deploy.Spec{Source: src, KeepOnFailure: true} // Heat's default: disable_rollback
	var baseParams map[string]any
	if cur != nil {
		spec.KeepOnFailure, spec.TimeoutMinutes = cur.KeepOnFailure, cur.TimeoutMinutes
		if patch {
			baseParams = cur.Parameters
			if !given {
				spec.Source, given = cur.Source, true
			}
		}
	}
	if !given {
		return deploy.Spec{}, nil, badRequest("a template is required")
	}
	tpl, err := templates.Parse([]byte(spec.Source))
	if err != nil {
		return deploy.Spec{}, nil, err
	}
	kept := map[string]any{}
	for name, v := range baseParams {
		if _, ok := tpl.Parameters[name]; ok { // a new template's dropped parameters go
			kept[name] = v
		}
	}
	if spec.Parameters, err = q.parameters(tpl, kept); err != nil {
		return deploy.Spec{}, nil, err
	}
	if q.DisableRollback != nil {
		spec.KeepOnFailure = *q.DisableRollback
	}
	if q.TimeoutMins != nil {
		spec.TimeoutMinutes = *q.TimeoutMins
	}
	return spec, tpl, nil
}

func caller(r *http.Request) resource.Caller {
	t, _ := identity.TokenFrom(r.Context())
	return resource.Caller{Project: t.ProjectID, User: t.UserID}
}

func (a *API) createStack(w http.ResponseWriter, r *http.Request) {
	var q stackRequest
	if err := decodeBody(r, &q); err != nil {
		a.fail(w, r, err)
		return
	}
	if !stackName.MatchString(q.StackName) {
		a.fail(w, r, badRequest("stack_name: %q is not a stack name (a letter, then letters, digits, _ . -; 255 at most)", q.StackName))
		return
	}
	spec, _, err := a.spec(&q, nil, false)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := a.Templates.MaskerFor(r.Context(), project(r), &spec)
	if d, err := a.byName(r.Context(), project(r), q.StackName); err != nil || d != nil {
		if err == nil {
			err = &heatError{code: 409, typ: "StackExists", msg: fmt.Sprintf("The Stack (%s) already exists.", q.StackName)}
		}
		a.fail(w, r, err)
		return
	}
	d, _, err := a.Engine.Create(r.Context(), q.StackName, caller(r), spec)
	if err != nil {
		a.failMasked(w, r, err, &m)
		return
	}
	a.Engine.Start(d.ID)
	w.Header().Set("Location", base(r)+stackPath(d))
	osapi.WriteJSON(w, http.StatusCreated, map[string]any{"stack": map[string]any{"id": d.ID, "links": []any{link(base(r)+stackPath(d), "self")}}})
}

// previewStack plans a create: each resource with the peer it would go
// to; nothing is recorded or made.
func (a *API) previewStack(w http.ResponseWriter, r *http.Request) {
	var q stackRequest
	if err := decodeBody(r, &q); err != nil {
		a.fail(w, r, err)
		return
	}
	if !stackName.MatchString(q.StackName) {
		a.fail(w, r, badRequest("stack_name: %q is not a stack name", q.StackName))
		return
	}
	spec, tpl, err := a.spec(&q, nil, false)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := a.Templates.MaskerFor(r.Context(), project(r), &spec)
	c := caller(r)
	d := &deploy.Deployment{ID: "None", Name: q.StackName, Project: c.Project, User: c.User, Spec: spec, Attempt: 1, Status: deploy.StatusPending, Goal: "apply"}
	plan, err := a.Engine.Plan(r.Context(), d, spec)
	if err != nil {
		a.failMasked(w, r, err, &m)
		return
	}
	v := a.detail(r, d, m, false)
	v["links"] = []any{}
	delete(v, "stack_status")
	delete(v, "stack_status_reason")
	var res []any
	for _, st := range plan.Steps {
		var props any
		_ = json.Unmarshal([]byte(st.Props), &props)
		rt := ""
		if tr := tpl.Resources[st.Resource]; tr != nil {
			rt = tr.Type
		}
		res = append(res, map[string]any{
			"resource_name": st.Key, "logical_resource_id": st.Key, "resource_type": rt, "physical_resource_id": "",
			"resource_action": "INIT", "resource_status": complete, "resource_status_reason": "", "properties": m.Value(props),
			"attributes": map[string]any{}, "metadata": map[string]any{}, "required_by": []any{}, "description": "",
			"stack_name": q.StackName, "creation_time": nil, "updated_time": nil,
			"placement": map[string]any{"peer": st.PeerName, "reasons": st.Reasons},
		})
	}
	v["resources"] = res
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"stack": v})
}

func (a *API) updateStack(patch bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cur, spec, m, err := a.updateSpec(r, patch)
		if err != nil {
			a.failMasked(w, r, err, m)
			return
		}
		d, _, err := a.Engine.Update(r.Context(), cur.ID, spec)
		if err != nil {
			a.failMasked(w, r, err, m)
			return
		}
		a.Engine.Start(d.ID)
		w.WriteHeader(http.StatusAccepted)
	}
}

func (a *API) updateSpec(r *http.Request, patch bool) (*deploy.Deployment, deploy.Spec, *templatesapi.Masker, error) {
	cur, err := a.stack(r)
	if err != nil {
		return nil, deploy.Spec{}, nil, err
	}
	var q stackRequest
	if err := decodeBody(r, &q); err != nil {
		return nil, deploy.Spec{}, nil, err
	}
	if cur.Status == deploy.StatusDeleted || cur.Goal == "delete" {
		return nil, deploy.Spec{}, nil, &heatError{code: 409, typ: "ActionInProgress", msg: fmt.Sprintf("Stack %s is being deleted or was deleted.", cur.Name)}
	}
	spec, _, err := a.spec(&q, &cur.Spec, patch || q.Existing)
	if err != nil {
		return nil, deploy.Spec{}, nil, err
	}
	m := a.Templates.MaskerFor(r.Context(), cur.Project, &spec, &cur.Spec, cur.Applied)
	return cur, spec, &m, nil
}

// previewUpdate answers what an update would change, per resource.
func (a *API) previewUpdate(patch bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cur, spec, m, err := a.updateSpec(r, patch)
		if err != nil {
			a.failMasked(w, r, err, m)
			return
		}
		plan, err := a.Engine.Plan(r.Context(), cur, spec)
		if err != nil {
			a.failMasked(w, r, err, m)
			return
		}
		tpl, _ := templates.Parse([]byte(spec.Source))
		changes := map[string][]any{"added": {}, "deleted": {}, "replaced": {}, "unchanged": {}, "updated": {}}
		rank := map[deploy.Action]int{deploy.ActNoop: 0, deploy.ActUpdate: 1, deploy.ActReplace: 2, deploy.ActCreate: 3, deploy.ActDelete: 4}
		worst := map[string]deploy.Action{}
		for _, st := range plan.Steps {
			if prev, ok := worst[st.Resource]; !ok || rank[st.Action] > rank[prev] {
				worst[st.Resource] = st.Action
			}
		}
		bucket := map[deploy.Action]string{deploy.ActNoop: "unchanged", deploy.ActUpdate: "updated", deploy.ActReplace: "replaced",
			deploy.ActCreate: "added", deploy.ActDelete: "deleted"}
		for _, name := range sortedNames(worst) {
			rt := ""
			if tpl != nil && tpl.Resources[name] != nil {
				rt = tpl.Resources[name].Type
			}
			changes[bucket[worst[name]]] = append(changes[bucket[worst[name]]], map[string]any{
				"resource_name": name, "resource_type": rt, "stack_name": cur.Name, "stack_identity": identityOf(r, cur),
			})
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"resource_changes": changes})
	}
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func identityOf(r *http.Request, d *deploy.Deployment) map[string]any {
	return map[string]any{"stack_name": d.Name, "stack_id": d.ID, "tenant": d.Project, "path": ""}
}

func (a *API) deleteStack(w http.ResponseWriter, r *http.Request) {
	d, err := a.stack(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if d.Status == deploy.StatusDeleted {
		a.fail(w, r, stackNotFound(d.Name))
		return
	}
	if _, err := a.Engine.Delete(r.Context(), d.ID); err != nil {
		a.fail(w, r, err)
		return
	}
	a.Engine.Start(d.ID)
	w.WriteHeader(http.StatusNoContent)
}

// action serves POST .../actions: cancel_update only.
func (a *API) action(w http.ResponseWriter, r *http.Request) {
	d, err := a.stack(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var body map[string]any
	if err := decodeBody(r, &body); err != nil {
		a.fail(w, r, err)
		return
	}
	if len(body) != 1 {
		a.fail(w, r, badRequest("give exactly one action"))
		return
	}
	if _, ok := body["cancel_update"]; !ok {
		for k := range body {
			a.fail(w, r, badRequest("action %s is not supported (cancel_update is)", k))
		}
		return
	}
	if _, err := a.Engine.Cancel(r.Context(), d.ID); err != nil {
		if errors.Is(err, deploy.ErrState) {
			action, state := stackStatus(d)
			err = &heatError{code: 400, typ: "NotSupported", msg: fmt.Sprintf("Cancelling update when stack is ('%s', '%s') is not supported.", action, state)}
		}
		a.fail(w, r, err)
		return
	}
	a.Engine.Start(d.ID)
	w.WriteHeader(http.StatusOK)
}

func (a *API) showTemplate(w http.ResponseWriter, r *http.Request) {
	d, err := a.stack(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	src := a.Templates.Source(r.Context(), d.Project, d.Spec.Source)
	tree, err := templates.DecodeTree([]byte(src))
	if err != nil || src == "" {
		a.fail(w, r, fmt.Errorf("the template of %s cannot be shown: %w", d.ID, err))
		return
	}
	osapi.WriteJSON(w, http.StatusOK, tree)
}

// showEnvironment answers the environment the stack runs with: its
// parameters (hidden ones masked); the engine keeps no other section.
func (a *API) showEnvironment(w http.ResponseWriter, r *http.Request) {
	d, err := a.stack(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := a.masker(r.Context(), d)
	params := m.Params(d.Spec.Parameters)
	if params == nil {
		params = map[string]any{}
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"parameters": params, "parameter_defaults": map[string]any{},
		"resource_registry": map[string]any{"resources": map[string]any{}}, "encrypted_param_names": []any{}, "event_sinks": []any{}})
}

func (a *API) listOutputs(w http.ResponseWriter, r *http.Request) {
	d, err := a.stack(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tpl, _ := templates.Parse([]byte(d.Spec.Source))
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"outputs": outputList(d, tpl, a.masker(r.Context(), d), false)})
}

func (a *API) showOutput(w http.ResponseWriter, r *http.Request) {
	d, err := a.stack(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	key := chi.URLParam(r, "key")
	tpl, _ := templates.Parse([]byte(d.Spec.Source))
	for _, o := range outputList(d, tpl, a.masker(r.Context(), d), true) {
		o := o.(map[string]any)
		if o["output_key"] != key {
			continue
		}
		if _, ok := d.Outputs[key]; !ok {
			action, state := stackStatus(d)
			o["output_error"] = "the output has no value while the stack is " + action + "_" + state
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"output": o})
		return
	}
	a.fail(w, r, &heatError{code: 404, typ: "NotFound", msg: fmt.Sprintf("Specified output key %s not found.", key)})
}
