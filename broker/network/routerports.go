package network

import (
	"context"
	"time"

	"github.com/cloudmux/cloudmux/broker/index"
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
// discovery once their port or router is gone (sweepServerPorts). They
// carry no quota charge: the port quota is not charged for them (Neutron
// counts them in the project's port usage; see the README).
const kindRouterPort = "router_port"

// routerPortEntry is the index entry of the port peerPortID a peer made
// for an interface of router.
func routerPortEntry(peerID, peerPortID string, router index.Entry) index.Entry {
	return index.Entry{Kind: kindRouterPort, ID: NativeID(peerID, KindPort, peerPortID), Project: router.Project, PeerID: peerID,
		PeerResourceID: peerPortID, CreatedAt: time.Now().UTC(), Parent: router.ID}
}

// recordRouterPort indexes the port a peer made for router's new
// interface; a failure is logged, the next read of the project's ports
// adopts it.
func (s *Service) recordRouterPort(ctx context.Context, router index.Entry, peerPortID string) {
	e := routerPortEntry(router.PeerID, peerPortID, router)
	if err := s.Index.Put(ctx, e); err != nil {
		s.Log.WithError(err).WithField("port", e.ID).Warn("a router interface's port could not be indexed; the next port list adopts it")
	}
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
