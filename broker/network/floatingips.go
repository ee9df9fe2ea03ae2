package network

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
)

// FloatingIP is a floating IP of a project, with the broker IDs it names.
type FloatingIP struct {
	Ref   Ref
	Peer  peers.FloatingIP
	Attrs Attrs
	// NetworkID, PortID and RouterID are broker IDs ("" when none).
	NetworkID, PortID, RouterID string
}

// FloatingIPCreate is a new floating IP: on an external network, with an
// address (a cloud admin's choice alone, as Neutron's policy has it) or
// any, associated at once when PortID is set.
type FloatingIPCreate struct {
	NetworkID   string
	Address     string
	PortID      string
	FixedIP     string
	Description string
}

// resolveFIPPort resolves the port a floating IP is to map onto: one of
// project's, on the floating IP's peer.
func (s *Service) resolveFIPPort(ctx context.Context, project, portID string, m *peers.Member) (string, error) {
	ref, err := s.Resolve(ctx, project, KindPort, portID)
	if err != nil {
		return "", err
	}
	if ref.Member.Peer.ID != m.Peer.ID {
		return "", otherPeer("Port "+portID, ref.Member, m)
	}
	return ref.PeerResourceID, nil
}

// CreateFloatingIP takes an address on an external network for project.
func (s *Service) CreateFloatingIP(ctx context.Context, project string, req FloatingIPCreate) (FloatingIP, error) {
	if req.Address != "" {
		// Neutron's default policy: choosing the address is an admin's.
		if err := adminOnly(ctx, "create_floatingip:floating_ip_address"); err != nil {
			return FloatingIP{}, err
		}
	}
	net, err := s.externalNetwork(ctx, project, req.NetworkID, "floatingip")
	if err != nil {
		return FloatingIP{}, err
	}
	m := net.Member
	rt, err := routing(ctx, m)
	if err != nil {
		return FloatingIP{}, err
	}
	spec := peers.FloatingIPSpec{Project: project, NetworkID: net.PeerResourceID, Address: req.Address, FixedIP: req.FixedIP}
	if req.PortID != "" {
		if spec.PortID, err = s.resolveFIPPort(ctx, project, req.PortID, m); err != nil {
			return FloatingIP{}, err
		}
	}
	id := uuid.NewString()
	res, err := s.reserve(ctx, project, KindFloatingIP, id)
	if err != nil {
		return FloatingIP{}, err
	}
	defer s.release(ctx, res)
	spec.Metadata = s.meta(project, id, nil)
	pf, err := rt.CreateFloatingIP(ctx, spec)
	if err != nil {
		return FloatingIP{}, s.fipRefusal(err)
	}
	now := time.Now().UTC()
	e := index.Entry{Kind: KindFloatingIP, ID: id, Project: project, PeerID: m.Peer.ID, PeerResourceID: pf.ID, Name: pf.Address, CreatedAt: now}
	var a *Attrs
	if req.Description != "" {
		a = &Attrs{Description: req.Description}
	}
	if err := s.record(ctx, e, a, func(ctx context.Context) error { return rt.DeleteFloatingIP(ctx, pf.ID) }, res); err != nil {
		return FloatingIP{}, err
	}
	s.Log.WithFields(logrus.Fields{"floatingip": id, "peer": m.Peer.Name, "project": project}).Info("floating IP created")
	out := s.fipOf(ctx, e, m, pf, Attrs{})
	if a != nil {
		out.Attrs = *a
	}
	return out, nil
}

// fipRefusal is peerRefusal with Neutron's names for a floating IP's.
func (s *Service) fipRefusal(err error) error {
	switch {
	case errors.Is(err, peers.ErrCapacity):
		return &Error{Status: 409, Type: "IpAddressGenerationFailure", Err: ErrInUse, Message: "No more IP addresses available on the external network."}
	case errors.Is(err, peers.ErrInvalid):
		return &Error{Status: 400, Type: "BadRequest", Err: ErrInvalid, Message: "Bad floatingip request: " + peerMessage(err, nil)}
	case errors.Is(err, peers.ErrConflict):
		return &Error{Status: 409, Type: "FloatingIPPortAlreadyAssociated", Err: ErrInUse, Message: peerMessage(err, nil)}
	}
	return err
}

// fipOf is a peer's floating IP under broker IDs.
func (s *Service) fipOf(ctx context.Context, e index.Entry, m *peers.Member, pf peers.FloatingIP, a Attrs) FloatingIP {
	out := FloatingIP{Ref: refOf(e, m), Peer: pf, Attrs: a, NetworkID: NativeID(m.Peer.ID, KindNetwork, pf.NetworkID)}
	if pf.PortID != "" {
		out.PortID = s.brokerPortID(ctx, e.Project, m.Peer.ID, pf.PortID)
	}
	if pf.RouterID != "" {
		out.RouterID = s.brokerRouterID(ctx, e.Project, m.Peer.ID, pf.RouterID)
	}
	return out
}

