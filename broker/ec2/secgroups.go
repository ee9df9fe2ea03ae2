package ec2

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"github.com/cloudmux/cloudmux/broker/network"
)

// Security group writes go to Neutron's groups (network.Service), so
// `aws ec2 create-security-group` and `openstack security group list` show
// the same groups. An EC2 permission (protocol, port range, and sources:
// CIDRs, IPv6 CIDRs, groups) is one Neutron rule per source.

// sgErr translates the network service's errors for a group.
func sgErr(err error, group string) error {
	var ne *network.Error
	switch {
	case errors.Is(err, network.ErrNotFound):
		return notFound("InvalidGroup.NotFound", "The security group '%s' does not exist", group)
	case errors.As(err, &ne) && ne.Type == "SecurityGroupRuleExists":
		return errorf(http.StatusBadRequest, "InvalidPermission.Duplicate", "%s", ne.Message)
	case errors.As(err, &ne) && ne.Type == "SecurityGroupDefaultAlreadyExists":
		return errorf(http.StatusBadRequest, "InvalidGroup.Reserved", "%s", ne.Message)
	case errors.As(err, &ne) && strings.Contains(ne.Type, "Default"):
		return errorf(http.StatusBadRequest, "CannotDelete", "%s", ne.Message)
	case errors.Is(err, network.ErrInUse):
		return errorf(http.StatusBadRequest, "DependencyViolation", "The security group '%s' is in use", group).hiding(err)
	case errors.Is(err, network.ErrInvalid):
		return invalidParameter("A value given for security group '%s' is not valid", group).hiding(err)
	}
	return err
}

// findGroup resolves GroupId (an sg- ID or Neutron's UUID) or GroupName
// to one of the project's groups.
func (a *API) findGroup(ctx context.Context, c *call) (network.SecurityGroup, string, error) {
	id, name := c.params.get("GroupId"), c.params.get("GroupName")
	if id == "" && name == "" {
		return network.SecurityGroup{}, "", missingParameter("GroupId")
	}
	groups, err := a.Networks.SecurityGroups(ctx, c.token.ProjectID)
	if err != nil {
		return network.SecurityGroup{}, "", err
	}
	for _, g := range groups {
		ec2ID, err := a.ids.shown(ctx, prefixSG, g.ID)
		if err != nil {
			return network.SecurityGroup{}, "", err
		}
		if (id != "" && (id == ec2ID || id == g.ID)) || (id == "" && name == g.Name) {
			if c.write { // acting on the group: its ID is recorded
				ec2ID, err = a.ids.assign(ctx, prefixSG, g.ID)
			}
			return g, ec2ID, err
		}
	}
	return network.SecurityGroup{}, "", notFound("InvalidGroup.NotFound", "The security group '%s' does not exist", cmpOr(id, name))
}

func (a *API) createSecurityGroup(ctx context.Context, c *call) (any, error) {
	name, e := c.params.require("GroupName")
	if e != nil {
		return nil, e
	}
	desc, e := c.params.require("GroupDescription")
	if e != nil {
		return nil, e
	}
	groups, err := a.Networks.SecurityGroups(ctx, c.token.ProjectID)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		if g.Name == name {
			return nil, errorf(http.StatusBadRequest, "InvalidGroup.Duplicate", "The security group '%s' already exists", name)
		}
	}
	g, err := a.Networks.CreateSecurityGroup(ctx, c.token.ProjectID, name, desc, true)
	if err != nil {
		return nil, sgErr(err, name)
	}
	id, err := a.ids.assign(ctx, prefixSG, g.ID)
	if err != nil {
		return nil, err
	}
	return struct {
		Return  bool   `xml:"return"`
		GroupID string `xml:"groupId"`
	}{true, id}, nil
}

