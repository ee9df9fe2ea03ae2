package localcloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// Routers and floating IPs are control-plane records saved with the
// state, like networks: a router's interfaces, its gateway and each
// floating IP hold ports (device owner network:router_interface,
// network:router_gateway, network:floatingip), so their addresses come out
// of the subnets' IPAM as any port's do and DeletePort refuses them. The
// data plane is the driver's (RouterDriver): after every change the
// routers are compiled to plans and the driver gets those that differ
// (syncRouters), as port filters are.

// router is a Neutron router: its interfaces' ports and its gateway's.
type router struct {
	peers.Router
	interfaces []string // port IDs, sorted
	gwPort     string   // "" when there is no gateway
}

type savedRouter struct {
	Router      peers.Router `json:"router"`
	Interfaces  []string     `json:"interfaces,omitempty"`
	GatewayPort string       `json:"gateway_port,omitempty"`
}

func (r *router) saved() savedRouter {
	v := r.Router
	v.Gateway = nil // derived from gwPort
	if r.Gateway != nil {
		g := *r.Gateway
		g.FixedIPs = nil
		v.Gateway = &g
	}
	v.Routes = slices.Clone(r.Routes)
	v.Metadata = maps.Clone(r.Metadata)
	return savedRouter{Router: v, Interfaces: slices.Clone(r.interfaces), GatewayPort: r.gwPort}
}

// routerView is what callers see: the gateway with its addresses.
func (c *Cloud) routerView(r *router) peers.Router {
	v := r.saved().Router
	if v.Gateway != nil {
		if p := c.ports[r.gwPort]; p != nil {
			v.Gateway.FixedIPs = slices.Clone(p.FixedIPs)
		}
	}
	return v
}

// routerDriver is the driver's router data plane, or an ErrNotSupported
// saying there is none.
func (c *Cloud) routerDriver() (RouterDriver, error) {
	rd, ok := c.driver.(RouterDriver)
	if !ok {
		return nil, errf(peers.ErrNotSupported, "the %s driver has no router data plane: routers and floating IPs are not available on this cloud", c.driver.Name())
	}
	return rd, nil
}

// RoutersAvailable says whether the driver can route.
func (c *Cloud) RoutersAvailable(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	_, err := c.routerDriver()
	return err
}

// beginRouters is begin for a router or floating IP write: it refuses
// them all on a driver that cannot route.
func (c *Cloud) beginRouters(ctx context.Context) error {
	if _, err := c.routerDriver(); err != nil {
		return err
	}
	return c.begin(ctx)
}

// CreateRouter creates a router, with its gateway when spec has one.
func (c *Cloud) CreateRouter(ctx context.Context, spec peers.RouterSpec) (peers.Router, error) {
	if err := requireProject("router", spec.Project); err != nil {
		return peers.Router{}, err
	}
	if err := checkMetadata(spec.Metadata); err != nil {
		return peers.Router{}, fmt.Errorf("router %q: %w", spec.Name, err)
	}
	if err := c.beginRouters(ctx); err != nil {
		return peers.Router{}, err
	}
	r := &router{Router: peers.Router{
		ID: newID(), Name: spec.Name, Project: spec.Project, Status: "ACTIVE", AdminStateUp: true,
		Metadata: maps.Clone(spec.Metadata),
	}}
	if spec.Gateway != nil {
		if err := c.setGatewayLocked(r, *spec.Gateway); err != nil {
			c.mu.Unlock()
			return peers.Router{}, fmt.Errorf("router %q: %w", spec.Name, err)
		}
	}
	c.routers[r.ID] = r
	c.markLocked(recRouter, r.ID)
	view := c.routerView(r)
	c.saveLocked()
	c.mu.Unlock()
	c.log.WithFields(logrus.Fields{"router": r.ID, "project": r.Project}).Info("router created")
	return view, c.syncRouters(ctx)
}

