package templatesapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// DeployRequest creates, updates or plans a deployment. Give a catalog
// template ("NAME" or "NAME@VERSION"), a binding (which names its
// template), or an inline source; parameters and placement given here
// override the binding's.
type DeployRequest struct {
	Name          string                         `json:"name,omitempty"`
	Template      string                         `json:"template,omitempty"`
	Binding       string                         `json:"binding,omitempty"`
	Source        string                         `json:"source,omitempty"`
	Parameters    map[string]any                 `json:"parameters,omitempty"`
	Placement     map[string]templates.Placement `json:"placement,omitempty"`
	KeepOnFailure bool                           `json:"keep_on_failure,omitempty"`
	// DryRun plans and answers the plan; nothing is recorded or touched.
	DryRun bool `json:"dry_run,omitempty"`
}

// specFrom builds the spec from the project's own (or public) template
// and the project's own binding: the binding's values, hidden ones
// included, reach the engine as they are.
func (a *API) specFrom(ctx context.Context, project string, req DeployRequest) (deploy.Spec, error) {
	spec := deploy.Spec{KeepOnFailure: req.KeepOnFailure, Parameters: map[string]any{}, Placement: map[string]templates.Placement{}}
	tmpl := req.Template
	if req.Binding != "" {
		name, version, _ := strings.Cut(req.Binding, "@")
		b, err := a.Catalog.GetBinding(ctx, project, name, version)
		if err != nil {
			return spec, err
		}
		if tmpl != "" && tmpl != b.Template {
			return spec, badRequest("binding %s is bound to %s, not %s", b.Ref(), b.Template, tmpl)
		}
		spec.Binding, tmpl = b.Ref(), b.Template
		maps.Copy(spec.Parameters, b.Parameters)
		maps.Copy(spec.Placement, b.Placement)
	}
	maps.Copy(spec.Parameters, templates.NormalizeValue(req.Parameters).(map[string]any))
	maps.Copy(spec.Placement, req.Placement)
	switch {
	case req.Source != "" && tmpl != "":
		return spec, badRequest("give a template (or binding) or a source, not both")
	case req.Source != "":
		spec.Source = req.Source
	case tmpl != "":
		name, version, _ := strings.Cut(tmpl, "@")
		v, err := a.Catalog.Get(ctx, project, name, version)
		if err != nil {
			return spec, err
		}
		spec.Template, spec.Source = v.Ref(), v.Source
	default:
		return spec, badRequest("give a template, a binding or a source")
	}
	return spec, nil
}

// resourceView is one instance as the API shows it.
type resourceView struct {
	Key      string `json:"key"`
	Resource string `json:"resource"`
	Kind     string `json:"kind"`
	Status   string `json:"status"`
	Peer     string `json:"peer"`
	ID       string `json:"id,omitempty"`
	Error    string `json:"error,omitempty"`
}

