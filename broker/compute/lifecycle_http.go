package compute

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/cloudmux/cloudmux/broker/osapi"
)

// rebuildBody is the rebuild action's body at every microversion; what a
// version lacks is refused as Nova's schema refuses it.
type rebuildBody struct {
	ImageRef          json.RawMessage   `json:"imageRef"`
	Name              *string           `json:"name"`
	AdminPass         *string           `json:"adminPass"`
	Metadata          map[string]string `json:"metadata"`
	Personality       json.RawMessage   `json:"personality"` // gone in 2.57
	DiskConfig        *string           `json:"OS-DCF:diskConfig"`
	AccessIPv4        *string           `json:"accessIPv4"`
	AccessIPv6        *string           `json:"accessIPv6"`
	PreserveEphemeral *bool             `json:"preserve_ephemeral"`
	Description       optionalString    `json:"description"` // 2.19
	KeyName           optionalString    `json:"key_name"`    // 2.54
	UserData          optionalString    `json:"user_data"`   // 2.57
	TrustedCerts      json.RawMessage   `json:"trusted_image_certificates"`
	Hostname          *string           `json:"hostname"` // 2.90
}

// rebuild answers the rebuild action: 202 with the server (show's view
// from 2.75, the smaller one before) and its adminPass.
func (n *Nova) rebuild(w http.ResponseWriter, r *http.Request, id string, raw json.RawMessage) {
	var b rebuildBody
	if err := decodeStrict(raw, &b); err != nil || refString(b.ImageRef) == "" {
		osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf(`Invalid input for field/attribute rebuild: %v; expected {"imageRef": ...}`, cmpErr(err, "imageRef is required")))
		return
	}
	var errs []error
	for field, since := range map[string]string{"description": "2.19", "key_name": "2.54", "user_data": "2.57", "trusted_image_certificates": "2.63", "hostname": "2.90"} {
		given := map[string]bool{"description": b.Description.Set, "key_name": b.KeyName.Set, "user_data": b.UserData.Set,
			"trusted_image_certificates": b.TrustedCerts != nil, "hostname": b.Hostname != nil}[field]
		if given && !at(r, since) {
			errs = append(errs, unexpected(field))
		}
	}
	switch {
	case b.Personality != nil && at(r, "2.57"):
		errs = append(errs, unexpected("personality"))
	case b.Personality != nil && string(b.Personality) != "null" && string(b.Personality) != "[]":
		errs = append(errs, invalid("personality", "Invalid input for field/attribute personality: file injection is not offered; pass files in user_data"))
	}
	if b.AdminPass != nil {
		errs = append(errs, invalid("adminPass", "Invalid input for field/attribute adminPass: a password cannot be set in the guest here; use key_name"))
	}
	if b.DiskConfig != nil && *b.DiskConfig != "MANUAL" {
		errs = append(errs, invalid("OS-DCF:diskConfig", "Invalid input for field/attribute OS-DCF:diskConfig. Value: %s. Only MANUAL is offered", *b.DiskConfig))
	}
	if b.TrustedCerts != nil && string(b.TrustedCerts) != "null" && at(r, "2.63") {
		errs = append(errs, invalid("trusted_image_certificates", "Invalid input for field/attribute trusted_image_certificates: image signature verification is not offered"))
	}
	if err := errors.Join(errs...); err != nil {
		n.writeError(w, r, err)
		return
	}
	spec := RebuildSpec{ImageRef: refString(b.ImageRef), Update: Update{Name: b.Name, AccessIPv4: b.AccessIPv4, AccessIPv6: b.AccessIPv6,
		Hostname: b.Hostname, Metadata: b.Metadata, ReplaceMetadata: b.Metadata != nil}}
	if b.Description.Set {
		spec.Description, spec.ClearDescription = b.Description.Value, b.Description.Value == nil
	}
	if b.KeyName.Set {
		spec.KeyName = ptrOr(b.KeyName.Value, "")
	}
	if b.UserData.Set {
		spec.UserData = ptrOr(b.UserData.Value, "")
	}
	if b.PreserveEphemeral != nil {
		spec.PreserveEphemeral = *b.PreserveEphemeral
	}
	s, err := n.Servers.Rebuild(r.Context(), caller(r), id, spec)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	v := serverView(r, s, viewRebuild)
	v["adminPass"] = s.AdminPass
	osapi.WriteJSON(w, http.StatusAccepted, map[string]any{"server": v})
}

// ptrOr is p, or a pointer to def when p is nil (a JSON null).
func ptrOr(p *string, def string) *string {
	if p == nil {
		return &def
	}
	return p
}

func cmpErr(err error, def string) string {
	if err != nil {
		return err.Error()
	}
	return def
}

// shelveActions answers shelve, shelveOffload and unshelve (null, or
// {"availability_zone": ...} from 2.77; 2.91's null zone unpins, which
// changes nothing here, and its host is refused: the broker picks no
// host).
func (n *Nova) shelveActions(w http.ResponseWriter, r *http.Request, id, name string, raw json.RawMessage) {
	c := caller(r)
	var err error
	switch name {
	case "shelve":
		err = n.Servers.Shelve(r.Context(), c, id)
	case "shelveOffload":
		err = n.Servers.ShelveOffload(r.Context(), c, id)
	default:
		var b map[string]json.RawMessage
		if string(raw) != "null" && (json.Unmarshal(raw, &b) != nil || b == nil) {
			osapi.Fault(w, r, http.StatusBadRequest, `Invalid input for field/attribute unshelve: expected null or {"availability_zone": ...}`)
			return
		}
		zone := ""
		for k, v := range b {
			switch {
			case k == "availability_zone" && at(r, "2.77") && (string(v) != "null" || at(r, "2.91")):
				if string(v) != "null" && (json.Unmarshal(v, &zone) != nil || zone == "") {
					osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute availability_zone: want a zone name")
					return
				}
			case k == "host" && at(r, "2.91"):
				osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute host: unshelving to a chosen host is not offered; the server goes back to its own cloud")
				return
			default:
				n.writeError(w, r, unexpected(k))
				return
			}
		}
		err = n.Servers.Unshelve(r.Context(), c, id, zone)
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
