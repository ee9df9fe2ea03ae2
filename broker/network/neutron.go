package network

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Neutron serves the Neutron v2.0 API at /network over a Service.
type Neutron struct {
	Service *Service
	Auth    func(http.Handler) http.Handler // Keystone token validation
	Log     logrus.FieldLogger
}

// Routes mounts the API on r (at /network).
func (h *Neutron) Routes(r chi.Router) {
	r.Get("/", h.versions)
	r.Route("/v2.0", func(r chi.Router) {
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "HTTPNotFound", "The resource could not be found.")
		})
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusMethodNotAllowed, "HTTPMethodNotAllowed", "The method "+r.Method+" is not allowed for this resource.")
		})
		r.Get("/", h.resources)
		r.Group(func(r chi.Router) {
			r.Use(h.Auth, requireProject)
			// Readers read; writing takes member (admin implies it).
			w := r.With(requireRole(identity.RoleMember))
			r.Get("/extensions", h.extensions)
			r.Get("/extensions/{alias}", h.extension)
			r.Get("/networks", h.listNetworks)
			w.Post("/networks", h.createNetwork)
			r.Get("/networks/{id}", h.showNetwork)
			w.Put("/networks/{id}", h.updateNetwork)
			w.Delete("/networks/{id}", h.deleteNetwork)
			r.Get("/subnets", h.listSubnets)
			w.Post("/subnets", h.createSubnet)
			r.Get("/subnets/{id}", h.showSubnet)
			w.Put("/subnets/{id}", h.updateSubnet)
			w.Delete("/subnets/{id}", h.deleteSubnet)
			r.Get("/ports", h.listPorts)
			w.Post("/ports", h.createPort)
			r.Get("/ports/{id}", h.showPort)
			w.Put("/ports/{id}", h.updatePort)
			w.Delete("/ports/{id}", h.deletePort)
			r.Get("/security-groups", h.listGroups)
			w.Post("/security-groups", h.createGroup)
			r.Get("/security-groups/{id}", h.showGroup)
			w.Put("/security-groups/{id}", h.updateGroup)
			w.Delete("/security-groups/{id}", h.deleteGroup)
			r.Get("/security-group-rules", h.listRules)
			w.Post("/security-group-rules", h.createRule)
			r.Get("/security-group-rules/{id}", h.showRule)
			w.Delete("/security-group-rules/{id}", h.deleteRule)
			r.Get("/quotas", h.listQuotas)
			r.Get("/quotas/{project}", h.showQuota(false))
			r.Get("/quotas/{project}/default", h.showQuota(false))
			r.Get("/quotas/{project}/details", h.showQuota(true))
			r.Get("/quotas/{project}/details.json", h.showQuota(true))
			r.Get("/availability_zones", h.zones)
			// No routers or floating IPs exist here: their lists are
			// honestly empty, and nothing can be made (the l3 extensions
			// are not advertised, so clients do not try).
			for _, c := range []string{"floatingips", "routers"} {
				r.Get("/"+c, h.empty(c))
				r.HandleFunc("/"+c+"/*", noL3)
				r.Post("/"+c, noL3)
			}
		})
	})
}

// writeError answers with Neutron's error body.
func writeError(w http.ResponseWriter, code int, typ, msg string) {
	osapi.WriteJSON(w, code, map[string]any{"NeutronError": map[string]any{"type": typ, "message": msg, "detail": ""}})
}

// fail maps an error to Neutron's answer; internal errors are logged and
// hidden.
func (h *Neutron) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ne *Error
	switch {
	case errors.As(err, &ne):
		writeError(w, ne.Status, ne.Type, ne.Message)
	case errors.Is(err, peers.ErrNotFound):
		writeError(w, http.StatusNotFound, "NotFound", "The resource could not be found.")
	case errors.Is(err, peers.ErrConflict):
		writeError(w, http.StatusConflict, "Conflict", err.Error())
	case errors.Is(err, peers.ErrInvalid), errors.Is(err, registry.ErrInvalid):
		writeError(w, http.StatusBadRequest, "BadRequest", err.Error())
	case errors.Is(err, peers.ErrCapacity):
		writeError(w, http.StatusConflict, "OverQuota", err.Error())
	case errors.Is(err, peers.ErrUnavailable), errors.Is(err, registry.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		h.Log.WithError(err).WithField("request_id", middleware.GetReqID(r.Context())).Warn("network: unavailable")
		writeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "A peer or the registry did not answer; try again.")
	default:
		id := middleware.GetReqID(r.Context())
		h.Log.WithError(err).WithField("request_id", id).Error("internal error")
		writeError(w, http.StatusInternalServerError, "HTTPInternalServerError", "internal error; see the broker log for request "+id)
	}
}

