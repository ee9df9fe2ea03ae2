package network

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// SecurityGroup is a broker-level security group of a project, enforced
// by the peers holding its ports (enforce.go).
type SecurityGroup struct {
	ID          string              `json:"id"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Project     string              `json:"project"`
	Stateful    bool                `json:"stateful"`
	Rules       []SecurityGroupRule `json:"rules"`
	Revision    int                 `json:"revision_number"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
	// Peers hold a copy of the group (enforce.go): the rules go to them.
	Peers []string `json:"peers,omitempty"`
}

// SecurityGroupRule is one rule of a group.
type SecurityGroupRule struct {
	ID              string `json:"id"`
	SecurityGroupID string `json:"security_group_id"`
	Direction       string `json:"direction"` // ingress or egress
	EtherType       string `json:"ethertype"` // IPv4 or IPv6
	// Protocol is "" for any, else a name (tcp, udp, icmp...) or a number.
	Protocol       string    `json:"protocol,omitempty"`
	PortRangeMin   *int      `json:"port_range_min,omitempty"`
	PortRangeMax   *int      `json:"port_range_max,omitempty"`
	RemoteIPPrefix string    `json:"remote_ip_prefix,omitempty"`
	RemoteGroupID  string    `json:"remote_group_id,omitempty"`
	Description    string    `json:"description,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
}

// DefaultSecurityGroup is the name of the group every project has.
const DefaultSecurityGroup = "default"

// sgNamespace derives the default group's ID from the project, so
// replicas creating it at once agree on one group.
var sgNamespace = uuid.MustParse("6f1d0c33-3c5e-4f57-9b0e-1c7c2a8f4e21")

// DefaultSecurityGroupID is the ID of project's default group (made on
// first use; the ID is derived from the project, so it is known before).
func DefaultSecurityGroupID(project string) string {
	return uuid.NewSHA1(sgNamespace, []byte("default/"+project)).String()
}

// defaultGroup is Neutron's default group: egress anywhere, ingress from
// members of the group itself, for IPv4 and IPv6.
func defaultGroup(project string, now time.Time) SecurityGroup {
	id := DefaultSecurityGroupID(project)
	g := SecurityGroup{ID: id, Name: DefaultSecurityGroup, Description: "Default security group", Project: project,
		Stateful: true, Revision: 1, CreatedAt: now, UpdatedAt: now}
	for i, r := range []SecurityGroupRule{
		{Direction: "egress", EtherType: "IPv4"}, {Direction: "egress", EtherType: "IPv6"},
		{Direction: "ingress", EtherType: "IPv4", RemoteGroupID: id}, {Direction: "ingress", EtherType: "IPv6", RemoteGroupID: id},
	} {
		r.ID = uuid.NewSHA1(sgNamespace, []byte(id+"/"+strconv.Itoa(i))).String()
		r.SecurityGroupID, r.CreatedAt = id, now
		g.Rules = append(g.Rules, r)
	}
	return g
}

// SecurityGroups returns the project's groups by name then ID, creating
// the default group on first use.
func (s *Service) SecurityGroups(ctx context.Context, project string) ([]SecurityGroup, error) {
	out, err := s.projectGroups(ctx, project)
	if err != nil {
		return nil, err
	}
	def := defaultGroup(project, time.Now().UTC())
	hasDefault := slices.ContainsFunc(out, func(g SecurityGroup) bool { return g.ID == def.ID })
	if !hasDefault {
		g, err := s.ensureDefault(ctx, def)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b SecurityGroup) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	return out, nil
}

// ensureDefault writes the default group unless a replica did first.
func (s *Service) ensureDefault(ctx context.Context, def SecurityGroup) (SecurityGroup, error) {
	raw, err := json.Marshal(def)
	if err != nil {
		return SecurityGroup{}, err
	}
	idx, err := s.Store.CAS(ctx, sgKey(def.Project, def.ID), raw, 0)
	if errors.Is(err, registry.ErrConflict) {
		g, _, err := s.loadGroup(ctx, def.Project, def.ID)
		return g, err
	} else if err != nil {
		return SecurityGroup{}, err
	}
	s.wroteGroup(def, idx)
	// The default group counts, as in Neutron, but exists whatever the
	// quota: it is counted without a limit check, by the replica that
	// wrote it.
	if s.Quota != nil {
		if err := s.Quota.Add(ctx, quota.Scope{Project: def.Project}, groupCharge(def)); err != nil {
			s.Log.WithError(err).WithField("project", def.Project).Warn("the default security group is not counted in the project's quota")
		}
	}
	return def, nil
}

func (s *Service) loadGroup(ctx context.Context, project, id string) (SecurityGroup, uint64, error) {
	if registry.ValidateKey(sgKey(project, id)) != nil {
		return SecurityGroup{}, 0, notFound(kindSecurityGroup, id)
	}
	kv, err := s.Store.Get(ctx, sgKey(project, id))
	if errors.Is(err, registry.ErrNotFound) {
		if def := defaultGroup(project, time.Now().UTC()); def.ID == id {
			g, err := s.ensureDefault(ctx, def)
			if err != nil {
				return SecurityGroup{}, 0, err
			}
			return s.loadGroup(ctx, project, g.ID)
		}
		return SecurityGroup{}, 0, notFound(kindSecurityGroup, id)
	}
	if err != nil {
		return SecurityGroup{}, 0, err
	}
	var g SecurityGroup
	if err := json.Unmarshal(kv.Value, &g); err != nil {
		return SecurityGroup{}, 0, fmt.Errorf("decode %s: %w", kv.Key, err)
	}
	s.wroteGroup(g, kv.ModifyIndex) // what another replica wrote, before its watch delivers it
	return g, kv.ModifyIndex, nil
}

// SecurityGroup returns a group of the project by ID, from memory; an ID
// memory lacks is read from the Store (one key: another replica may just
// have made it), and the project's default group is made on first use.
func (s *Service) SecurityGroup(ctx context.Context, project, id string) (SecurityGroup, error) {
	if registry.ValidateKey(sgKey(project, id)) != nil {
		return SecurityGroup{}, notFound(kindSecurityGroup, id)
	}
	g, err := s.groupRecords().Get(ctx, sgKey(project, id), true)
	if errors.Is(err, registry.ErrNotFound) {
		if def := defaultGroup(project, time.Now().UTC()); def.ID == id {
			return s.ensureDefault(ctx, def)
		}
		return SecurityGroup{}, notFound(kindSecurityGroup, id)
	}
	return g, err
}

// FindSecurityGroup returns the project's group with ID or name nameOrID
// (as Nova's security_groups: [{name}] names them); a name two groups share
// is ErrInvalid (Neutron's NoUniqueMatch).
func (s *Service) FindSecurityGroup(ctx context.Context, project, nameOrID string) (SecurityGroup, error) {
	groups, err := s.SecurityGroups(ctx, project)
	if err != nil {
		return SecurityGroup{}, err
	}
	g, err := findGroup(groups, nameOrID)
	if !errors.Is(err, ErrNotFound) {
		return g, err
	}
	// Memory may lack a group another replica just made: its ID is one
	// key; a name takes the project's groups from the Store.
	if g, err := s.SecurityGroup(ctx, project, nameOrID); !errors.Is(err, ErrNotFound) {
		return g, err
	}
	if groups, err = s.storedGroups(ctx, project); err != nil {
		return SecurityGroup{}, err
	}
	return findGroup(groups, nameOrID)
}

// findGroup picks the group with ID or name nameOrID from groups.
func findGroup(groups []SecurityGroup, nameOrID string) (SecurityGroup, error) {
	var match []SecurityGroup
	for _, g := range groups {
		if g.ID == nameOrID {
			return g, nil
		}
		if g.Name == nameOrID {
			match = append(match, g)
		}
	}
	switch len(match) {
	case 0:
		return SecurityGroup{}, notFound(kindSecurityGroup, nameOrID)
	case 1:
		return match[0], nil
	}
	return SecurityGroup{}, &Error{Status: 409, Type: "NoUniqueMatch", Message: fmt.Sprintf("Multiple security_group matches found for name '%s', use an ID to be more specific.", nameOrID), Err: ErrInvalid}
}

// CreateSecurityGroup creates a group with Neutron's default egress rules.
func (s *Service) CreateSecurityGroup(ctx context.Context, project, name, description string, stateful bool) (SecurityGroup, error) {
	if name == DefaultSecurityGroup {
		// Creating a second "default" would make the name ambiguous.
		if _, err := s.SecurityGroups(ctx, project); err != nil {
			return SecurityGroup{}, err
		}
		return SecurityGroup{}, &Error{Status: 409, Type: "SecurityGroupDefaultAlreadyExists", Message: "Default security group already exists.", Err: ErrInUse}
	}
	if len(name) > 255 || len(description) > 255 {
		return SecurityGroup{}, badInput("name", "the name and the description are at most 255 characters")
	}
	now := time.Now().UTC()
	g := SecurityGroup{ID: uuid.NewString(), Name: name, Description: description, Project: project, Stateful: stateful,
		Revision: 1, CreatedAt: now, UpdatedAt: now}
	for _, et := range []string{"IPv4", "IPv6"} {
		g.Rules = append(g.Rules, SecurityGroupRule{ID: uuid.NewString(), SecurityGroupID: g.ID, Direction: "egress", EtherType: et, CreatedAt: now})
	}
	raw, err := json.Marshal(g)
	if err != nil {
		return SecurityGroup{}, err
	}
	res, err := s.reserveAmounts(ctx, project, groupCharge(g), kindSecurityGroup+" "+g.ID)
	if err != nil {
		return SecurityGroup{}, err
	}
	defer s.release(ctx, res)
	idx, err := s.Store.CAS(ctx, sgKey(project, g.ID), raw, 0)
	if err != nil {
		return SecurityGroup{}, err
	}
	if _, err := commit(ctx, res); err != nil {
		if s.Store.Delete(context.WithoutCancel(ctx), sgKey(project, g.ID)) == nil {
			s.groupRecords().Deleted(sgKey(project, g.ID))
		}
		return SecurityGroup{}, err
	}
	s.wroteGroup(g, idx)
	return g, nil
}

// groupCharge is what a group counts: itself and its rules (Neutron counts
// the egress rules a new group comes with).
func groupCharge(g SecurityGroup) quota.Amounts {
	return quota.Amounts{quota.SecurityGroups: 1, quota.SecurityGroupRules: len(g.Rules)}
}

// changeGroup applies change to a group with compare-and-swap, retrying a
// lost race.
func (s *Service) changeGroup(ctx context.Context, project, id string, change func(*SecurityGroup) error) (SecurityGroup, error) {
	for {
		g, at, err := s.loadGroup(ctx, project, id)
		if err != nil {
			return SecurityGroup{}, err
		}
		if err := change(&g); err != nil {
			return SecurityGroup{}, err
		}
		g.Revision++
		g.UpdatedAt = time.Now().UTC()
		raw, err := json.Marshal(g)
		if err != nil {
			return SecurityGroup{}, err
		}
		written, err := s.Store.CAS(ctx, sgKey(project, id), raw, at)
		if errors.Is(err, registry.ErrConflict) {
			continue
		} else if err != nil {
			return SecurityGroup{}, err
		}
		s.wroteGroup(g, written)
		return g, nil
	}
}

// UpdateSecurityGroup renames a group or changes its description; the
// default group keeps its name.
func (s *Service) UpdateSecurityGroup(ctx context.Context, project, id string, name, description *string) (SecurityGroup, error) {
	g, err := s.changeGroup(ctx, project, id, func(g *SecurityGroup) error {
		if name != nil && *name != g.Name {
			if g.Name == DefaultSecurityGroup || *name == DefaultSecurityGroup {
				return &Error{Status: 409, Type: "SecurityGroupCannotUpdateDefault", Message: "Updating default security group not allowed.", Err: ErrInUse}
			}
			g.Name = *name
		}
		if description != nil {
			g.Description = *description
		}
		return nil
	})
	if err == nil && name != nil {
		_ = s.pushGroup(ctx, g) // the peers' copies show the name; no rule changed
	}
	return g, err
}

// DeleteSecurityGroup deletes a group other than the default one. Rules of
// other groups naming it as their remote group go with it, as in Neutron.
func (s *Service) DeleteSecurityGroup(ctx context.Context, project, id string) error {
	g, at, err := s.loadGroup(ctx, project, id)
	if err != nil {
		return err
	}
	if g.Name == DefaultSecurityGroup {
		return &Error{Status: 409, Type: "SecurityGroupCannotRemoveDefault", Message: "Insufficient rights for removing default security group.", Err: ErrInUse}
	}
	if err := s.groupUnused(ctx, project, id); err != nil {
		return err
	}
	if err := s.Store.DeleteCAS(ctx, sgKey(project, id), at); err != nil {
		if errors.Is(err, registry.ErrConflict) {
			return s.DeleteSecurityGroup(ctx, project, id)
		}
		return err
	}
	s.groupRecords().Deleted(sgKey(project, id))
	s.free(ctx, project, groupCharge(g))
	s.dropGroup(ctx, g)
	// From the Store, not memory: a rule naming the group that another
	// replica just added must go too, or it outlives its remote group.
	groups, err := s.storedGroups(ctx, project)
	if err != nil {
		return err
	}
	for _, other := range groups {
		if slices.ContainsFunc(other.Rules, func(r SecurityGroupRule) bool { return r.RemoteGroupID == id }) {
			dropped := 0
			changed, err := s.changeGroup(ctx, project, other.ID, func(o *SecurityGroup) error {
				before := len(o.Rules)
				o.Rules = slices.DeleteFunc(o.Rules, func(r SecurityGroupRule) bool { return r.RemoteGroupID == id })
				dropped = before - len(o.Rules)
				return nil
			})
			if err != nil && !errors.Is(err, ErrNotFound) {
				return err
			}
			if err == nil {
				_ = s.pushGroup(ctx, changed) // fewer rules: nothing a peer refuses
			}
			s.free(ctx, project, quota.Amounts{quota.SecurityGroupRules: dropped})
		}
	}
	return nil
}

// groupUnused refuses to let a group go while a port of the project names
// it (Neutron's SecurityGroupInUse): the port would keep an ID that
// resolves to nothing. Ports name groups in their broker-kept attributes;
// group IDs are random and only the project's own may be named, so the
// ports to look at are the project's (both kinds of its indexed ports),
// their attributes looked up by ID in memory. The attributes of a
// server's port outlive it (the compute API deletes it with the server),
// so a naming port counts only if its peer still lists it.
func (s *Service) groupUnused(ctx context.Context, project, id string) error {
	attrsOf, err := s.attrsLookup(ctx)
	if err != nil {
		return err
	}
	// A server booted in the group (or given it) holds it through the
	// ports its peer made for it: it is in use while the server is indexed.
	servers, err := s.Index.List(ctx, kindServer, project)
	if err != nil {
		return err
	}
	for _, e := range servers {
		if slices.Contains(s.serverGroupIDs(ctx, e.ID), id) {
			return &Error{Status: 409, Type: "SecurityGroupInUse", Err: ErrInUse,
				Message: fmt.Sprintf("Security Group %s in use: server %s is in it.", id, e.ID)}
		}
	}
	var naming []string
	for _, kind := range []string{KindPort, kindServerPort} {
		entries, err := s.Index.List(ctx, kind, project)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if slices.Contains(attrsOf(KindPort, e.ID).SecurityGroups, id) {
				naming = append(naming, e.ID)
			}
		}
	}
	if len(naming) == 0 {
		return nil
	}
	v, err := s.List(ctx, project, true)
	if err != nil {
		return err
	}
	for _, p := range v.Ports {
		if slices.Contains(naming, p.Ref.ID) {
			return &Error{Status: 409, Type: "SecurityGroupInUse", Err: ErrInUse,
				Message: fmt.Sprintf("Security Group %s in use: port %s names it.", id, p.Ref.ID)}
		}
	}
	if len(v.Failed) > 0 {
		return &Error{Status: 503, Type: "ServiceUnavailable", Err: peers.ErrUnavailable,
			Message: fmt.Sprintf("Cannot tell whether ports on %s use security group %s: they did not answer.", strings.Join(v.Failed, ", "), id)}
	}
	return nil
}

// protocols Neutron knows by name, with their numbers.
var protocols = map[string]int{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "icmp": 1, "icmpv6": 58, "igmp": 2, "ipip": 4,
	"ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43,
	"ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// validateRule checks a rule as Neutron does and normalises it.
func validateRule(r *SecurityGroupRule) error {
	switch r.Direction {
	case "ingress", "egress":
	default:
		return badInput("direction", fmt.Sprintf("'%s' is not in ['ingress', 'egress']", r.Direction))
	}
	if r.EtherType == "" {
		r.EtherType = "IPv4"
	}
	switch strings.ToLower(r.EtherType) {
	case "ipv4":
		r.EtherType = "IPv4"
	case "ipv6":
		r.EtherType = "IPv6"
	default:
		return badInput("ethertype", fmt.Sprintf("'%s' is not in ['IPv4', 'IPv6']", r.EtherType))
	}
	r.Protocol = strings.ToLower(r.Protocol)
	if r.Protocol == "any" {
		r.Protocol = ""
	}
	num := -1
	if r.Protocol != "" {
		if n, ok := protocols[r.Protocol]; ok {
			num = n
		} else if n, err := strconv.Atoi(r.Protocol); err == nil && n >= 0 && n <= 255 {
			num = n
		} else {
			return &Error{Status: 400, Type: "SecurityGroupRuleInvalidProtocol", Err: ErrInvalid,
				Message: fmt.Sprintf("Security group rule protocol %s not supported. Only protocol values [None, tcp, udp, icmp, icmpv6 ...] and integer representations [0 to 255] are supported.", r.Protocol)}
		}
	}
	if r.PortRangeMin != nil || r.PortRangeMax != nil {
		switch num {
		case 6, 17, 33, 132, 136: // ports
			lo, hi := r.PortRangeMin, r.PortRangeMax
			if lo == nil || hi == nil || *lo < 1 || *hi > 65535 || *lo > *hi {
				return &Error{Status: 400, Type: "SecurityGroupInvalidPortRange", Err: ErrInvalid,
					Message: "For TCP/UDP protocols, port_range_min must be <= port_range_max"}
			}
		case 1, 58: // ICMP type and code
			for _, v := range []*int{r.PortRangeMin, r.PortRangeMax} {
				if v != nil && (*v < 0 || *v > 255) {
					return &Error{Status: 400, Type: "SecurityGroupInvalidIcmpValue", Err: ErrInvalid,
						Message: fmt.Sprintf("Invalid value for ICMP field (type or code): %d. It must be 0 to 255.", *v)}
				}
			}
		default:
			return &Error{Status: 400, Type: "SecurityGroupInvalidPortValue", Err: ErrInvalid,
				Message: "Invalid value for port: ports are allowed only with TCP, UDP, DCCP, SCTP, UDP-Lite and ICMP"}
		}
	}
	if r.RemoteIPPrefix != "" && r.RemoteGroupID != "" {
		return &Error{Status: 400, Type: "SecurityGroupRemoteGroupAndRemoteIpPrefix", Err: ErrInvalid,
			Message: "Only remote_ip_prefix or remote_group_id may be provided."}
	}
	if r.RemoteIPPrefix != "" {
		p, err := netip.ParsePrefix(r.RemoteIPPrefix)
		if err != nil {
			a, err2 := netip.ParseAddr(r.RemoteIPPrefix)
			if err2 != nil {
				return badInput("remote_ip_prefix", fmt.Sprintf("'%s' is not a valid IP subnet", r.RemoteIPPrefix))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4() != (r.EtherType == "IPv4") {
			return &Error{Status: 400, Type: "SecurityGroupRuleParameterConflict", Err: ErrInvalid,
				Message: fmt.Sprintf("Conflicting value ethertype %s for CIDR %s", r.EtherType, r.RemoteIPPrefix)}
		}
		r.RemoteIPPrefix = p.Masked().String()
	}
	return nil
}

// sameRule reports whether two rules match the same traffic.
func sameRule(a, b SecurityGroupRule) bool {
	eq := func(x, y *int) bool { return (x == nil && y == nil) || (x != nil && y != nil && *x == *y) }
	return a.Direction == b.Direction && a.EtherType == b.EtherType && a.Protocol == b.Protocol &&
		eq(a.PortRangeMin, b.PortRangeMin) && eq(a.PortRangeMax, b.PortRangeMax) &&
		a.RemoteIPPrefix == b.RemoteIPPrefix && a.RemoteGroupID == b.RemoteGroupID
}

// CreateSecurityGroupRule adds a rule to a group of the project. A remote
// group must be the project's too; a rule equal to an existing one is
// Neutron's 409 SecurityGroupRuleExists.
func (s *Service) CreateSecurityGroupRule(ctx context.Context, project string, r SecurityGroupRule) (SecurityGroupRule, error) {
	if err := validateRule(&r); err != nil {
		return SecurityGroupRule{}, err
	}
	if r.SecurityGroupID == "" {
		return SecurityGroupRule{}, badInput("security_group_id", "'None' is not a valid UUID")
	}
	if r.RemoteGroupID != "" && r.RemoteGroupID != r.SecurityGroupID {
		// The Store, not memory: a group another replica just deleted
		// must not be named by a new rule.
		if _, _, err := s.loadGroup(ctx, project, r.RemoteGroupID); err != nil {
			return SecurityGroupRule{}, err
		}
	}
	r.ID, r.CreatedAt = uuid.NewString(), time.Now().UTC()
	res, err := s.reserve(ctx, project, kindSecurityGroupRule, r.ID)
	if err != nil {
		return SecurityGroupRule{}, err
	}
	defer s.release(ctx, res)
	changed, err := s.changeGroup(ctx, project, r.SecurityGroupID, func(g *SecurityGroup) error {
		for _, o := range g.Rules {
			if sameRule(o, r) {
				return &Error{Status: 409, Type: "SecurityGroupRuleExists", Message: fmt.Sprintf("Security group rule already exists. Rule id is %s.", o.ID), Err: ErrInUse}
			}
		}
		g.Rules = append(g.Rules, r)
		return nil
	})
	if err != nil {
		return SecurityGroupRule{}, err
	}
	if err := s.pushGroup(ctx, changed); err != nil {
		// A peer holding the group cannot filter what the rule names.
		return SecurityGroupRule{}, errors.Join(err, s.removeRule(context.WithoutCancel(ctx), project, r))
	}
	if _, err := commit(ctx, res); err != nil {
		return SecurityGroupRule{}, errors.Join(err, s.removeRule(context.WithoutCancel(ctx), project, r))
	}
	return r, nil
}

// SecurityGroupRules returns every rule of the project's groups.
func (s *Service) SecurityGroupRules(ctx context.Context, project string) ([]SecurityGroupRule, error) {
	groups, err := s.SecurityGroups(ctx, project)
	if err != nil {
		return nil, err
	}
	var out []SecurityGroupRule
	for _, g := range groups {
		out = append(out, g.Rules...)
	}
	slices.SortFunc(out, func(a, b SecurityGroupRule) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// SecurityGroupRule returns a rule of one of the project's groups, from
// memory; a rule memory lacks (another replica may just have made it) is
// looked for in the project's groups in the Store.
func (s *Service) SecurityGroupRule(ctx context.Context, project, id string) (SecurityGroupRule, error) {
	groups, err := s.SecurityGroups(ctx, project)
	if err != nil {
		return SecurityGroupRule{}, err
	}
	if r, ok := ruleIn(groups, id); ok {
		return r, nil
	}
	if groups, err = s.storedGroups(ctx, project); err != nil {
		return SecurityGroupRule{}, err
	}
	if r, ok := ruleIn(groups, id); ok {
		return r, nil
	}
	return SecurityGroupRule{}, notFound(kindSecurityGroupRule, id)
}

func ruleIn(groups []SecurityGroup, id string) (SecurityGroupRule, bool) {
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.ID == id {
				return r, true
			}
		}
	}
	return SecurityGroupRule{}, false
}

// DeleteSecurityGroupRule removes a rule from its group.
func (s *Service) DeleteSecurityGroupRule(ctx context.Context, project, id string) error {
	r, err := s.SecurityGroupRule(ctx, project, id)
	if err != nil {
		return err
	}
	if err := s.removeRule(ctx, project, r); err != nil {
		return err
	}
	s.free(ctx, project, quota.Amounts{quota.SecurityGroupRules: 1})
	return nil
}

// removeRule takes rule r out of its group, on the peers too.
func (s *Service) removeRule(ctx context.Context, project string, r SecurityGroupRule) error {
	id := r.ID
	g, err := s.changeGroup(ctx, project, r.SecurityGroupID, func(g *SecurityGroup) error {
		before := len(g.Rules)
		g.Rules = slices.DeleteFunc(g.Rules, func(x SecurityGroupRule) bool { return x.ID == id })
		if len(g.Rules) == before {
			return notFound(kindSecurityGroupRule, id)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return s.pushGroup(ctx, g)
}
