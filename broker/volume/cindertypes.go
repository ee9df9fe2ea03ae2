package volume

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
)

// typeRoutes mounts /types: Cinder's volume types, extra specs and type
// access. Anyone reads the types they may use; changing them takes a
// cloud admin.
func (c *Cinder) typeRoutes(r chi.Router) {
	r.Get("/", c.listTypes)
	r.Get("/{id}", c.showType)
	r.Get("/{id}/extra_specs", c.typeSpecs)
	r.Get("/{id}/extra_specs/{key}", c.typeSpec)
	r.Group(func(r chi.Router) {
		r.Use(requireAdmin("volume_extension:types_manage"))
		r.Post("/", c.createType)
		r.Put("/{id}", c.updateType)
		r.Delete("/{id}", c.deleteType)
		r.Post("/{id}/extra_specs", c.typeSpecs)
		r.Put("/{id}/extra_specs/{key}", c.typeSpec)
		r.Delete("/{id}/extra_specs/{key}", c.typeSpec)
		r.Post("/{id}/action", c.typeAction)
		r.Get("/{id}/os-volume-type-access", c.typeAccess)
	})
}

// requireAdmin answers Cinder's policy refusal (403) to all but cloud
// admins.
func requireAdmin(rule string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !caller(r).Admin {
				osapi.Fault(w, r, http.StatusForbidden, "Policy doesn't allow "+rule+" to be performed.")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// typeView renders a type as Cinder shows it; its extra specs (which say
// where volumes go) only to cloud admins.
func typeView(r *http.Request, t VolumeType) map[string]any {
	specs := map[string]string{}
	if caller(r).Admin {
		specs = t.ExtraSpecs
	}
	return map[string]any{"id": t.ID, "name": t.Name, "description": orNil(t.Description), "is_public": t.Public,
		"os-volume-type-access:is_public": t.Public, "extra_specs": specs, "qos_specs_id": nil}
}

func (c *Cinder) listTypes(w http.ResponseWriter, r *http.Request) {
	all, err := c.Volumes.ListTypes(r.Context(), caller(r))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	// is_public: true (the public ones), false (the private ones), None
	// or absent (every one the caller may see).
	want := strings.ToLower(r.URL.Query().Get("is_public"))
	out := []map[string]any{}
	for _, t := range all {
		if b, ok := boolOf(json.RawMessage(`"` + want + `"`)); !ok || b == t.Public {
			out = append(out, typeView(r, t))
		}
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"volume_types": out})
}

func (c *Cinder) showType(w http.ResponseWriter, r *http.Request) {
	t, err := c.Volumes.GetType(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"volume_type": typeView(r, t)})
}

// typeFields are a create or update body's volume_type.
type typeFields struct {
	Name        *string           `json:"name"`
	Description *string           `json:"description"`
	Public      *bool             `json:"os-volume-type-access:is_public"`
	IsPublic    *bool             `json:"is_public"`
	ExtraSpecs  map[string]string `json:"extra_specs"`
}

// decodeTypeBody reads {"volume_type": {...}} into a TypeSpec, or answers
// 400. Cinder takes the public flag under either name.
func decodeTypeBody(w http.ResponseWriter, r *http.Request, want string) (TypeSpec, bool) {
	var req struct {
		VolumeType *typeFields `json:"volume_type"`
	}
	if !decode(w, r, &req, want) {
		return TypeSpec{}, false
	}
	vt := req.VolumeType
	if vt == nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: expected "+want)
		return TypeSpec{}, false
	}
	public := vt.Public
	if public == nil {
		public = vt.IsPublic
	}
	return TypeSpec{Name: vt.Name, Description: vt.Description, Public: public, ExtraSpecs: vt.ExtraSpecs}, true
}

func (c *Cinder) createType(w http.ResponseWriter, r *http.Request) {
	spec, ok := decodeTypeBody(w, r, `{"volume_type": {"name": ...}}`)
	if !ok {
		return
	}
	t, err := c.Volumes.CreateType(r.Context(), spec)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"volume_type": typeView(r, t)})
}

