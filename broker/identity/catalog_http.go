package identity

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// catalogRoutes serves /v3/regions, /v3/services and /v3/endpoints: read
// by every authenticated caller (the catalog is in every token anyway),
// written by identity admins.
func (k *Keystone) catalogRoutes(r chi.Router) {
	admin := r.With(requireIdentityAdmin)
	r.Get("/regions", k.listRegions)
	r.Get("/regions/{id}", showOne(k, "region", k.Dir.GetRegion, regionView))
	admin.Post("/regions", k.createRegion)
	admin.Put("/regions/{id}", k.createRegion)
	admin.Patch("/regions/{id}", k.updateRegion)
	admin.Delete("/regions/{id}", deleteOne(k, k.Dir.DeleteRegion))
	r.Get("/services", k.listServices)
	r.Get("/services/{id}", showOne(k, "service", k.Dir.GetService, func(r *http.Request, x ServiceRecord) map[string]any {
		return entity(r, "services", x.ID, x)
	}))
	admin.Post("/services", k.createService)
	admin.Patch("/services/{id}", k.updateService)
	admin.Delete("/services/{id}", deleteOne(k, k.Dir.DeleteService))
	r.Get("/endpoints", k.listEndpoints)
	r.Get("/endpoints/{id}", showOne(k, "endpoint", k.Dir.GetEndpoint, endpointView))
	admin.Post("/endpoints", k.createEndpoint)
	admin.Patch("/endpoints/{id}", k.updateEndpoint)
	admin.Delete("/endpoints/{id}", deleteOne(k, k.Dir.DeleteEndpoint))
}

// showOne answers GET of the record the path's {id} names, as {key: view}.
func showOne[T any](k *Keystone, key string, get func(context.Context, string) (T, error), view func(*http.Request, T) map[string]any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		x, err := get(r.Context(), chi.URLParam(r, "id"))
		if err != nil {
			k.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{key: view(r, x)})
	}
}

