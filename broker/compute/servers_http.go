package compute

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
)

// maxListLimit is Nova's max_limit: a page never holds more.
const maxListLimit = 1000

// novaTime is Nova's created/updated format.
const novaTime = "2006-01-02T15:04:05Z"

// serverRoutes mounts /servers and /limits.
func (n *Nova) serverRoutes(r chi.Router) {
	member := identity.RequireRole(identity.RoleMember)
	r.Get("/limits", n.limits)
	r.Get("/os-quota-sets/{project}", n.quotaSet(false))
	r.Get("/os-quota-sets/{project}/detail", n.quotaSet(true))
	r.Get("/os-quota-sets/{project}/defaults", n.quotaDefaults)
	r.Put("/os-quota-sets/{project}", n.updateQuotaSet)    // cloud admin only (quotas.go)
	r.Delete("/os-quota-sets/{project}", n.deleteQuotaSet) // cloud admin only (quotas.go)
	r.Route("/servers", func(r chi.Router) {
		r.Get("/", n.listServers(false))
		r.Get("/detail", n.listServers(true))
		r.With(member).Post("/", n.createServer)
		r.Route("/{id}", func(r chi.Router) {
			r.Get("/", n.showServer)
			r.With(member).Put("/", n.updateServer)
			r.With(member).Delete("/", n.deleteServer)
			n.actionRoutes(r, member)
			r.Get("/ips", n.serverIPs)
			r.Get("/os-interface", n.listInterfaces)
			r.Get("/os-interface/{port}", n.showInterface)
			r.Get("/metadata", n.serverMetadata)
			r.With(member).Put("/metadata", n.setServerMetadata(true))
			r.With(member).Post("/metadata", n.setServerMetadata(false))
			r.Get("/metadata/{key}", n.serverMetadataItem)
			r.With(member).Put("/metadata/{key}", n.setServerMetadataItem)
			r.With(member).Delete("/metadata/{key}", n.deleteServerMetadataItem)
			r.Get("/os-volume_attachments", n.listAttachments)
			r.With(member).Post("/os-volume_attachments", n.attachVolume)
			r.Get("/os-volume_attachments/{volume}", n.showAttachment)
			r.With(member).Delete("/os-volume_attachments/{volume}", n.detachVolume)
		})
	})
}

func caller(r *http.Request) Caller {
	t, _ := identity.TokenFrom(r.Context())
	return CallerOf(t)
}

// decode reads a JSON body into v, refusing anything else with 400.
func decode(w http.ResponseWriter, r *http.Request, v any, shape string) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(v); err != nil {
		osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("Invalid input: %v; expected %s", err, shape))
		return false
	}
	return true
}

// power states Nova reports (nova.compute.power_state).
const (
	powerNoState  = 0
	powerRunning  = 1
	powerShutdown = 4
)

// states maps a status to Nova's power_state, vm_state and task_state.
func states(st peers.ServerStatus) (power int, vm string, task any) {
	switch st {
	case peers.ServerBuild:
		return powerNoState, "building", "spawning"
	case peers.ServerActive:
		return powerRunning, "active", nil
	case peers.ServerShutoff:
		return powerShutdown, "stopped", nil
	case peers.ServerReboot:
		return powerRunning, "active", "rebooting"
	case peers.ServerHardReboot:
		return powerRunning, "active", "rebooting_hard"
	case peers.ServerError:
		return powerNoState, "error", nil
	case peers.ServerDeleted:
		return powerNoState, "deleted", nil
	}
	return powerNoState, strings.ToLower(string(st)), nil
}

func links(r *http.Request, path string) []map[string]string {
	base := identity.BaseURL(r) + "/compute"
	return []map[string]string{{"rel": "self", "href": base + "/v2.1/" + path}, {"rel": "bookmark", "href": base + "/" + path}}
}

func bookmark(r *http.Request, path string) []map[string]string {
	return []map[string]string{{"rel": "bookmark", "href": identity.BaseURL(r) + "/compute/" + path}}
}

