package templatesapi

import (
	"context"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/focus"
)

// projectOf is the caller's project: what it owns, and the scope every
// name it gives resolves in.
func projectOf(r *http.Request) string {
	t, _ := identity.TokenFrom(r.Context())
	return t.ProjectID
}

func (a *API) listTemplates(w http.ResponseWriter, r *http.Request) {
	list, err := a.Catalog.List(r.Context(), projectOf(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"templates": nonNil(list)})
}

// templateView shows a version as project sees it: hidden parameter
// values masked in the source, and another project's ID (a public
// version's owner) left out.
func (a *API) templateView(ctx context.Context, project string, v focus.Version) focus.Version {
	if v.Project != project {
		v.Project = ""
	}
	if v.Source != "" {
		v.Source = a.maskSource(ctx, project, v.Source)
	}
	return v
}

// templateVersions lists versions without their sources.
func (a *API) templateVersions(w http.ResponseWriter, r *http.Request) {
	project := projectOf(r)
	vs, err := a.Catalog.Versions(r.Context(), project, chi.URLParam(r, "name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(vs) == 0 {
		a.fail(w, r, focus.ErrNotFound)
		return
	}
	for i := range vs {
		vs[i].Source = ""
		vs[i] = a.templateView(r.Context(), project, vs[i])
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"versions": vs})
}

// pushTemplate stores the body (a template, YAML or JSON) as the next
// version of the project's template: 201 when new, 200 with the existing
// version when the same content was pushed before.
func (a *API) pushTemplate(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	project := projectOf(r)
	v, created, err := a.Catalog.Push(r.Context(), project, chi.URLParam(r, "name"), b, userOf(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	osapi.WriteJSON(w, code, map[string]any{"template": a.templateView(r.Context(), project, v), "created": created})
}

func (a *API) showTemplate(w http.ResponseWriter, r *http.Request) {
	project := projectOf(r)
	v, err := a.Catalog.Get(r.Context(), project, chi.URLParam(r, "name"), chi.URLParam(r, "version"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"template": a.templateView(r.Context(), project, v)})
}

// publishTemplate makes a version of the caller's project's template
// public (cloud admins only): every project may read, deploy and nest it.
func (a *API) publishTemplate(w http.ResponseWriter, r *http.Request) {
	project := projectOf(r)
	v, err := a.Catalog.Publish(r.Context(), project, chi.URLParam(r, "name"), chi.URLParam(r, "version"), userOf(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v.Source = ""
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"template": a.templateView(r.Context(), project, v)})
}

func (a *API) diffTemplate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to := q.Get("from"), q.Get("to")
	if from == "" || to == "" {
		a.fail(w, r, badRequest("give ?from=VERSION&to=VERSION"))
		return
	}
	changes, err := a.Catalog.Diff(r.Context(), projectOf(r), chi.URLParam(r, "name"), from, to)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"changes": nonNil(changes)})
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// usedBy lists the version's users in the caller's project (a cloud admin
// sees every project's, each with its project).
func (a *API) usedBy(w http.ResponseWriter, r *http.Request) {
	t, _ := identity.TokenFrom(r.Context())
	uses, err := a.Catalog.UsedBy(r.Context(), t.ProjectID, chi.URLParam(r, "name"), chi.URLParam(r, "version"), t.CloudAdmin())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"used_by": nonNil(uses)})
}

// bindingViews masks the values of the parameters the bindings' templates
// declare hidden.
func (a *API) bindingViews(ctx context.Context, project string, bs []focus.Binding) []focus.Binding {
	out := make([]focus.Binding, len(bs))
	for i, b := range bs {
		m := a.maskerFor(ctx, project, &deploy.Spec{Source: a.bindingSource(ctx, project, b.Template), Parameters: b.Parameters})
		b.Parameters = m.params(b.Parameters)
		out[i] = b
	}
	return out
}

// bindingSource is the source of the template a binding names ("" when
// it does not resolve).
func (a *API) bindingSource(ctx context.Context, project, ref string) string {
	name, version, _ := strings.Cut(ref, "@")
	v, err := a.Catalog.Get(ctx, project, name, version)
	if err != nil {
		return ""
	}
	return v.Source
}

func (a *API) listBindings(w http.ResponseWriter, r *http.Request) {
	project := projectOf(r)
	list, err := a.Catalog.Bindings(r.Context(), project)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"bindings": a.bindingViews(r.Context(), project, list)})
}

func (a *API) bindingVersions(w http.ResponseWriter, r *http.Request) {
	project := projectOf(r)
	bs, err := a.Catalog.BindingVersions(r.Context(), project, chi.URLParam(r, "name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(bs) == 0 {
		a.fail(w, r, focus.ErrNotFound)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"versions": a.bindingViews(r.Context(), project, bs)})
}

// pushBinding stores the body (a binding document, YAML or JSON) as the
// next version of the project's binding, or returns the version with that
// content.
func (a *API) pushBinding(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	spec, err := focus.ParseBindingSpec(b)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if strings.TrimSpace(spec.Template) == "" {
		a.fail(w, r, badRequest("template: required (NAME or NAME@VERSION)"))
		return
	}
	project := projectOf(r)
	bd, created, err := a.Catalog.PushBinding(r.Context(), project, chi.URLParam(r, "name"), spec, userOf(r))
	if err != nil {
		a.failMasked(w, r, err, a.maskerFor(r.Context(), project,
			&deploy.Spec{Source: a.bindingSource(r.Context(), project, spec.Template), Parameters: spec.Parameters}))
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	osapi.WriteJSON(w, code, map[string]any{"binding": a.bindingViews(r.Context(), project, []focus.Binding{bd})[0], "created": created})
}

func (a *API) showBinding(w http.ResponseWriter, r *http.Request) {
	project := projectOf(r)
	b, err := a.Catalog.GetBinding(r.Context(), project, chi.URLParam(r, "name"), chi.URLParam(r, "version"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"binding": a.bindingViews(r.Context(), project, []focus.Binding{b})[0]})
}
