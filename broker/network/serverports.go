package network

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// kindServerPort is the index kind of the ports a peer made for a server
// (Nova's networks: [{"uuid": ...}]): the peer made them, not the broker,
// so they carry no marks an index rebuild would find, and a rebuild never
// touches them. Each entry has the port's broker ID (NativeID), the
// server's project, and the server's broker ID as its Parent. The ports
// count against the project's quota through their server's charge (the
// compute API reserves them with it), so these entries carry none.
const kindServerPort = "server_port"

// resolveServerPort finds a port a peer made for one of project's
// servers, or for an interface of one of its routers, by its broker ID,
// in the index (memory).
func (s *Service) resolveServerPort(ctx context.Context, project, id string) (Ref, error) {
	for _, kind := range []string{kindServerPort, kindRouterPort} {
		e, err := s.Index.Get(ctx, kind, id, project)
		if errors.Is(err, index.ErrNotFound) {
			continue
		}
		if err != nil {
			return Ref{}, err
		}
		m, ok := s.member(e.PeerID)
		if !ok {
			return Ref{}, fmt.Errorf("the peer holding port %s is not connected: %w", id, peers.ErrUnavailable)
		}
		return Ref{Kind: KindPort, ID: e.ID, Project: e.Project, Member: m, PeerResourceID: e.PeerResourceID, CreatedAt: e.CreatedAt,
			serverPort: kind == kindServerPort, routerPort: kind == kindRouterPort}, nil
	}
	if cloudAdmin(ctx) {
		return s.resolveGatewayPort(ctx, project, id)
	}
	return Ref{}, notFound(KindPort, id)
}

// serverPortEntry is the index entry of a port peer made for server.
func serverPortEntry(peerID string, p peers.Port, server index.Entry) index.Entry {
	return index.Entry{Kind: kindServerPort, ID: NativeID(peerID, KindPort, p.ID), Project: server.Project, PeerID: peerID,
		PeerResourceID: p.ID, Name: p.Name, CreatedAt: server.CreatedAt, Parent: server.ID}
}

// adopt indexes the server ports a read found without an entry, so the
// IDs it shows resolve on every replica. Writing an entry that exists is
// no change (index.Put), so concurrent readers agree.
func (s *Service) adopt(ctx context.Context, entries []index.Entry) {
	for _, e := range entries {
		if err := s.Index.Put(ctx, e); err != nil {
			s.Log.WithError(err).WithFields(logrus.Fields{"port": e.ID, "server": e.Parent}).Warn("a server's port could not be indexed; it is shown but not yet usable by its ID")
		}
	}
}

// ServerPorts returns the ports on server's peer bound to it (server is
// the compute API's index entry of a server of project), by broker IDs:
// Nova's os-interface.
func (s *Service) ServerPorts(ctx context.Context, project string, server index.Entry) ([]Port, error) {
	m, ok := s.member(server.PeerID)
	if !ok {
		return nil, fmt.Errorf("the peer holding server %s is not connected: %w", server.ID, peers.ErrUnavailable)
	}
	states, failed := s.readPeers(ctx, []*peers.Member{m}, true)
	if len(failed) > 0 {
		return nil, errUnavailable(Ref{Kind: kindServer, ID: server.ID, Member: m})
	}
	v, err := s.visible(ctx, project, states, true)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(v.Ports, func(p Port) bool { return p.Peer.DeviceID != server.PeerResourceID }), nil
}

// ServerPortsOf is ServerPorts for the server of project with broker ID
// serverID, its entry read from the index (memory): another API that
// knows a server by ID (EC2's AssociateAddress) reads its peer alone.
func (s *Service) ServerPortsOf(ctx context.Context, project, serverID string) ([]Port, error) {
	e, err := s.Index.Get(ctx, kindServer, serverID, project)
	if errors.Is(err, index.ErrNotFound) {
		return nil, &Error{Status: 404, Type: "DeviceNotFound", Message: fmt.Sprintf("Server %s could not be found.", serverID), Err: ErrNotFound}
	}
	if err != nil {
		return nil, err
	}
	return s.ServerPorts(ctx, project, e)
}