// addressesView groups addresses by network label, as Nova does.
func addressesView(as []peers.Address) map[string][]map[string]any {
	out := map[string][]map[string]any{}
	for _, a := range as {
		typ := a.Type
		if typ == "" {
			typ = "fixed"
		}
		out[a.Network] = append(out[a.Network], map[string]any{
			"addr": a.Addr, "version": a.Version, "OS-EXT-IPS:type": typ, "OS-EXT-IPS-MAC:mac_addr": a.MAC,
		})
	}
	return out
}

// serverView renders a server as Nova 2.1 does.
func serverView(r *http.Request, s Server, detail bool) map[string]any {
	v := map[string]any{"id": s.ID, "name": s.Name, "links": links(r, "servers/"+s.ID)}
	if !detail {
		return v
	}
	power, vm, task := states(s.Status)
	var img any = ""
	if s.ImageID != "" {
		img = map[string]any{"id": s.ImageID, "links": bookmark(r, "images/"+s.ImageID)}
	}
	var key any
	if s.KeyName != "" {
		key = s.KeyName
	}
	hostID := ""
	if s.Host != "" {
		sum := sha256.Sum224([]byte(s.Project + s.PeerID + "/" + s.Host))
		hostID = hex.EncodeToString(sum[:])
	}
	vols := []map[string]string{}
	for _, id := range s.Volumes {
		vols = append(vols, map[string]string{"id": id})
	}
	progress := 0
	if s.Status == peers.ServerActive {
		progress = 100
	}
	var launched any
	if s.Status != peers.ServerBuild {
		launched = s.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000")
	}
	for k, val := range map[string]any{
		"status": string(s.Status), "tenant_id": s.Project, "user_id": s.UserID, "metadata": s.Metadata,
		"flavor":  map[string]any{"id": s.FlavorID, "links": bookmark(r, "flavors/"+s.FlavorID)},
		"image":   img,
		"created": s.CreatedAt.UTC().Format(novaTime), "updated": s.UpdatedAt.UTC().Format(novaTime),
		"addresses": addressesView(s.Addresses), "accessIPv4": "", "accessIPv6": "",
		"key_name": key, "hostId": hostID, "progress": progress, "config_drive": "",
		"OS-DCF:diskConfig": "MANUAL", "OS-EXT-AZ:availability_zone": s.Zone,
		"OS-EXT-STS:power_state": power, "OS-EXT-STS:vm_state": vm, "OS-EXT-STS:task_state": task,
		"OS-SRV-USG:launched_at": launched, "OS-SRV-USG:terminated_at": nil,
		"os-extended-volumes:volumes_attached": vols,
		"security_groups":                      []map[string]string{{"name": "default"}},
	} {
		v[k] = val
	}
	if s.Status == peers.ServerError && s.Fault != "" {
		v["fault"] = map[string]any{"code": 500, "message": s.Fault, "created": s.UpdatedAt.UTC().Format(novaTime)}
	}
	// The extended server attributes are an admin's, as in Nova.
	if t, _ := identity.TokenFrom(r.Context()); t.CloudAdmin() {
		v["OS-EXT-SRV-ATTR:host"], v["OS-EXT-SRV-ATTR:hypervisor_hostname"] = s.Zone, s.Host
		v["OS-EXT-SRV-ATTR:instance_name"] = s.PeerServerID
	}
	return v
}

// serverCreateRequest is Nova's POST /servers body. min_count and
// max_count of 1 are accepted; security_groups may name the project's
// default group only (by name or ID), which every server's ports get: the
// usual clients send it, and a server is never given less than asked.
type serverCreateRequest struct {
	Server *struct {
		Name             string            `json:"name"`
		FlavorRef        json.RawMessage   `json:"flavorRef"`
		ImageRef         *string           `json:"imageRef"`
		Networks         json.RawMessage   `json:"networks"`
		KeyName          string            `json:"key_name"`
		UserData         *string           `json:"user_data"`
		Metadata         map[string]string `json:"metadata"`
		AvailabilityZone string            `json:"availability_zone"`
		MinCount         *int              `json:"min_count"`
		MaxCount         *int              `json:"max_count"`
		SecurityGroups   json.RawMessage   `json:"security_groups"`
		BlockDevices     []struct {
			BootIndex       json.RawMessage `json:"boot_index"`
			UUID            string          `json:"uuid"`
			SourceType      string          `json:"source_type"`
			DestinationType string          `json:"destination_type"`
			VolumeSize      json.RawMessage `json:"volume_size"`
			DeleteOnTerm    json.RawMessage `json:"delete_on_termination"`
		} `json:"block_device_mapping_v2"`
	} `json:"server"`
	Hints map[string]any `json:"OS-SCH-HNT:scheduler_hints"`
	// Nova takes the hints under either name; gophercloud sends this one.
	OSHints map[string]any `json:"os:scheduler_hints"`
}

