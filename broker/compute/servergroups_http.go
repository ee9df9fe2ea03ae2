package compute

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/policy"
)

// groupRoutes mounts os-server-groups.
func (n *Nova) groupRoutes(r chi.Router) {
	r.Route("/os-server-groups", func(r chi.Router) {
		r.Get("/", n.listGroups)
		r.With(identity.RequireRole(identity.RoleMember)).Post("/", n.createGroup)
		r.Get("/{id}", n.showGroup)
		r.With(identity.RequireRole(identity.RoleMember)).Delete("/{id}", n.deleteGroup)
	})
}

// groupView is a server group as Nova shows it at the request's version:
// policies (a list of one) and metadata before 2.64, policy and rules
// from then; project_id and user_id from 2.13.
func groupView(r *http.Request, g NovaServerGroup) map[string]any {
	v := map[string]any{"id": g.ID, "name": g.Name, "members": g.MemberIDs()}
	if at(r, "2.13") {
		v["project_id"], v["user_id"] = g.Project, g.User
	}
	if at(r, "2.64") {
		rules := map[string]int{}
		for k, n := range g.Rules {
			rules[k] = n
		}
		v["policy"], v["rules"] = g.Policy, rules
		return v
	}
	v["policies"], v["metadata"] = []string{g.Policy}, map[string]string{}
	return v
}

// createGroup answers POST /os-server-groups: {"server_group": {"name",
// "policies": [one]}} before 2.64, {"name", "policy", "rules"} from then;
// the soft policies from 2.15.
func (n *Nova) createGroup(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Group *struct {
			Name     *string                    `json:"name"`
			Policies []string                   `json:"policies"`
			Policy   *string                    `json:"policy"`
			Rules    map[string]json.RawMessage `json:"rules"`
			Extra    json.RawMessage            `json:"metadata"`
		} `json:"server_group"`
	}
	if !decode(w, r, &body, `{"server_group": {"name": "...", "policy": "..."}}`) {
		return
	}
	g := body.Group
	if g == nil || g.Name == nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute server_group. 'name' is a required property")
		return
	}
	var pol string
	switch {
	case at(r, "2.64"):
		if g.Policy == nil || g.Policies != nil {
			osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute server_group: from 2.64 give 'policy' (and 'rules'), not 'policies'")
			return
		}
		pol = *g.Policy
	default:
		if len(g.Policies) != 1 || g.Policy != nil || g.Rules != nil {
			osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute policies: give exactly one policy (rules need microversion 2.64)")
			return
		}
		pol = g.Policies[0]
	}
	if (pol == policy.GroupSoftAffinity || pol == policy.GroupSoftAntiAffinity) && !at(r, "2.15") {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute policies: "+pol+" needs microversion 2.15 or later")
		return
	}
	if g.Extra != nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute server_group. Additional properties are not allowed ('metadata' was unexpected)")
		return
	}
	var rules map[string]int
	for k, raw := range g.Rules {
		// An integer or a string of one, as Nova's schema takes it (the
		// openstack CLI sends strings).
		v, err := strconv.Atoi(strings.Trim(string(raw), `"`))
		if err != nil {
			osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute rules: "+k+" must be an integer")
			return
		}
		if rules == nil {
			rules = map[string]int{}
		}
		rules[k] = v
	}
	sg, err := n.Servers.CreateGroup(r.Context(), caller(r), *g.Name, pol, rules)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"server_group": groupView(r, sg)})
}

// listGroups answers GET /os-server-groups with all_projects (admins),
// limit and offset.
func (n *Nova) listGroups(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	all := false
	if q.Has("all_projects") {
		var ok bool
		if all, ok = osapi.ParseBool(q.Get("all_projects")); !ok {
			osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for query parameters all_projects: not a boolean")
			return
		}
	}
	gs, err := n.Servers.Groups(r.Context(), caller(r), all)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	offset, limit := 0, len(gs)
	for name, dst := range map[string]*int{"offset": &offset, "limit": &limit} {
		if s := q.Get(name); s != "" {
			v, err := strconv.Atoi(s)
			if err != nil || v < 0 {
				osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for query parameters "+name+": must be a non-negative integer")
				return
			}
			*dst = v
		}
	}
	gs = gs[min(offset, len(gs)):]
	gs = gs[:min(limit, len(gs))]
	out := make([]map[string]any, 0, len(gs))
	for _, g := range gs {
		out = append(out, groupView(r, g))
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"server_groups": out})
}

func (n *Nova) showGroup(w http.ResponseWriter, r *http.Request) {
	g, err := n.Servers.Group(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"server_group": groupView(r, g)})
}

func (n *Nova) deleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := n.Servers.DeleteGroup(r.Context(), caller(r), chi.URLParam(r, "id")); err != nil {
		n.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
