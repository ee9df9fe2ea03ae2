package localcloud

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// floatingIP is a floating IP and the port on its external network that
// holds its address.
type floatingIP struct {
	peers.FloatingIP
	extPort string
}

type savedFloatingIP struct {
	FloatingIP peers.FloatingIP `json:"floating_ip"`
	ExtPort    string           `json:"ext_port"`
}

func (f *floatingIP) saved() savedFloatingIP {
	v := f.FloatingIP
	v.Metadata = maps.Clone(f.Metadata)
	return savedFloatingIP{FloatingIP: v, ExtPort: f.extPort}
}

// fipView is what callers see: an association whose port was deleted
// since is gone with it, as Neutron disassociates on a port's delete.
func (c *Cloud) fipView(f *floatingIP) peers.FloatingIP {
	v := f.saved().FloatingIP
	if v.PortID != "" && c.ports[v.PortID] == nil {
		v.PortID, v.FixedIP, v.RouterID = "", "", ""
	}
	v.Status = "DOWN"
	if v.PortID != "" {
		v.Status = "ACTIVE"
	}
	return v
}

// CreateFloatingIP takes an address on an external network.
func (c *Cloud) CreateFloatingIP(ctx context.Context, spec peers.FloatingIPSpec) (peers.FloatingIP, error) {
	if err := requireProject("floating IP", spec.Project); err != nil {
		return peers.FloatingIP{}, err
	}
	if err := checkMetadata(spec.Metadata); err != nil {
		return peers.FloatingIP{}, fmt.Errorf("floating IP: %w", err)
	}
	if err := c.beginRouters(ctx); err != nil {
		return peers.FloatingIP{}, err
	}
	f, err := c.createFloatingIPLocked(spec)
	if err != nil {
		c.mu.Unlock()
		return peers.FloatingIP{}, fmt.Errorf("floating IP on network %s: %w", spec.NetworkID, err)
	}
	view := c.fipView(f)
	c.saveLocked()
	c.mu.Unlock()
	c.log.WithFields(logrus.Fields{"floating_ip": f.ID, "address": f.Address, "port": f.PortID}).Info("floating IP created")
	if f.PortID == "" {
		return view, nil
	}
	return view, c.syncRouters(ctx)
}

func (c *Cloud) createFloatingIPLocked(spec peers.FloatingIPSpec) (*floatingIP, error) {
	n := c.networks[spec.NetworkID]
	if n == nil {
		return nil, notFound("network", spec.NetworkID)
	}
	if !n.External {
		return nil, errf(peers.ErrInvalid, "network %s is not a valid external network", n.ID)
	}
	var fixed []peers.FixedIP
	if spec.Address != "" {
		fixed = []peers.FixedIP{{IPAddress: spec.Address}}
	}
	p, err := c.createPortLocked(peers.PortSpec{Project: spec.Project, NetworkID: n.ID, FixedIPs: fixed})
	if err != nil {
		return nil, err
	}
	if len(p.FixedIPs) == 0 {
		c.releasePortLocked(p)
		return nil, errf(peers.ErrInvalid, "external network %s has no subnet to take an address from", n.ID)
	}
	f := &floatingIP{FloatingIP: peers.FloatingIP{
		ID: newID(), Project: spec.Project, NetworkID: n.ID, Address: p.FixedIPs[0].IPAddress, Metadata: maps.Clone(spec.Metadata),
	}, extPort: p.ID}
	p.DeviceID, p.DeviceOwner, p.Status = f.ID, peers.OwnerFloatingIP, "ACTIVE"
	if spec.PortID != "" {
		if err := c.associateLocked(f, spec.PortID, spec.FixedIP); err != nil {
			c.releasePortLocked(p)
			return nil, err
		}
	}
	c.fips[f.ID] = f
	c.markLocked(recFloatingIP, f.ID)
	return f, nil
}