func requireProject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, _ := identity.TokenFrom(r.Context()); !t.Scoped() {
			writeError(w, http.StatusForbidden, "PolicyNotAuthorized", "a project-scoped token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func requireRole(role string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t, _ := identity.TokenFrom(r.Context()); !t.HasRole(role) {
				writeError(w, http.StatusForbidden, "PolicyNotAuthorized", fmt.Sprintf("rule:%s is disallowed by policy: the %s role is required", policyAction(r), role))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// policyAction names a write as Neutron's policy rules do: create_network,
// delete_security_group_rule...
func policyAction(r *http.Request) string {
	verb := map[string]string{http.MethodPost: "create", http.MethodPut: "update", http.MethodDelete: "delete"}[r.Method]
	_, rest, _ := strings.Cut(r.URL.Path, "/v2.0/")
	collection, _, _ := strings.Cut(rest, "/")
	return verb + "_" + strings.ReplaceAll(strings.TrimSuffix(collection, "s"), "-", "_")
}

func project(r *http.Request) string {
	t, _ := identity.TokenFrom(r.Context())
	return t.ProjectID
}

func (h *Neutron) versions(w http.ResponseWriter, r *http.Request) {
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
		"id": "v2.0", "status": "CURRENT",
		"links": []map[string]string{{"rel": "self", "href": identity.BaseURL(r) + "/network/v2.0/"}},
	}}})
}

func (h *Neutron) resources(w http.ResponseWriter, r *http.Request) {
	base := identity.BaseURL(r) + "/network/v2.0/"
	var out []map[string]any
	for _, c := range [][2]string{{"network", "networks"}, {"subnet", "subnets"}, {"port", "ports"},
		{"security_group", "security-groups"}, {"security_group_rule", "security-group-rules"},
		{"quota", "quotas"}, {"availability_zone", "availability_zones"}} {
		out = append(out, map[string]any{"name": c[0], "collection": c[1],
			"links": []map[string]string{{"rel": "self", "href": base + c[1]}}})
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"resources": out})
}

// extensionList is what this API really implements of Neutron's
// extensions; clients decide what to send by it, so nothing is listed that
// is not honoured.
var extensionList = []struct{ alias, name, description string }{
	{"availability_zone", "Availability Zone", "Each peer of the broker is an availability zone."},
	{"network_availability_zone", "Network Availability Zone", "availability_zone_hints on networks pin them to peers."},
	{"external-net", "Neutron external network", "router:external attribute of networks (read-only)."},
	{"net-mtu", "Network MTU", "The MTU of each network."},
	{"pagination", "Pagination support", "limit and marker on lists."},
	{"sorting", "Sorting support", "sort_key and sort_dir on lists."},
	{"project-id", "project_id field enabled", "project_id alongside tenant_id."},
	{"quotas", "Quota management support", "Quotas (unlimited: the broker enforces none)."},
	{"quota_details", "Quota details management support", "Quota usage per resource."},
	{"security-group", "security-group", "Security groups and rules, kept by the broker per project."},
	{"standard-attr-description", "standard-attr-description", "description on every resource."},
	{"standard-attr-revisions", "Resource revision numbers", "revision_number on every resource."},
	{"standard-attr-timestamp", "Resource timestamps", "created_at and updated_at on every resource."},
	{"stateful-security-group", "Stateful security group", "The stateful attribute of security groups."},
}

func extensionView(i int) map[string]any {
	e := extensionList[i]
	return map[string]any{"alias": e.alias, "name": e.name, "description": e.description,
		"updated": "2026-01-01T00:00:00-00:00", "links": []any{}}
}

func (h *Neutron) extensions(w http.ResponseWriter, r *http.Request) {
	var out []map[string]any
	for i := range extensionList {
		out = append(out, extensionView(i))
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"extensions": out})
}

func (h *Neutron) extension(w http.ResponseWriter, r *http.Request) {
	alias := chi.URLParam(r, "alias")
	for i, e := range extensionList {
		if e.alias == alias {
			osapi.WriteJSON(w, http.StatusOK, map[string]any{"extension": extensionView(i)})
			return
		}
	}
	writeError(w, http.StatusNotFound, "ExtensionNotFound", "Extension with alias "+alias+" does not exist")
}

// noL3 answers what Neutron without the l3 extension answers for its
// resources, with the reason.
func noL3(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "HTTPNotFound", "The resource could not be found: this cloud offers no routers or floating IPs.")
}

func (h *Neutron) empty(collection string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		osapi.WriteJSON(w, http.StatusOK, map[string]any{collection: []any{}})
	}
}

