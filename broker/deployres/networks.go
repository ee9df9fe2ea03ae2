package deployres

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// CreateNetwork implements deploy.Resources: a network of the caller's
// project on the plan's peer. Shared networks are a cloud admin's, as in
// Neutron, and a deployment never acts as one.
func (a *Adapter) CreateNetwork(ctx context.Context, c resource.Caller, spec resource.NetworkSpec) (resource.Created, error) {
	if spec.Shared {
		return resource.Created{}, fmt.Errorf("network %s: only a cloud admin may create a shared network: %w", spec.Name, network.ErrForbidden)
	}
	req := network.NetworkCreate{Name: spec.Name, Shared: spec.Shared, MTU: spec.MTU, Marks: spec.Marks}
	if spec.Placement.Peer != "" {
		req.ZoneHints = []string{spec.Placement.Peer}
	}
	n, err := a.Networks.CreateNetwork(ctx, c.Project, req)
	if err != nil {
		return resource.Created{}, wrap(err)
	}
	return resource.Created{ID: n.Ref.ID}, nil
}

// CreateSubnet implements deploy.Resources: on a network the project owns
// (a name is the network there on the plan's peer).
func (a *Adapter) CreateSubnet(ctx context.Context, c resource.Caller, spec resource.SubnetSpec) (resource.Created, error) {
	netID, err := a.networkID(ctx, c, spec.Network, spec.Peer)
	if err != nil {
		return resource.Created{}, err
	}
	sn, err := a.Networks.CreateSubnet(ctx, c.Project, network.SubnetCreate{Name: spec.Name, NetworkID: netID, CIDR: spec.CIDR,
		IPVersion: spec.IPVersion, GatewayIP: spec.GatewayIP, NoGateway: spec.NoGateway, EnableDHCP: spec.EnableDHCP,
		DNSNameservers: spec.DNSNameservers, Marks: spec.Marks})
	if err != nil {
		return resource.Created{}, wrap(err)
	}
	return resource.Created{ID: sn.Ref.ID}, nil
}

// CreatePort implements deploy.Resources: on a network the project may
// attach to (its own or a shared one; a name is the network there on the
// plan's peer), subnets by broker ID.
func (a *Adapter) CreatePort(ctx context.Context, c resource.Caller, spec resource.PortSpec) (resource.Created, error) {
	netID, err := a.networkID(ctx, c, spec.Network, spec.Peer)
	if err != nil {
		return resource.Created{}, err
	}
	req := network.PortCreate{Name: spec.Name, NetworkID: netID, Marks: spec.Marks}
	for _, f := range spec.FixedIPs {
		req.FixedIPs = append(req.FixedIPs, peers.FixedIP{SubnetID: f.Subnet, IPAddress: f.IPAddress})
	}
	p, err := a.Networks.CreatePort(ctx, c.Project, req)
	if err != nil {
		return resource.Created{}, wrap(err)
	}
	return resource.Created{ID: p.Ref.ID}, nil
}

// networkID resolves a network reference as Neutron would for the
// caller: a broker ID (or a peer's own shared network by its ID), else a
// name among the networks the project sees. A name several networks bear
// (a deployment's per-peer copies) picks the one on peer, when given.
func (a *Adapter) networkID(ctx context.Context, c resource.Caller, ref, peer string) (string, error) {
	if ref == "" {
		return "", &failure{err: errors.New("no network given"), kind: resource.ErrNotFound}
	}
	r, err := a.Networks.Resolve(ctx, c.Project, network.KindNetwork, ref)
	if err == nil {
		return r.ID, nil
	}
	if !errors.Is(err, peers.ErrNotFound) {
		return "", wrap(err)
	}
	v, err := a.Networks.List(ctx, c.Project, false)
	if err != nil {
		return "", wrap(err)
	}
	var named []network.Network
	for _, n := range v.Networks {
		name := n.Peer.Name
		if n.Attrs.Name != nil {
			name = *n.Attrs.Name
		}
		if name == ref && (peer == "" || n.Ref.Member.Peer.Name == peer) {
			named = append(named, n)
		}
	}
	switch len(named) {
	case 0:
		return "", notFound("network", ref)
	case 1:
		return named[0].Ref.ID, nil
	}
	return "", &failure{err: fmt.Errorf("more than one network is named %s: name it by ID", ref), kind: resource.ErrNotFound, also: resource.ErrAmbiguous}
}

// networkState reads a network, subnet or port: broker IDs throughout.
func (a *Adapter) networkState(ctx context.Context, c resource.Caller, kind templates.Kind, id string) (resource.State, error) {
	switch kind {
	case templates.KindNetwork:
		n, err := a.Networks.GetNetwork(ctx, c.Project, id)
		if err != nil {
			return resource.State{}, err
		}
		subs := []any{}
		for _, s := range n.SubnetIDs {
			subs = append(subs, s)
		}
		return resource.State{Ready: true, Attrs: map[string]any{"name": n.Peer.Name, "status": n.Peer.Status, "mtu": int64(n.Peer.MTU), "subnets": subs}}, nil
	case templates.KindSubnet:
		s, err := a.Networks.GetSubnet(ctx, c.Project, id)
		if err != nil {
			return resource.State{}, err
		}
		return resource.State{Ready: true, Attrs: map[string]any{"name": s.Peer.Name, "cidr": s.Peer.CIDR, "gateway_ip": s.Peer.GatewayIP,
			"network_id": s.NetworkID}}, nil
	}
	p, err := a.Networks.GetPort(ctx, c.Project, id)
	if err != nil {
		return resource.State{}, err
	}
	attrs := map[string]any{"name": p.Peer.Name, "mac_address": p.Peer.MACAddress, "network_id": p.NetworkID, "status": p.Peer.Status}
	ips := []any{}
	for _, ip := range p.FixedIPs {
		ips = append(ips, map[string]any{"subnet_id": ip.SubnetID, "ip_address": ip.IPAddress})
		if attrs["ip_address"] == nil {
			attrs["ip_address"] = ip.IPAddress
		}
	}
	attrs["fixed_ips"] = ips
	return resource.State{Ready: true, Attrs: attrs}, nil
}

// portID resolves a port reference for the caller: a broker ID of the
// project's port, else the name of exactly one of its ports.
func (a *Adapter) portID(ctx context.Context, c resource.Caller, ref string) (string, error) {
	r, err := a.Networks.Resolve(ctx, c.Project, network.KindPort, ref)
	if err == nil {
		return r.ID, nil
	}
	if !errors.Is(err, peers.ErrNotFound) {
		return "", wrap(err)
	}
	v, err := a.Networks.List(ctx, c.Project, true)
	if err != nil {
		return "", wrap(err)
	}
	var named []string
	for _, p := range v.Ports {
		name := p.Peer.Name
		if p.Attrs.Name != nil {
			name = *p.Attrs.Name
		}
		if name == ref && p.Ref.OwnedBy(c.Project) {
			named = append(named, p.Ref.ID)
		}
	}
	switch len(named) {
	case 0:
		return "", notFound("port", ref)
	case 1:
		return named[0], nil
	}
	return "", &failure{err: fmt.Errorf("more than one port is named %s: name it by ID", ref), kind: resource.ErrNotFound, also: resource.ErrAmbiguous}
}