// defaultGroupOnly refuses a security_groups other than the project's
// default group: the broker gives a server's ports that group and no
// other at boot (other groups are set on the ports through Neutron), so
// accepting another would drop it silently. A group is named the same
// way whether it is another project's or none at all.
func defaultGroupOnly(raw json.RawMessage, project string) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var groups []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &groups); err != nil {
		return invalid("security_groups", `Invalid input for field/attribute security_groups: want a list of {"name": GROUP}`)
	}
	for _, g := range groups {
		if g.Name != network.DefaultSecurityGroup && g.Name != network.DefaultSecurityGroupID(project) {
			return invalid("security_groups", "Invalid input for field/attribute security_groups: security group %s: a server boots in its project's default group only; add other groups to its ports through the network API", g.Name)
		}
	}
	return nil
}

// refString reads a reference Nova takes as a string or a number
// (flavorRef: 1 and "1" both occur in the wild).
func refString(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// createSpec turns a request into a spec; problems of shape are 400s
// naming the field.
func (req serverCreateRequest) createSpec() (CreateSpec, error) {
	b := req.Server
	spec := CreateSpec{Name: b.Name, FlavorRef: refString(b.FlavorRef), KeyName: b.KeyName, Metadata: b.Metadata, AvailabilityZone: b.AvailabilityZone}
	var errs []error
	if b.ImageRef != nil {
		spec.ImageRef = *b.ImageRef
	}
	if (b.MinCount != nil && *b.MinCount != 1) || (b.MaxCount != nil && *b.MaxCount != 1) {
		errs = append(errs, invalid("min_count", "Invalid input for field/attribute min_count/max_count: the broker boots one server per request"))
	}
	if len(b.Networks) > 0 && string(b.Networks) != "null" {
		var mode string
		var list []struct {
			UUID    string `json:"uuid"`
			Port    string `json:"port"`
			FixedIP string `json:"fixed_ip"`
		}
		switch {
		case json.Unmarshal(b.Networks, &mode) == nil:
			spec.NetworksMode = mode
		case json.Unmarshal(b.Networks, &list) == nil:
			for _, n := range list {
				spec.NICs = append(spec.NICs, NIC{Network: n.UUID, Port: n.Port, FixedIP: n.FixedIP})
			}
		default:
			errs = append(errs, invalid("networks", "Invalid input for field/attribute networks: want a list of {uuid|port, fixed_ip} or \"auto\" or \"none\""))
		}
	}
	if b.UserData != nil {
		if len(*b.UserData) > MaxUserData {
			errs = append(errs, invalid("user_data", "Invalid input for field/attribute user_data: at most %d characters of base64", MaxUserData))
		} else if data, err := base64.StdEncoding.DecodeString(*b.UserData); err == nil {
			spec.UserData = data
		} else if data, err := base64.RawStdEncoding.DecodeString(*b.UserData); err == nil {
			spec.UserData = data
		} else {
			errs = append(errs, invalid("user_data", "Invalid input for field/attribute user_data: not valid base64 (%v)", err))
		}
	}
	for i, bd := range b.BlockDevices {
		boot := strings.Trim(string(bd.BootIndex), `"`)
		if boot != "0" {
			continue // only the boot disk is offered; extra volumes attach afterwards
		}
		if bd.UUID == "" || (bd.DestinationType != "" && bd.DestinationType != "volume") {
			errs = append(errs, invalid("block_device_mapping_v2", "Invalid input for field/attribute block_device_mapping_v2[%d]: the boot disk must be a volume (destination_type volume) named by uuid", i))
			continue
		}
		switch bd.SourceType {
		case "volume":
			spec.BootVolume, spec.ImageRef = bd.UUID, "" // Nova ignores imageRef when the boot disk is a volume
		case "image":
			size, err := strconv.Atoi(strings.Trim(string(bd.VolumeSize), `"`))
			if err != nil || size < 1 {
				errs = append(errs, invalid("block_device_mapping_v2", "Invalid input for field/attribute block_device_mapping_v2[%d]: a volume from an image needs volume_size, a whole number of GiB", i))
				continue
			}
			if del := strings.Trim(string(bd.DeleteOnTerm), `"`); strings.EqualFold(del, "true") || del == "1" {
				errs = append(errs, invalid("block_device_mapping_v2", "Invalid input for field/attribute block_device_mapping_v2[%d]: delete_on_termination is not offered; the root volume stays, delete it after the server", i))
				continue
			}
			spec.ImageRef, spec.RootVolumeGiB = bd.UUID, size
		default:
			errs = append(errs, invalid("block_device_mapping_v2", "Invalid input for field/attribute block_device_mapping_v2[%d]: source_type %q: the boot disk comes from a volume or an image", i, bd.SourceType))
		}
	}
	if req.Hints == nil {
		req.Hints = map[string]any{}
	}
	maps.Copy(req.Hints, req.OSHints)
	// "require:K" and "prefer:K" hints are peer labels the server needs or
	// would like (openstack server create --hint require:tier=private);
	// the rest reach the policy as they are.
	for k, v := range req.Hints {
		label, required := strings.CutPrefix(k, "require:")
		preferred := false
		if !required {
			label, preferred = strings.CutPrefix(k, "prefer:")
		}
		switch {
		case (required || preferred) && label == "":
			errs = append(errs, invalid("os:scheduler_hints", "Invalid input for field/attribute os:scheduler_hints: hint %q names no label", k))
		case required:
			if spec.RequiredLabels == nil {
				spec.RequiredLabels = map[string]string{}
			}
			spec.RequiredLabels[label] = fmt.Sprint(v)
		case preferred:
			if spec.PreferredLabels == nil {
				spec.PreferredLabels = map[string]string{}
			}
			spec.PreferredLabels[label] = fmt.Sprint(v)
		default:
			if spec.Hints == nil {
				spec.Hints = map[string]string{}
			}
			spec.Hints[k] = fmt.Sprint(v)
		}
	}
	return spec, errors.Join(errs...)
}

func (n *Nova) createServer(w http.ResponseWriter, r *http.Request) {
	var req serverCreateRequest
	if !decode(w, r, &req, `{"server": {"name": ..., "flavorRef": ..., "imageRef": ...}}`) {
		return
	}
	if req.Server == nil {
		osapi.Fault(w, r, http.StatusBadRequest, `Invalid input: expected {"server": {...}}`)
		return
	}
	spec, err := req.createSpec()
	if err == nil {
		err = defaultGroupOnly(req.Server.SecurityGroups, caller(r).Project)
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	s, err := n.Servers.Create(r.Context(), caller(r), spec)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", identity.BaseURL(r)+"/compute/v2.1/servers/"+s.ID)
	osapi.WriteJSON(w, http.StatusAccepted, map[string]any{"server": map[string]any{
		"id": s.ID, "links": links(r, "servers/"+s.ID), "adminPass": s.AdminPass,
		"OS-DCF:diskConfig": "MANUAL", "security_groups": []map[string]string{{"name": "default"}},
	}})
}

func (n *Nova) listServers(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := r.URL.Query()
		q := Query{Name: v.Get("name"), Status: v.Get("status"), Marker: v.Get("marker"), Limit: maxListLimit,
			Image: lastSegment(v.Get("image")), Flavor: lastSegment(v.Get("flavor")), IP: v.Get("ip"), Zone: v.Get("availability_zone")}
		if at := v.Get("all_tenants"); at != "" && at != "0" && !strings.EqualFold(at, "false") {
			q.AllProjects = true
		}
		if s := v.Get("limit"); s != "" {
			l, err := strconv.Atoi(s)
			if err != nil || l < 0 {
				osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for query parameters limit: must be a non-negative integer")
				return
			}
			if l > 0 && l < maxListLimit {
				q.Limit = l
			}
		}
		if s := v.Get("changes-since"); s != "" {
			t, err := parseNovaTime(s)
			if err != nil {
				osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for query parameters changes-since: "+err.Error())
				return
			}
			q.ChangesSince = t
		}
		page, err := n.Servers.List(r.Context(), caller(r), q)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		osapi.FlagPartial(w, r, n.Log, "servers", page.Failed, nil)
		out := make([]map[string]any, 0, len(page.Servers))
		for _, s := range page.Servers {
			out = append(out, serverView(r, s, detail))
		}
		body := map[string]any{"servers": out}
		if page.More && len(page.Servers) > 0 {
			next := r.URL.Query()
			next.Set("marker", page.Servers[len(page.Servers)-1].ID)
			next.Set("limit", strconv.Itoa(q.Limit))
			body["servers_links"] = []map[string]string{{"rel": "next", "href": identity.BaseURL(r) + r.URL.Path + "?" + next.Encode()}}
		}
		osapi.WriteJSON(w, http.StatusOK, body)
	}
}

// parseNovaTime reads an ISO 8601 time as Nova's changes-since takes it.
func parseNovaTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05.999999", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time", s)
}

