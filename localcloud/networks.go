package localcloud

import (
	"cmp"
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// network is a Neutron network. Its layer 2 exists on every host, so a
// server on any host can have a port on it.
type network struct {
	peers.Network
	// deleting is set while the driver removes the network from the hosts;
	// new subnets and ports are refused meanwhile.
	deleting bool
}

func (n *network) view() peers.Network {
	v := n.Network
	v.Subnets = slices.Clone(n.Subnets)
	v.Metadata = maps.Clone(n.Metadata)
	return v
}

// subnet is a Neutron subnet and the addresses taken from it.
type subnet struct {
	peers.Subnet
	plan subnetPlan
	used map[netip.Addr]string // address -> port ID
}

func (sn *subnet) view() peers.Subnet {
	v := sn.Subnet
	v.AllocationPools = slices.Clone(sn.AllocationPools)
	v.DNSNameservers = slices.Clone(sn.DNSNameservers)
	v.Metadata = maps.Clone(sn.Metadata)
	return v
}

func portView(p *peers.Port) peers.Port {
	v := *p
	v.FixedIPs = slices.Clone(p.FixedIPs)
	v.SecurityGroups = slices.Clone(p.SecurityGroups)
	v.Metadata = maps.Clone(p.Metadata)
	return v
}

// Neutron's default MTU for a network without encapsulation, and the
// smallest IPv4 allows.
const (
	defaultMTU = 1500
	minMTU     = 68
)

// CreateNetwork creates a network and its isolated layer 2 on every host.
// Neutron answers synchronously, so this does too: the network is ACTIVE
// when it returns (BUILD to concurrent readers while the hosts set it up).
func (c *Cloud) CreateNetwork(ctx context.Context, spec peers.NetworkSpec) (peers.Network, error) {
	if err := ctx.Err(); err != nil {
		return peers.Network{}, err
	}
	if err := requireProject("network", spec.Project); err != nil {
		return peers.Network{}, err
	}
	if err := checkMetadata(spec.Metadata); err != nil {
		return peers.Network{}, fmt.Errorf("network %q: %w", spec.Name, err)
	}
	mtu := cmp.Or(spec.MTU, defaultMTU)
	if mtu < minMTU {
		return peers.Network{}, errf(peers.ErrInvalid, "network %q: mtu %d is below %d", spec.Name, mtu, minMTU)
	}
	n := &network{Network: peers.Network{
		ID: newID(), Name: spec.Name, Project: spec.Project, Status: "BUILD", AdminStateUp: true,
		Shared: spec.Shared, External: spec.External, MTU: mtu, Metadata: maps.Clone(spec.Metadata),
	}}
	if err := c.begin(ctx); err != nil {
		return peers.Network{}, err
	}
	c.networks[n.ID] = n
	c.markLocked(recNetwork, n.ID)
	c.saveLocked()
	c.mu.Unlock()

	log := c.log.WithFields(logrus.Fields{"network": n.ID, "name": n.Name, "project": n.Project})
	var created []string
	for _, h := range c.cfg.Hosts {
		if err := c.driver.CreateNetwork(ctx, h.Name, IsolatedNetwork{ID: n.ID, Name: n.Name, MTU: mtu}); err != nil {
			log.WithError(err).WithField("host", h.Name).Warn("network setup failed; undoing")
			c.removeNetworkFromHosts(c.bg, n.ID, created, log)
			c.mu.Lock()
			delete(c.networks, n.ID)
			c.markLocked(recNetwork, n.ID)
			c.saveLocked()
			c.mu.Unlock()
			return peers.Network{}, fmt.Errorf("network %s on host %s: %w", n.ID, h.Name, err)
		}
		created = append(created, h.Name)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	n.Status = "ACTIVE"
	view := n.view()
	c.markLocked(recNetwork, n.ID)
	c.saveLocked()
	log.Info("network created")
	return view, nil
}

// removeNetworkFromHosts deletes a network's layer 2 from hosts, returning
// the first error; a host that never had it is fine.
func (c *Cloud) removeNetworkFromHosts(ctx context.Context, id string, hosts []string, log logrus.FieldLogger) error {
	var first error
	for _, h := range hosts {
		if err := ignoreNotFound(c.driver.DeleteNetwork(ctx, h, id)); err != nil {
			log.WithError(err).WithField("host", h).Warn("removing network from host failed")
			if first == nil {
				first = fmt.Errorf("network %s on host %s: %w", id, h, err)
			}
		}
	}
	return first
}

// GetNetwork returns a network.
func (c *Cloud) GetNetwork(ctx context.Context, id string) (peers.Network, error) {
	return getView(c, ctx, "network", c.networks, id, (*network).view)
}

// ListNetworks returns the networks passing opts, by name then ID.
func (c *Cloud) ListNetworks(ctx context.Context, opts peers.ListOptions) ([]peers.Network, error) {
	return listViews(c, ctx, c.networks, func(n *network) bool { return opts.Matches(n.Project, n.Metadata) }, (*network).view,
		func(a, b peers.Network) int { return byNameThenID(a.Name, a.ID, b.Name, b.ID) })
}

// DeleteNetwork removes a network and its subnets. Like Neutron, a network
// with ports is in use (409 NetworkInUse): there are no network-owned ports
// (no DHCP agent) here, so every port counts.
func (c *Cloud) DeleteNetwork(ctx context.Context, id string) error {
	n, err := lockOne(c, ctx, "network", c.networks, id)
	if err != nil {
		return err
	}
	if n.deleting || n.Status == "BUILD" {
		c.mu.Unlock()
		return errf(peers.ErrConflict, "network %s is still being created or deleted", id)
	}
	if inUse := c.portsOn(id); len(inUse) > 0 {
		c.mu.Unlock()
		return errf(peers.ErrConflict, "network %s is in use by ports %s", id, strings.Join(inUse, ", "))
	}
	n.deleting = true
	c.markLocked(recNetwork, n.ID)
	c.saveLocked()
	c.mu.Unlock()
	return c.finishNetworkDelete(ctx, n)
}

// finishNetworkDelete removes a network marked deleting from every host,
// then forgets it and its subnets; on failure it is usable again.
func (c *Cloud) finishNetworkDelete(ctx context.Context, n *network) error {
	log := c.log.WithField("network", n.ID)
	hosts := make([]string, len(c.cfg.Hosts))
	for i, h := range c.cfg.Hosts {
		hosts[i] = h.Name
	}
	err := c.removeNetworkFromHosts(ctx, n.ID, hosts, log)
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.saveLocked()
	c.markLocked(recNetwork, n.ID)
	if err != nil {
		n.deleting = false
		return err
	}
	for _, sid := range n.Subnets {
		delete(c.subnets, sid)
		c.markLocked(recSubnet, sid)
	}
	delete(c.networks, n.ID)
	log.Info("network deleted")
	return nil
}

// portsOn lists the IDs of ports on a network; callers hold c.mu.
func (c *Cloud) portsOn(networkID string) []string {
	var out []string
	for _, p := range c.ports {
		if p.NetworkID == networkID {
			out = append(out, p.ID)
		}
	}
	slices.Sort(out)
	return out
}

// CreateSubnet adds an IP range to a network. Subnets of one network may
// not overlap; subnets of different networks may.
func (c *Cloud) CreateSubnet(ctx context.Context, spec peers.SubnetSpec) (peers.Subnet, error) {
	if err := ctx.Err(); err != nil {
		return peers.Subnet{}, err
	}
	if err := requireProject("subnet", spec.Project); err != nil {
		return peers.Subnet{}, err
	}
	if err := checkMetadata(spec.Metadata); err != nil {
		return peers.Subnet{}, fmt.Errorf("subnet %q: %w", spec.Name, err)
	}
	plan, err := planSubnet(spec)
	if err != nil {
		return peers.Subnet{}, fmt.Errorf("subnet %q: %w", spec.Name, err)
	}
	for _, ns := range spec.DNSNameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			return peers.Subnet{}, errf(peers.ErrInvalid, "subnet %q: dns_nameserver %q is not an IP address", spec.Name, ns)
		}
	}
	sn := &subnet{
		Subnet: peers.Subnet{
			ID: newID(), Name: spec.Name, Project: spec.Project, NetworkID: spec.NetworkID,
			CIDR: plan.prefix.String(), IPVersion: plan.version(),
			EnableDHCP: spec.EnableDHCP, DNSNameservers: slices.Clone(spec.DNSNameservers), Metadata: maps.Clone(spec.Metadata),
		},
		plan: plan,
		used: map[netip.Addr]string{},
	}
	if plan.gateway.IsValid() {
		sn.GatewayIP = plan.gateway.String()
	}
	for _, r := range plan.pools {
		sn.AllocationPools = append(sn.AllocationPools, peers.IPRange{Start: r.start.String(), End: r.end.String()})
	}

	if err := c.begin(ctx); err != nil {
		return peers.Subnet{}, err
	}
	defer c.mu.Unlock()
	n, ok := c.networks[spec.NetworkID]
	if !ok {
		return peers.Subnet{}, notFound("network", spec.NetworkID)
	}
	if n.deleting {
		return peers.Subnet{}, errf(peers.ErrConflict, "network %s is being deleted", n.ID)
	}
	for _, sid := range n.Subnets {
		if other := c.subnets[sid]; other.plan.prefix.Overlaps(plan.prefix) {
			return peers.Subnet{}, errf(peers.ErrInvalid, "subnet %q: cidr %s overlaps subnet %s (%s) of network %s", spec.Name, sn.CIDR, other.ID, other.CIDR, n.ID)
		}
	}
	c.subnets[sn.ID] = sn
	n.Subnets = append(n.Subnets, sn.ID)
	view := sn.view()
	c.markLocked(recSubnet, sn.ID)
	c.markLocked(recNetwork, n.ID)
	c.saveLocked()
	c.log.WithFields(logrus.Fields{"subnet": sn.ID, "network": n.ID, "cidr": sn.CIDR}).Info("subnet created")
	return view, nil
}

