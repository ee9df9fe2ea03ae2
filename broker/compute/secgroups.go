package compute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
)

// Security groups as Nova shows them. The network service owns them and
// has the peers enforce them: a server boots with its ports in the
// groups security_groups names (names or IDs of the project's groups, the
// default group when none), addSecurityGroup and removeSecurityGroup
// change every port of a running server, and the views show the groups
// the server is in.

// Groups is the part of network.Service servers use for security groups.
type Groups interface {
	// ResolveGroups turns names or IDs into the project's group IDs.
	ResolveGroups(ctx context.Context, project string, namesOrIDs []string) ([]string, error)
	// RecordServerGroups keeps the groups a server booted in.
	RecordServerGroups(ctx context.Context, serverID string, ids []string) error
	// ServerGroups are a server's groups, from memory.
	ServerGroups(ctx context.Context, project, serverID string) []network.SecurityGroup
	// SecurityGroups and FindSecurityGroup read the project's groups.
	SecurityGroups(ctx context.Context, project string) ([]network.SecurityGroup, error)
	FindSecurityGroup(ctx context.Context, project, nameOrID string) (network.SecurityGroup, error)
	// PrepareGroups puts groups on the peer a server boots on and says
	// what to hand it.
	PrepareGroups(ctx context.Context, project string, m *peers.Member, ids []string) ([]string, error)
}

var _ Groups = (*network.Service)(nil)

// securityGroupNames reads Nova's security_groups: [{"name": ...}].
func securityGroupNames(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var groups []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(raw, &groups); err != nil {
		return nil, invalid("security_groups", `Invalid input for field/attribute security_groups: want a list of {"name": GROUP}`)
	}
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		if g.Name == "" {
			return nil, invalid("security_groups", "Invalid input for field/attribute security_groups: a group without a name")
		}
		out = append(out, g.Name)
	}
	return out, nil
}

// resolveGroups is plan's part for security groups: a group the project
// does not have is Nova's 400.
func (s *Servers) resolveGroups(ctx context.Context, c Caller, names []string) ([]string, error) {
	g, ok := s.Networks.(Groups)
	if !ok {
		if len(names) > 0 {
			return nil, invalid("security_groups", "Security groups are not available here")
		}
		return nil, nil
	}
	for _, name := range names {
		// One at a time, to name the one not found.
		if _, err := g.ResolveGroups(ctx, c.Project, []string{name}); errors.Is(err, network.ErrNotFound) {
			return nil, invalid("security_groups", "Security group %s not found.", name)
		} else if err != nil {
			return nil, err
		}
	}
	return g.ResolveGroups(ctx, c.Project, names)
}

// recordGroups keeps a created server's groups; a failure leaves the
// server in them on its peer, shown as in the default group until set
// again.
func (s *Servers) recordGroups(ctx context.Context, id string, ids []string) {
	g, ok := s.Networks.(Groups)
	if !ok || ids == nil {
		return
	}
	if err := g.RecordServerGroups(ctx, id, ids); err != nil {
		s.Log.WithError(err).WithField("server", id).Warn("the security groups of a new server are not recorded")
	}
}

// ServerGroup is a security group a server is in.
type ServerGroup struct{ ID, Name string }

// serverGroups are a server's groups, from memory.
func (s *Servers) serverGroups(ctx context.Context, project, id string) []ServerGroup {
	g, ok := s.Networks.(Groups)
	if !ok {
		return []ServerGroup{{ID: network.DefaultSecurityGroupID(project), Name: network.DefaultSecurityGroup}}
	}
	var out []ServerGroup
	for _, sg := range g.ServerGroups(ctx, project, id) {
		out = append(out, ServerGroup{ID: sg.ID, Name: sg.Name})
	}
	return out
}

// ChangeSecurityGroup adds a group (by name or ID) to a server's ports,
// or removes it: Nova's addSecurityGroup and removeSecurityGroup.
func (s *Servers) ChangeSecurityGroup(ctx context.Context, c Caller, id, group string, remove bool) error {
	e, _, err := s.lookup(ctx, c, id)
	if err != nil {
		return err
	}
	if err := s.checkLock(ctx, c, id); err != nil {
		return err
	}
	changer, ok := s.Networks.(interface {
		ChangeServerGroups(ctx context.Context, project string, server index.Entry, nameOrID string, remove bool) error
	})
	if !ok {
		return &Error{Message: "Security groups are not available here.", Err: ErrInvalid}
	}
	if err := changer.ChangeServerGroups(ctx, c.Project, e, group, remove); err != nil {
		if errors.Is(err, network.ErrNotFound) {
			return &Error{Message: fmt.Sprintf("Security group %s not found for project %s.", group, c.Project), Err: ErrNotFound}
		}
		return err
	}
	name := "addSecurityGroup"
	if remove {
		name = "removeSecurityGroup"
	}
	s.recordAction(ctx, c, id, name, eventHost{}, nil) // the broker's own change: no event
	return nil
}

