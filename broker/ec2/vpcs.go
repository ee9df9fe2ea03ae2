package ec2

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/cloudmux/cloudmux/broker/network"
)

// VPCs are Neutron's networks, subnets its subnets and security groups its
// groups (broker/network.Service), read through the same visibility rules:
// a project sees its own and the shared ones. RunInstances takes SubnetId
// (the instance gets a NIC on the subnet's network, with PrivateIpAddress
// as its fixed IP) and checks the security groups it names.

// NetworkService is the part of network.Service the API uses.
type NetworkService interface {
	List(ctx context.Context, project string, withPorts bool) (network.Visible, error)
	GetNetwork(ctx context.Context, project, id string) (network.Network, error)
	GetSubnet(ctx context.Context, project, id string) (network.Subnet, error)
	CreateNetwork(ctx context.Context, project string, req network.NetworkCreate) (network.Network, error)
	CreateSubnet(ctx context.Context, project string, req network.SubnetCreate) (network.Subnet, error)
	DeleteNetwork(ctx context.Context, project, id string) error
	DeleteSubnet(ctx context.Context, project, id string) error
	SecurityGroups(ctx context.Context, project string) ([]network.SecurityGroup, error)
	CreateSecurityGroup(ctx context.Context, project, name, description string, stateful bool) (network.SecurityGroup, error)
	DeleteSecurityGroup(ctx context.Context, project, id string) error
	CreateSecurityGroupRule(ctx context.Context, project string, r network.SecurityGroupRule) (network.SecurityGroupRule, error)
	DeleteSecurityGroupRule(ctx context.Context, project, id string) error
}

var _ NetworkService = (*network.Service)(nil)

// More EC2 ID prefixes.
const (
	prefixVPC    = "vpc"
	prefixSubnet = "subnet"
	prefixSG     = "sg"
)

type vpcItem struct {
	VpcID           string     `xml:"vpcId"`
	State           string     `xml:"state"`
	CidrBlock       string     `xml:"cidrBlock"`
	OwnerID         string     `xml:"ownerId"`
	InstanceTenancy string     `xml:"instanceTenancy"`
	IsDefault       bool       `xml:"isDefault"`
	TagSet          items[Tag] `xml:"tagSet"`

	shared bool
}

type subnetItem struct {
	SubnetID            string     `xml:"subnetId"`
	VpcID               string     `xml:"vpcId"`
	State               string     `xml:"state"`
	CidrBlock           string     `xml:"cidrBlock"`
	AvailableAddresses  int        `xml:"availableIpAddressCount"`
	AvailabilityZone    string     `xml:"availabilityZone"`
	DefaultForAz        bool       `xml:"defaultForAz"`
	MapPublicIPOnLaunch bool       `xml:"mapPublicIpOnLaunch"`
	OwnerID             string     `xml:"ownerId"`
	TagSet              items[Tag] `xml:"tagSet"`
}

// nameTag shows a resource's name as EC2 tools look for it.
func nameTag(name string) items[Tag] {
	if name == "" {
		return list[Tag](nil)
	}
	return list([]Tag{{Key: "Name", Value: name}})
}

// addresses is how many host addresses an IPv4 prefix holds, less the
// network, gateway and broadcast addresses.
func addresses(cidr string) int {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return 0
	}
	if bits := 32 - p.Bits(); bits < 31 && bits > 1 {
		return 1<<bits - 3
	}
	return 0
}

func (a *API) visibleNetworks(ctx context.Context, c *call) (network.Visible, error) {
	v, err := a.Networks.List(ctx, c.token.ProjectID, false)
	if err != nil {
		return v, err
	}
	c.flagPartial(a.Log, "networks", v.Failed)
	return v, nil
}