// associateLocked points f at a port's fixed address, through the router
// joining that address's subnet to f's network.
func (c *Cloud) associateLocked(f *floatingIP, portID, fixedIP string) error {
	p := c.ports[portID]
	if p == nil || p.Project != f.Project {
		return notFound("port", portID) // another project's is not there for f's
	}
	if p.DeviceOwner == peers.OwnerRouterInterface || p.DeviceOwner == peers.OwnerRouterGateway || p.DeviceOwner == peers.OwnerFloatingIP {
		return errf(peers.ErrInvalid, "port %s is a %s port, not an instance's", p.ID, p.DeviceOwner)
	}
	i := slices.IndexFunc(p.FixedIPs, func(x peers.FixedIP) bool {
		if fixedIP != "" {
			return x.IPAddress == fixedIP
		}
		a, err := netip.ParseAddr(x.IPAddress)
		return err == nil && a.Is4()
	})
	if i < 0 {
		if fixedIP != "" {
			return errf(peers.ErrInvalid, "port %s has no fixed IP %s", p.ID, fixedIP)
		}
		return errf(peers.ErrInvalid, "port %s has no IPv4 address", p.ID)
	}
	fixed := p.FixedIPs[i]
	for _, o := range c.fips {
		if o.ID != f.ID && o.PortID == p.ID && o.FixedIP == fixed.IPAddress {
			return errf(peers.ErrConflict, "fixed IP %s of port %s already has floating IP %s", fixed.IPAddress, p.ID, o.ID)
		}
	}
	routerID := ""
	for _, id := range slices.Sorted(maps.Keys(c.routers)) {
		r := c.routers[id]
		if r.Gateway == nil || r.Gateway.NetworkID != f.NetworkID {
			continue
		}
		for _, ifc := range r.interfaces {
			if ip := c.ports[ifc]; ip != nil && slices.ContainsFunc(ip.FixedIPs, func(x peers.FixedIP) bool { return x.SubnetID == fixed.SubnetID }) {
				routerID = r.ID
			}
		}
		if routerID != "" {
			break
		}
	}
	if routerID == "" {
		return errf(peers.ErrInvalid, "external network %s is not reachable from subnet %s: no router joins them", f.NetworkID, fixed.SubnetID)
	}
	f.PortID, f.FixedIP, f.RouterID = p.ID, fixed.IPAddress, routerID
	return nil
}

// GetFloatingIP returns a floating IP.
func (c *Cloud) GetFloatingIP(ctx context.Context, id string) (peers.FloatingIP, error) {
	return getView(c, ctx, "floating IP", c.fips, id, c.fipView)
}

// ListFloatingIPs returns the floating IPs passing opts, by address.
func (c *Cloud) ListFloatingIPs(ctx context.Context, opts peers.ListOptions) ([]peers.FloatingIP, error) {
	return listViews(c, ctx, c.fips, func(f *floatingIP) bool { return opts.Matches(f.Project, f.Metadata) }, c.fipView,
		func(a, b peers.FloatingIP) int { return byNameThenID(a.Address, a.ID, b.Address, b.ID) })
}

// SetFloatingIPPort associates a floating IP with a port, or
// disassociates it.
func (c *Cloud) SetFloatingIPPort(ctx context.Context, id, portID, fixedIP string) (peers.FloatingIP, error) {
	if err := c.beginRouters(ctx); err != nil {
		return peers.FloatingIP{}, err
	}
	f, ok := c.fips[id]
	if !ok {
		c.mu.Unlock()
		return peers.FloatingIP{}, notFound("floating IP", id)
	}
	if portID == "" {
		f.PortID, f.FixedIP, f.RouterID = "", "", ""
	} else if err := c.associateLocked(f, portID, fixedIP); err != nil {
		c.mu.Unlock()
		return peers.FloatingIP{}, fmt.Errorf("floating IP %s: %w", id, err)
	}
	c.markLocked(recFloatingIP, f.ID)
	view := c.fipView(f)
	c.saveLocked()
	c.mu.Unlock()
	c.log.WithFields(logrus.Fields{"floating_ip": id, "port": portID}).Info("floating IP association set")
	return view, c.syncRouters(ctx)
}

// DeleteFloatingIP releases a floating IP and its address.
func (c *Cloud) DeleteFloatingIP(ctx context.Context, id string) error {
	f, err := lockOne(c, ctx, "floating IP", c.fips, id)
	if err != nil {
		return err
	}
	if p := c.ports[f.extPort]; p != nil {
		c.releasePortLocked(p)
	}
	delete(c.fips, id)
	c.markLocked(recFloatingIP, id)
	c.saveLocked()
	c.mu.Unlock()
	c.log.WithField("floating_ip", id).Info("floating IP deleted")
	if f.RouterID == "" {
		return nil
	}
	return c.syncRouters(ctx)
}