func (n *Nova) showServer(w http.ResponseWriter, r *http.Request) {
	s, err := n.Servers.Get(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"server": serverView(r, s, true)})
}

func (n *Nova) updateServer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Server *struct {
			Name *string `json:"name"`
		} `json:"server"`
	}
	if !decode(w, r, &req, `{"server": {"name": ...}}`) {
		return
	}
	if req.Server == nil {
		osapi.Fault(w, r, http.StatusBadRequest, `Invalid input: expected {"server": {"name": ...}}`)
		return
	}
	s, err := n.Servers.Update(r.Context(), caller(r), chi.URLParam(r, "id"), Update{Name: req.Server.Name})
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"server": serverView(r, s, true)})
}

func (n *Nova) deleteServer(w http.ResponseWriter, r *http.Request) {
	if err := n.Servers.Delete(r.Context(), caller(r), chi.URLParam(r, "id")); err != nil {
		n.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Nova) serverIPs(w http.ResponseWriter, r *http.Request) {
	s, err := n.Servers.Get(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"addresses": addressesView(s.Addresses)})
}

func (n *Nova) serverMetadata(w http.ResponseWriter, r *http.Request) {
	s, err := n.Servers.Get(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"metadata": s.Metadata})
}

// setServerMetadata replaces (PUT) or merges (POST) the metadata.
func (n *Nova) setServerMetadata(replace bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Metadata map[string]string `json:"metadata"`
		}
		if !decode(w, r, &req, `{"metadata": {"key": "value"}}`) {
			return
		}
		if req.Metadata == nil {
			osapi.Fault(w, r, http.StatusBadRequest, `Invalid input for field/attribute metadata: expected {"metadata": {...}}`)
			return
		}
		s, err := n.Servers.Update(r.Context(), caller(r), chi.URLParam(r, "id"), Update{Metadata: req.Metadata, ReplaceMetadata: replace})
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"metadata": s.Metadata})
	}
}