func (a *API) describeVpcs(ctx context.Context, c *call) (any, error) {
	v, err := a.visibleNetworks(ctx, c)
	if err != nil {
		return nil, err
	}
	cidrs := map[string]string{}
	for _, s := range v.Subnets {
		if _, ok := cidrs[s.NetworkID]; !ok && s.Peer.IPVersion == 4 {
			cidrs[s.NetworkID] = s.Peer.CIDR
		}
	}
	wanted := c.params.list("VpcId")
	var out []vpcItem
	seen := map[string]bool{}
	for _, n := range v.Networks {
		id, err := a.ids.shown(ctx, prefixVPC, n.Ref.ID)
		if err != nil {
			return nil, err
		}
		seen[id] = true
		state := "available"
		if n.Peer.Status == "BUILD" {
			state = "pending"
		}
		cidr, _ := a.vpcCIDR(ctx, n.Ref.ID, false) // made through CreateVpc (from memory: no error to have), or the first subnet's
		if cidr == "" {
			cidr = cidrs[n.Ref.ID]
		}
		it := vpcItem{VpcID: id, State: state, CidrBlock: cidr, OwnerID: n.Ref.Project, InstanceTenancy: "default",
			TagSet: nameTag(n.Peer.Name), shared: n.Peer.Shared}
		if len(wanted) > 0 && !contains(wanted, id) {
			continue
		}
		if vpcMatches(it, c.params.filters()) {
			out = append(out, it)
		}
	}
	for _, w := range wanted {
		if !seen[w] {
			return nil, notFound("InvalidVpcID.NotFound", "The vpc ID '%s' does not exist", w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].VpcID < out[j].VpcID })
	return struct {
		VpcSet items[vpcItem] `xml:"vpcSet"`
	}{list(out)}, nil
}

func vpcMatches(v vpcItem, filters []filter) bool {
	for _, f := range filters {
		var val string
		switch f.Name {
		case "vpc-id":
			val = v.VpcID
		case "state":
			val = v.State
		case "cidr", "cidr-block-association.cidr-block":
			val = v.CidrBlock
		case "owner-id":
			val = v.OwnerID
		case "is-default":
			val = "false"
		case "tag:Name":
			if len(v.TagSet.Items) == 0 {
				return false
			}
			val = v.TagSet.Items[0].Value
		default:
			continue
		}
		if !matchAny(f.Values, val) {
			return false
		}
	}
	return true
}

func (a *API) describeSubnets(ctx context.Context, c *call) (any, error) {
	v, err := a.visibleNetworks(ctx, c)
	if err != nil {
		return nil, err
	}
	wanted := c.params.list("SubnetId")
	var out []subnetItem
	seen := map[string]bool{}
	for _, s := range v.Subnets {
		id, err := a.ids.shown(ctx, prefixSubnet, s.Ref.ID)
		if err != nil {
			return nil, err
		}
		vpc, err := a.ids.shown(ctx, prefixVPC, s.NetworkID)
		if err != nil {
			return nil, err
		}
		seen[id] = true
		it := subnetItem{SubnetID: id, VpcID: vpc, State: "available", CidrBlock: s.Peer.CIDR, AvailableAddresses: addresses(s.Peer.CIDR),
			OwnerID: s.Ref.Project, TagSet: nameTag(s.Peer.Name)}
		if s.Ref.Member != nil {
			it.AvailabilityZone = s.Ref.Member.Peer.Name
		}
		if len(wanted) > 0 && !contains(wanted, id) {
			continue
		}
		if subnetMatches(it, c.params.filters()) {
			out = append(out, it)
		}
	}
	for _, w := range wanted {
		if !seen[w] {
			return nil, notFound("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", w)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SubnetID < out[j].SubnetID })
	return struct {
		SubnetSet items[subnetItem] `xml:"subnetSet"`
	}{list(out)}, nil
}

