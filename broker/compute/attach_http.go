package compute

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
)

// attachmentView renders a volume attachment at the request's
// microversion: 2.70 adds its device tag, 2.79 delete_on_termination, 2.89
// the Cinder attachment ID and the block device mapping's UUID instead of
// the ID that repeated the volume's.
func attachmentView(r *http.Request, a Attachment) map[string]any {
	v := map[string]any{"volumeId": a.VolumeID, "serverId": a.ServerID, "device": a.Device}
	if at(r, "2.89") {
		v["attachment_id"], v["bdm_uuid"] = a.AttachmentID, bdmUUID(a.ServerID, a.VolumeID)
	} else {
		v["id"] = a.ID
	}
	if at(r, "2.70") {
		var tag any
		if a.Tag != "" {
			tag = a.Tag
		}
		v["tag"] = tag
	}
	if at(r, "2.79") {
		v["delete_on_termination"] = a.DeleteOnTermination
	}
	return v
}

func (n *Nova) listAttachments(w http.ResponseWriter, r *http.Request) {
	as, err := n.Servers.Attachments(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(as))
	for _, a := range as {
		out = append(out, attachmentView(r, a))
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
			osapi.WriteJSON(w, http.StatusOK, map[string]any{"volumeAttachment": attachmentView(r, a)})
			return
		}
	}
	osapi.Fault(w, r, http.StatusNotFound, fmt.Sprintf("Volume %s is not attached to server %s.", chi.URLParam(r, "volume"), chi.URLParam(r, "id")))
}

// attachmentRequest is os-volume_attachments' POST and PUT body.
type attachmentRequest struct {
	Attachment *struct {
		VolumeID     string          `json:"volumeId"`
		Device       *string         `json:"device"`
		Tag          *string         `json:"tag"`                   // 2.49
		DeleteOnTerm json.RawMessage `json:"delete_on_termination"` // 2.79
	} `json:"volumeAttachment"`
}

// read decodes the body strictly and refuses what the request's
// microversion lacks.
func (req *attachmentRequest) read(w http.ResponseWriter, r *http.Request) error {
	raw, err := readBody(w, r)
	if err == nil {
		err = decodeStrict(raw, req)
	}
	if err != nil || req.Attachment == nil || req.Attachment.VolumeID == "" {
		return invalid("volumeAttachment", `Invalid input for field/attribute volumeAttachment: expected {"volumeAttachment": {"volumeId": ...}} (%v)`, err)
	}
	a := req.Attachment
	switch {
	case a.Tag != nil && !at(r, "2.49"):
		return invalid("tag", "Invalid input for field/attribute volumeAttachment. Additional properties are not allowed ('tag' was unexpected)")
	case a.DeleteOnTerm != nil && !at(r, "2.79"):
		return invalid("delete_on_termination", "Invalid input for field/attribute volumeAttachment. Additional properties are not allowed ('delete_on_termination' was unexpected)")
	case a.Tag != nil:
		if err := CheckTag("tag", *a.Tag); err != nil {
			return err
		}
	}
	if _, ok := jsonBool(a.DeleteOnTerm); a.DeleteOnTerm != nil && !ok {
		return invalid("delete_on_termination", "Invalid input for field/attribute delete_on_termination. Value: %s. It is not a boolean", a.DeleteOnTerm)
	}
	return nil
}

// options are the attach's options.
func (req *attachmentRequest) options() AttachOptions {
	var o AttachOptions
	if req.Attachment.Tag != nil {
		o.Tag = *req.Attachment.Tag
	}
	o.DeleteOnTermination, _ = jsonBool(req.Attachment.DeleteOnTerm)
	return o
}

func (n *Nova) attachVolume(w http.ResponseWriter, r *http.Request) {
	var req attachmentRequest
	if err := req.read(w, r); err != nil {
		n.writeError(w, r, err)
		return
	}
	// The device name is a hint Nova itself ignores on libvirt; so does
	// the broker: the peer picks the next free one.
	a, err := n.Servers.AttachWith(r.Context(), caller(r), chi.URLParam(r, "id"), req.Attachment.VolumeID, req.options())
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"volumeAttachment": attachmentView(r, a)})
}

// updateAttachment answers PUT os-volume_attachments/{volume}: from 2.85
// it changes whether the attached volume is deleted with the server.
// Swapping a volume for another is not offered.
func (n *Nova) updateAttachment(w http.ResponseWriter, r *http.Request) {
	var req attachmentRequest
	if err := req.read(w, r); err != nil {
		n.writeError(w, r, err)
		return
	}
	volume := chi.URLParam(r, "volume")
	if req.Attachment.VolumeID != volume || !at(r, "2.85") {
		osapi.Fault(w, r, http.StatusBadRequest, "Swapping a server's volume for another is not offered; detach one and attach the other")
		return
	}
	if req.Attachment.Tag != nil || req.Attachment.Device != nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute volumeAttachment: only delete_on_termination can change")
		return
	}
	if req.Attachment.DeleteOnTerm != nil {
		if err := n.Servers.SetDeleteOnTermination(r.Context(), caller(r), chi.URLParam(r, "id"), volume, req.options().DeleteOnTermination); err != nil {
			n.writeError(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusAccepted)
}

func (n *Nova) detachVolume(w http.ResponseWriter, r *http.Request) {
	if err := n.Servers.Detach(r.Context(), caller(r), chi.URLParam(r, "id"), chi.URLParam(r, "volume")); err != nil {
		n.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// interfaceView renders a server's NIC; 2.70 adds its device tag.
func interfaceView(r *http.Request, nic Interface) map[string]any {
	ips := []map[string]string{}
	for _, f := range nic.FixedIPs {
		ips = append(ips, map[string]string{"subnet_id": f.SubnetID, "ip_address": f.IPAddress})
	}
	v := map[string]any{"port_id": nic.PortID, "net_id": nic.NetworkID, "mac_addr": nic.MAC, "port_state": nic.State, "fixed_ips": ips}
	if at(r, "2.70") {
		var tag any
		if nic.Tag != "" {
			tag = nic.Tag
		}
		v["tag"] = tag
	}
	return v
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
		out = append(out, interfaceView(r, nic))
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
			osapi.WriteJSON(w, http.StatusOK, map[string]any{"interfaceAttachment": interfaceView(r, nic)})
			return
		}
	}
	osapi.Fault(w, r, http.StatusNotFound, fmt.Sprintf("Port %s is not attached to server %s", chi.URLParam(r, "port"), chi.URLParam(r, "id")))
}
