package network

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
)

// Enforcement: the peers apply the groups (peers.SecurityGroups). A group
// is put on a peer the first time a port there is put in it (a port
// created through Neutron, a server booted in it, a group added to a
// server), and the peer is recorded in the group (SecurityGroup.Peers),
// so a rule change reaches exactly the peers holding a copy, and a
// deleted group leaves them. Every port the broker makes or a peer makes
// for a server is in groups: the ones asked for, else the project's
// default group, so no port of a broker project is left to a remote
// cloud's own default group.

// enforcer is a peer's security groups, or why it has none.
func enforcer(m *peers.Member) (peers.SecurityGroups, error) {
	sg, ok := m.Cloud.(peers.SecurityGroups)
	if !ok {
		return nil, &Error{Status: 409, Type: "SecurityGroupNotSupported", Err: ErrInvalid,
			Message: fmt.Sprintf("Availability zone %s cannot enforce security groups.", m.Peer.Name)}
	}
	return sg, nil
}

// peerGroup is a group as a peer enforces it.
func peerGroup(g SecurityGroup) peers.SecurityGroup {
	out := peers.SecurityGroup{ID: g.ID, Project: g.Project, Name: g.Name, Rules: make([]peers.SecurityRule, 0, len(g.Rules))}
	for _, r := range g.Rules {
		out.Rules = append(out.Rules, peers.SecurityRule{Direction: r.Direction, EtherType: r.EtherType, Protocol: r.Protocol,
			PortRangeMin: r.PortRangeMin, PortRangeMax: r.PortRangeMax, RemoteIPPrefix: r.RemoteIPPrefix, RemoteGroupID: r.RemoteGroupID})
	}
	return out
}

// effectiveGroups is what a port is in: ids, or the project's default
// group when nil.
func effectiveGroups(project string, ids []string) []string {
	if ids == nil {
		return []string{DefaultSecurityGroupID(project)}
	}
	return ids
}