func (n *Nova) serverMetadataItem(w http.ResponseWriter, r *http.Request) {
	s, err := n.Servers.Get(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	key := chi.URLParam(r, "key")
	v, ok := s.Metadata[key]
	if !ok {
		osapi.Fault(w, r, http.StatusNotFound, "Metadata item was not found")
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
}

func (n *Nova) setServerMetadataItem(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Meta map[string]string `json:"meta"`
	}
	if !decode(w, r, &req, `{"meta": {"key": "value"}}`) {
		return
	}
	key := chi.URLParam(r, "key")
	if _, ok := req.Meta[key]; !ok || len(req.Meta) != 1 {
		osapi.Fault(w, r, http.StatusBadRequest, "Request body and URI mismatch")
		return
	}
	if _, err := n.Servers.Update(r.Context(), caller(r), chi.URLParam(r, "id"), Update{Metadata: req.Meta}); err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"meta": req.Meta})
}

func (n *Nova) deleteServerMetadataItem(w http.ResponseWriter, r *http.Request) {
	if _, err := n.Servers.Update(r.Context(), caller(r), chi.URLParam(r, "id"), Update{DeleteMetadata: []string{chi.URLParam(r, "key")}}); err != nil {
		n.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func attachmentView(a Attachment) map[string]any {
	return map[string]any{"id": a.ID, "volumeId": a.VolumeID, "serverId": a.ServerID, "device": a.Device}
}

func (n *Nova) listAttachments(w http.ResponseWriter, r *http.Request) {
	as, err := n.Servers.Attachments(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(as))
	for _, a := range as {
		out = append(out, attachmentView(a))
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"volumeAttachments": out})
}

func (n *Nova) showAttachment(w http.ResponseWriter, r *http.Request) {
	as, err := n.Servers.Attachments(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	for _, a := range as {
		if a.ID == chi.URLParam(r, "volume") {
			osapi.WriteJSON(w, http.StatusOK, map[string]any{"volumeAttachment": attachmentView(a)})
			return
		}
	}
	osapi.Fault(w, r, http.StatusNotFound, fmt.Sprintf("Volume %s is not attached to server %s.", chi.URLParam(r, "volume"), chi.URLParam(r, "id")))
}

func (n *Nova) attachVolume(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Attachment *struct {
			VolumeID string `json:"volumeId"`
			Device   string `json:"device"`
		} `json:"volumeAttachment"`
	}
	if !decode(w, r, &req, `{"volumeAttachment": {"volumeId": ...}}`) {
		return
	}
	if req.Attachment == nil || req.Attachment.VolumeID == "" {
		osapi.Fault(w, r, http.StatusBadRequest, `Invalid input for field/attribute volumeAttachment: expected {"volumeAttachment": {"volumeId": ...}}`)
		return
	}
	// The device name is a hint Nova itself ignores on libvirt; so does
	// the broker: the peer picks the next free one.
	a, err := n.Servers.Attach(r.Context(), caller(r), chi.URLParam(r, "id"), req.Attachment.VolumeID)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"volumeAttachment": attachmentView(a)})
}

