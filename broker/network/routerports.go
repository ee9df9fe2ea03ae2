package network

import (
	"context"
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
