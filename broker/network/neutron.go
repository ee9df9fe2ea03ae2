package network

import (
	"context"
	"errors"
	"fmt"
	"net/http"
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
	// QuotaAdmin, when set, lets cloud admins change quotas (PUT and
	// DELETE /quotas/{project}); without it they are read only.
	QuotaAdmin QuotaAdmin
	Auth       func(http.Handler) http.Handler // Keystone token validation
	Log        logrus.FieldLogger
}

// Routes mounts the API on r (at /network).
func (h *Neutron) Routes(r chi.Router) {
	notFound := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, r, http.StatusNotFound, "HTTPNotFound", "The resource could not be found.")
	}
	r.NotFound(notFound)
	r.Get("/", h.versions)
	r.Route("/v2.0", func(r chi.Router) {
		r.NotFound(notFound)
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, r, http.StatusMethodNotAllowed, "HTTPMethodNotAllowed", "The method "+r.Method+" is not allowed for this resource.")
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
			r.Put("/quotas/{project}", h.updateQuota)
			r.Delete("/quotas/{project}", h.resetQuota)
			r.Get("/quotas/{project}/default", h.defaultQuota)
			r.Get("/quotas/{project}/details", h.showQuota(true))
			r.Get("/quotas/{project}/details.json", h.showQuota(true))
			r.Get("/availability_zones", h.zones)
			r.Get("/routers", h.listRouters)
			w.Post("/routers", h.createRouter)
			r.Get("/routers/{id}", h.showRouter)
			w.Put("/routers/{id}", h.updateRouter)
			w.Delete("/routers/{id}", h.deleteRouter)
			w.Put("/routers/{id}/add_router_interface", h.routerInterface(true))
			w.Put("/routers/{id}/remove_router_interface", h.routerInterface(false))
			r.Get("/floatingips", h.listFloatingIPs)
			w.Post("/floatingips", h.createFloatingIP)
			r.Get("/floatingips/{id}", h.showFloatingIP)
			w.Put("/floatingips/{id}", h.updateFloatingIP)
			w.Delete("/floatingips/{id}", h.deleteFloatingIP)
		})
	})
}

// writeError answers with Neutron's error body, msg being the broker's own
// words, with the request ID (also in X-Openstack-Request-Id) a tenant
// quotes to support.
func writeError(w http.ResponseWriter, r *http.Request, code int, typ, msg string) {
	osapi.WriteJSON(w, code, map[string]any{"NeutronError": map[string]any{"type": typ, "message": msg, "detail": "",
		"request_id": middleware.GetReqID(r.Context())}})
}

// fail maps an error to Neutron's status and type; osapi.Tell decides
// what the tenant reads and logs the rest.
func (h *Neutron) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, typ := http.StatusInternalServerError, "HTTPInternalServerError"
	var ne *Error
	switch {
	case errors.As(err, &ne):
		code, typ = ne.Status, ne.Type
	case errors.Is(err, peers.ErrNotFound):
		code, typ = http.StatusNotFound, "NotFound"
	case errors.Is(err, peers.ErrConflict):
		code, typ = http.StatusConflict, "Conflict"
	case errors.Is(err, peers.ErrInvalid), errors.Is(err, registry.ErrInvalid):
		code, typ = http.StatusBadRequest, "BadRequest"
	case errors.Is(err, peers.ErrCapacity):
		code, typ = http.StatusConflict, "OverQuota"
	case errors.Is(err, peers.ErrUnavailable), errors.Is(err, registry.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		code, typ = http.StatusServiceUnavailable, "ServiceUnavailable"
	}
	writeError(w, r, code, typ, osapi.Tell(r, h.Log, code, err))
}

func requireProject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, _ := identity.TokenFrom(r.Context()); !t.Scoped() {
			writeError(w, r, http.StatusForbidden, "PolicyNotAuthorized", "a project-scoped token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func requireRole(role string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t, _ := identity.TokenFrom(r.Context()); !t.HasRole(role) {
				writeError(w, r, http.StatusForbidden, "PolicyNotAuthorized", fmt.Sprintf("rule:%s is disallowed by policy: the %s role is required", policyAction(r), role))
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
		{"quota", "quotas"}, {"availability_zone", "availability_zones"}, {"router", "routers"}, {"floatingip", "floatingips"}} {
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
	{"external-net", "Neutron external network", "router:external attribute of networks (cloud admins set it at create)."},
	{"router", "Neutron L3 Router", "Routers and floating IPs, each on one peer: a router joins subnets of its own peer to an external network there."},
	{"ext-gw-mode", "Neutron L3 Configurable external gateway mode", "enable_snat of a router's external_gateway_info."},
	{"extraroute", "Neutron Extra Route", "Static routes of routers (their next hops on a subnet the router joins)."},
	{"net-mtu", "Network MTU", "The MTU of each network."},
	{"pagination", "Pagination support", "limit and marker on lists."},
	{"sorting", "Sorting support", "sort_key and sort_dir on lists."},
	{"project-id", "project_id field enabled", "project_id alongside tenant_id."},
	{"quotas", "Quota management support", "Per-project quotas of networks, subnets, ports, security groups and rules, routers and floating IPs, enforced across every peer."},
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
	writeError(w, r, http.StatusNotFound, "ExtensionNotFound", "Extension with alias "+alias+" does not exist")
}
