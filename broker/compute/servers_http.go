package compute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
)

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
			r.Get("/os-security-groups", n.listServerGroups)
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
			r.With(member).Put("/os-volume_attachments/{volume}", n.updateAttachment)
			r.With(member).Delete("/os-volume_attachments/{volume}", n.detachVolume)
			n.serverTagRoutes(r)
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

func (n *Nova) showServer(w http.ResponseWriter, r *http.Request) {
	s, err := n.getServer(r)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"server": serverView(r, s, viewShow)})
}

// getServer reads the server a request names; from 2.69 a server whose
// peer does not answer is its minimal construct, not an error.
func (n *Nova) getServer(r *http.Request) (Server, error) {
	s, err := n.Servers.Get(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil && at(r, "2.69") && (errors.Is(err, peers.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)) {
		n.Log.WithError(err).WithField("server", chi.URLParam(r, "id")).Warn("server show: peer did not answer; showing what the broker keeps")
		return n.Servers.Stub(r.Context(), caller(r), chi.URLParam(r, "id"))
	}
	return s, err
}

// serverUpdate is PUT /servers/{id}'s body at every microversion; what a
// version lacks is refused as Nova's schema refuses it.
type serverUpdate struct {
	Name        *string        `json:"name"`
	DiskConfig  *string        `json:"OS-DCF:diskConfig"`
	AccessIPv4  *string        `json:"accessIPv4"`
	AccessIPv6  *string        `json:"accessIPv6"`
	Description optionalString `json:"description"` // 2.19
	Hostname    *string        `json:"hostname"`    // 2.90
}

func (n *Nova) updateServer(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Server *serverUpdate `json:"server"`
	}
	raw, err := readBody(w, r)
	if err == nil {
		err = decodeStrict(raw, &req)
	}
	if err != nil || req.Server == nil {
		osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf(`Invalid input for field/attribute server: %v; expected {"server": {"name": ...}}`, err))
		return
	}
	b := req.Server
	u := Update{Name: b.Name, AccessIPv4: b.AccessIPv4, AccessIPv6: b.AccessIPv6, Hostname: b.Hostname}
	switch {
	case b.Description.Set && !at(r, "2.19"):
		err = unexpected("description")
	case b.Hostname != nil && !at(r, "2.90"):
		err = unexpected("hostname")
	case b.DiskConfig != nil && *b.DiskConfig != "MANUAL":
		err = invalid("OS-DCF:diskConfig", "Invalid input for field/attribute OS-DCF:diskConfig. Value: %s. Only MANUAL is offered", *b.DiskConfig)
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if b.Description.Set {
		u.Description, u.ClearDescription = b.Description.Value, b.Description.Value == nil
	}
	s, err := n.Servers.Update(r.Context(), caller(r), chi.URLParam(r, "id"), u)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"server": serverView(r, s, viewUpdate)})
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
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"addresses": addressesView(s.Addresses, true)})
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