// setGatewayLocked gives r a gateway on g's network, replacing the one it
// has: a new port there unless the network stays the same.
func (c *Cloud) setGatewayLocked(r *router, g peers.RouterGateway) error {
	n := c.networks[g.NetworkID]
	if n == nil {
		return notFound("network", g.NetworkID)
	}
	if !n.External {
		return errf(peers.ErrInvalid, "network %s is not an external network", n.ID)
	}
	if r.Gateway != nil && r.Gateway.NetworkID == g.NetworkID && len(g.FixedIPs) == 0 {
		r.Gateway = &peers.RouterGateway{NetworkID: g.NetworkID, EnableSNAT: g.EnableSNAT}
		return nil
	}
	if r.Gateway != nil {
		if err := c.checkGatewayUnusedLocked(r); err != nil {
			return err
		}
	}
	p, err := c.createPortLocked(peers.PortSpec{Project: r.Project, NetworkID: n.ID, FixedIPs: g.FixedIPs})
	if err != nil {
		return err
	}
	p.DeviceID, p.DeviceOwner, p.Status = r.ID, peers.OwnerRouterGateway, "ACTIVE"
	c.dropGatewayLocked(r)
	r.gwPort = p.ID
	r.Gateway = &peers.RouterGateway{NetworkID: n.ID, EnableSNAT: g.EnableSNAT}
	return nil
}

// checkGatewayUnusedLocked refuses to take a gateway away from floating
// IPs going through it.
func (c *Cloud) checkGatewayUnusedLocked(r *router) error {
	for _, f := range c.fips {
		if f.RouterID == r.ID && c.ports[f.PortID] != nil {
			return errf(peers.ErrConflict, "router %s's gateway is in use by floating IP %s", r.ID, f.ID)
		}
	}
	return nil
}

// dropGatewayLocked releases r's gateway port.
func (c *Cloud) dropGatewayLocked(r *router) {
	if p := c.ports[r.gwPort]; p != nil {
		c.releasePortLocked(p)
	}
	r.gwPort, r.Gateway = "", nil
}

// GetRouter returns a router.
func (c *Cloud) GetRouter(ctx context.Context, id string) (peers.Router, error) {
	return getView(c, ctx, "router", c.routers, id, c.routerView)
}

// ListRouters returns the routers passing opts, by name then ID.
func (c *Cloud) ListRouters(ctx context.Context, opts peers.ListOptions) ([]peers.Router, error) {
	return listViews(c, ctx, c.routers, func(r *router) bool { return opts.Matches(r.Project, r.Metadata) }, c.routerView,
		func(a, b peers.Router) int { return byNameThenID(a.Name, a.ID, b.Name, b.ID) })
}

// UpdateRouter changes a router's name, gateway or routes.
func (c *Cloud) UpdateRouter(ctx context.Context, id string, patch peers.RouterPatch) (peers.Router, error) {
	if err := c.beginRouters(ctx); err != nil {
		return peers.Router{}, err
	}
	r, ok := c.routers[id]
	if !ok {
		c.mu.Unlock()
		return peers.Router{}, notFound("router", id)
	}
	err := c.updateRouterLocked(r, patch)
	view := c.routerView(r)
	c.saveLocked()
	c.mu.Unlock()
	if err != nil {
		return peers.Router{}, fmt.Errorf("router %s: %w", id, err)
	}
	return view, c.syncRouters(ctx)
}

// updateRouterLocked checks the whole patch before changing anything but
// the gateway's port, the one step that can fail after it.
func (c *Cloud) updateRouterLocked(r *router, patch peers.RouterPatch) error {
	if patch.Routes != nil {
		if err := c.checkRoutesLocked(r, *patch.Routes); err != nil {
			return err
		}
	}
	if patch.ClearGateway && r.Gateway != nil {
		if err := c.checkGatewayUnusedLocked(r); err != nil {
			return err
		}
	}
	if patch.Gateway != nil {
		if err := c.setGatewayLocked(r, *patch.Gateway); err != nil {
			return err
		}
	} else if patch.ClearGateway {
		c.dropGatewayLocked(r)
	}
	if patch.Name != nil {
		r.Name = *patch.Name
	}
	if patch.Routes != nil {
		r.Routes = slices.Clone(*patch.Routes)
	}
	c.markLocked(recRouter, r.ID)
	return nil
}

// checkRoutesLocked refuses routes whose next hop is on none of r's
// interfaces' subnets (Neutron's InvalidRoutes).
func (c *Cloud) checkRoutesLocked(r *router, routes []peers.Route) error {
	prefixes := c.routerPrefixesLocked(r)
	for i, rt := range routes {
		if err := rt.Check(); err != nil {
			return fmt.Errorf("routes[%d]: %w", i, err)
		}
		hop := netip.MustParseAddr(rt.NextHop)
		if !slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(hop) }) {
			return errf(peers.ErrInvalid, "routes[%d]: the nexthop %s is not connected with the router", i, hop)
		}
	}
	return nil
}