func subnetMatches(s subnetItem, filters []filter) bool {
	for _, f := range filters {
		var val string
		switch f.Name {
		case "subnet-id":
			val = s.SubnetID
		case "vpc-id":
			val = s.VpcID
		case "availability-zone":
			val = s.AvailabilityZone
		case "cidr-block", "cidr", "cidrBlock":
			val = s.CidrBlock
		case "state":
			val = s.State
		case "owner-id":
			val = s.OwnerID
		default:
			continue
		}
		if !matchAny(f.Values, val) {
			return false
		}
	}
	return true
}

type ipRange struct {
	CidrIP string `xml:"cidrIp"`
}

type ipv6Range struct {
	CidrIPv6 string `xml:"cidrIpv6"`
}

type groupPair struct {
	GroupID string `xml:"groupId"`
	UserID  string `xml:"userId"`
}

type ipPermission struct {
	IPProtocol string           `xml:"ipProtocol"`
	FromPort   *int             `xml:"fromPort,omitempty"`
	ToPort     *int             `xml:"toPort,omitempty"`
	Groups     items[groupPair] `xml:"groups"`
	IPRanges   items[ipRange]   `xml:"ipRanges"`
	IPv6Ranges items[ipv6Range] `xml:"ipv6Ranges"`
}

type securityGroupItem struct {
	OwnerID     string              `xml:"ownerId"`
	GroupID     string              `xml:"groupId"`
	GroupName   string              `xml:"groupName"`
	Description string              `xml:"groupDescription"`
	Ingress     items[ipPermission] `xml:"ipPermissions"`
	Egress      items[ipPermission] `xml:"ipPermissionsEgress"`
	TagSet      items[Tag]          `xml:"tagSet"`
}

