package identity

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/registry"
)

// limitRoutes mounts Keystone's unified limits: /v3/registered_limits
// (read by every token) and /v3/limits (read by the limit's project),
// written by identity admins only, as Keystone's system admins.
func (k *Keystone) limitRoutes(r chi.Router) {
	r.Route("/registered_limits", func(r chi.Router) {
		r.Get("/", k.listRegisteredLimits)
		r.Get("/{id}", k.showRegisteredLimit)
		r.Group(func(r chi.Router) {
			r.Use(requireIdentityAdmin)
			r.Post("/", k.createRegisteredLimits)
			r.Patch("/{id}", k.updateRegisteredLimit)
			r.Delete("/{id}", k.deleteRegisteredLimit)
		})
	})
	r.Route("/limits", func(r chi.Router) {
		r.Get("/model", k.limitModel)
		r.Get("/", k.listLimits)
		r.Get("/{id}", k.showLimit)
		r.Group(func(r chi.Router) {
			r.Use(requireIdentityAdmin)
			r.Post("/", k.createLimits)
			r.Patch("/{id}", k.updateLimit)
			r.Delete("/{id}", k.deleteLimit)
		})
	})
}

// limitModel answers GET /v3/limits/model: flat, the only model the
// ledger enforces (a project's limit never counts its subprojects).
func (k *Keystone) limitModel(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"model": map[string]string{"name": "flat",
		"description": "Limit enforcement and validation does not take project hierarchy into consideration."}})
}

func limitQuery(r *http.Request) limitFilter {
	q := r.URL.Query()
	return limitFilter{serviceID: q.Get("service_id"), regionID: q.Get("region_id"), resourceName: q.Get("resource_name"),
		projectID: q.Get("project_id"), domain: q.Get("domain_id") != ""}
}

func (k *Keystone) listRegisteredLimits(w http.ResponseWriter, r *http.Request) {
	f, base := limitQuery(r), BaseURL(r)
	out := []map[string]any{}
	for _, d := range k.Limits.ListDefaults() {
		if u, ok := unifiedOf(d.Resource); ok && f.keep(u, "") {
			out = append(out, registeredLimitView(base, d))
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"registered_limits": out, "links": links(r)})
}

func (k *Keystone) showRegisteredLimit(w http.ResponseWriter, r *http.Request) {
	d, err := k.defaultByID(chi.URLParam(r, "id"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"registered_limit": registeredLimitView(BaseURL(r), d)})
}