// routerPrefixesLocked are the subnets r has interfaces on.
func (c *Cloud) routerPrefixesLocked(r *router) []netip.Prefix {
	var out []netip.Prefix
	for _, id := range r.interfaces {
		p := c.ports[id]
		if p == nil {
			continue
		}
		for _, f := range p.FixedIPs {
			if sn := c.subnets[f.SubnetID]; sn != nil {
				out = append(out, sn.plan.prefix)
			}
		}
	}
	return out
}

// DeleteRouter removes a router without interfaces, and its gateway.
func (c *Cloud) DeleteRouter(ctx context.Context, id string) error {
	if err := c.begin(ctx); err != nil {
		return err
	}
	r, ok := c.routers[id]
	if !ok {
		c.mu.Unlock()
		return notFound("router", id)
	}
	if len(r.interfaces) > 0 {
		c.mu.Unlock()
		return errf(peers.ErrConflict, "router %s still has ports (%d interfaces); remove them first", id, len(r.interfaces))
	}
	if err := c.checkGatewayUnusedLocked(r); err != nil {
		c.mu.Unlock()
		return err
	}
	c.dropGatewayLocked(r)
	delete(c.routers, id)
	c.markLocked(recRouter, id)
	c.saveLocked()
	c.mu.Unlock()
	c.log.WithField("router", id).Info("router deleted")
	return c.syncRouters(ctx)
}

// AddRouterInterface joins a router to a subnet, by subnet or by port.
func (c *Cloud) AddRouterInterface(ctx context.Context, routerID string, in peers.RouterInterface) (peers.RouterInterface, error) {
	if (in.SubnetID == "") == (in.PortID == "") {
		return peers.RouterInterface{}, errf(peers.ErrInvalid, "a router interface names a subnet or a port, one of the two")
	}
	if err := c.beginRouters(ctx); err != nil {
		return peers.RouterInterface{}, err
	}
	out, err := c.addInterfaceLocked(routerID, in)
	c.saveLocked()
	c.mu.Unlock()
	if err != nil {
		return peers.RouterInterface{}, fmt.Errorf("router %s: %w", routerID, err)
	}
	c.log.WithFields(logrus.Fields{"router": routerID, "subnet": out.SubnetID, "port": out.PortID}).Info("router interface added")
	return out, c.syncRouters(ctx)
}

func (c *Cloud) addInterfaceLocked(routerID string, in peers.RouterInterface) (peers.RouterInterface, error) {
	r, ok := c.routers[routerID]
	if !ok {
		return peers.RouterInterface{}, notFound("router", routerID)
	}
	var p *peers.Port
	if in.PortID != "" {
		// Another project's port is not there for this router's
		// project, as Neutron hides it from a member: not found.
		if p = c.ports[in.PortID]; p == nil || p.Project != r.Project {
			return peers.RouterInterface{}, notFound("port", in.PortID)
		}
		if p.DeviceID != "" {
			return peers.RouterInterface{}, errf(peers.ErrConflict, "port %s is in use by %s", p.ID, p.DeviceID)
		}
		if len(p.FixedIPs) == 0 {
			return peers.RouterInterface{}, errf(peers.ErrInvalid, "port %s has no address to route from", p.ID)
		}
	} else {
		sn := c.subnets[in.SubnetID]
		if sn == nil || sn.Project != r.Project && !c.sharedLocked(sn.NetworkID) {
			return peers.RouterInterface{}, notFound("subnet", in.SubnetID)
		}
		if sn.GatewayIP == "" {
			return peers.RouterInterface{}, errf(peers.ErrInvalid, "subnet %s has no gateway_ip", sn.ID)
		}
		if err := c.checkJoinLocked(r, c.networks[sn.NetworkID], sn); err != nil {
			return peers.RouterInterface{}, err
		}
		// reserve keeps the gateway address from every port but the
		// router's, this one: it is lifted for the call.
		gw := sn.plan.gateway
		sn.plan.gateway = netip.Addr{}
		var err error
		p, err = c.createPortLocked(peers.PortSpec{
			Project: r.Project, NetworkID: sn.NetworkID, FixedIPs: []peers.FixedIP{{SubnetID: sn.ID, IPAddress: sn.GatewayIP}},
		})
		sn.plan.gateway = gw
		if err != nil {
			return peers.RouterInterface{}, errf(peers.ErrConflict, "the gateway address %s of subnet %s is taken: %v", sn.GatewayIP, sn.ID, err)
		}
	}
	if in.PortID != "" {
		for _, f := range p.FixedIPs {
			if err := c.checkJoinLocked(r, c.networks[p.NetworkID], c.subnets[f.SubnetID]); err != nil {
				return peers.RouterInterface{}, err
			}
		}
	}
	p.DeviceID, p.DeviceOwner, p.Status = r.ID, peers.OwnerRouterInterface, "ACTIVE"
	c.markLocked(recPort, p.ID)
	r.interfaces = append(r.interfaces, p.ID)
	slices.Sort(r.interfaces)
	c.markLocked(recRouter, r.ID)
	return peers.RouterInterface{RouterID: r.ID, SubnetID: p.FixedIPs[0].SubnetID, PortID: p.ID, NetworkID: p.NetworkID}, nil
}

