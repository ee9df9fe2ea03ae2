package libvirt

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/vswitch"
	"github.com/cloudmux/cloudmux/peers"
)

// Guest networking is the driver's user-space switch (localcloud/vswitch):
// every NIC is an <interface type='udp'> whose frames go to its switch
// port, and networks and port filters are switch state only. Nothing is
// made in libvirt or the host's kernel for them: no bridge, no libvirt
// network, no nwfilter, no ip(6)tables rule.

var _ localcloud.FilterDriver = (*Driver)(nil)

// CreateNetwork records the network on host; its layer 2 is the switch's.
func (d *Driver) CreateNetwork(ctx context.Context, host string, net localcloud.IsolatedNetwork) error {
	if _, err := d.host(host); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	d.netMu.Lock()
	defer d.netMu.Unlock()
	if d.nets[host][net.ID] {
		return fmt.Errorf("libvirt: network %s already exists: %w", net.ID, peers.ErrConflict)
	}
	if d.nets[host] == nil {
		d.nets[host] = map[string]bool{}
	}
	d.nets[host][net.ID] = true
	d.sw.AddNetwork(net.ID)
	return nil
}

// DeleteNetwork forgets the network on host; the switch forgets it once
// no host has it.
func (d *Driver) DeleteNetwork(ctx context.Context, host, id string) error {
	if _, err := d.host(host); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	d.netMu.Lock()
	defer d.netMu.Unlock()
	if !d.nets[host][id] {
		return fmt.Errorf("libvirt: network %s: %w", id, peers.ErrNotFound)
	}
	delete(d.nets[host], id)
	for _, hn := range d.nets {
		if hn[id] {
			return nil
		}
	}
	return ignoreNotFound(d.sw.RemoveNetwork(id))
}