// PrepareGroups puts the project's groups ids on peer m, so a port there
// can be put in them (a server's, before it boots). nil is the project's
// default group. It returns the IDs to hand the peer: nil for a peer that
// cannot enforce groups when only the default group is asked for (its
// ports are left as the peer makes them); other groups there are refused.
func (s *Service) PrepareGroups(ctx context.Context, project string, m *peers.Member, ids []string) ([]string, error) {
	ids = effectiveGroups(project, ids)
	sg, err := enforcer(m)
	if err != nil {
		if slices.Equal(ids, []string{DefaultSecurityGroupID(project)}) {
			return nil, nil
		}
		return nil, err
	}
	for _, id := range ids {
		g, err := s.SecurityGroup(ctx, project, id)
		if err != nil {
			return nil, err
		}
		if err := sg.PutSecurityGroup(ctx, peerGroup(g)); err != nil {
			return nil, peerRefusal(m, err)
		}
		if slices.Contains(g.Peers, m.Peer.ID) {
			continue
		}
		if _, err := s.changeGroup(ctx, project, id, func(g *SecurityGroup) error {
			if !slices.Contains(g.Peers, m.Peer.ID) {
				g.Peers = append(g.Peers, m.Peer.ID)
			}
			return nil
		}); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// peerRefusal turns a peer's refusal of a group into the API's error.
func peerRefusal(m *peers.Member, err error) error {
	if errors.Is(err, peers.ErrInvalid) || errors.Is(err, peers.ErrNotSupported) {
		return &Error{Status: 400, Type: "SecurityGroupRuleInvalid", Err: ErrInvalid,
			Message: fmt.Sprintf("Availability zone %s cannot enforce a rule of this security group.", m.Peer.Name)}
	}
	return err
}

// applyPort puts a peer's port in the groups ids (nil: the default).
func (s *Service) applyPort(ctx context.Context, project string, m *peers.Member, peerPortID string, ids []string) error {
	ids, err := s.PrepareGroups(ctx, project, m, ids)
	if err != nil || ids == nil {
		return err
	}
	sg, _ := enforcer(m)
	if err := sg.SetPortSecurityGroups(ctx, peerPortID, ids); err != nil {
		return peerRefusal(m, err)
	}
	return nil
}

// pushGroup hands a changed group to every peer holding a copy. A peer
// refusing a rule (one it cannot filter) is ErrInvalid: the caller undoes
// the change. A peer not answering is logged: its copy is stale until
// the group's next change.
func (s *Service) pushGroup(ctx context.Context, g SecurityGroup) error {
	var errs []error
	for _, pid := range g.Peers {
		m, ok := s.member(pid)
		if !ok {
			s.Log.WithFields(logrus.Fields{"security_group": g.ID, "peer": pid}).Warn("a peer holding the security group is not connected; its copy is stale")
			continue
		}
		sg, err := enforcer(m)
		if err != nil {
			continue
		}
		if err := sg.PutSecurityGroup(ctx, peerGroup(g)); err != nil {
			if errors.Is(err, peers.ErrInvalid) || errors.Is(err, peers.ErrNotSupported) {
				errs = append(errs, peerRefusal(m, err))
				continue
			}
			s.Log.WithError(err).WithFields(logrus.Fields{"security_group": g.ID, "peer": m.Peer.Name}).Warn("a peer did not take the changed security group; its copy is stale")
		}
	}
	return errors.Join(errs...)
}

// dropGroup removes a deleted group's copies from its peers; a copy left
// behind is logged.
func (s *Service) dropGroup(ctx context.Context, g SecurityGroup) {
	if err := s.deleteCopies(ctx, g); err != nil {
		s.Log.WithError(err).WithField("security_group", g.ID).Warn("the copy of a deleted security group stays on a peer")
	}
}

// deleteCopies deletes a group's copies from the peers holding one. A
// peer removed from the registry is skipped (its copies went with it as
// far as the broker is concerned); one registered but not connected, or
// refusing (a port is still in the group), is an error.
func (s *Service) deleteCopies(ctx context.Context, g SecurityGroup) error {
	var errs []error
	for _, pid := range g.Peers {
		m, ok := s.Pool.Get(pid)
		if !ok {
			continue
		}
		if m.Cloud == nil {
			errs = append(errs, fmt.Errorf("peer %s is not connected", m.Peer.Name))
			continue
		}
		sg, err := enforcer(m)
		if err != nil {
			continue
		}
		if err := sg.DeleteSecurityGroup(ctx, g.ID); err != nil && !errors.Is(err, peers.ErrNotFound) {
			errs = append(errs, fmt.Errorf("deleting the copy on peer %s: %w", m.Peer.Name, err))
		}
	}
	return errors.Join(errs...)
}

// ResolveGroups turns the names or IDs Nova's security_groups (and EC2's
// group names and IDs) give into the project's group IDs, in order,
// without repeats; none is the default group.
func (s *Service) ResolveGroups(ctx context.Context, project string, namesOrIDs []string) ([]string, error) {
	var out []string
	for _, n := range namesOrIDs {
		g, err := s.FindSecurityGroup(ctx, project, n)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, g.ID) {
			out = append(out, g.ID)
		}
	}
	return effectiveGroups(project, out), nil
}

// ServerGroups returns the groups a server of project was booted in or
// given since (Nova's view of them), from memory; the default group when
// none was recorded.
func (s *Service) ServerGroups(ctx context.Context, project, serverID string) []SecurityGroup {
	var out []SecurityGroup
	for _, id := range effectiveGroups(project, s.serverGroupIDs(ctx, serverID)) {
		if g, err := s.groupRecords().Get(ctx, sgKey(project, id), false); err == nil {
			out = append(out, g)
		} else if id == DefaultSecurityGroupID(project) {
			out = append(out, SecurityGroup{ID: id, Name: DefaultSecurityGroup, Project: project})
		}
	}
	return out
}

// serverGroupIDs are the groups recorded for a server (nil: none), from
// memory.
func (s *Service) serverGroupIDs(ctx context.Context, serverID string) []string {
	r, err := s.attrRecords().Get(ctx, attrsKey(kindServer, serverID), false)
	if err != nil {
		return nil
	}
	return r.Value.SecurityGroups
}

// RecordServerGroups keeps the groups a server was booted in (the compute
// API calls it once the peer made the server).
func (s *Service) RecordServerGroups(ctx context.Context, serverID string, ids []string) error {
	_, err := s.changeAttrs(ctx, kindServer, serverID, func(a *Attrs) { a.SecurityGroups = slices.Clone(ids) })
	return err
}

// ChangeServerGroups adds (or, when remove, takes out) a group, by name or
// ID, to every port of a server, as Nova's addSecurityGroup and
// removeSecurityGroup do; server is the compute API's index entry. Adding
// a group the server is in, or removing one it is not in, is Nova's 400
// (an ErrInvalid).
func (s *Service) ChangeServerGroups(ctx context.Context, project string, server index.Entry, nameOrID string, remove bool) error {
	g, err := s.FindSecurityGroup(ctx, project, nameOrID)
	if err != nil {
		return err
	}
	m, ok := s.member(server.PeerID)
	if !ok {
		return fmt.Errorf("the peer holding server %s is not connected: %w", server.ID, peers.ErrUnavailable)
	}
	current := effectiveGroups(project, s.serverGroupIDs(ctx, server.ID))
	switch {
	case !remove && slices.Contains(current, g.ID):
		return &Error{Status: 400, Type: "SecurityGroupExistsForInstance", Err: ErrInvalid,
			Message: fmt.Sprintf("Security group %s is already associated with the instance %s", g.Name, server.ID)}
	case remove && !slices.Contains(current, g.ID):
		return &Error{Status: 400, Type: "SecurityGroupNotExistsForInstance", Err: ErrInvalid,
			Message: fmt.Sprintf("Security group %s not associated with the instance %s", g.Name, server.ID)}
	}
	ports, err := s.ServerPorts(ctx, project, server)
	if err != nil {
		return err
	}
	change := func(ids []string) []string {
		ids = slices.Clone(ids)
		if remove {
			return slices.DeleteFunc(ids, func(id string) bool { return id == g.ID })
		}
		if !slices.Contains(ids, g.ID) {
			ids = append(ids, g.ID)
		}
		return ids
	}
	next := change(current)
	for _, p := range ports {
		groups := p.Attrs.SecurityGroups
		if !p.Ref.serverPort || p.ownGroups {
			// A port with groups of its own (one the broker made, or a
			// server's port a user changed) changes alone.
			groups = change(effectiveGroups(project, groups))
			if _, err := s.changeAttrs(ctx, KindPort, p.Ref.ID, func(a *Attrs) { a.SecurityGroups = groups }); err != nil {
				return err
			}
		} else {
			groups = next
		}
		if err := s.applyPort(ctx, project, m, p.Ref.PeerResourceID, groups); err != nil {
			return err
		}
	}
	return s.RecordServerGroups(ctx, server.ID, next)
}