func (n *Nova) detachVolume(w http.ResponseWriter, r *http.Request) {
	if err := n.Servers.Detach(r.Context(), caller(r), chi.URLParam(r, "id"), chi.URLParam(r, "volume")); err != nil {
		n.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func interfaceView(nic Interface) map[string]any {
	ips := []map[string]string{}
	for _, f := range nic.FixedIPs {
		ips = append(ips, map[string]string{"subnet_id": f.SubnetID, "ip_address": f.IPAddress})
	}
	return map[string]any{"port_id": nic.PortID, "net_id": nic.NetworkID, "mac_addr": nic.MAC, "port_state": nic.State, "fixed_ips": ips}
}

// listInterfaces answers os-interface (read only: attaching NICs after the
// boot is not offered), which Terraform's provider reads.
func (n *Nova) listInterfaces(w http.ResponseWriter, r *http.Request) {
	nics, err := n.Servers.Interfaces(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(nics))
	for _, nic := range nics {
		out = append(out, interfaceView(nic))
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"interfaceAttachments": out})
}

func (n *Nova) showInterface(w http.ResponseWriter, r *http.Request) {
	nics, err := n.Servers.Interfaces(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	for _, nic := range nics {
		if nic.PortID == chi.URLParam(r, "port") {
			osapi.WriteJSON(w, http.StatusOK, map[string]any{"interfaceAttachment": interfaceView(nic)})
			return
		}
	}
	osapi.Fault(w, r, http.StatusNotFound, fmt.Sprintf("Port %s is not attached to server %s", chi.URLParam(r, "port"), chi.URLParam(r, "id")))
}