// deploymentView hides the template source and hidden parameters.
type deploymentView struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Project    string         `json:"project"`
	Status     deploy.Status  `json:"status"`
	Goal       string         `json:"goal"`
	Template   string         `json:"template,omitempty"`
	Binding    string         `json:"binding,omitempty"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Attempt    int            `json:"attempt"`
	Error      string         `json:"error,omitempty"`
	Outputs    map[string]any `json:"outputs,omitempty"`
	Resources  []resourceView `json:"resources"`
	CreatedAt  time.Time      `json:"created_at"`
	UpdatedAt  time.Time      `json:"updated_at"`
}

// viewOf shows d with hidden parameter values masked everywhere they
// may have been copied.
func viewOf(d *deploy.Deployment, m *masker) deploymentView {
	v := deploymentView{ID: d.ID, Name: d.Name, Project: d.Project, Status: d.Status, Goal: d.Goal, Template: d.Spec.Template,
		Binding: d.Spec.Binding, Parameters: m.params(d.Spec.Parameters), Attempt: d.Attempt, Error: m.str(d.Error),
		Resources: []resourceView{}, CreatedAt: d.CreatedAt, UpdatedAt: d.UpdatedAt}
	if d.Outputs != nil {
		v.Outputs, _ = m.value(d.Outputs).(map[string]any)
	}
	for _, r := range d.Resources {
		v.Resources = append(v.Resources, resourceView{Key: r.Key, Resource: r.Resource, Kind: string(r.Kind), Status: string(r.Status),
			Peer: r.PeerName, ID: r.ID, Error: m.str(r.Error)})
	}
	sort.Slice(v.Resources, func(i, j int) bool { return v.Resources[i].Key < v.Resources[j].Key })
	return v
}

// maskerOf knows the hidden values of d's current and applied specs.
func (a *API) maskerOf(ctx context.Context, d *deploy.Deployment) *masker {
	return a.maskerFor(ctx, d.Project, &d.Spec, d.Applied)
}

// own loads a deployment of the caller's project; another project's is
// not found.
func (a *API) own(r *http.Request) (*deploy.Deployment, error) {
	d, err := a.Engine.Get(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return nil, err
	}
	if t, _ := identity.TokenFrom(r.Context()); d.Project != t.ProjectID {
		return nil, fmt.Errorf("%w: %s", deploy.ErrNotFound, d.ID)
	}
	return d, nil
}

func (a *API) listDeployments(w http.ResponseWriter, r *http.Request) {
	t, _ := identity.TokenFrom(r.Context())
	ds, err := a.Engine.List(r.Context(), t.ProjectID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := []deploymentView{}
	for _, d := range ds {
		v := viewOf(d, a.maskerOf(r.Context(), d))
		v.Resources, v.Outputs = nil, nil
		out = append(out, v)
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"deployments": out})
}

func (a *API) createDeployment(w http.ResponseWriter, r *http.Request) {
	var req DeployRequest
	if err := decodeJSON(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	t, _ := identity.TokenFrom(r.Context())
	project, owner := t.ProjectID, resource.Caller{Project: t.ProjectID, User: t.UserID}
	spec, err := a.specFrom(r.Context(), project, req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := a.maskerFor(r.Context(), project, &spec)
	if req.DryRun {
		plan, err := a.Engine.Plan(r.Context(), &deploy.Deployment{Project: project, User: owner.User}, spec)
		if err != nil {
			a.failMasked(w, r, err, m)
			return
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"plan": m.plan(plan)})
		return
	}
	d, plan, err := a.Engine.Create(r.Context(), req.Name, owner, spec)
	if err != nil {
		a.failMasked(w, r, err, m)
		return
	}
	a.Engine.Start(d.ID)
	w.Header().Set("Location", identity.BaseURL(r)+"/v1/deployments/"+d.ID)
	osapi.WriteJSON(w, http.StatusAccepted, map[string]any{"deployment": viewOf(d, m), "plan": m.plan(plan)})
}

func (a *API) showDeployment(w http.ResponseWriter, r *http.Request) {
	d, err := a.own(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"deployment": viewOf(d, a.maskerOf(r.Context(), d))})
}

// updateDeployment moves a deployment to a new template or binding
// version (or new parameters): 202 with the plan, or with dry_run only
// the plan.
func (a *API) updateDeployment(w http.ResponseWriter, r *http.Request) {
	cur, err := a.own(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var req DeployRequest
	if err := decodeJSON(r, &req); err != nil {
		a.fail(w, r, err)
		return
	}
	spec, err := a.specFrom(r.Context(), cur.Project, req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	m := a.maskerFor(r.Context(), cur.Project, &spec, &cur.Spec, cur.Applied)
	if req.DryRun {
		plan, err := a.Engine.Plan(r.Context(), cur, spec)
		if err != nil {
			a.failMasked(w, r, err, m)
			return
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"plan": m.plan(plan)})
		return
	}
	d, plan, err := a.Engine.Update(r.Context(), cur.ID, spec)
	if err != nil {
		a.failMasked(w, r, err, m)
		return
	}
	a.Engine.Start(d.ID)
	osapi.WriteJSON(w, http.StatusAccepted, map[string]any{"deployment": viewOf(d, m), "plan": m.plan(plan)})
}

func (a *API) deleteDeployment(w http.ResponseWriter, r *http.Request) {
	a.transition(w, r, a.Engine.Delete)
}

func (a *API) retryDeployment(w http.ResponseWriter, r *http.Request) {
	a.transition(w, r, a.Engine.Retry)
}

func (a *API) transition(w http.ResponseWriter, r *http.Request, fn func(context.Context, string) (*deploy.Deployment, error)) {
	cur, err := a.own(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	d, err := fn(r.Context(), cur.ID)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.Engine.Start(d.ID)
	osapi.WriteJSON(w, http.StatusAccepted, map[string]any{"deployment": viewOf(d, a.maskerOf(r.Context(), d))})
}

// events answers the deployment's events after ?after= (or Last-Event-ID):
// a JSON list, or, with Accept: text/event-stream, a stream that follows
// the deployment until it settles or the client leaves.
func (a *API) events(w http.ResponseWriter, r *http.Request) {
	d, err := a.own(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	after := int64(0)
	for _, s := range []string{r.URL.Query().Get("after"), r.Header.Get("Last-Event-ID")} {
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			a.fail(w, r, badRequest("after: want a non-negative event number"))
			return
		}
		after = n
	}
	ctx := r.Context()
	m := a.maskerOf(ctx, d)
	evs, index, err := a.Engine.Events(ctx, d.ID, after)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"events": m.events(evs), "status": d.Status})
		return
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	// final: when the last event sent was written, if it ended a run
	// (deploy.Event.Final; zero otherwise). A run writes it after saving
	// its settled status, so it is the current run's only if it is not
	// older than that save (an earlier run's final precedes it).
	// quiet: the deployment was settled through a whole watch with no
	// event, so a final event is not coming (a run whose last write
	// failed, or one recorded before events were marked final).
	var final time.Time
	quiet := false
	for {
		for _, ev := range m.events(evs) {
			b, _ := json.Marshal(ev)
			if _, err := fmt.Fprintf(w, "id: %d\nevent: %s\ndata: %s\n\n", ev.Seq, ev.Action, b); err != nil {
				return
			}
			after, final = ev.Seq, time.Time{}
			if ev.Final {
				final = ev.Time
			}
		}
		// Settled and every event sent: say so and end the stream. The
		// engine saves the settled status before the final event, so a
		// settled status without it means the event is on its way.
		cur, err := a.Engine.Get(ctx, d.ID)
		if err != nil {
			return
		}
		if cur.Attempt != d.Attempt {
			// An update brought another spec: learn its hidden values.
			d, m = cur, a.maskerOf(ctx, cur)
		}
		if cur.Status.InProgress() {
			quiet = false
		}
		if !cur.Status.InProgress() && (!final.IsZero() && !final.Before(cur.UpdatedAt) || quiet) {
			more, _, err := a.Engine.Events(ctx, d.ID, after)
			if err == nil && len(more) == 0 {
				b, _ := json.Marshal(map[string]any{"status": cur.Status, "error": m.str(cur.Error)})
				_, _ = fmt.Fprintf(w, "event: end\ndata: %s\n\n", b)
				_ = rc.Flush()
				return
			}
		}
		if err := rc.Flush(); err != nil {
			return
		}
		wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		evs, index, err = a.Engine.WatchEvents(wctx, d.ID, after, index)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			quiet = !cur.Status.InProgress()
			// A comment line keeps proxies from closing an idle stream.
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return
			}
			evs = nil
			continue
		}
		if err != nil {
			return
		}
	}
}