func (c *Cinder) updateType(w http.ResponseWriter, r *http.Request) {
	spec, ok := decodeTypeBody(w, r, `{"volume_type": {"name": ..., "description": ..., "is_public": ...}}`)
	if !ok {
		return
	}
	spec.ExtraSpecs = nil // extra specs change through their own paths
	c.changeType(w, r, spec, func(t VolumeType) any {
		return map[string]any{"volume_type": typeView(r, t)}
	})
}

// changeType applies spec to the type in the path and answers with
// answer's body (nil: 202 and none).
func (c *Cinder) changeType(w http.ResponseWriter, r *http.Request, spec TypeSpec, answer func(VolumeType) any) {
	t, err := c.Volumes.UpdateType(r.Context(), chi.URLParam(r, "id"), spec)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if answer == nil {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, answer(t))
}

func (c *Cinder) deleteType(w http.ResponseWriter, r *http.Request) {
	if err := c.Volumes.DeleteType(r.Context(), chi.URLParam(r, "id")); err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// typeSpecs serves GET (every spec) and POST (merge) of extra_specs.
func (c *Cinder) typeSpecs(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet {
		t, err := c.Volumes.GetType(r.Context(), caller(r), chi.URLParam(r, "id"))
		if err != nil {
			c.fail(w, r, err)
			return
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"extra_specs": typeView(r, t)["extra_specs"]})
		return
	}
	var req struct {
		ExtraSpecs map[string]string `json:"extra_specs"`
	}
	const want = `{"extra_specs": {"key": "value"}}`
	if !decode(w, r, &req, want) {
		return
	}
	if req.ExtraSpecs == nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: expected "+want)
		return
	}
	c.changeType(w, r, TypeSpec{ExtraSpecs: req.ExtraSpecs, MergeSpecs: true}, func(VolumeType) any {
		return map[string]any{"extra_specs": req.ExtraSpecs}
	})
}

// typeSpec serves GET, PUT ({key: value}) and DELETE of one extra spec.
func (c *Cinder) typeSpec(w http.ResponseWriter, r *http.Request) {
	key := chi.URLParam(r, "key")
	switch r.Method {
	case http.MethodGet:
		t, err := c.Volumes.GetType(r.Context(), caller(r), chi.URLParam(r, "id"))
		if err != nil {
			c.fail(w, r, err)
			return
		}
		v, ok := t.ExtraSpecs[key]
		if !ok || !caller(r).Admin {
			osapi.Fault(w, r, http.StatusNotFound, fmt.Sprintf("Volume Type %s has no extra specs with key %s.", t.ID, key))
			return
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]string{key: v})
	case http.MethodPut:
		var req map[string]string
		if !decode(w, r, &req, `{"`+key+`": "value"}`) {
			return
		}
		if _, ok := req[key]; !ok || len(req) != 1 {
			osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: the body must name exactly the key in the path")
			return
		}
		c.changeType(w, r, TypeSpec{ExtraSpecs: req, MergeSpecs: true}, func(VolumeType) any { return req })
	default:
		c.changeType(w, r, TypeSpec{DeleteSpecs: []string{key}}, nil)
	}
}

// typeAction serves addProjectAccess and removeProjectAccess.
func (c *Cinder) typeAction(w http.ResponseWriter, r *http.Request) {
	var req map[string]struct {
		Project string `json:"project"`
	}
	const want = `{"addProjectAccess" or "removeProjectAccess": {"project": ...}}`
	if !decode(w, r, &req, want) {
		return
	}
	add, isAdd := req["addProjectAccess"]
	remove, isRemove := req["removeProjectAccess"]
	switch {
	case len(req) == 1 && isAdd && add.Project != "":
		c.changeType(w, r, TypeSpec{AddProjects: []string{add.Project}}, nil)
	case len(req) == 1 && isRemove && remove.Project != "":
		c.changeType(w, r, TypeSpec{RemoveProjects: []string{remove.Project}}, nil)
	default:
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: expected "+want)
	}
}

// typeAccess lists the projects that may use a private type.
func (c *Cinder) typeAccess(w http.ResponseWriter, r *http.Request) {
	t, err := c.Volumes.GetType(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if t.Public {
		osapi.Fault(w, r, http.StatusNotFound, "Access list not available for public volume types.")
		return
	}
	out := []map[string]string{}
	for _, p := range t.Projects {
		out = append(out, map[string]string{"volume_type_id": t.ID, "project_id": p})
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"volume_type_access": out})
}