// brokerRouterID is the broker ID of a peer's router of project's.
func (s *Service) brokerRouterID(ctx context.Context, project, peerID, peerRouterID string) string {
	if es, err := s.Index.OnPeer(ctx, KindRouter, project, peerID); err == nil {
		for _, e := range es {
			if e.PeerResourceID == peerRouterID {
				return e.ID
			}
		}
	}
	return NativeID(peerID, KindRouter, peerRouterID)
}

// GetFloatingIP returns a floating IP of project.
func (s *Service) GetFloatingIP(ctx context.Context, project, id string) (FloatingIP, error) {
	e, m, err := s.ownEntry(ctx, project, KindFloatingIP, id)
	if err != nil {
		return FloatingIP{}, err
	}
	rt, ok := m.Cloud.(peers.Routers)
	if !ok {
		return FloatingIP{}, notFound(KindFloatingIP, id)
	}
	pf, err := rt.GetFloatingIP(ctx, e.PeerResourceID)
	if errors.Is(err, peers.ErrNotFound) {
		return FloatingIP{}, notFound(KindFloatingIP, id)
	}
	if err != nil {
		return FloatingIP{}, err
	}
	a, err := s.attrsOf(ctx, KindFloatingIP, id)
	if err != nil {
		return FloatingIP{}, err
	}
	return s.fipOf(ctx, e, m, pf, a), nil
}

// ListFloatingIPs returns project's floating IPs (every project's for
// ""), and the peers that did not answer.
func (s *Service) ListFloatingIPs(ctx context.Context, project string) ([]FloatingIP, []string, error) {
	found, entries, failed, err := indexedOnPeers(ctx, s, project, KindFloatingIP, func(ctx context.Context, m *peers.Member, o peers.ListOptions) ([]peers.FloatingIP, error) {
		rt, ok := m.Cloud.(peers.Routers)
		if !ok {
			return nil, nil
		}
		return rt.ListFloatingIPs(ctx, o)
	}, func(f peers.FloatingIP) string { return f.ID })
	if err != nil {
		return nil, nil, err
	}
	lookup, err := s.attrsLookup(ctx)
	if err != nil {
		return nil, nil, err
	}
	var out []FloatingIP
	for _, e := range entries {
		pf, ok := found[e.PeerID+"/"+e.PeerResourceID]
		if !ok {
			continue
		}
		m, _ := s.member(e.PeerID)
		out = append(out, s.fipOf(ctx, e, m, pf, lookup(KindFloatingIP, e.ID)))
	}
	return out, failed, nil
}

// SetFloatingIPPort associates a floating IP with a port of project on
// its peer (fixedIP picks one of the port's addresses), or disassociates
// it (portID "").
func (s *Service) SetFloatingIPPort(ctx context.Context, project, id, portID, fixedIP string) (FloatingIP, error) {
	e, m, err := s.ownEntry(ctx, project, KindFloatingIP, id)
	if err != nil {
		return FloatingIP{}, err
	}
	rt, err := routing(ctx, m)
	if err != nil {
		return FloatingIP{}, err
	}
	peerPort := ""
	if portID != "" {
		if peerPort, err = s.resolveFIPPort(ctx, project, portID, m); err != nil {
			return FloatingIP{}, err
		}
	}
	if _, err := rt.SetFloatingIPPort(ctx, e.PeerResourceID, peerPort, fixedIP); err != nil {
		return FloatingIP{}, s.fipRefusal(err)
	}
	return s.GetFloatingIP(ctx, project, id)
}

// SetFloatingIPDescription changes a floating IP's description.
func (s *Service) SetFloatingIPDescription(ctx context.Context, project, id, description string) error {
	if _, _, err := s.ownEntry(ctx, project, KindFloatingIP, id); err != nil {
		return err
	}
	_, err := s.changeAttrs(ctx, KindFloatingIP, id, func(a *Attrs) { a.Description = description })
	return err
}

// DeleteFloatingIP releases a floating IP.
func (s *Service) DeleteFloatingIP(ctx context.Context, project, id string) error {
	e, m, err := s.ownEntry(ctx, project, KindFloatingIP, id)
	if err != nil {
		return err
	}
	rt, ok := m.Cloud.(peers.Routers)
	if !ok {
		return notFound(KindFloatingIP, id)
	}
	if err := rt.DeleteFloatingIP(ctx, e.PeerResourceID); err != nil && !errors.Is(err, peers.ErrNotFound) {
		return err
	}
	s.Log.WithFields(logrus.Fields{"floatingip": id, "project": project}).Info("floating IP deleted")
	return s.forget(ctx, e)
}