// limitBody is one registered limit or limit of a create or an update.
type limitBody struct {
	ServiceID     *string         `json:"service_id"`
	RegionID      *string         `json:"region_id"`
	ResourceName  *string         `json:"resource_name"`
	ProjectID     *string         `json:"project_id"`
	DomainID      *string         `json:"domain_id"`
	DefaultLimit  json.RawMessage `json:"default_limit"`
	ResourceLimit json.RawMessage `json:"resource_limit"`
	Description   *string         `json:"description"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// limitValue reads an integer limit; absent is nil unless required.
func limitValue(field string, raw json.RawMessage, required bool) (*int, error) {
	if len(raw) == 0 || string(raw) == "null" {
		if required {
			return nil, &registry.FieldError{Field: field, Reason: "required"}
		}
		return nil, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err != nil || n < quota.Unlimited || n > quota.MaxLimit {
		return nil, &registry.FieldError{Field: field, Reason: fmt.Sprintf("an integer from %d (unlimited) to %d", quota.Unlimited, quota.MaxLimit)}
	}
	return &n, nil
}

// decodeLimitList reads a create's body: {field: [one or more]}.
func decodeLimitList(r *http.Request, field string) ([]limitBody, error) {
	var body map[string][]limitBody
	if err := decode(r, &body); err != nil {
		return nil, err
	}
	if len(body[field]) == 0 {
		return nil, &registry.FieldError{Field: field, Reason: "a list of one or more"}
	}
	return body[field], nil
}

// createRegisteredLimits answers POST /v3/registered_limits: each one
// sets a dimension's default for every project without its own. All are
// checked before any is written. A dimension's built-in default is
// listed as a registered limit too, and created over; one an admin set
// already is 409.
func (k *Keystone) createRegisteredLimits(w http.ResponseWriter, r *http.Request) {
	list, err := decodeLimitList(r, "registered_limits")
	if err != nil {
		k.fail(w, r, err)
		return
	}
	type create struct {
		dim   quota.Resource
		limit *int
		desc  *string
	}
	var todo []create
	seen := map[quota.Resource]bool{}
	for _, b := range list {
		dim, err := k.limitTarget(r.Context(), str(b.ServiceID), str(b.RegionID), str(b.ResourceName))
		if err == nil && seen[dim] {
			err = fmt.Errorf("%w: %s twice in one request", ErrConflict, str(b.ResourceName))
		}
		var n *int
		if err == nil {
			n, err = limitValue("default_limit", b.DefaultLimit, true)
		}
		if err != nil {
			k.fail(w, r, err)
			return
		}
		seen[dim] = true
		todo = append(todo, create{dim, n, b.Description})
	}
	out := []map[string]any{}
	for _, c := range todo {
		d, err := k.Limits.SetDefault(r.Context(), c.dim, c.limit, c.desc, true)
		if err != nil {
			k.fail(w, r, limitErr(err))
			return
		}
		out = append(out, registeredLimitView(BaseURL(r), d))
	}
	writeJSON(w, http.StatusCreated, map[string]any{"registered_limits": out})
}

// updateRegisteredLimit answers PATCH /v3/registered_limits/{id}: its
// default_limit and description; the resource it names stays.
func (k *Keystone) updateRegisteredLimit(w http.ResponseWriter, r *http.Request) {
	d, err := k.defaultByID(chi.URLParam(r, "id"))
	var body struct {
		RegisteredLimit limitBody `json:"registered_limit"`
	}
	if err == nil {
		err = decode(r, &body)
	}
	b := body.RegisteredLimit
	var n *int
	if err == nil {
		err = k.sameTarget(r, d.Resource, b)
	}
	if err == nil {
		n, err = limitValue("default_limit", b.DefaultLimit, false)
	}
	if err == nil {
		d, err = k.Limits.SetDefault(r.Context(), d.Resource, n, b.Description, false)
	}
	if err != nil {
		k.fail(w, r, limitErr(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"registered_limit": registeredLimitView(BaseURL(r), d)})
}

// sameTarget refuses an update that would move a limit to another
// service, region or resource (the dimension is what it is).
func (k *Keystone) sameTarget(r *http.Request, dim quota.Resource, b limitBody) error {
	if b.ServiceID == nil && b.RegionID == nil && b.ResourceName == nil {
		return nil
	}
	u, _ := unifiedOf(dim)
	svc, name := limitServiceID(u.serviceType), u.name
	if b.ServiceID != nil {
		svc = *b.ServiceID
	}
	if b.ResourceName != nil {
		name = *b.ResourceName
	}
	got, err := k.limitTarget(r.Context(), svc, str(b.RegionID), name)
	if err != nil {
		return err
	}
	if got != dim {
		return &registry.FieldError{Field: "resource_name", Reason: "a limit's service and resource cannot change: delete it and create another"}
	}
	return nil
}

// deleteRegisteredLimit answers DELETE /v3/registered_limits/{id}: the
// default an admin set is forgotten and the built-in one holds again
// (the ledger enforces every dimension it lists, so each always has a
// default); a built-in one cannot be deleted.
func (k *Keystone) deleteRegisteredLimit(w http.ResponseWriter, r *http.Request) {
	d, err := k.defaultByID(chi.URLParam(r, "id"))
	if err == nil && !d.Set {
		u, _ := unifiedOf(d.Resource)
		err = errForbiddenf("the default of %s is built in and enforced (%d): set another with PATCH, -1 for unlimited", u.name, d.Limit)
	}
	if err == nil {
		err = k.Limits.UnsetDefault(r.Context(), d.Resource)
	}
	if err != nil {
		k.fail(w, r, limitErr(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (k *Keystone) listLimits(w http.ResponseWriter, r *http.Request) {
	t, _ := TokenFrom(r.Context())
	ls, err := k.visibleLimits(r.Context(), t, limitQuery(r))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := []map[string]any{}
	for _, l := range ls {
		out = append(out, limitView(BaseURL(r), l))
	}
	writeJSON(w, http.StatusOK, map[string]any{"limits": out, "links": links(r)})
}

func (k *Keystone) showLimit(w http.ResponseWriter, r *http.Request) {
	t, _ := TokenFrom(r.Context())
	l, err := k.Limits.LimitByID(r.Context(), chi.URLParam(r, "id"))
	if err == nil && !k.mayReadLimit(r.Context(), t, l) {
		err = errForbiddenf("the limit is another project's")
	}
	if err != nil {
		k.fail(w, r, limitErr(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"limit": limitView(BaseURL(r), l)})
}

// createLimits answers POST /v3/limits: each one a project's own limit
// on a dimension, which Nova's, Cinder's and Neutron's quota APIs then
// show and the ledger enforces. All are checked before any is written.
func (k *Keystone) createLimits(w http.ResponseWriter, r *http.Request) {
	list, err := decodeLimitList(r, "limits")
	if err != nil {
		k.fail(w, r, err)
		return
	}
	var todo []limitCreate
	seen := map[string]bool{}
	for _, b := range list {
		c, err := k.limitToCreate(r, b)
		if err == nil && seen[c.project+"/"+string(c.dim)] {
			err = fmt.Errorf("%w: %s of project %s twice in one request", ErrConflict, str(b.ResourceName), c.project)
		}
		if err != nil {
			k.fail(w, r, err)
			return
		}
		seen[c.project+"/"+string(c.dim)] = true
		todo = append(todo, c)
	}
	out := []map[string]any{}
	for _, c := range todo {
		l, err := k.Limits.SetLimit(r.Context(), c.project, c.dim, c.limit, c.desc, true)
		if err != nil {
			k.fail(w, r, limitErr(err))
			return
		}
		out = append(out, limitView(BaseURL(r), l))
	}
	writeJSON(w, http.StatusCreated, map[string]any{"limits": out})
}

// limitCreate is one checked limit of a create.
type limitCreate struct {
	project string
	dim     quota.Resource
	limit   *int
	desc    *string
}

// limitToCreate checks one limit of a create.
func (k *Keystone) limitToCreate(r *http.Request, b limitBody) (limitCreate, error) {
	var c limitCreate
	if str(b.DomainID) != "" {
		return c, &registry.FieldError{Field: "domain_id", Reason: "domain limits are not enforced (the flat model limits projects): set a limit on each project"}
	}
	c.project, c.desc = str(b.ProjectID), b.Description
	if c.project == "" {
		return c, &registry.FieldError{Field: "project_id", Reason: "required"}
	}
	if _, err := k.Dir.GetProject(r.Context(), c.project); err != nil {
		return c, &registry.FieldError{Field: "project_id", Reason: fmt.Sprintf("no project %s", c.project)}
	}
	var err error
	if c.dim, err = k.limitTarget(r.Context(), str(b.ServiceID), str(b.RegionID), str(b.ResourceName)); err != nil {
		return c, err
	}
	c.limit, err = limitValue("resource_limit", b.ResourceLimit, true)
	return c, err
}

// updateLimit answers PATCH /v3/limits/{id}: resource_limit and
// description, as Keystone allows.
func (k *Keystone) updateLimit(w http.ResponseWriter, r *http.Request) {
	l, err := k.Limits.LimitByID(r.Context(), chi.URLParam(r, "id"))
	var body struct {
		Limit limitBody `json:"limit"`
	}
	if err == nil {
		err = decode(r, &body)
	}
	b := body.Limit
	if err == nil && (b.ServiceID != nil || b.RegionID != nil || b.ResourceName != nil || b.ProjectID != nil || b.DomainID != nil) {
		err = &registry.FieldError{Field: "limit", Reason: "only resource_limit and description may change: delete the limit and create another"}
	}
	var n *int
	if err == nil {
		n, err = limitValue("resource_limit", b.ResourceLimit, false)
	}
	if err == nil {
		l, err = k.Limits.SetLimit(r.Context(), l.Project, l.Resource, n, b.Description, false)
	}
	if err != nil {
		k.fail(w, r, limitErr(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"limit": limitView(BaseURL(r), l)})
}

// deleteLimit answers DELETE /v3/limits/{id}: the project follows the
// default again.
func (k *Keystone) deleteLimit(w http.ResponseWriter, r *http.Request) {
	l, err := k.Limits.LimitByID(r.Context(), chi.URLParam(r, "id"))
	if err == nil {
		_, err = k.Limits.Unset(r.Context(), l.Project, l.Resource)
	}
	if err != nil {
		k.fail(w, r, limitErr(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
