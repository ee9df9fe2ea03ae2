package openstack

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/attributestags"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/external"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/mtu"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cloudmux/cloudmux/peers"
)

// Neutron has no metadata; see meta.go for how it is carried (a
// description set atomically at creation, and tags for searching).

type network struct {
	networks.Network
	external.NetworkExternalExt
	mtu.NetworkMTUExt
}

// CreateNetwork creates a network in the scoped project.
func (c *Cloud) CreateNetwork(ctx context.Context, spec peers.NetworkSpec) (peers.Network, error) {
	if err := c.needNetwork(); err != nil {
		return peers.Network{}, err
	}
	desc, tags, err := c.encodeMeta(spec.Metadata)
	if err != nil {
		return peers.Network{}, fmt.Errorf("neutron: create network %q: %w", spec.Name, err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	var opts networks.CreateOptsBuilder = networks.CreateOpts{Name: spec.Name, Description: desc, Shared: boolPtr(spec.Shared)}
	if spec.MTU > 0 {
		opts = mtu.CreateOptsExt{CreateOptsBuilder: opts, MTU: spec.MTU}
	}
	if spec.External {
		opts = external.CreateOptsExt{CreateOptsBuilder: opts, External: &spec.External} // admin only, Neutron's policy
	}
	var n network
	if err := networks.Create(ctx, c.network, opts).ExtractInto(&n); err != nil {
		return peers.Network{}, c.translate(fmt.Sprintf("neutron: create network %q", spec.Name), err)
	}
	if n.Tags, err = c.tag(ctx, "networks", n.ID, tags); err != nil {
		c.undo(func(ctx context.Context) error { return networks.Delete(ctx, c.network, n.ID).ExtractErr() })
		return peers.Network{}, err
	}
	return c.toNetwork(n), nil
}

// tag sets a new resource's tags (Neutron takes none in a create) and
// returns them. A Neutron without tags (a 404 on the tags of the resource
// just made) leaves the description alone to carry the metadata.
func (c *Cloud) tag(ctx context.Context, kind, id string, tags []string) ([]string, error) {
	if len(tags) == 0 || !c.neutronTags {
		return nil, nil
	}
	got, err := attributestags.ReplaceAll(ctx, c.network, kind, id, attributestags.ReplaceAllOpts{Tags: tags}).Extract()
	if gophercloud.ResponseCodeIs(err, 404) {
		c.log.WithField("kind", kind).Info("openstack: Neutron has no tags here; the description alone carries cloudmux's metadata")
		return nil, nil
	}
	if err != nil {
		return nil, c.translate(fmt.Sprintf("neutron: tag %s %s", kind, id), err)
	}
	return got, nil
}

// encodeMeta is encodeMeta (meta.go) for this peer: keys escaped for a
// broker, and refused when neither a description nor tags can hold them.
func (c *Cloud) encodeMeta(m map[string]string) (string, []string, error) {
	desc, tags, err := encodeMeta(c.outMeta(m))
	if err == nil && len(m) > 0 && desc == "" && !c.neutronTags {
		err = fmt.Errorf("metadata longer than a Neutron description, and this Neutron has no tags: %w", peers.ErrInvalid)
	}
	return desc, tags, err
}

// hasNeutronTags asks Neutron whether it has tags; when it cannot say,
// tagging is tried (and a 404 then falls back to the description).
func (c *Cloud) hasNeutronTags(ctx context.Context) bool {
	pages, err := extensions.List(c.network).AllPages(ctx)
	if err != nil {
		return true
	}
	exts, err := extensions.ExtractExtensions(pages)
	if err != nil {
		return true
	}
	return slices.ContainsFunc(exts, func(e extensions.Extension) bool {
		return e.Alias == "standard-attr-tag" || e.Alias == "tag" || e.Alias == "tag-ext"
	})
}

// undo deletes a half-made resource on its own deadline.
func (c *Cloud) undo(del func(ctx context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.CallTimeout)
	defer cancel()
	if err := del(ctx); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
		c.log.WithError(err).Warn("openstack: cannot delete a resource whose tagging failed")
	}
}

func boolPtr(b bool) *bool {
	if !b {
		return nil
	}
	return &b
}

// GetNetwork shows a network.
func (c *Cloud) GetNetwork(ctx context.Context, id string) (peers.Network, error) {
	if err := c.needNetwork(); err != nil {
		return peers.Network{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	var n network
	if err := networks.Get(ctx, c.network, id).ExtractInto(&n); err != nil {
		return peers.Network{}, c.translate("neutron: show network "+id, err)
	}
	return c.toNetwork(n), nil
}

// visible narrows an admin token's view (every project's) to what the
// scoped project sees: its own, and shared or external ones.
func (c *Cloud) visible(project string, shared bool) bool {
	return !c.admin || project == c.project || shared
}

// listed is visible for a list: a list naming a project
// (ListOptions.Project) is Neutron's project filter, honoured as the
// local cloud honours it, so an admin token lists that project's
// resources (as ListServers does with all_tenants) and a member's token
// what Neutron shows it there; a list naming none is the scoped
// project's view.
func (c *Cloud) listed(opts peers.ListOptions, project string, shared bool) bool {
	return opts.Project != "" || c.visible(project, shared)
}

// ListNetworks lists the networks the project sees.
func (c *Cloud) ListNetworks(ctx context.Context, opts peers.ListOptions) ([]peers.Network, error) {
	if err := c.needNetwork(); err != nil {
		return nil, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	pages, err := networks.List(c.network, networks.ListOpts{ProjectID: opts.Project}).AllPages(ctx)
	if err != nil {
		return nil, c.translate("neutron: list networks", err)
	}
	var all []network
	if err := networks.ExtractNetworksInto(pages, &all); err != nil {
		return nil, c.translate("neutron: list networks", err)
	}
	var out []peers.Network
	for _, n := range all {
		pn := c.toNetwork(n)
		if c.listed(opts, pn.Project, pn.Shared || pn.External) && opts.Matches(pn.Project, pn.Metadata) {
			out = append(out, pn)
		}
	}
	return out, nil
}

// DeleteNetwork deletes a network and its subnets; Neutron refuses (409)
// while ports other than its own DHCP ports are on it.
func (c *Cloud) DeleteNetwork(ctx context.Context, id string) error {
	if err := c.needNetwork(); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.translate("neutron: delete network "+id, networks.Delete(ctx, c.network, id).ExtractErr())
}

func (c *Cloud) toNetwork(n network) peers.Network {
	return peers.Network{
		ID: n.ID, Name: n.Name, Project: projectOf(n.ProjectID, n.TenantID), Status: n.Status,
		AdminStateUp: n.AdminStateUp, Shared: n.Shared, External: n.External, MTU: n.MTU,
		Subnets: n.Subnets, Metadata: c.inMeta(decodeMeta(n.Description, n.Tags)),
	}
}

func projectOf(projectID, tenantID string) string {
	if projectID != "" {
		return projectID
	}
	return tenantID
}

// CreateSubnet creates a subnet. An empty GatewayIP lets Neutron pick the
// first host; NoGateway sends gateway_ip null.
func (c *Cloud) CreateSubnet(ctx context.Context, spec peers.SubnetSpec) (peers.Subnet, error) {
	if err := c.needNetwork(); err != nil {
		return peers.Subnet{}, err
	}
	desc, tags, err := c.encodeMeta(spec.Metadata)
	if err != nil {
		return peers.Subnet{}, fmt.Errorf("neutron: create subnet %q: %w", spec.Name, err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	version := spec.IPVersion
	if version == 0 {
		version = 4
	}
	dhcp := spec.EnableDHCP
	opts := subnets.CreateOpts{
		NetworkID: spec.NetworkID, CIDR: spec.CIDR, Name: spec.Name, Description: desc,
		IPVersion: gophercloud.IPVersion(version), EnableDHCP: &dhcp, DNSNameservers: spec.DNSNameservers,
	}
	switch {
	case spec.NoGateway:
		none := ""
		opts.GatewayIP = &none // gophercloud sends "" as null
	case spec.GatewayIP != "":
		opts.GatewayIP = &spec.GatewayIP
	}
	s, err := subnets.Create(ctx, c.network, opts).Extract()
	if err != nil {
		return peers.Subnet{}, c.translate(fmt.Sprintf("neutron: create subnet %q (%s)", spec.Name, spec.CIDR), err)
	}
	if s.Tags, err = c.tag(ctx, "subnets", s.ID, tags); err != nil {
		c.undo(func(ctx context.Context) error { return subnets.Delete(ctx, c.network, s.ID).ExtractErr() })
		return peers.Subnet{}, err
	}
	return c.toSubnet(*s), nil
}

// GetSubnet shows a subnet.
func (c *Cloud) GetSubnet(ctx context.Context, id string) (peers.Subnet, error) {
	if err := c.needNetwork(); err != nil {
		return peers.Subnet{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	s, err := subnets.Get(ctx, c.network, id).Extract()
	if err != nil {
		return peers.Subnet{}, c.translate("neutron: show subnet "+id, err)
	}
	return c.toSubnet(*s), nil
}

// ListSubnets lists the subnets the project sees. For an admin token a
// subnet of another project counts when its network is shared: Neutron
// shows those to every project.
func (c *Cloud) ListSubnets(ctx context.Context, opts peers.ListOptions) ([]peers.Subnet, error) {
	if err := c.needNetwork(); err != nil {
		return nil, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	pages, err := subnets.List(c.network, subnets.ListOpts{ProjectID: opts.Project}).AllPages(ctx)
	if err != nil {
		return nil, c.translate("neutron: list subnets", err)
	}
	all, err := subnets.ExtractSubnets(pages)
	if err != nil {
		return nil, c.translate("neutron: list subnets", err)
	}
	var shared map[string]bool
	if c.admin {
		if shared, err = c.sharedNetworks(ctx); err != nil {
			return nil, err
		}
	}
	var out []peers.Subnet
	for _, s := range all {
		ps := c.toSubnet(s)
		if c.listed(opts, ps.Project, shared[ps.NetworkID]) && opts.Matches(ps.Project, ps.Metadata) {
			out = append(out, ps)
		}
	}
	return out, nil
}

// sharedNetworks returns the IDs of shared or external networks.
func (c *Cloud) sharedNetworks(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	for _, lo := range []networks.ListOptsBuilder{networks.ListOpts{Shared: boolPtr(true)}, external.ListOptsExt{ListOptsBuilder: networks.ListOpts{}, External: boolPtr(true)}} {
		pages, err := networks.List(c.network, lo).AllPages(ctx)
		if err != nil {
			return nil, c.translate("neutron: list shared networks", err)
		}
		ns, err := networks.ExtractNetworks(pages)
		if err != nil {
			return nil, c.translate("neutron: list shared networks", err)
		}
		for _, n := range ns {
			out[n.ID] = true
		}
	}
	return out, nil
}

// DeleteSubnet deletes a subnet; 409 while ports use it.
func (c *Cloud) DeleteSubnet(ctx context.Context, id string) error {
	if err := c.needNetwork(); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.translate("neutron: delete subnet "+id, subnets.Delete(ctx, c.network, id).ExtractErr())
}

func (c *Cloud) toSubnet(s subnets.Subnet) peers.Subnet {
	out := peers.Subnet{
		ID: s.ID, Name: s.Name, Project: projectOf(s.ProjectID, s.TenantID), NetworkID: s.NetworkID,
		CIDR: s.CIDR, IPVersion: s.IPVersion, GatewayIP: s.GatewayIP, EnableDHCP: s.EnableDHCP,
		DNSNameservers: s.DNSNameservers, Metadata: c.inMeta(decodeMeta(s.Description, s.Tags)),
	}
	for _, p := range s.AllocationPools {
		out.AllocationPools = append(out.AllocationPools, peers.IPRange{Start: p.Start, End: p.End})
	}
	return out
}

// CreatePort creates a port; an address in use is 409, one outside the
// subnet 400.
func (c *Cloud) CreatePort(ctx context.Context, spec peers.PortSpec) (peers.Port, error) {
	if err := c.needNetwork(); err != nil {
		return peers.Port{}, err
	}
	desc, tags, err := c.encodeMeta(spec.Metadata)
	if err != nil {
		return peers.Port{}, fmt.Errorf("neutron: create port %q: %w", spec.Name, err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	opts := ports.CreateOpts{NetworkID: spec.NetworkID, Name: spec.Name, Description: desc}
	if spec.SecurityGroups != nil {
		mids, err := c.mirrorIDs(ctx, spec.SecurityGroups)
		if err != nil {
			return peers.Port{}, fmt.Errorf("neutron: create port %q: %w", spec.Name, err)
		}
		opts.SecurityGroups = &mids
	}
	if len(spec.FixedIPs) > 0 {
		ips := make([]ports.IP, len(spec.FixedIPs))
		for i, ip := range spec.FixedIPs {
			ips[i] = ports.IP{SubnetID: ip.SubnetID, IPAddress: ip.IPAddress}
		}
		opts.FixedIPs = ips
	}
	p, err := ports.Create(ctx, c.network, opts).Extract()
	if err != nil {
		return peers.Port{}, c.translate(fmt.Sprintf("neutron: create port %q", spec.Name), err)
	}
	if p.Tags, err = c.tag(ctx, "ports", p.ID, tags); err != nil {
		c.undo(func(ctx context.Context) error { return ports.Delete(ctx, c.network, p.ID).ExtractErr() })
		return peers.Port{}, err
	}
	return c.toPort(*p), nil
}

// GetPort shows a port.
func (c *Cloud) GetPort(ctx context.Context, id string) (peers.Port, error) {
	if err := c.needNetwork(); err != nil {
		return peers.Port{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	p, err := ports.Get(ctx, c.network, id).Extract()
	if err != nil {
		return peers.Port{}, c.translate("neutron: show port "+id, err)
	}
	out := c.toPort(*p)
	if len(p.SecurityGroups) > 0 {
		// A cloud without security groups lists none: the port is in no
		// mirror.
		index, _ := c.mirrorIndex(ctx)
		out.SecurityGroups = brokerGroups(index, p.SecurityGroups)
	}
	return out, nil
}

// ListPorts lists the project's ports (an admin token: still only the
// scoped project's, as ports are never shared, unless the list names
// another project).
func (c *Cloud) ListPorts(ctx context.Context, opts peers.ListOptions) ([]peers.Port, error) {
	if err := c.needNetwork(); err != nil {
		return nil, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	pages, err := ports.List(c.network, ports.ListOpts{ProjectID: opts.Project}).AllPages(ctx)
	if err != nil {
		return nil, c.translate("neutron: list ports", err)
	}
	all, err := ports.ExtractPorts(pages)
	if err != nil {
		return nil, c.translate("neutron: list ports", err)
	}
	index, _ := c.mirrorIndex(ctx) // none on a cloud without security groups
	var out []peers.Port
	for _, p := range all {
		pp := c.toPort(p)
		pp.SecurityGroups = brokerGroups(index, p.SecurityGroups)
		if c.listed(opts, pp.Project, false) && opts.Matches(pp.Project, pp.Metadata) {
			out = append(out, pp)
		}
	}
	return out, nil
}

// DeletePort deletes a port.
func (c *Cloud) DeletePort(ctx context.Context, id string) error {
	if err := c.needNetwork(); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.translate("neutron: delete port "+id, ports.Delete(ctx, c.network, id).ExtractErr())
}

func (c *Cloud) toPort(p ports.Port) peers.Port {
	out := peers.Port{
		ID: p.ID, Name: p.Name, Project: projectOf(p.ProjectID, p.TenantID), NetworkID: p.NetworkID,
		MACAddress: p.MACAddress, DeviceID: p.DeviceID, DeviceOwner: p.DeviceOwner, Status: p.Status,
		Metadata: c.inMeta(decodeMeta(p.Description, p.Tags)),
	}
	for _, ip := range p.FixedIPs {
		out.FixedIPs = append(out.FixedIPs, peers.FixedIP{SubnetID: ip.SubnetID, IPAddress: ip.IPAddress})
	}
	slices.SortFunc(out.FixedIPs, func(a, b peers.FixedIP) int {
		if a.SubnetID != b.SubnetID {
			return strings.Compare(a.SubnetID, b.SubnetID)
		}
		return strings.Compare(a.IPAddress, b.IPAddress)
	})
	return out
}
