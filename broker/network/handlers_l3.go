package network

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
)

// Neutron's routers and floating IPs (the router, ext-gw-mode and
// extraroute extensions) over the Service.

func routerView(r Router) map[string]any {
	out := standard(r.Ref, r.Attrs)
	peerID := r.Ref.Member.Peer.ID
	out["name"] = r.Peer.Name
	out["admin_state_up"] = true
	out["status"] = r.Peer.Status
	out["external_gateway_info"] = nil
	if g := r.Peer.Gateway; g != nil {
		ips := []map[string]any{}
		for _, f := range g.FixedIPs {
			ips = append(ips, map[string]any{"subnet_id": NativeID(peerID, KindSubnet, f.SubnetID), "ip_address": f.IPAddress})
		}
		out["external_gateway_info"] = map[string]any{"network_id": NativeID(peerID, KindNetwork, g.NetworkID), "enable_snat": g.EnableSNAT, "external_fixed_ips": ips}
	}
	routes := []map[string]any{}
	for _, rt := range r.Peer.Routes {
		routes = append(routes, map[string]any{"destination": rt.Destination, "nexthop": rt.NextHop})
	}
	out["routes"] = routes
	out["availability_zone_hints"] = orEmpty(r.Attrs.ZoneHints)
	out["availability_zones"] = []string{r.Ref.Member.Peer.Name}
	return out
}

