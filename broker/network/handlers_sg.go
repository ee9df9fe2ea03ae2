package network

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
)

func (h *Neutron) listGroups(w http.ResponseWriter, r *http.Request) {
	groups, err := h.Service.SecurityGroups(r.Context(), project(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	items := make([]map[string]any, 0, len(groups))
	for _, g := range groups {
		items = append(items, groupView(g))
	}
	h.writeList(w, r, "security_groups", kindSecurityGroup, items)
}

func (h *Neutron) createGroup(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(w, r, "security_group")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var errs []error
	name, description := b.str("name", &errs), b.str("description", &errs)
	stateful := true
	if s := b.boolean("stateful", &errs); s != nil && !*s {
		// Every peer filters statefully (conntrack, Neutron's default):
		// a stateless group would be stored and not enforced as such.
		errs = append(errs, badInput("stateful", "stateless security groups are not supported: every cloud filters statefully"))
	}
	b.ownProject(project(r), &errs)
	b.unknown(&errs, "name", "description", "stateful", "project_id", "tenant_id")
	if err := joined(errs); err != nil {
		h.fail(w, r, err)
		return
	}
	g, err := h.Service.CreateSecurityGroup(r.Context(), project(r), name, description, stateful)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusCreated, map[string]any{"security_group": groupView(g)})
}

func (h *Neutron) showGroup(w http.ResponseWriter, r *http.Request) {
	g, err := h.Service.SecurityGroup(r.Context(), project(r), chi.URLParam(r, "id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"security_group": pick(r.URL.Query()["fields"], groupView(g))})
}

func (h *Neutron) updateGroup(w http.ResponseWriter, r *http.Request) {
	u, err := decodeUpdate(w, r, "security_group", false, false)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	g, err := h.Service.UpdateSecurityGroup(r.Context(), project(r), chi.URLParam(r, "id"), u.Name, u.Description)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"security_group": groupView(g)})
}

func (h *Neutron) deleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := h.Service.DeleteSecurityGroup(r.Context(), project(r), chi.URLParam(r, "id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// ruleViews renders every rule of the project's groups.
func (h *Neutron) ruleViews(r *http.Request) ([]map[string]any, error) {
	groups, err := h.Service.SecurityGroups(r.Context(), project(r))
	if err != nil {
		return nil, err
	}
	var out []map[string]any
	for _, g := range groups {
		for _, rule := range g.Rules {
			out = append(out, ruleView(g, rule))
		}
	}
	return out, nil
}

func (h *Neutron) listRules(w http.ResponseWriter, r *http.Request) {
	items, err := h.ruleViews(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.writeList(w, r, "security_group_rules", kindSecurityGroupRule, items)
}

func (h *Neutron) showRule(w http.ResponseWriter, r *http.Request) {
	items, err := h.ruleViews(r)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	id := chi.URLParam(r, "id")
	for _, it := range items {
		if it["id"] == id {
			osapi.WriteJSON(w, http.StatusOK, map[string]any{"security_group_rule": pick(r.URL.Query()["fields"], it)})
			return
		}
	}
	h.fail(w, r, notFound(kindSecurityGroupRule, id))
}

func (h *Neutron) createRule(w http.ResponseWriter, r *http.Request) {
	b, err := decodeBody(w, r, "security_group_rule")
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var errs []error
	rule := SecurityGroupRule{SecurityGroupID: b.uuid("security_group_id", &errs), Direction: b.str("direction", &errs),
		EtherType: b.str("ethertype", &errs), Protocol: protocolOf(b, &errs), RemoteIPPrefix: b.str("remote_ip_prefix", &errs),
		RemoteGroupID: b.uuid("remote_group_id", &errs), Description: b.str("description", &errs)}
	for _, k := range []string{"port_range_min", "port_range_max"} {
		if b.has(k) && !b.null(k) {
			n := b.integer(k, &errs)
			if k == "port_range_min" {
				rule.PortRangeMin = &n
			} else {
				rule.PortRangeMax = &n
			}
		}
	}
	b.ownProject(project(r), &errs)
	b.tolerate(&errs, "remote_address_group_id", "null")
	b.unknown(&errs, "security_group_id", "direction", "ethertype", "protocol", "remote_ip_prefix", "remote_group_id", "description",
		"port_range_min", "port_range_max", "project_id", "tenant_id", "remote_address_group_id")
	if err := joined(errs); err != nil {
		h.fail(w, r, err)
		return
	}
	created, err := h.Service.CreateSecurityGroupRule(r.Context(), project(r), rule)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	g, err := h.Service.SecurityGroup(r.Context(), project(r), created.SecurityGroupID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusCreated, map[string]any{"security_group_rule": ruleView(g, created)})
}

func (h *Neutron) deleteRule(w http.ResponseWriter, r *http.Request) {
	if err := h.Service.DeleteSecurityGroupRule(r.Context(), project(r), chi.URLParam(r, "id")); err != nil {
		h.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// zones lists each peer as a network availability zone.
func (h *Neutron) zones(w http.ResponseWriter, r *http.Request) {
	items := []map[string]any{}
	for _, m := range h.Service.Pool.Members() {
		state := "unavailable"
		if m.Usable() {
			state = "available"
		}
		items = append(items, map[string]any{"name": m.Peer.Name, "resource": "network", "state": state})
	}
	h.writeList(w, r, "availability_zones", "availability_zone", items)
}

// protocolOf reads a rule's protocol, which Neutron takes as a name or a
// number.
func protocolOf(b body, errs *[]error) string {
	if !b.has("protocol") || b.null("protocol") {
		return ""
	}
	var n int
	if json.Unmarshal(b["protocol"], &n) == nil {
		return strconv.Itoa(n)
	}
	return b.str("protocol", errs)
}