// listParams are the query parameters that are not attribute filters.
var listParams = map[string]bool{"fields": true, "limit": true, "marker": true, "sort_key": true, "sort_dir": true, "page_reverse": true}

// matchesList applies the filters on list-valued attributes: tags (no
// resource here has any, so asking for one matches nothing) and fixed_ips
// ("ip_address=10.0.0.3", "subnet_id=..."; several must all hold for one
// address). Other keys pass.
func matchesList(key string, want []string, it map[string]any) bool {
	switch key {
	case "tags", "tags-any":
		return slices.Equal(want, []string{""})
	case "fixed_ips":
		// Values of one key are alternatives; different keys must all
		// hold for the same address, as Neutron joins them.
		alts := map[string][]string{}
		for _, w := range want {
			k, v, _ := strings.Cut(w, "=")
			alts[k] = append(alts[k], v)
		}
		ips, _ := it["fixed_ips"].([]map[string]string)
		return slices.ContainsFunc(ips, func(ip map[string]string) bool {
			for k, vs := range alts {
				ok := slices.ContainsFunc(vs, func(v string) bool {
					if k == "ip_address_substr" {
						return strings.Contains(ip["ip_address"], v)
					}
					return ip[k] == v
				})
				if !ok {
					return false
				}
			}
			return true
		})
	}
	return true
}

// text is an attribute value as a filter compares it.
func text(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case int:
		return strconv.Itoa(x), true
	case nil:
		return "", true
	}
	return "", false
}

// writeList answers a list as Neutron does: items filtered by any scalar
// attribute (?name=x&shared=true; several values of one key match any),
// sorted (sort_key/sort_dir, then id), paged (limit, marker; a
// <collection>_links next link while more remain), projected (fields).
// kind names the resource in a missing marker's NotFound.
func (h *Neutron) writeList(w http.ResponseWriter, r *http.Request, collection, kind string, items []map[string]any) {
	q := r.URL.Query()
	filtered := items[:0:0]
	for _, it := range items {
		keep := true
		for key, want := range q {
			if listParams[key] {
				continue
			}
			if !matchesList(key, want, it) {
				keep = false
				break
			}
			got, ok := text(it[key])
			if _, present := it[key]; !present || !ok {
				continue // unknown or list-valued attribute: not a filter here
			}
			if !slices.ContainsFunc(want, func(s string) bool { return strings.EqualFold(s, got) || (got == "" && s == "") }) {
				keep = false
				break
			}
		}
		if keep {
			filtered = append(filtered, it)
		}
	}
	keys, dirs := q["sort_key"], q["sort_dir"]
	sort.SliceStable(filtered, func(i, j int) bool {
		for k, key := range keys {
			a, _ := text(filtered[i][key])
			b, _ := text(filtered[j][key])
			if a == b {
				continue
			}
			if k < len(dirs) && dirs[k] == "desc" {
				return a > b
			}
			return a < b
		}
		return idOf(filtered[i]) < idOf(filtered[j])
	})
	limit := 0
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "HTTPBadRequest", fmt.Sprintf("Invalid input for limit. Reason: '%s' is not a non-negative integer.", s))
			return
		}
		limit = n
	}
	if marker := q.Get("marker"); marker != "" {
		i := slices.IndexFunc(filtered, func(it map[string]any) bool { return idOf(it) == marker })
		if i < 0 {
			h.fail(w, r, notFound(kind, marker))
			return
		}
		filtered = filtered[i+1:]
	}
	body := map[string]any{}
	if limit > 0 && len(filtered) > limit {
		filtered = filtered[:limit]
		next := url.Values{}
		for k, v := range q {
			next[k] = v
		}
		next.Set("marker", idOf(filtered[len(filtered)-1]))
		body[collection+"_links"] = []map[string]string{{"rel": "next", "href": identity.BaseURL(r) + r.URL.Path + "?" + next.Encode()}}
	}
	out := make([]map[string]any, 0, len(filtered))
	for _, it := range filtered {
		out = append(out, pick(q["fields"], it))
	}
	body[collection] = out
	osapi.WriteJSON(w, http.StatusOK, body)
}

// pick keeps only the fields asked for (all when none are).
func pick(fields []string, it map[string]any) map[string]any {
	if len(fields) == 0 {
		return it
	}
	out := make(map[string]any, len(fields))
	for _, f := range fields {
		if v, ok := it[f]; ok {
			out[f] = v
		}
	}
	return out
}

// idOf is an item's identity for paging: its id, or its name for
// resources without one (availability zones).
func idOf(it map[string]any) string {
	if id, ok := it["id"].(string); ok {
		return id
	}
	name, _ := it["name"].(string)
	return name
}
