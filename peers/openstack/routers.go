package openstack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cloudmux/cloudmux/peers"
)

// Routers and floating IPs are Neutron's own (the router extension), with
// cloudmux's metadata carried as for networks (meta.go). Neutron keeps
// the contract's rules itself; the one translation is its 404 for a
// floating IP whose port no router reaches, which the contract calls
// ErrInvalid (it is the request that is wrong, not a missing resource).

var _ peers.Routers = (*Cloud)(nil)

// RoutersAvailable asks Neutron, once, whether it has the router
// extension.
func (c *Cloud) RoutersAvailable(ctx context.Context) error {
	if err := c.needNetwork(); err != nil {
		return err
	}
	c.mu.Lock()
	known, rerr := c.routersKnown, c.routersErr
	c.mu.Unlock()
	if known {
		return rerr
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	_, err := extensions.Get(ctx, c.network, "router").Extract()
	switch {
	case gophercloud.ResponseCodeIs(err, 404):
		err = fmt.Errorf("openstack peer %q: Neutron has no router extension: %w", c.cfg.Name, peers.ErrNotSupported)
	case err != nil:
		return c.translate("neutron: show extension router", err) // not known yet: asked again next time
	}
	c.mu.Lock()
	c.routersKnown, c.routersErr = true, err
	c.mu.Unlock()
	return err
}

// CreateRouter creates a router in the scoped project.
func (c *Cloud) CreateRouter(ctx context.Context, spec peers.RouterSpec) (peers.Router, error) {
	if err := c.RoutersAvailable(ctx); err != nil {
		return peers.Router{}, err
	}
	desc, tags, err := c.encodeMeta(spec.Metadata)
	if err != nil {
		return peers.Router{}, fmt.Errorf("neutron: create router %q: %w", spec.Name, err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := routers.Create(ctx, c.network, routers.CreateOpts{Name: spec.Name, Description: desc, GatewayInfo: gatewayInfo(spec.Gateway)}).Extract()
	if err != nil {
		return peers.Router{}, c.translate(fmt.Sprintf("neutron: create router %q", spec.Name), err)
	}
	if r.Tags, err = c.tag(ctx, "routers", r.ID, tags); err != nil {
		c.undo(func(ctx context.Context) error { return routers.Delete(ctx, c.network, r.ID).ExtractErr() })
		return peers.Router{}, err
	}
	return c.toRouter(*r), nil
}

func gatewayInfo(g *peers.RouterGateway) *routers.GatewayInfo {
	if g == nil {
		return nil
	}
	gi := &routers.GatewayInfo{NetworkID: g.NetworkID}
	if !g.EnableSNAT {
		// Only turning SNAT off is sent: Neutron's default policy lets
		// admins alone name enable_snat, and on is its default.
		gi.EnableSNAT = &g.EnableSNAT
	}
	for _, f := range g.FixedIPs {
		gi.ExternalFixedIPs = append(gi.ExternalFixedIPs, routers.ExternalFixedIP{SubnetID: f.SubnetID, IPAddress: f.IPAddress})
	}
	return gi
}

func (c *Cloud) toRouter(r routers.Router) peers.Router {
	out := peers.Router{
		ID: r.ID, Name: r.Name, Project: projectOf(r.ProjectID, r.TenantID), Status: r.Status, AdminStateUp: r.AdminStateUp,
		Metadata: c.inMeta(decodeMeta(r.Description, r.Tags)),
	}
	if g := r.GatewayInfo; g.NetworkID != "" {
		out.Gateway = &peers.RouterGateway{NetworkID: g.NetworkID, EnableSNAT: g.EnableSNAT == nil || *g.EnableSNAT}
		for _, f := range g.ExternalFixedIPs {
			out.Gateway.FixedIPs = append(out.Gateway.FixedIPs, peers.FixedIP{SubnetID: f.SubnetID, IPAddress: f.IPAddress})
		}
	}
	for _, rt := range r.Routes {
		out.Routes = append(out.Routes, peers.Route{Destination: rt.DestinationCIDR, NextHop: rt.NextHop})
	}
	return out
}

// GetRouter shows a router.
func (c *Cloud) GetRouter(ctx context.Context, id string) (peers.Router, error) {
	if err := c.needNetwork(); err != nil {
		return peers.Router{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	r, err := routers.Get(ctx, c.network, id).Extract()
	if err != nil {
		return peers.Router{}, c.translate("neutron: show router "+id, err)
	}
	return c.toRouter(*r), nil
}

// ListRouters lists the scoped project's routers (or those of the
// project the list names: see listed).
func (c *Cloud) ListRouters(ctx context.Context, opts peers.ListOptions) ([]peers.Router, error) {
	if err := c.needNetwork(); err != nil {
		return nil, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	pages, err := routers.List(c.network, routers.ListOpts{ProjectID: opts.Project}).AllPages(ctx)
	if err != nil {
		return nil, c.translate("neutron: list routers", err)
	}
	all, err := routers.ExtractRouters(pages)
	if err != nil {
		return nil, c.translate("neutron: list routers", err)
	}
	var out []peers.Router
	for _, r := range all {
		pr := c.toRouter(r)
		if c.listed(opts, pr.Project, false) && opts.Matches(pr.Project, pr.Metadata) {
			out = append(out, pr)
		}
	}
	return out, nil
}

// UpdateRouter changes a router's name, gateway or routes.
func (c *Cloud) UpdateRouter(ctx context.Context, id string, patch peers.RouterPatch) (peers.Router, error) {
	if err := c.RoutersAvailable(ctx); err != nil {
		return peers.Router{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	opts := routers.UpdateOpts{GatewayInfo: gatewayInfo(patch.Gateway)}
	if patch.Name != nil {
		opts.Name = *patch.Name
	}
	if patch.ClearGateway && patch.Gateway == nil {
		opts.GatewayInfo = &routers.GatewayInfo{} // Neutron's {}: no gateway
	}
	if patch.Routes != nil {
		routes := make([]routers.Route, 0, len(*patch.Routes))
		for _, rt := range *patch.Routes {
			routes = append(routes, routers.Route{DestinationCIDR: rt.Destination, NextHop: rt.NextHop})
		}
		opts.Routes = &routes
	}
	r, err := routers.Update(ctx, c.network, id, opts).Extract()
	if err != nil {
		return peers.Router{}, c.translate("neutron: update router "+id, err)
	}
	return c.toRouter(*r), nil
}

// DeleteRouter deletes a router; Neutron refuses (409) while it has
// interfaces.
func (c *Cloud) DeleteRouter(ctx context.Context, id string) error {
	if err := c.needNetwork(); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.translate("neutron: delete router "+id, routers.Delete(ctx, c.network, id).ExtractErr())
}

// AddRouterInterface joins a router to a subnet, by subnet or port.
func (c *Cloud) AddRouterInterface(ctx context.Context, routerID string, in peers.RouterInterface) (peers.RouterInterface, error) {
	if err := c.RoutersAvailable(ctx); err != nil {
		return peers.RouterInterface{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	info, err := routers.AddInterface(ctx, c.network, routerID, routers.AddInterfaceOpts{SubnetID: in.SubnetID, PortID: in.PortID}).Extract()
	if err != nil {
		return peers.RouterInterface{}, c.translate("neutron: add router interface to "+routerID, err)
	}
	return c.routerInterface(ctx, routerID, *info)
}

// routerInterface answers an interface with its network, which Neutron's
// answer leaves out: the port's.
func (c *Cloud) routerInterface(ctx context.Context, routerID string, info routers.InterfaceInfo) (peers.RouterInterface, error) {
	out := peers.RouterInterface{RouterID: routerID, SubnetID: info.SubnetID, PortID: info.PortID}
	p, err := ports.Get(ctx, c.network, info.PortID).Extract()
	if err != nil {
		return out, c.translate("neutron: show port "+info.PortID, err)
	}
	out.NetworkID = p.NetworkID
	return out, nil
}

// RemoveRouterInterface undoes an interface; Neutron deletes its port.
// Neutron's answer names the subnet and port but not the network (and
// callers name a subnet or a port, never the network): the network is
// the subnet's, which outlives the interface.
func (c *Cloud) RemoveRouterInterface(ctx context.Context, routerID string, in peers.RouterInterface) (peers.RouterInterface, error) {
	if err := c.needNetwork(); err != nil {
		return peers.RouterInterface{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	info, err := routers.RemoveInterface(ctx, c.network, routerID, routers.RemoveInterfaceOpts{SubnetID: in.SubnetID, PortID: in.PortID}).Extract()
	if err != nil {
		return peers.RouterInterface{}, c.translate("neutron: remove router interface from "+routerID, err)
	}
	out := peers.RouterInterface{RouterID: routerID, SubnetID: info.SubnetID, PortID: info.PortID, NetworkID: in.NetworkID}
	if out.NetworkID == "" && out.SubnetID != "" {
		sn, err := subnets.Get(ctx, c.network, out.SubnetID).Extract()
		if err != nil {
			// The interface is gone all the same: say so, without its network.
			c.log.WithError(err).WithField("subnet", out.SubnetID).Warn("neutron: the removed router interface's network could not be read")
			return out, nil
		}
		out.NetworkID = sn.NetworkID
	}
	return out, nil
}

// CreateFloatingIP takes an address on an external network.
func (c *Cloud) CreateFloatingIP(ctx context.Context, spec peers.FloatingIPSpec) (peers.FloatingIP, error) {
	if err := c.RoutersAvailable(ctx); err != nil {
		return peers.FloatingIP{}, err
	}
	desc, tags, err := c.encodeMeta(spec.Metadata)
	if err != nil {
		return peers.FloatingIP{}, fmt.Errorf("neutron: create floating IP: %w", err)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	f, err := floatingips.Create(ctx, c.network, floatingips.CreateOpts{
		Description: desc, FloatingNetworkID: spec.NetworkID, FloatingIP: spec.Address, PortID: spec.PortID, FixedIP: spec.FixedIP,
	}).Extract()
	if err != nil {
		return peers.FloatingIP{}, c.fipError("neutron: create floating IP on "+spec.NetworkID, err)
	}
	if f.Tags, err = c.tag(ctx, "floatingips", f.ID, tags); err != nil {
		c.undo(func(ctx context.Context) error { return floatingips.Delete(ctx, c.network, f.ID).ExtractErr() })
		return peers.FloatingIP{}, err
	}
	return c.toFloatingIP(*f), nil
}

// fipError is translate, with Neutron's 404 for an external network no
// router joins to the port's subnet made the contract's ErrInvalid.
func (c *Cloud) fipError(what string, err error) error {
	terr := c.translate(what, err)
	if errors.Is(terr, peers.ErrNotFound) && strings.Contains(terr.Error(), "not reachable") {
		return fmt.Errorf("%w (%w)", peers.ErrInvalid, terr)
	}
	return terr
}

func (c *Cloud) toFloatingIP(f floatingips.FloatingIP) peers.FloatingIP {
	return peers.FloatingIP{
		ID: f.ID, Project: projectOf(f.ProjectID, f.TenantID), NetworkID: f.FloatingNetworkID, Address: f.FloatingIP,
		PortID: f.PortID, FixedIP: f.FixedIP, RouterID: f.RouterID, Status: f.Status,
		Metadata: c.inMeta(decodeMeta(f.Description, f.Tags)),
	}
}

// GetFloatingIP shows a floating IP.
func (c *Cloud) GetFloatingIP(ctx context.Context, id string) (peers.FloatingIP, error) {
	if err := c.needNetwork(); err != nil {
		return peers.FloatingIP{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	f, err := floatingips.Get(ctx, c.network, id).Extract()
	if err != nil {
		return peers.FloatingIP{}, c.translate("neutron: show floating IP "+id, err)
	}
	return c.toFloatingIP(*f), nil
}

// ListFloatingIPs lists the scoped project's floating IPs (or those of
// the project the list names: see listed).
func (c *Cloud) ListFloatingIPs(ctx context.Context, opts peers.ListOptions) ([]peers.FloatingIP, error) {
	if err := c.needNetwork(); err != nil {
		return nil, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	pages, err := floatingips.List(c.network, floatingips.ListOpts{ProjectID: opts.Project}).AllPages(ctx)
	if err != nil {
		return nil, c.translate("neutron: list floating IPs", err)
	}
	all, err := floatingips.ExtractFloatingIPs(pages)
	if err != nil {
		return nil, c.translate("neutron: list floating IPs", err)
	}
	var out []peers.FloatingIP
	for _, f := range all {
		pf := c.toFloatingIP(f)
		if c.listed(opts, pf.Project, false) && opts.Matches(pf.Project, pf.Metadata) {
			out = append(out, pf)
		}
	}
	return out, nil
}

// SetFloatingIPPort associates a floating IP with a port, or
// disassociates it (port_id null).
func (c *Cloud) SetFloatingIPPort(ctx context.Context, id, portID, fixedIP string) (peers.FloatingIP, error) {
	if err := c.RoutersAvailable(ctx); err != nil {
		return peers.FloatingIP{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	f, err := floatingips.Update(ctx, c.network, id, floatingips.UpdateOpts{PortID: &portID, FixedIP: fixedIP}).Extract()
	if err != nil {
		return peers.FloatingIP{}, c.fipError("neutron: update floating IP "+id, err)
	}
	return c.toFloatingIP(*f), nil
}

// DeleteFloatingIP releases a floating IP.
func (c *Cloud) DeleteFloatingIP(ctx context.Context, id string) error {
	if err := c.needNetwork(); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.translate("neutron: delete floating IP "+id, floatingips.Delete(ctx, c.network, id).ExtractErr())
}