// PortsOn returns the ports project sees on the peers peerIDs alone,
// reading only those (a caller that knows where its ports are, such as
// EC2's addresses, whose ports are their floating IPs' peers'), and the
// peers that did not answer or are not connected.
func (s *Service) PortsOn(ctx context.Context, project string, peerIDs []string) ([]Port, []string, error) {
	var members []*peers.Member
	var failed []string
	for _, id := range peerIDs {
		if m, ok := s.member(id); ok {
			members = append(members, m)
		} else if m, ok := s.Pool.Get(id); ok {
			failed = append(failed, m.Peer.Name)
		}
	}
	if len(members) == 0 {
		return nil, failed, nil
	}
	states, notAnswered := s.readPeers(ctx, members, true)
	v, err := s.visible(ctx, project, states, true)
	if err != nil {
		return nil, nil, err
	}
	return v.Ports, append(failed, notAnswered...), nil
}

// ForgetServerPorts drops the index entries (and broker-kept attributes)
// of the ports a peer made for server serverID of project: the compute
// API calls it once the server is deleted. Run's discovery drops any it
// misses, once their port or server is gone.
func (s *Service) ForgetServerPorts(ctx context.Context, project, serverID string) error {
	entries, err := s.Index.List(ctx, kindServerPort, project)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Parent == serverID {
			errs = append(errs, s.forget(ctx, e))
		}
	}
	// The server's security groups go with it (the attrs collector takes
	// them if this fails: the server is no longer indexed).
	if err := s.Store.Delete(ctx, attrsKey(kindServer, serverID)); err == nil {
		s.attrRecords().Deleted(attrsKey(kindServer, serverID))
	} else if !errors.Is(err, registry.ErrNotFound) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// serverExists reports whether the server with broker ID id is indexed;
// when the index cannot tell, it assumes so.
func (s *Service) serverExists(ctx context.Context, id string) bool {
	_, err := s.Index.Get(ctx, kindServer, id, "")
	return !errors.Is(err, index.ErrNotFound)
}

// parentExists reports whether the server (or, for a router's port, the
// router) a port's entry e names as its Parent is indexed; when the index
// cannot tell, it assumes so.
func (s *Service) parentExists(ctx context.Context, e index.Entry) bool {
	if e.Kind != kindRouterPort {
		return s.serverExists(ctx, e.Parent)
	}
	_, err := s.Index.Get(ctx, KindRouter, e.Parent, "")
	return !errors.Is(err, index.ErrNotFound)
}

// sweepServerPorts drops the entries of server ports (and routers' ports)
// whose server (router) is no longer indexed, or whose peer answered two full lists in a row
// (states, at consecutive discoveries) without the port: one list that
// misses a port (a peer paging, a listing cut short) must not take a
// user's name and security groups on it. entries were read before the
// peers were listed.
func (s *Service) sweepServerPorts(ctx context.Context, entries []index.Entry, states []peerState) {
	s.missedMu.Lock()
	defer s.missedMu.Unlock()
	missed := map[string]bool{}
	for _, st := range states {
		held := map[string]bool{}
		for _, p := range st.ports {
			held[p.ID] = true
		}
		for _, e := range entries {
			if e.PeerID != st.m.Peer.ID {
				continue
			}
			serverGone := !s.parentExists(ctx, e)
			if !serverGone && held[e.PeerResourceID] {
				continue
			}
			if !serverGone && !s.missedPorts[e.ID] {
				missed[e.ID] = true // the first miss: the next discovery decides
				continue
			}
			if err := s.forget(ctx, e); err != nil {
				s.Log.WithError(err).WithField("port", e.ID).Warn("network discovery: a gone server port's entry stays; the next pass retries")
			}
		}
	}
	s.missedPorts = missed
}
