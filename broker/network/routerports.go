package network

import (
	"context"
	"errors"
	"time"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
)

// kindRouterPort is the index kind of the ports a peer made for a
// router's interface on a subnet (add_router_interface by subnet_id):
// the peer made them, as Neutron makes them in the router's project, so
// the project lists them (port list --router, --device-owner
// network:router_interface) and shows them by ID. Each entry has the
// port's broker ID (NativeID, the ID the interface's answer gave), the
// router's project, and the router's broker ID as its Parent. An
// interface made from a port the project made keeps that port's own
// entry. The entries are written with the interface, adopted by a read
// that finds one without, removed with the interface, and swept by
// discovery once their port or router is gone (sweepServerPorts).
// Neutron counts them in the project's port usage, so the interface
// reserves a port before the peer makes it and its entry carries the
// charge, freed with the entry (forget). An entry adopted by a read
// (its interface's own write lost) carries none: nothing was counted.
const kindRouterPort = "router_port"

// routerPortEntry is the index entry of the port peerPortID a peer made
// for an interface of router.
func routerPortEntry(peerID, peerPortID string, router index.Entry) index.Entry {
	return index.Entry{Kind: kindRouterPort, ID: NativeID(peerID, KindPort, peerPortID), Project: router.Project, PeerID: peerID,
		PeerResourceID: peerPortID, CreatedAt: time.Now().UTC(), Parent: router.ID}
}

// recordRouterPort indexes the port a peer made for router's new
// interface on the subnet peerSubnetID, committing res (the port's quota
// reservation) into its entry. When that fails the interface is removed
// again, as any create whose record fails is undone: kept, it would hold
// a port nothing counts.
func (s *Service) recordRouterPort(ctx context.Context, rt peers.Routers, router index.Entry, peerPortID, peerSubnetID string, res *quota.Reservation) error {
	e := routerPortEntry(router.PeerID, peerPortID, router)
	return s.record(ctx, e, nil, func(ctx context.Context) error {
		_, err := rt.RemoveRouterInterface(ctx, router.PeerResourceID, peers.RouterInterface{SubnetID: peerSubnetID})
		return err
	}, res)
}

// forgetRouterPort drops the entry of a router's port once its interface
// is removed (the peer deleted the port).
func (s *Service) forgetRouterPort(ctx context.Context, project, peerID, peerPortID string) {
	e, err := s.Index.Get(ctx, kindRouterPort, NativeID(peerID, KindPort, peerPortID), project)
	if err != nil {
		return
	}
	if err := s.forget(ctx, e); err != nil {
		s.Log.WithError(err).WithField("port", e.ID).Warn("the router interface's port is gone; its entry stays until discovery sweeps it")
	}
}

// A router's gateway port is Neutron's network:router_gateway port on the
// external network: Neutron makes it in no project (project_id ""), so
// the router's members neither list nor show it, and shows it to cloud
// admins, who may not delete it either (409 ServicePortInUse: it goes
// with the gateway). The broker shows it the same way to a cloud admin
// reading its project's ports: the gateway ports of the project's
// routers, as their peers list them, under NativeID and with no project.
// They are not indexed (no quota counts them, as in Neutron); an admin's
// show of one not otherwise found reads the peers of the project's
// routers (resolveGatewayPort).

// cloudAdmin reports whether ctx carries a cloud admin's token.
func cloudAdmin(ctx context.Context) bool { return adminOnly(ctx, "") == nil }

// gatewayPortRef is the Ref of p, the gateway port of router (one of the
// project's), on member m.
func gatewayPortRef(m *peers.Member, p peers.Port, router index.Entry) Ref {
	return Ref{Kind: KindPort, ID: NativeID(m.Peer.ID, KindPort, p.ID), Member: m, PeerResourceID: p.ID,
		CreatedAt: router.CreatedAt, gatewayPort: true}
}

// resolveGatewayPort finds, for a cloud admin, the gateway port with
// broker ID id of one of project's routers: it reads the ports of the
// peers holding the project's routers (none when it has none).
func (s *Service) resolveGatewayPort(ctx context.Context, project, id string) (Ref, error) {
	routers, err := s.Index.List(ctx, KindRouter, project)
	if err != nil || len(routers) == 0 {
		return Ref{}, errors.Join(err, notFound(KindPort, id))
	}
	byPeer := map[string]map[string]index.Entry{}
	for _, r := range routers {
		if byPeer[r.PeerID] == nil {
			byPeer[r.PeerID] = map[string]index.Entry{}
		}
		byPeer[r.PeerID][r.PeerResourceID] = r
	}
	for peerID, rs := range byPeer {
		m, ok := s.member(peerID)
		if !ok {
			continue
		}
		ps, err := m.Cloud.ListPorts(ctx, peers.ListOptions{})
		if err != nil {
			return Ref{}, err
		}
		for _, p := range ps {
			if r, ok := rs[p.DeviceID]; ok && p.DeviceOwner == peers.OwnerRouterGateway && NativeID(peerID, KindPort, p.ID) == id {
				return gatewayPortRef(m, p, r), nil
			}
		}
	}
	return Ref{}, notFound(KindPort, id)
}

// gatewayPortInUse is Neutron's refusal to delete a gateway port.
func gatewayPortInUse(id string) error {
	return inUse("ServicePortInUse", "Port %s cannot be deleted directly via the port API: has device owner %s.", id, peers.OwnerRouterGateway)
}