// GetSubnet returns a subnet.
func (c *Cloud) GetSubnet(ctx context.Context, id string) (peers.Subnet, error) {
	return getView(c, ctx, "subnet", c.subnets, id, (*subnet).view)
}

// ListSubnets returns the subnets passing opts, by name then ID.
func (c *Cloud) ListSubnets(ctx context.Context, opts peers.ListOptions) ([]peers.Subnet, error) {
	return listViews(c, ctx, c.subnets, func(sn *subnet) bool { return opts.Matches(sn.Project, sn.Metadata) }, (*subnet).view,
		func(a, b peers.Subnet) int { return byNameThenID(a.Name, a.ID, b.Name, b.ID) })
}

// DeleteSubnet removes a subnet no port has an address on (Neutron's 409
// SubnetInUse otherwise).
func (c *Cloud) DeleteSubnet(ctx context.Context, id string) error {
	sn, err := lockOne(c, ctx, "subnet", c.subnets, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	if len(sn.used) > 0 {
		inUse := slices.Sorted(maps.Values(sn.used))
		return errf(peers.ErrConflict, "subnet %s is in use by ports %s", id, strings.Join(slices.Compact(inUse), ", "))
	}
	if n := c.networks[sn.NetworkID]; n != nil {
		n.Subnets = slices.DeleteFunc(n.Subnets, func(s string) bool { return s == id })
		c.markLocked(recNetwork, n.ID)
	}
	delete(c.subnets, id)
	c.markLocked(recSubnet, id)
	c.saveLocked()
	c.log.WithField("subnet", id).Info("subnet deleted")
	return nil
}

// CreatePort creates an unbound port; CreateServer binds it when asked to.
func (c *Cloud) CreatePort(ctx context.Context, spec peers.PortSpec) (peers.Port, error) {
	if err := ctx.Err(); err != nil {
		return peers.Port{}, err
	}
	if err := requireProject("port", spec.Project); err != nil {
		return peers.Port{}, err
	}
	if err := checkMetadata(spec.Metadata); err != nil {
		return peers.Port{}, fmt.Errorf("port %q: %w", spec.Name, err)
	}
	if err := c.begin(ctx); err != nil {
		return peers.Port{}, err
	}
	if err := c.checkGroupsLocked(spec.SecurityGroups); err != nil {
		c.mu.Unlock()
		return peers.Port{}, fmt.Errorf("port %q: %w", spec.Name, err)
	}
	p, err := c.createPortLocked(spec)
	if err != nil {
		c.mu.Unlock()
		return peers.Port{}, err
	}
	view := portView(p)
	c.saveLocked()
	c.mu.Unlock()
	c.log.WithFields(logrus.Fields{"port": view.ID, "network": view.NetworkID, "fixed_ips": view.FixedIPs}).Info("port created")
	if view.SecurityGroups != nil {
		// Its addresses join its groups: the filters naming them follow.
		if err := c.syncFilters(ctx); err != nil {
			c.log.WithError(err).WithField("port", view.ID).Warn("updating the port filters failed; the next change retries")
		}
	}
	return view, nil
}

// createPortLocked creates a port, giving it the fixed IPs spec asks for or
// else one address from the first subnet of the network with room. All or
// nothing: a failure releases what it took. Callers hold c.mu.
func (c *Cloud) createPortLocked(spec peers.PortSpec) (*peers.Port, error) {
	n, ok := c.networks[spec.NetworkID]
	if !ok {
		return nil, notFound("network", spec.NetworkID)
	}
	if n.deleting {
		return nil, errf(peers.ErrConflict, "network %s is being deleted", n.ID)
	}
	p := &peers.Port{
		ID: newID(), Name: spec.Name, Project: spec.Project, NetworkID: n.ID,
		MACAddress: c.newMAC(), Status: "DOWN", Metadata: maps.Clone(spec.Metadata),
	}
	if spec.SecurityGroups != nil {
		p.SecurityGroups = slices.Clone(spec.SecurityGroups)
	}
	take := func(sn *subnet, a netip.Addr) {
		p.FixedIPs = append(p.FixedIPs, peers.FixedIP{SubnetID: sn.ID, IPAddress: a.String()})
	}
	fail := func(err error) (*peers.Port, error) {
		c.releasePortLocked(p)
		return nil, fmt.Errorf("port on network %s: %w", n.ID, err)
	}
	c.ports[p.ID] = p
	c.markLocked(recPort, p.ID)
	if len(spec.FixedIPs) == 0 {
		for _, sid := range n.Subnets {
			if a, ok := c.subnets[sid].allocate(p.ID); ok {
				take(c.subnets[sid], a)
				break
			}
		}
		if len(p.FixedIPs) == 0 && len(n.Subnets) > 0 {
			return fail(errf(peers.ErrCapacity, "no free address left in subnets %s", strings.Join(n.Subnets, ", ")))
		}
		return p, nil
	}
	for i, f := range spec.FixedIPs {
		var sn *subnet
		if f.SubnetID != "" {
			if sn = c.subnets[f.SubnetID]; sn == nil || sn.NetworkID != n.ID {
				return fail(errf(peers.ErrInvalid, "fixed_ips[%d]: %s is not a subnet of network %s", i, f.SubnetID, n.ID))
			}
		}
		if f.IPAddress == "" {
			if sn == nil {
				return fail(errf(peers.ErrInvalid, "fixed_ips[%d]: needs a subnet_id or an ip_address", i))
			}
			a, ok := sn.allocate(p.ID)
			if !ok {
				return fail(errf(peers.ErrCapacity, "fixed_ips[%d]: no free address left in subnet %s (%s)", i, sn.ID, sn.CIDR))
			}
			take(sn, a)
			continue
		}
		a, err := netip.ParseAddr(f.IPAddress)
		if err != nil {
			return fail(errf(peers.ErrInvalid, "fixed_ips[%d]: %q is not an IP address", i, f.IPAddress))
		}
		if sn == nil {
			for _, sid := range n.Subnets {
				if c.subnets[sid].plan.prefix.Contains(a) {
					sn = c.subnets[sid]
					break
				}
			}
			if sn == nil {
				return fail(errf(peers.ErrInvalid, "fixed_ips[%d]: %s is in no subnet of network %s", i, a, n.ID))
			}
		}
		if err := sn.reserve(a, p.ID); err != nil {
			return fail(fmt.Errorf("fixed_ips[%d]: %w", i, err))
		}
		take(sn, a)
	}
	return p, nil
}

// releasePortLocked gives back a port's addresses and MAC and forgets it.
func (c *Cloud) releasePortLocked(p *peers.Port) {
	for _, f := range p.FixedIPs {
		if sn := c.subnets[f.SubnetID]; sn != nil {
			if a, err := netip.ParseAddr(f.IPAddress); err == nil {
				sn.release(a)
			}
		}
	}
	delete(c.macs, p.MACAddress)
	delete(c.ports, p.ID)
	c.markLocked(recPort, p.ID)
	// A floating IP on the port loses its association with it, and the
	// routers' plans lose its mapping (the switch maps a floating IP for
	// its own port's traffic alone meanwhile).
	stale := false
	for _, f := range c.fips {
		if f.PortID == p.ID {
			f.PortID, f.FixedIP, f.RouterID = "", "", ""
			c.markLocked(recFloatingIP, f.ID)
			stale = true
		}
	}
	if stale {
		c.kickRoutersLocked()
	}
}

// newMAC returns an unused MAC under OpenStack's base_mac prefix fa:16:3e.
func (c *Cloud) newMAC() string {
	for {
		var b [3]byte
		_, _ = rand.Read(b[:])
		mac := fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", b[0], b[1], b[2])
		if !c.macs[mac] {
			c.macs[mac] = true
			return mac
		}
	}
}

// GetPort returns a port.
func (c *Cloud) GetPort(ctx context.Context, id string) (peers.Port, error) {
	return getView(c, ctx, "port", c.ports, id, portView)
}

// ListPorts returns the ports passing opts, by name then ID.
func (c *Cloud) ListPorts(ctx context.Context, opts peers.ListOptions) ([]peers.Port, error) {
	return listViews(c, ctx, c.ports, func(p *peers.Port) bool { return opts.Matches(p.Project, p.Metadata) }, portView,
		func(a, b peers.Port) int { return byNameThenID(a.Name, a.ID, b.Name, b.ID) })
}

// DeletePort removes an unbound port. Neutron would also delete a port a
// server uses and let Nova drop the NIC; here the server's domain would
// keep a NIC nobody accounts for, so it is a conflict instead.
func (c *Cloud) DeletePort(ctx context.Context, id string) error {
	p, err := lockOne(c, ctx, "port", c.ports, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	if p.DeviceID != "" {
		return errf(peers.ErrConflict, "port %s is in use by server %s; delete the server first", id, p.DeviceID)
	}
	c.releasePortLocked(p)
	c.saveLocked()
	if p.SecurityGroups != nil {
		c.kickFiltersLocked() // its addresses leave its groups
	}
	c.log.WithField("port", id).Info("port deleted")
	return nil
}
