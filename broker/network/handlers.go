package network

import (
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
)

// joined merges validation problems into one Neutron error (the first's
// type and status, every message), so a client fixes them all at once.
func joined(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	first, _ := errs[0].(*Error)
	if first == nil {
		return errs[0]
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		msgs[i] = e.Error()
	}
	return &Error{Status: first.Status, Type: first.Type, Message: strings.Join(msgs, " "), Err: first.Err}
}

func (h *Neutron) list(w http.ResponseWriter, r *http.Request, withPorts bool) (Visible, bool) {
	v, err := h.Service.List(r.Context(), project(r), withPorts)
	if err != nil {
		h.fail(w, r, err)
		return v, false
	}
	osapi.FlagPartial(w, r, h.Log, "network", v.Failed, nil)
	return v, true
}

func (h *Neutron) listNetworks(w http.ResponseWriter, r *http.Request) {
	v, ok := h.list(w, r, false)
	if !ok {
		return
	}
	items := make([]map[string]any, 0, len(v.Networks))
	for _, n := range v.Networks {
		items = append(items, networkView(n))
	}
	h.writeList(w, r, "networks", KindNetwork, items)
}

func (h *Neutron) createNetwork(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(w, r, "network")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var errs []error
	req := NetworkCreate{Name: b.str("name", &errs), Description: b.str("description", &errs),
		AdminStateUp: b.boolean("admin_state_up", &errs), MTU: b.nonNegative("mtu", &errs),
		ZoneHints: b.strs("availability_zone_hints", &errs)}
	if shared := b.boolean("shared", &errs); shared != nil && *shared {
		if t, _ := identity.TokenFrom(r.Context()); !t.CloudAdmin() {
			h.fail(w, r, forbidden("create_network:shared"))
			return
		}
		req.Shared = true
	}
	if external := b.boolean("router:external", &errs); external != nil && *external {
		if t, _ := identity.TokenFrom(r.Context()); !t.CloudAdmin() {
			h.fail(w, r, forbidden("create_network:router:external"))
			return
		}
		req.External = true
	}
	b.ownProject(project(r), &errs)
	b.tolerate(&errs, "is_default", "false")
	b.tolerate(&errs, "port_security_enabled", "true")
	b.tolerate(&errs, "qos_policy_id", "null")
	b.tolerate(&errs, "dns_domain", "null", `""`)
	b.unknown(&errs, "name", "description", "admin_state_up", "mtu", "availability_zone_hints", "shared", "project_id", "tenant_id",
		"router:external", "is_default", "port_security_enabled", "qos_policy_id", "dns_domain")
	if err := joined(errs); err != nil {
		h.fail(w, r, err)
		return
	}
	n, err := h.Service.CreateNetwork(r.Context(), project(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusCreated, map[string]any{"network": networkView(n)})
}

func (h *Neutron) showNetwork(w http.ResponseWriter, r *http.Request) {
	n, err := h.Service.GetNetwork(r.Context(), project(r), chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"network": pick(r.URL.Query()["fields"], networkView(n))})
}

// decodeUpdate reads the attributes every resource lets its owner change.
func decodeUpdate(w http.ResponseWriter, r *http.Request, resource string, adminState, groups bool) (Update, error) {
	b, err := decodeBody(w, r, resource)
	if err != nil {
		return Update{}, err
	}
	var errs []error
	u := Update{Name: b.strPtr("name", &errs), Description: b.strPtr("description", &errs)}
	allowed := []string{"name", "description"}
	if adminState {
		u.AdminStateUp = b.boolean("admin_state_up", &errs)
		allowed = append(allowed, "admin_state_up")
	}
	if groups && b.has("security_groups") {
		g := b.uuids("security_groups", &errs)
		if g == nil {
			g = []string{}
		}
		u.SecurityGroups = &g
		allowed = append(allowed, "security_groups")
	}
	var extra []string
	for k := range b {
		found := false
		for _, a := range allowed {
			found = found || a == k
		}
		if !found {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		errs = append(errs, invalidInput("updating %s of a %s is not supported by this cloud", strings.Join(extra, ", "), resource))
	}
	return u, joined(errs)
}

func (h *Neutron) updateNetwork(w http.ResponseWriter, r *http.Request) {
	u, err := decodeUpdate(w, r, "network", true, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	n, err := h.Service.UpdateNetwork(r.Context(), project(r), chi.URLParam(r, "id"), u)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"network": networkView(n)})
}

