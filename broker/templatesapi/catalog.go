package templatesapi

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/templates/focus"
)

func (a *API) listTemplates(w http.ResponseWriter, r *http.Request) {
	list, err := a.Catalog.List(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if list == nil {
		list = []focus.Summary{}
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"templates": list})
}

// versionView is a version without its source, for lists.
type versionView struct {
	focus.Version
	Source string `json:"source,omitempty"`
}

func (a *API) templateVersions(w http.ResponseWriter, r *http.Request) {
	vs, err := a.Catalog.Versions(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(vs) == 0 {
		a.fail(w, r, focus.ErrNotFound)
		return
	}
	out := make([]versionView, len(vs))
	for i, v := range vs {
		out[i] = versionView{Version: v}
		out[i].Source = ""
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"versions": out})
}

// pushTemplate stores the body (a template, YAML or JSON) as the next
// version: 201 when new, 200 with the existing version when the same
// content was pushed before.
func (a *API) pushTemplate(w http.ResponseWriter, r *http.Request) {
	b, err := readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	v, created, err := a.Catalog.Push(r.Context(), chi.URLParam(r, "name"), b, userOf(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	osapi.WriteJSON(w, code, map[string]any{"template": v, "created": created})
}

func (a *API) showTemplate(w http.ResponseWriter, r *http.Request) {
	v, err := a.Catalog.Get(r.Context(), chi.URLParam(r, "name"), chi.URLParam(r, "version"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"template": v})
}

func (a *API) diffTemplate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	from, to := q.Get("from"), q.Get("to")
	if from == "" || to == "" {
		a.fail(w, r, badRequest("give ?from=VERSION&to=VERSION"))
		return
	}
	changes, err := a.Catalog.Diff(r.Context(), chi.URLParam(r, "name"), from, to)
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

// usedBy lists the version's users; deployments of other projects are
// left out (a cloud admin sees them all).
func (a *API) usedBy(w http.ResponseWriter, r *http.Request) {
	uses, err := a.Catalog.UsedBy(r.Context(), chi.URLParam(r, "name"), chi.URLParam(r, "version"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	t, _ := identity.TokenFrom(r.Context())
	out := []focus.Use{}
	for _, u := range uses {
		if u.Kind == "deployment" && !t.CloudAdmin() {
			d, err := a.Engine.Get(r.Context(), u.Ref)
			if err != nil || d.Project != t.ProjectID {
				continue
			}
		}
		out = append(out, u)
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"used_by": out})
}

func (a *API) listBindings(w http.ResponseWriter, r *http.Request) {
	list, err := a.Catalog.Bindings(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"bindings": nonNil(list)})
}

func (a *API) bindingVersions(w http.ResponseWriter, r *http.Request) {
	bs, err := a.Catalog.BindingVersions(r.Context(), chi.URLParam(r, "name"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if len(bs) == 0 {
		a.fail(w, r, focus.ErrNotFound)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"versions": bs})
}

// pushBinding stores the body (a binding document, YAML or JSON) as the
// next version of the binding, or returns the version with that content.
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
	bd, created, err := a.Catalog.PushBinding(r.Context(), chi.URLParam(r, "name"), spec, userOf(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	code := http.StatusOK
	if created {
		code = http.StatusCreated
	}
	osapi.WriteJSON(w, code, map[string]any{"binding": bd, "created": created})
}

func (a *API) showBinding(w http.ResponseWriter, r *http.Request) {
	b, err := a.Catalog.GetBinding(r.Context(), chi.URLParam(r, "name"), chi.URLParam(r, "version"))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"binding": b})
}
