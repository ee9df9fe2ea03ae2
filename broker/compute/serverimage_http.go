package compute

import (
	"encoding/json"
	"net/http"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
)

// createImage answers the createImage action {"name", "metadata"}: 202
// with the image's ID in the body from 2.45, before that in a Location
// header naming the image in the broker's image API, as Nova names
// Glance's.
func (n *Nova) createImage(w http.ResponseWriter, r *http.Request, id string, body json.RawMessage) {
	var b struct {
		Name     *string           `json:"name"`
		Metadata map[string]string `json:"metadata"`
	}
	if err := json.Unmarshal(body, &b); err != nil || b.Name == nil {
		osapi.Fault(w, r, http.StatusBadRequest, `Invalid input for field/attribute createImage: expected {"name": "...", "metadata": {"key": "string value"}}`)
		return
	}
	img, err := n.Servers.CreateImage(r.Context(), caller(r), id, *b.Name, b.Metadata)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if at(r, "2.45") {
		osapi.WriteJSON(w, http.StatusAccepted, map[string]string{"image_id": img.ID})
		return
	}
	w.Header().Set("Location", identity.BaseURL(r)+"/image/v2/images/"+img.ID)
	w.WriteHeader(http.StatusAccepted)
}