// networksOn lists host's networks, sorted.
func (d *Driver) networksOn(host string) []string {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	var out []string
	for id := range d.nets[host] {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// SetPortFilter sets the port's filter in the switch: the NIC's next
// frame is judged by it.
func (d *Driver) SetPortFilter(ctx context.Context, host string, f localcloud.PortFilter) error {
	if _, err := d.host(host); err != nil {
		return err
	}
	return d.sw.SetFilter(f)
}

// DeletePortFilter removes the port's filter from the switch.
func (d *Driver) DeletePortFilter(ctx context.Context, host, portID string) error {
	if _, err := d.host(host); err != nil {
		return err
	}
	return d.sw.DeleteFilter(portID)
}

// addPorts opens a switch port per NIC of spec on host, reusing the
// endpoints given (a domain already defined) where there are some.
func (d *Driver) addPorts(host string, spec localcloud.DomainSpec, have []nicEndpoints) ([]nicEndpoints, error) {
	var out []nicEndpoints
	for k, nic := range spec.NICs {
		mac, err := net.ParseMAC(nic.MAC)
		if err != nil {
			d.removePorts(spec.NICs[:k])
			return nil, fmt.Errorf("libvirt: NIC of port %s: MAC %q: %w", nic.PortID, nic.MAC, peers.ErrInvalid)
		}
		p := vswitch.Port{ID: nic.PortID, Network: nic.NetworkID, MAC: mac, Filtered: nic.Filtered,
			NIC: netip.AddrPortFrom(d.nicAddr(host), 0)}
		for _, ip := range nic.IPs {
			if pr, err := netip.ParsePrefix(ip); err == nil {
				p.IPs = append(p.IPs, pr.Addr())
			} else if a, err := netip.ParseAddr(ip); err == nil {
				p.IPs = append(p.IPs, a)
			}
		}
		if k < len(have) {
			p.Switch, p.NIC = have[k].Switch, have[k].NIC
			if cur, ok := d.sw.Port(nic.PortID); ok && cur.Switch == p.Switch && cur.NIC == p.NIC && cur.Network == p.Network {
				out = append(out, have[k])
				continue
			}
		}
		got, err := d.sw.AddPort(p)
		if err != nil {
			d.removePorts(spec.NICs[:k])
			return nil, fmt.Errorf("libvirt: switch port of %s: %w", nic.PortID, err)
		}
		out = append(out, nicEndpoints{Switch: got.Switch, NIC: got.NIC})
	}
	return out, nil
}

// removePorts closes the NICs' switch ports.
func (d *Driver) removePorts(nics []localcloud.NIC) {
	for _, nic := range nics {
		_ = d.sw.RemovePort(nic.PortID)
	}
}

// nicAddr is the address QEMU binds a NIC's UDP socket to on host.
func (d *Driver) nicAddr(host string) netip.Addr {
	if a, ok := d.cfg.NICAddrs[host]; ok {
		return a
	}
	return d.sw.Addr()
}

// endpointsOf reads back the switch endpoints of a domain's NICs from its
// metadata; ok is false for a domain of an earlier version, whose NICs
// were on libvirt networks.
func endpointsOf(pd parsedDomain) (eps []nicEndpoints, ok bool) {
	m := pd.Metadata.Server
	if m == nil {
		return nil, false
	}
	for _, n := range m.NICs {
		sw, err1 := netip.ParseAddrPort(n.Switch)
		nic, err2 := netip.ParseAddrPort(n.NIC)
		if err1 != nil || err2 != nil {
			return nil, false
		}
		eps = append(eps, nicEndpoints{Switch: sw, NIC: nic})
	}
	return eps, true
}

// removeLegacy removes the libvirt networks and network filters (those
// named <prefix>port-) earlier versions made for guest networking, once
// no running domain of the cloud's uses them: redefined domains (see
// adoptDomain) leave them at their next power cycle. It is best effort
// and repeats at every Inventory.
func (d *Driver) removeLegacy(ctx context.Context, h *hostConn, legacyRunning bool) {
	if legacyRunning {
		return
	}
	to := d.cfg.CallTimeout
	nets, err := call(ctx, h, to, "list networks", func(a API) ([]golibvirt.Network, error) {
		nets, _, err := a.ConnectListAllNetworks(1, 0)
		return nets, err
	})
	if err != nil {
		return
	}
	for _, n := range nets {
		if !strings.HasPrefix(n.Name, d.cfg.Prefix) {
			continue
		}
		_ = do(ctx, h, to, "stop legacy network "+n.Name, func(a API) error { return a.NetworkDestroy(n) })
		if err := do(ctx, h, to, "undefine legacy network "+n.Name, func(a API) error { return a.NetworkUndefine(n) }); err == nil {
			d.log.WithField("network", n.Name).Info("removed a libvirt network of an earlier version (guest networking is the user-space switch now)")
		}
	}
	filters, err := call(ctx, h, to, "list network filters", func(a API) ([]golibvirt.Nwfilter, error) {
		fs, _, err := a.ConnectListAllNwfilters(1, 0)
		return fs, err
	})
	if err != nil {
		return
	}
	for _, nf := range filters {
		if !strings.HasPrefix(nf.Name, d.n.filter("")) {
			continue
		}
		if err := do(ctx, h, to, "undefine legacy filter "+nf.Name, func(a API) error { return a.NwfilterUndefine(nf) }); err == nil {
			d.log.WithField("filter", nf.Name).Info("removed a libvirt nwfilter of an earlier version")
		}
	}
}

var _ localcloud.RouterDriver = (*Driver)(nil)

// SetRouter runs the router in the switch (routing and NAT in user space:
// nothing on the host). The switch is shared by every host; host only
// has to be one of the driver's.
func (d *Driver) SetRouter(ctx context.Context, host string, r localcloud.RouterPlan) error {
	if _, err := d.host(host); err != nil {
		return err
	}
	return d.sw.SetRouter(r)
}

// DeleteRouter removes the router from the switch.
func (d *Driver) DeleteRouter(ctx context.Context, host, id string) error {
	if _, err := d.host(host); err != nil {
		return err
	}
	return d.sw.DeleteRouter(id)
}