// securityGroupAction runs addSecurityGroup {name} or removeSecurityGroup
// {name}; Nova answers 202 with no body.
func (n *Nova) securityGroupAction(w http.ResponseWriter, r *http.Request, action string, body json.RawMessage) {
	var b struct {
		Name json.RawMessage `json:"name"`
	}
	if json.Unmarshal(body, &b) != nil || len(b.Name) == 0 || string(b.Name) == "null" {
		osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf(`Invalid input for field/attribute %s: expected {"name": GROUP}`, action))
		return
	}
	var name string
	if json.Unmarshal(b.Name, &name) != nil || name == "" {
		osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("Invalid input for field/attribute name. Value: %s. %s is not a non-empty string", b.Name, b.Name))
		return
	}
	if err := n.Servers.ChangeSecurityGroup(r.Context(), caller(r), chi.URLParam(r, "id"), name, action == "removeSecurityGroup"); err != nil {
		n.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// listServerGroups answers GET /servers/{id}/os-security-groups: the
// server's groups with their rules in Nova's (nova-network era) shape.
func (n *Nova) listServerGroups(w http.ResponseWriter, r *http.Request) {
	c, id := caller(r), chi.URLParam(r, "id")
	if _, _, err := n.Servers.lookup(r.Context(), c, id); err != nil {
		n.writeError(w, r, err)
		return
	}
	items := []map[string]any{}
	if g, ok := n.Servers.Networks.(Groups); ok {
		items = novaGroupViews(g.ServerGroups(r.Context(), c.Project, id))
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"security_groups": items})
}

// novaGroupViews shows groups as Nova does, a rule's remote group by the
// name it has among them.
func novaGroupViews(groups []network.SecurityGroup) []map[string]any {
	names := map[string]string{}
	for _, sg := range groups {
		names[sg.ID] = sg.Name
	}
	out := []map[string]any{}
	for _, sg := range groups {
		out = append(out, novaGroupView(sg, names))
	}
	return out
}

// novaGroupView is a group as Nova's os-security-groups shows it.
// names are the groups' names by ID, for rules naming a remote group.
func novaGroupView(g network.SecurityGroup, names map[string]string) map[string]any {
	rules := []map[string]any{}
	for _, r := range g.Rules {
		if r.Direction != "ingress" {
			continue // Nova's view has ingress rules only
		}
		port := func(p *int) any {
			if p == nil {
				return nil
			}
			return *p
		}
		var proto any
		if r.Protocol != "" {
			proto = r.Protocol
		}
		ipRange, group := map[string]any{}, map[string]any{}
		if r.RemoteIPPrefix != "" {
			ipRange["cidr"] = r.RemoteIPPrefix
		}
		if r.RemoteGroupID != "" {
			group["tenant_id"], group["name"] = g.Project, names[r.RemoteGroupID]
		}
		rules = append(rules, map[string]any{
			"id": r.ID, "parent_group_id": g.ID, "ip_protocol": proto, "from_port": port(r.PortRangeMin),
			"to_port": port(r.PortRangeMax), "ip_range": ipRange, "group": group,
		})
	}
	return map[string]any{"id": g.ID, "name": g.Name, "description": g.Description, "tenant_id": g.Project, "rules": rules}
}

// prepareGroups puts a server's groups on the peer it boots on.
func (s *Servers) prepareGroups(ctx context.Context, c Caller, m *peers.Member, ids []string) ([]string, error) {
	g, ok := s.Networks.(Groups)
	if !ok {
		return nil, nil
	}
	return g.PrepareGroups(ctx, c.Project, m, ids)
}

// groupNames is Nova's view of a server's groups: their names, the
// default group for a server presented without them.
func groupNames(groups []ServerGroup) []map[string]string {
	if len(groups) == 0 {
		return []map[string]string{{"name": network.DefaultSecurityGroup}}
	}
	out := make([]map[string]string, 0, len(groups))
	for _, g := range groups {
		out = append(out, map[string]string{"name": g.Name})
	}
	return out
}

// before serves a route only at microversions older than v (Nova's
// proxies of other services' APIs end at 2.36), 404 from v on.
func before(v string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if at(r, v) {
				osapi.Fault(w, r, http.StatusNotFound, "The resource could not be found.")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// listProjectGroups answers Nova's os-security-groups proxy (read only,
// before 2.36): the project's groups, as the openstack CLI's server add
// security group looks them up.
func (n *Nova) listProjectGroups(w http.ResponseWriter, r *http.Request) {
	g, ok := n.Servers.Networks.(Groups)
	items := []map[string]any{}
	if ok {
		groups, err := g.SecurityGroups(r.Context(), caller(r).Project)
		if err != nil {
			n.writeError(w, r, err)
			return
		}
		items = novaGroupViews(groups)
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"security_groups": items})
}

// showProjectGroup shows one group of the project by ID or name (Nova
// resolves either through Neutron).
func (n *Nova) showProjectGroup(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	g, ok := n.Servers.Networks.(Groups)
	if !ok {
		osapi.Fault(w, r, http.StatusNotFound, fmt.Sprintf("Security group %s not found.", id))
		return
	}
	sg, err := g.FindSecurityGroup(r.Context(), caller(r).Project, id)
	if errors.Is(err, network.ErrNotFound) {
		osapi.Fault(w, r, http.StatusNotFound, fmt.Sprintf("Security group %s not found.", id))
		return
	} else if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"security_group": novaGroupView(sg, map[string]string{sg.ID: sg.Name})})
}