func (h *Neutron) deleteNetwork(w http.ResponseWriter, r *http.Request) {
	if err := h.Service.DeleteNetwork(r.Context(), project(r), chi.URLParam(r, "id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Neutron) listSubnets(w http.ResponseWriter, r *http.Request) {
	v, ok := h.list(w, r, false)
	if !ok {
		return
	}
	items := make([]map[string]any, 0, len(v.Subnets))
	for _, sn := range v.Subnets {
		items = append(items, subnetView(sn))
	}
	h.writeList(w, r, "subnets", KindSubnet, items)
}

func (h *Neutron) createSubnet(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(w, r, "subnet")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var errs []error
	req := SubnetCreate{Name: b.str("name", &errs), Description: b.str("description", &errs),
		NetworkID: b.uuid("network_id", &errs), CIDR: b.str("cidr", &errs), IPVersion: b.integer("ip_version", &errs),
		GatewayIP: b.str("gateway_ip", &errs), NoGateway: b.null("gateway_ip"), EnableDHCP: true,
		DNSNameservers: b.strs("dns_nameservers", &errs)}
	if d := b.boolean("enable_dhcp", &errs); d != nil {
		req.EnableDHCP = *d
	}
	b.into("allocation_pools", &req.AllocationPools, &errs)
	if req.NetworkID == "" {
		errs = append(errs, badInput("network_id", "'None' is not a valid UUID"))
	}
	if req.CIDR == "" {
		errs = append(errs, &Error{Status: 400, Type: "BadRequest", Message: "Bad subnets request: a cidr must be specified in the absence of a subnet pool.", Err: ErrInvalid})
	}
	b.ownProject(project(r), &errs)
	for _, k := range []string{"host_routes", "service_types"} {
		b.tolerate(&errs, k, "[]", "null")
	}
	for _, k := range []string{"ipv6_ra_mode", "ipv6_address_mode", "subnetpool_id", "segment_id", "prefixlen"} {
		b.tolerate(&errs, k, "null")
	}
	b.tolerate(&errs, "use_default_subnetpool", "false")
	b.unknown(&errs, "name", "description", "network_id", "cidr", "ip_version", "gateway_ip", "enable_dhcp", "allocation_pools",
		"dns_nameservers", "project_id", "tenant_id", "host_routes", "service_types", "ipv6_ra_mode", "ipv6_address_mode",
		"subnetpool_id", "segment_id", "prefixlen", "use_default_subnetpool")
	if err := joined(errs); err != nil {
		h.fail(w, r, err)
		return
	}
	sn, err := h.Service.CreateSubnet(r.Context(), project(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusCreated, map[string]any{"subnet": subnetView(sn)})
}

func (h *Neutron) showSubnet(w http.ResponseWriter, r *http.Request) {
	sn, err := h.Service.GetSubnet(r.Context(), project(r), chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"subnet": pick(r.URL.Query()["fields"], subnetView(sn))})
}

func (h *Neutron) updateSubnet(w http.ResponseWriter, r *http.Request) {
	u, err := decodeUpdate(w, r, "subnet", false, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	sn, err := h.Service.UpdateSubnet(r.Context(), project(r), chi.URLParam(r, "id"), u)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"subnet": subnetView(sn)})
}

func (h *Neutron) deleteSubnet(w http.ResponseWriter, r *http.Request) {
	if err := h.Service.DeleteSubnet(r.Context(), project(r), chi.URLParam(r, "id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *Neutron) listPorts(w http.ResponseWriter, r *http.Request) {
	v, ok := h.list(w, r, true)
	if !ok {
		return
	}
	items := make([]map[string]any, 0, len(v.Ports))
	for _, p := range v.Ports {
		items = append(items, portView(p))
	}
	h.writeList(w, r, "ports", KindPort, items)
}

func (h *Neutron) createPort(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(w, r, "port")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var errs []error
	req := PortCreate{Name: b.str("name", &errs), Description: b.str("description", &errs),
		NetworkID: b.uuid("network_id", &errs), AdminStateUp: b.boolean("admin_state_up", &errs)}
	if b.has("security_groups") {
		req.SecurityGroups = b.uuids("security_groups", &errs)
		if req.SecurityGroups == nil {
			req.SecurityGroups = []string{}
		}
	}
	var fixed []struct {
		SubnetID  string `json:"subnet_id"`
		IPAddress string `json:"ip_address"`
	}
	b.into("fixed_ips", &fixed, &errs)
	for _, f := range fixed {
		req.FixedIPs = append(req.FixedIPs, peers.FixedIP{SubnetID: f.SubnetID, IPAddress: f.IPAddress})
	}
	if req.NetworkID == "" {
		errs = append(errs, badInput("network_id", "'None' is not a valid UUID"))
	}
	b.ownProject(project(r), &errs)
	// The compute API binds ports to servers; a client cannot claim one.
	b.tolerate(&errs, "device_id", `""`, "null")
	b.tolerate(&errs, "device_owner", `""`, "null")
	b.tolerate(&errs, "mac_address", "null")
	b.tolerate(&errs, "allowed_address_pairs", "[]", "null")
	b.tolerate(&errs, "extra_dhcp_opts", "[]", "null")
	b.tolerate(&errs, "port_security_enabled", "true")
	b.tolerate(&errs, "binding:vnic_type", `"normal"`)
	b.tolerate(&errs, "qos_policy_id", "null")
	b.unknown(&errs, "name", "description", "network_id", "admin_state_up", "security_groups", "fixed_ips", "project_id", "tenant_id",
		"device_id", "device_owner", "mac_address", "allowed_address_pairs", "extra_dhcp_opts", "port_security_enabled",
		"binding:vnic_type", "qos_policy_id")
	if err := joined(errs); err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := h.Service.CreatePort(r.Context(), project(r), req)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusCreated, map[string]any{"port": portView(p)})
}

func (h *Neutron) showPort(w http.ResponseWriter, r *http.Request) {
	p, err := h.Service.GetPort(r.Context(), project(r), chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"port": pick(r.URL.Query()["fields"], portView(p))})
}

func (h *Neutron) updatePort(w http.ResponseWriter, r *http.Request) {
	u, err := decodeUpdate(w, r, "port", true, true)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	p, err := h.Service.UpdatePort(r.Context(), project(r), chi.URLParam(r, "id"), u)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"port": portView(p)})
}

func (h *Neutron) deletePort(w http.ResponseWriter, r *http.Request) {
	if err := h.Service.DeletePort(r.Context(), project(r), chi.URLParam(r, "id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