func (a *API) deleteSecurityGroup(ctx context.Context, c *call) (any, error) {
	g, id, err := a.findGroup(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := a.Networks.DeleteSecurityGroup(ctx, c.token.ProjectID, g.ID); err != nil {
		return nil, sgErr(err, id)
	}
	return returnTrue{true}, nil
}

// permissions reads IpPermissions.N (or the legacy flat IpProtocol,
// FromPort, ToPort, CidrIp) as Neutron rules of direction.
func (a *API) permissions(ctx context.Context, c *call, direction string) ([]network.SecurityGroupRule, error) {
	p := c.params
	type perm struct {
		prefix string // "IpPermissions.N." or "" for the flat form
	}
	var perms []perm
	for _, n := range p.indexes("IpPermissions") {
		perms = append(perms, perm{fmt.Sprintf("IpPermissions.%d.", n)})
	}
	if len(perms) == 0 && p.get("IpProtocol") != "" {
		perms = append(perms, perm{""})
	}
	if len(perms) == 0 {
		return nil, missingParameter("IpPermissions")
	}
	groupsByID := map[string]string{}
	if all, err := a.Networks.SecurityGroups(ctx, c.token.ProjectID); err == nil {
		for _, g := range all {
			id, err := a.ids.shown(ctx, prefixSG, g.ID)
			if err != nil {
				return nil, err
			}
			groupsByID[id], groupsByID[g.ID], groupsByID[g.Name] = g.ID, g.ID, g.ID
		}
	} else {
		return nil, err
	}
	var out []network.SecurityGroupRule
	for _, pm := range perms {
		proto := strings.ToLower(p.get(pm.prefix + "IpProtocol"))
		base := network.SecurityGroupRule{Direction: direction, Protocol: proto}
		if proto == "-1" || proto == "all" {
			base.Protocol = ""
		}
		for _, f := range []struct {
			name string
			dst  **int
		}{{"FromPort", &base.PortRangeMin}, {"ToPort", &base.PortRangeMax}} {
			s := p.get(pm.prefix + f.name)
			if s == "" || s == "-1" {
				continue // EC2's -1: every port, or every ICMP type or code
			}
			v, err := strconv.Atoi(s)
			if err != nil {
				return nil, invalidParameter("%s%s %q is not a number", pm.prefix, f.name, s)
			}
			*f.dst = &v
		}
		var sources []network.SecurityGroupRule
		var cidrs []string
		for _, n := range p.indexes(pm.prefix + "IpRanges") {
			cidrs = append(cidrs, p.get(fmt.Sprintf("%sIpRanges.%d.CidrIp", pm.prefix, n)))
		}
		if pm.prefix == "" && p.get("CidrIp") != "" {
			cidrs = append(cidrs, p.get("CidrIp"))
		}
		for _, cidr := range cidrs {
			if cidr == "" {
				continue
			}
			r := base
			r.EtherType, r.RemoteIPPrefix = "IPv4", cidr
			sources = append(sources, r)
		}
		for _, n := range p.indexes(pm.prefix + "Ipv6Ranges") {
			r := base
			r.EtherType, r.RemoteIPPrefix = "IPv6", p.get(fmt.Sprintf("%sIpv6Ranges.%d.CidrIpv6", pm.prefix, n))
			sources = append(sources, r)
		}
		for _, n := range p.indexes(pm.prefix + "Groups") {
			ref := cmpOr(p.get(fmt.Sprintf("%sGroups.%d.GroupId", pm.prefix, n)), p.get(fmt.Sprintf("%sGroups.%d.GroupName", pm.prefix, n)))
			u, ok := groupsByID[ref]
			if !ok {
				return nil, notFound("InvalidGroup.NotFound", "The security group '%s' does not exist", ref)
			}
			r := base
			r.EtherType, r.RemoteGroupID = "IPv4", u
			sources = append(sources, r)
		}
		if len(sources) == 0 {
			return nil, invalidParameter("%sIpRanges, Ipv6Ranges or Groups: a permission needs a source", pm.prefix)
		}
		out = append(out, sources...)
	}
	return out, nil
}

// authorize adds the permissions to a group; all or nothing.
func (a *API) authorize(direction string) actionFunc {
	return func(ctx context.Context, c *call) (any, error) {
		g, id, err := a.findGroup(ctx, c)
		if err != nil {
			return nil, err
		}
		rules, err := a.permissions(ctx, c, direction)
		if err != nil {
			return nil, err
		}
		var made []network.SecurityGroupRule
		for _, r := range rules {
			r.SecurityGroupID = g.ID
			got, err := a.Networks.CreateSecurityGroupRule(ctx, c.token.ProjectID, r)
			if err != nil {
				for _, m := range made {
					_ = a.Networks.DeleteSecurityGroupRule(context.WithoutCancel(ctx), c.token.ProjectID, m.ID)
				}
				return nil, sgErr(err, id)
			}
			made = append(made, got)
		}
		return returnTrue{true}, nil
	}
}

// revoke removes the group's rules equal to the permissions; naming one
// the group does not have is InvalidPermission.NotFound.
func (a *API) revoke(direction string) actionFunc {
	return func(ctx context.Context, c *call) (any, error) {
		g, _, err := a.findGroup(ctx, c)
		if err != nil {
			return nil, err
		}
		rules, err := a.permissions(ctx, c, direction)
		if err != nil {
			return nil, err
		}
		eq := func(x, y *int) bool { return (x == nil && y == nil) || (x != nil && y != nil && *x == *y) }
		var drop []string
		for _, want := range rules {
			found := ""
			for _, have := range g.Rules {
				if have.Direction == want.Direction && have.EtherType == want.EtherType && strings.EqualFold(have.Protocol, want.Protocol) &&
					eq(have.PortRangeMin, want.PortRangeMin) && eq(have.PortRangeMax, want.PortRangeMax) &&
					have.RemoteIPPrefix == masked(want.RemoteIPPrefix) && have.RemoteGroupID == want.RemoteGroupID {
					found = have.ID
				}
			}
			if found == "" {
				return nil, errorf(http.StatusBadRequest, "InvalidPermission.NotFound", "The specified rule does not exist in this security group.")
			}
			drop = append(drop, found)
		}
		for _, id := range drop {
			if err := a.Networks.DeleteSecurityGroupRule(ctx, c.token.ProjectID, id); err != nil && !errors.Is(err, network.ErrNotFound) {
				return nil, err
			}
		}
		return returnTrue{true}, nil
	}
}

// masked is a CIDR as Neutron stores it (host bits cleared).
func masked(cidr string) string {
	if p, err := netip.ParsePrefix(cidr); err == nil {
		return p.Masked().String()
	}
	return cidr
}