// deleteOne answers DELETE of the record the path's {id} names.
func deleteOne(k *Keystone, remove func(context.Context, string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := remove(r.Context(), chi.URLParam(r, "id")); err != nil {
			k.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// filterBy keeps the items whose field equals the query parameter, when
// given.
func filterBy[T any](r *http.Request, param string, items []T, field func(T) string) []T {
	want := r.URL.Query().Get(param)
	if want == "" {
		return items
	}
	out := []T{}
	for _, it := range items {
		if field(it) == want {
			out = append(out, it)
		}
	}
	return out
}

func regionView(r *http.Request, x RegionRecord) map[string]any {
	m := entity(r, "regions", x.ID, x)
	if x.ParentRegionID == "" {
		m["parent_region_id"] = nil
	}
	return m
}

func (k *Keystone) listRegions(w http.ResponseWriter, r *http.Request) {
	rs, err := k.Dir.ListRegions(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	rs = filterBy(r, "parent_region_id", rs, func(x RegionRecord) string { return x.ParentRegionID })
	out := make([]map[string]any, len(rs))
	for i, x := range rs {
		out[i] = regionView(r, x)
	}
	writeJSON(w, http.StatusOK, map[string]any{"regions": out, "links": links(r)})
}

// createRegion answers POST /v3/regions and PUT /v3/regions/{id} (a
// region with the ID the caller chose).
func (k *Keystone) createRegion(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Region RegionRecord `json:"region"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	if id := chi.URLParam(r, "id"); id != "" {
		req.Region.ID = id
	}
	x, err := k.Dir.CreateRegion(r.Context(), req.Region)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"region": regionView(r, x)})
}

func (k *Keystone) updateRegion(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Region struct {
			Description    *string `json:"description"`
			ParentRegionID *string `json:"parent_region_id"`
		} `json:"region"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	x, err := k.Dir.UpdateRegion(r.Context(), chi.URLParam(r, "id"), func(x *RegionRecord) {
		if req.Region.Description != nil {
			x.Description = *req.Region.Description
		}
		if req.Region.ParentRegionID != nil {
			x.ParentRegionID = *req.Region.ParentRegionID
		}
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"region": regionView(r, x)})
}

func (k *Keystone) listServices(w http.ResponseWriter, r *http.Request) {
	ss, err := k.Dir.ListServices(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	ss = filterBy(r, "type", ss, func(x ServiceRecord) string { return x.Type })
	ss = filterByName(r, ss, func(x ServiceRecord) string { return x.Name })
	writeJSON(w, http.StatusOK, map[string]any{"services": entities(r, "services", ss, func(x ServiceRecord) string { return x.ID }), "links": links(r)})
}

func (k *Keystone) createService(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Service struct {
			Type        string `json:"type"`
			Name        string `json:"name"`
			Description string `json:"description"`
			Enabled     *bool  `json:"enabled"`
		} `json:"service"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	in := req.Service
	x, err := k.Dir.CreateService(r.Context(), ServiceRecord{Type: in.Type, Name: in.Name, Description: in.Description, Enabled: in.Enabled == nil || *in.Enabled})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"service": entity(r, "services", x.ID, x)})
}

func (k *Keystone) updateService(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Service struct {
			Type        *string `json:"type"`
			Name        *string `json:"name"`
			Description *string `json:"description"`
			Enabled     *bool   `json:"enabled"`
		} `json:"service"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	in := req.Service
	x, err := k.Dir.UpdateService(r.Context(), chi.URLParam(r, "id"), func(x *ServiceRecord) {
		setIf(&x.Type, in.Type)
		setIf(&x.Name, in.Name)
		setIf(&x.Description, in.Description)
		setIf(&x.Enabled, in.Enabled)
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"service": entity(r, "services", x.ID, x)})
}

// setIf sets *dst to *v when v is given (a PATCH field).
func setIf[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// endpointView shows an endpoint with its URL as clients reach it.
func endpointView(r *http.Request, x EndpointRecord) map[string]any {
	x.URL = ExpandURL(x.URL, BaseURL(r))
	m := entity(r, "endpoints", x.ID, x)
	m["region"] = x.RegionID
	if x.RegionID == "" {
		m["region"], m["region_id"] = nil, nil
	}
	return m
}

func (k *Keystone) listEndpoints(w http.ResponseWriter, r *http.Request) {
	es, err := k.Dir.ListEndpoints(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	es = filterBy(r, "interface", es, func(x EndpointRecord) string { return x.Interface })
	es = filterBy(r, "service_id", es, func(x EndpointRecord) string { return x.ServiceID })
	es = filterBy(r, "region_id", es, func(x EndpointRecord) string { return x.RegionID })
	out := make([]map[string]any, len(es))
	for i, x := range es {
		out[i] = endpointView(r, x)
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoints": out, "links": links(r)})
}

// endpointFields are an endpoint's writable fields; region is the older
// name of region_id, which clients still send.
type endpointFields struct {
	ServiceID   *string `json:"service_id"`
	Interface   *string `json:"interface"`
	RegionID    *string `json:"region_id"`
	Region      *string `json:"region"`
	URL         *string `json:"url"`
	Enabled     *bool   `json:"enabled"`
	Name        *string `json:"name"`
	Description *string `json:"description"`
}

func (f endpointFields) apply(x *EndpointRecord) {
	setIf(&x.ServiceID, f.ServiceID)
	setIf(&x.Interface, f.Interface)
	setIf(&x.RegionID, f.Region)
	setIf(&x.RegionID, f.RegionID)
	setIf(&x.URL, f.URL)
	setIf(&x.Enabled, f.Enabled)
	setIf(&x.Name, f.Name)
	setIf(&x.Description, f.Description)
}

func (k *Keystone) createEndpoint(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Endpoint endpointFields `json:"endpoint"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	x := EndpointRecord{Enabled: true}
	req.Endpoint.apply(&x)
	x, err := k.Dir.CreateEndpoint(r.Context(), x)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"endpoint": endpointView(r, x)})
}

func (k *Keystone) updateEndpoint(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Endpoint endpointFields `json:"endpoint"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	x, err := k.Dir.UpdateEndpoint(r.Context(), chi.URLParam(r, "id"), req.Endpoint.apply)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"endpoint": endpointView(r, x)})
}