func fipView(f FloatingIP) map[string]any {
	out := standard(f.Ref, f.Attrs)
	orNull := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	out["floating_network_id"] = f.NetworkID
	out["floating_ip_address"] = f.Peer.Address
	out["fixed_ip_address"] = orNull(f.Peer.FixedIP)
	out["port_id"] = orNull(f.PortID)
	out["router_id"] = orNull(f.RouterID)
	out["status"] = cmpOr(f.Peer.Status, "DOWN")
	return out
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// gatewayInfo reads external_gateway_info: nil when absent, clear when
// null or {}.
func gatewayInfo(b body, errs *[]error) (g *GatewayRequest, clear bool) {
	if !b.has("external_gateway_info") {
		return nil, false
	}
	if b.null("external_gateway_info") {
		return nil, true
	}
	var raw struct {
		NetworkID  string `json:"network_id"`
		EnableSNAT *bool  `json:"enable_snat"`
		FixedIPs   []struct {
			SubnetID  string `json:"subnet_id"`
			IPAddress string `json:"ip_address"`
		} `json:"external_fixed_ips"`
	}
	b.into("external_gateway_info", &raw, errs)
	if raw.NetworkID == "" && raw.EnableSNAT == nil && raw.FixedIPs == nil {
		return nil, true
	}
	if !isUUID(raw.NetworkID) {
		*errs = append(*errs, badInput("external_gateway_info", "network_id '"+raw.NetworkID+"' is not a valid UUID"))
	}
	g = &GatewayRequest{NetworkID: raw.NetworkID, EnableSNAT: raw.EnableSNAT}
	if raw.FixedIPs != nil {
		g.FixedIPs = []peers.FixedIP{} // asked for, even empty: Neutron's policy looks at the key
	}
	for _, f := range raw.FixedIPs {
		g.FixedIPs = append(g.FixedIPs, peers.FixedIP{SubnetID: f.SubnetID, IPAddress: f.IPAddress})
	}
	return g, false
}

func (h *Neutron) listRouters(w http.ResponseWriter, r *http.Request) {
	rs, failed, err := h.Service.ListRouters(r.Context(), project(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.FlagPartial(w, r, h.Log, "network", failed, nil)
	items := make([]map[string]any, 0, len(rs))
	for _, rt := range rs {
		items = append(items, routerView(rt))
	}
	h.writeList(w, r, "routers", KindRouter, items)
}

func (h *Neutron) createRouter(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(w, r, "router")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var errs []error
	req := RouterCreate{Name: b.str("name", &errs), Description: b.str("description", &errs), ZoneHints: b.strs("availability_zone_hints", &errs)}
	req.Gateway, _ = gatewayInfo(b, &errs)
	b.ownProject(project(r), &errs)
	// The peers' routers are always up, centralized and single.
	b.tolerate(&errs, "admin_state_up", "true")
	b.tolerate(&errs, "distributed", "false", "null")
	b.tolerate(&errs, "ha", "false", "null")
	b.tolerate(&errs, "flavor_id", "null")
	b.unknown(&errs, "name", "description", "availability_zone_hints", "external_gateway_info", "project_id", "tenant_id",
		"admin_state_up", "distributed", "ha", "flavor_id")
	if err := joined(errs); err != nil {
		h.fail(w, r, err)
		return
	}
	rt, err := h.Service.CreateRouter(r.Context(), project(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusCreated, map[string]any{"router": routerView(rt)})
}

func (h *Neutron) showRouter(w http.ResponseWriter, r *http.Request) {
	rt, err := h.Service.GetRouter(r.Context(), project(r), chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"router": pick(r.URL.Query()["fields"], routerView(rt))})
}

func (h *Neutron) updateRouter(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(w, r, "router")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var errs []error
	u := RouterUpdate{Name: b.strPtr("name", &errs), Description: b.strPtr("description", &errs)}
	u.Gateway, u.ClearGateway = gatewayInfo(b, &errs)
	if b.has("routes") {
		var routes []peers.Route
		b.into("routes", &routes, &errs)
		if routes == nil {
			routes = []peers.Route{}
		}
		u.Routes = &routes
	}
	b.tolerate(&errs, "admin_state_up", "true")
	b.unknown(&errs, "name", "description", "external_gateway_info", "routes", "admin_state_up")
	if err := joined(errs); err != nil {
		h.fail(w, r, err)
		return
	}
	rt, err := h.Service.UpdateRouter(r.Context(), project(r), chi.URLParam(r, "id"), u)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"router": routerView(rt)})
}

func (h *Neutron) deleteRouter(w http.ResponseWriter, r *http.Request) {
	if err := h.Service.DeleteRouter(r.Context(), project(r), chi.URLParam(r, "id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// routerInterface serves add_router_interface (add) and
// remove_router_interface: a bare {"subnet_id": ...} or {"port_id": ...}.
func (h *Neutron) routerInterface(add bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var b body
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
		if err := dec.Decode(&b); err != nil || b == nil {
			h.fail(w, r, &Error{Status: 400, Type: "HTTPBadRequest", Message: "Malformed request body: an object with subnet_id or port_id is expected", Err: ErrInvalid})
			return
		}
		var errs []error
		subnetID, portID := b.uuid("subnet_id", &errs), b.uuid("port_id", &errs)
		b.unknown(&errs, "subnet_id", "port_id")
		if err := joined(errs); err != nil {
			h.fail(w, r, err)
			return
		}
		do := h.Service.RemoveRouterInterface
		if add {
			do = h.Service.AddRouterInterface
		}
		in, err := do(r.Context(), project(r), chi.URLParam(r, "id"), subnetID, portID)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{
			"id": in.RouterID, "tenant_id": in.Project, "project_id": in.Project, "subnet_id": in.SubnetID,
			"subnet_ids": []string{in.SubnetID}, "port_id": in.PortID, "network_id": in.NetworkID,
		})
	}
}

func (h *Neutron) listFloatingIPs(w http.ResponseWriter, r *http.Request) {
	fs, failed, err := h.Service.ListFloatingIPs(r.Context(), project(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.FlagPartial(w, r, h.Log, "network", failed, nil)
	items := make([]map[string]any, 0, len(fs))
	for _, f := range fs {
		items = append(items, fipView(f))
	}
	h.writeList(w, r, "floatingips", KindFloatingIP, items)
}

func (h *Neutron) createFloatingIP(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(w, r, "floatingip")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var errs []error
	req := FloatingIPCreate{NetworkID: b.uuid("floating_network_id", &errs), Address: b.str("floating_ip_address", &errs),
		PortID: b.uuid("port_id", &errs), FixedIP: b.str("fixed_ip_address", &errs), Description: b.str("description", &errs)}
	if req.NetworkID == "" {
		errs = append(errs, badInput("floating_network_id", "'None' is not a valid UUID"))
	}
	b.ownProject(project(r), &errs)
	b.tolerate(&errs, "subnet_id", "null")
	b.tolerate(&errs, "qos_policy_id", "null")
	b.tolerate(&errs, "dns_name", "null", `""`)
	b.tolerate(&errs, "dns_domain", "null", `""`)
	b.unknown(&errs, "floating_network_id", "floating_ip_address", "port_id", "fixed_ip_address", "description", "project_id", "tenant_id",
		"subnet_id", "qos_policy_id", "dns_name", "dns_domain")
	if err := joined(errs); err != nil {
		h.fail(w, r, err)
		return
	}
	f, err := h.Service.CreateFloatingIP(r.Context(), project(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusCreated, map[string]any{"floatingip": fipView(f)})
}

func (h *Neutron) showFloatingIP(w http.ResponseWriter, r *http.Request) {
	f, err := h.Service.GetFloatingIP(r.Context(), project(r), chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"floatingip": pick(r.URL.Query()["fields"], fipView(f))})
}

// updateFloatingIP associates (port_id), disassociates (port_id null) or
// describes a floating IP.
func (h *Neutron) updateFloatingIP(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(w, r, "floatingip")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var errs []error
	portID, fixed, desc := b.uuid("port_id", &errs), b.str("fixed_ip_address", &errs), b.strPtr("description", &errs)
	b.unknown(&errs, "port_id", "fixed_ip_address", "description")
	if err := joined(errs); err != nil {
		h.fail(w, r, err)
		return
	}
	ctx, id := r.Context(), chi.URLParam(r, "id")
	if desc != nil {
		if err := h.Service.SetFloatingIPDescription(ctx, project(r), id, *desc); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	var f FloatingIP
	if b.has("port_id") {
		f, err = h.Service.SetFloatingIPPort(ctx, project(r), id, portID, fixed)
	} else {
		f, err = h.Service.GetFloatingIP(ctx, project(r), id)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"floatingip": fipView(f)})
}

func (h *Neutron) deleteFloatingIP(w http.ResponseWriter, r *http.Request) {
	if err := h.Service.DeleteFloatingIP(r.Context(), project(r), chi.URLParam(r, "id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
