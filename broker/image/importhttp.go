package image

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
)

// importMethodsHeader is sent with a created image, as Glance does, so a
// client knows it may import rather than upload.
const importMethodsHeader = "OpenStack-image-import-methods"

// importInfo answers GET /v2/info/import: the methods offered.
func (g *Glance) importInfo(w http.ResponseWriter, r *http.Request) {
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"import-methods": map[string]any{
		"description": "Import methods available.", "type": "array", "value": ImportMethods}})
}

// stage answers PUT /v2/images/{id}/stage: the body is streamed to the
// staging area as it arrives.
func (g *Glance) stage(w http.ResponseWriter, r *http.Request) {
	g.putData(w, r, g.Images.Stage)
}

// importImage answers POST /v2/images/{id}/import {"method": {"name":
// "glance-direct"}}: 202, the import running on. Stores are not offered
// (no multi-store), so naming any is refused rather than ignored.
func (g *Glance) importImage(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if !decodeJSON(w, r, &body, `{"method": {"name": "glance-direct"}}`) {
		return
	}
	var method struct {
		Name string `json:"name"`
		URI  string `json:"uri"`
	}
	if raw, ok := body["method"]; !ok || json.Unmarshal(raw, &method) != nil || method.Name == "" {
		fault(w, r, http.StatusBadRequest, `Import request requires a 'method' field: want {"method": {"name": "glance-direct"}}.`)
		return
	}
	for k := range body {
		switch k {
		case "method":
		case "stores", "all_stores", "all_stores_must_succeed":
			fault(w, r, http.StatusBadRequest, "'"+k+"' is not offered: this cloud has one store per image (multi-store is not enabled).")
			return
		default:
			fault(w, r, http.StatusBadRequest, "Unknown import attribute '"+k+"'.")
			return
		}
	}
	if err := g.Images.Import(r.Context(), caller(r), chi.URLParam(r, "id"), method.Name); err != nil {
		g.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func importMethods() string { return strings.Join(ImportMethods, ",") }