// permission renders a Neutron rule as an EC2 permission.
func (a *API) permission(ctx context.Context, project string, r network.SecurityGroupRule) (ipPermission, error) {
	p := ipPermission{IPProtocol: strings.ToLower(r.Protocol), FromPort: r.PortRangeMin, ToPort: r.PortRangeMax,
		Groups: list[groupPair](nil), IPRanges: list[ipRange](nil), IPv6Ranges: list[ipv6Range](nil)}
	if p.IPProtocol == "" || p.IPProtocol == "any" {
		p.IPProtocol = "-1"
	}
	switch {
	case r.RemoteGroupID != "":
		g, err := a.ids.shown(ctx, prefixSG, r.RemoteGroupID)
		if err != nil {
			return p, err
		}
		p.Groups = list([]groupPair{{GroupID: g, UserID: project}})
	case r.EtherType == "IPv6":
		p.IPv6Ranges = list([]ipv6Range{{CidrIPv6: cmpOr(r.RemoteIPPrefix, "::/0")}})
	default:
		p.IPRanges = list([]ipRange{{CidrIP: cmpOr(r.RemoteIPPrefix, "0.0.0.0/0")}})
	}
	return p, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (a *API) describeSecurityGroups(ctx context.Context, c *call) (any, error) {
	groups, err := a.Networks.SecurityGroups(ctx, c.token.ProjectID)
	if err != nil {
		return nil, err
	}
	ids, names := c.params.list("GroupId"), c.params.list("GroupName")
	seen := map[string]bool{}
	var out []securityGroupItem
	for _, g := range groups {
		id, err := a.ids.shown(ctx, prefixSG, g.ID)
		if err != nil {
			return nil, err
		}
		seen[id], seen[g.Name] = true, true
		if (len(ids) > 0 && !contains(ids, id)) || (len(names) > 0 && !contains(names, g.Name)) {
			continue
		}
		it := securityGroupItem{OwnerID: g.Project, GroupID: id, GroupName: g.Name, Description: g.Description, TagSet: list[Tag](nil)}
		for _, r := range g.Rules {
			p, err := a.permission(ctx, c.token.ProjectID, r)
			if err != nil {
				return nil, err
			}
			if r.Direction == "egress" {
				it.Egress.Items = append(it.Egress.Items, p)
			} else {
				it.Ingress.Items = append(it.Ingress.Items, p)
			}
		}
		if sgMatches(it, c.params.filters()) {
			out = append(out, it)
		}
	}
	for _, w := range append(ids, names...) {
		if !seen[w] {
			return nil, notFound("InvalidGroup.NotFound", "The security group '%s' does not exist", w)
		}
	}
	return struct {
		SecurityGroupInfo items[securityGroupItem] `xml:"securityGroupInfo"`
	}{list(out)}, nil
}

func sgMatches(g securityGroupItem, filters []filter) bool {
	for _, f := range filters {
		var val string
		switch f.Name {
		case "group-id":
			val = g.GroupID
		case "group-name":
			val = g.GroupName
		case "description":
			val = g.Description
		case "owner-id":
			val = g.OwnerID
		default:
			continue
		}
		if !matchAny(f.Values, val) {
			return false
		}
	}
	return true
}

// launchNetwork reads RunInstances' SubnetId and PrivateIpAddress (or the
// first network interface's) as the NIC to boot with, and the security
// groups (SecurityGroupId, SecurityGroup names) as the project's group
// IDs the instance's ports are in (nil: the default group). No subnet
// leaves the network to Nova's "auto".
func (a *API) launchNetwork(ctx context.Context, c *call) (netID string, fixedIP string, sgs []string, err error) {
	p := c.params
	subnetID := cmpOr(p.get("SubnetId"), p.get("NetworkInterface.1.SubnetId"))
	fixedIP = cmpOr(p.get("PrivateIpAddress"), p.get("NetworkInterface.1.PrivateIpAddress"))
	groups := append(p.list("SecurityGroupId"), p.list("NetworkInterface.1.SecurityGroupId")...)
	names := p.list("SecurityGroup")
	if len(groups)+len(names) > 0 {
		if a.Networks == nil {
			return "", "", nil, errorf(400, "UnsupportedOperation", "security groups are not offered by this broker")
		}
		all, err := a.Networks.SecurityGroups(ctx, c.token.ProjectID)
		if err != nil {
			return "", "", nil, err
		}
		// have maps the EC2 IDs and the names of the project's groups
		// to the groups' IDs.
		have := map[string]string{}
		for _, g := range all {
			id, err := a.ids.shown(ctx, prefixSG, g.ID)
			if err != nil {
				return "", "", nil, err
			}
			have[id], have[g.Name] = g.ID, g.ID
		}
		for _, g := range append(groups, names...) {
			id, ok := have[g]
			if !ok {
				return "", "", nil, notFound("InvalidGroup.NotFound", "The security group '%s' does not exist", g)
			}
			if !slices.Contains(sgs, id) {
				sgs = append(sgs, id)
			}
		}
	}
	if fixedIP != "" {
		if _, perr := netip.ParseAddr(fixedIP); perr != nil {
			return "", "", nil, invalidParameter("PrivateIpAddress %q is not an IP address", fixedIP)
		}
	}
	if subnetID == "" {
		if fixedIP != "" {
			return "", "", nil, invalidParameter("PrivateIpAddress needs a SubnetId")
		}
		return "", "", sgs, nil
	}
	if a.Networks == nil {
		return "", "", nil, errorf(400, "UnsupportedOperation", "subnets are not offered by this broker")
	}
	u, err := a.resolveID(ctx, c, prefixSubnet, subnetID)
	if errors.Is(err, errUnknownID) {
		return "", "", nil, notFound("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", subnetID)
	}
	if err != nil {
		return "", "", nil, err
	}
	s, err := a.Networks.GetSubnet(ctx, c.token.ProjectID, u)
	if errors.Is(err, network.ErrNotFound) {
		return "", "", nil, notFound("InvalidSubnetID.NotFound", "The subnet ID '%s' does not exist", subnetID)
	}
	if err != nil {
		return "", "", nil, err
	}
	return s.NetworkID, fixedIP, sgs, nil
}