// checkJoinLocked refuses a subnet r cannot join: on an external network,
// or overlapping one r is on already (the same one included).
// sharedLocked reports whether network id is shared (its subnets are
// every project's to route).
func (c *Cloud) sharedLocked(id string) bool {
	n := c.networks[id]
	return n != nil && n.Shared
}

func (c *Cloud) checkJoinLocked(r *router, n *network, sn *subnet) error {
	if n == nil || sn == nil {
		return errf(peers.ErrInvalid, "the port's subnet is gone")
	}
	if n.External {
		return errf(peers.ErrInvalid, "network %s is external: it is a gateway's, not an interface's", n.ID)
	}
	for _, p := range c.routerPrefixesLocked(r) {
		if p.Overlaps(sn.plan.prefix) {
			return errf(peers.ErrConflict, "subnet %s (%s) overlaps %s, already on router %s", sn.ID, sn.CIDR, p, r.ID)
		}
	}
	return nil
}

// RemoveRouterInterface undoes an interface, by subnet or port.
func (c *Cloud) RemoveRouterInterface(ctx context.Context, routerID string, in peers.RouterInterface) (peers.RouterInterface, error) {
	if err := c.begin(ctx); err != nil {
		return peers.RouterInterface{}, err
	}
	out, err := c.removeInterfaceLocked(routerID, in)
	c.saveLocked()
	c.mu.Unlock()
	if err != nil {
		return peers.RouterInterface{}, fmt.Errorf("router %s: %w", routerID, err)
	}
	c.log.WithFields(logrus.Fields{"router": routerID, "subnet": out.SubnetID, "port": out.PortID}).Info("router interface removed")
	return out, c.syncRouters(ctx)
}

func (c *Cloud) removeInterfaceLocked(routerID string, in peers.RouterInterface) (peers.RouterInterface, error) {
	r, ok := c.routers[routerID]
	if !ok {
		return peers.RouterInterface{}, notFound("router", routerID)
	}
	i := slices.IndexFunc(r.interfaces, func(id string) bool {
		p := c.ports[id]
		return id == in.PortID || in.PortID == "" && slices.ContainsFunc(p.FixedIPs, func(f peers.FixedIP) bool { return f.SubnetID == in.SubnetID })
	})
	if i < 0 || in.PortID != "" && in.SubnetID != "" && !slices.ContainsFunc(c.ports[r.interfaces[i]].FixedIPs, func(f peers.FixedIP) bool { return f.SubnetID == in.SubnetID }) {
		return peers.RouterInterface{}, errf(peers.ErrNotFound, "router %s has no interface on %s%s", r.ID, in.SubnetID, in.PortID)
	}
	p := c.ports[r.interfaces[i]]
	var prefixes []netip.Prefix
	for _, f := range p.FixedIPs {
		prefixes = append(prefixes, c.subnets[f.SubnetID].plan.prefix)
	}
	in4 := func(s string) bool {
		a, err := netip.ParseAddr(s)
		return err == nil && slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	for _, f := range c.fips {
		if f.RouterID == r.ID && c.ports[f.PortID] != nil && in4(f.FixedIP) {
			return peers.RouterInterface{}, errf(peers.ErrConflict, "the interface on %s is required by floating IP %s", p.FixedIPs[0].SubnetID, f.ID)
		}
	}
	for _, rt := range r.Routes {
		if in4(rt.NextHop) {
			return peers.RouterInterface{}, errf(peers.ErrConflict, "the interface on %s is required by the route to %s via %s", p.FixedIPs[0].SubnetID, rt.Destination, rt.NextHop)
		}
	}
	out := peers.RouterInterface{RouterID: r.ID, SubnetID: p.FixedIPs[0].SubnetID, PortID: p.ID, NetworkID: p.NetworkID}
	r.interfaces = slices.Delete(r.interfaces, i, i+1)
	c.markLocked(recRouter, r.ID)
	c.releasePortLocked(p)
	return out, nil
}

// routerHost is where routers run: the first host.
func (c *Cloud) routerHost() string { return c.cfg.Hosts[0].Name }

// syncRouters hands the driver every router plan that differs from what
// it last took, and deletes the routers gone. Calls are serialized, so
// the driver sees the plans in the order the changes were made.
// kickRoutersLocked hands the routers' plans to the driver in the
// background, after a change that did not go through a router call (a
// port deleted with its floating IP's association). Callers hold c.mu.
func (c *Cloud) kickRoutersLocked() {
	if c.closed {
		return
	}
	c.background(func(ctx context.Context) {
		if err := c.syncRouters(ctx); err != nil {
			c.log.WithError(err).Warn("updating the routers failed; the next change retries")
		}
	})
}

func (c *Cloud) syncRouters(ctx context.Context) error {
	rd, ok := c.driver.(RouterDriver)
	if !ok {
		return nil
	}
	c.routerMu.Lock()
	defer c.routerMu.Unlock()
	c.mu.Lock()
	want := map[string]RouterPlan{}
	for id, r := range c.routers {
		want[id] = c.routerPlanLocked(r)
	}
	c.mu.Unlock()
	host := c.routerHost()
	var errs []error
	for _, id := range slices.Sorted(maps.Keys(want)) {
		raw, _ := json.Marshal(want[id])
		if c.routerPlans[id] == string(raw) {
			continue
		}
		if err := rd.SetRouter(ctx, host, want[id]); err != nil {
			errs = append(errs, fmt.Errorf("router %s on %s: %w", id, host, err))
			continue
		}
		c.routerPlans[id] = string(raw)
	}
	for id := range c.routerPlans {
		if _, ok := want[id]; ok {
			continue
		}
		if err := ignoreNotFound(rd.DeleteRouter(ctx, host, id)); err != nil {
			errs = append(errs, fmt.Errorf("router %s on %s: %w", id, host, err))
			continue
		}
		delete(c.routerPlans, id)
	}
	if err := errors.Join(errs...); err != nil {
		return errf(peers.ErrUnavailable, "the router data plane: %v", err)
	}
	return nil
}

// routerPlanLocked compiles what r does for the driver.
func (c *Cloud) routerPlanLocked(r *router) RouterPlan {
	plan := RouterPlan{ID: r.ID}
	for _, id := range r.interfaces {
		if p := c.ports[id]; p != nil {
			plan.Interfaces = append(plan.Interfaces, c.routerPortLocked(p))
		}
	}
	if p := c.ports[r.gwPort]; p != nil && r.Gateway != nil {
		gw := c.routerPortLocked(p)
		plan.Gateway, plan.SNAT = &gw, r.Gateway.EnableSNAT
		for _, f := range p.FixedIPs {
			if sn := c.subnets[f.SubnetID]; sn != nil && sn.GatewayIP != "" {
				plan.DefaultVia, _ = netip.ParseAddr(sn.GatewayIP)
				break
			}
		}
	}
	for _, rt := range r.Routes {
		plan.Routes = append(plan.Routes, RouterRoute{Destination: netip.MustParsePrefix(rt.Destination).Masked(), NextHop: netip.MustParseAddr(rt.NextHop)})
	}
	for _, id := range slices.Sorted(maps.Keys(c.fips)) {
		f := c.fips[id]
		if f.RouterID != r.ID || c.ports[f.PortID] == nil {
			continue // a port deleted takes its association with it
		}
		plan.FloatingIPs = append(plan.FloatingIPs, FloatingNAT{
			External: netip.MustParseAddr(f.Address), Internal: netip.MustParseAddr(f.FixedIP), PortID: f.PortID,
		})
	}
	return plan
}

func (c *Cloud) routerPortLocked(p *peers.Port) RouterPort {
	rp := RouterPort{PortID: p.ID, NetworkID: p.NetworkID, MAC: p.MACAddress}
	for _, f := range p.FixedIPs {
		sn := c.subnets[f.SubnetID]
		a, err := netip.ParseAddr(f.IPAddress)
		if sn != nil && err == nil {
			rp.IPs = append(rp.IPs, netip.PrefixFrom(a, sn.plan.prefix.Bits()))
		}
	}
	return rp
}

var _ peers.Routers = (*Cloud)(nil)
