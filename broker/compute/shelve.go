package compute

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
)

// Shelve shelves a server on its peer (peers.ServerShelver): SHELVED,
// then SHELVED_OFFLOADED once the peer freed its host (at once on the
// local cloud, as Nova's default shelved_offload_time of 0). The quota
// keeps counting the server, as Nova counts a shelved-offloaded instance
// and its cores and RAM (usage is not read from placement by default):
// an unshelve never fails on quota.
func (s *Servers) Shelve(ctx context.Context, c Caller, id string) error {
	return s.shelveAction(ctx, c, id, "shelve", peers.ServerShelver.ShelveServer)
}

// ShelveOffload offloads a SHELVED server: a cloud admin's action, as
// Nova's default policy has it.
func (s *Servers) ShelveOffload(ctx context.Context, c Caller, id string) error {
	if !c.Admin {
		return &Error{Message: "Policy doesn't allow os_compute_api:os-shelve:shelve_offload to be performed.", Err: ErrForbidden}
	}
	return s.shelveAction(ctx, c, id, "shelveOffload", peers.ServerShelver.OffloadServer)
}

// Unshelve boots a shelved server again. zone, when not empty (Nova
// 2.77), is the availability zone asked for: the broker does not move a
// shelved server to another peer, so only the server's own peer is a
// zone it may go to; another is refused as Nova refuses a zone that is
// not available (400), and any zone needs the server offloaded (409, as
// Nova).
func (s *Servers) Unshelve(ctx context.Context, c Caller, id, zone string) error {
	if zone != "" {
		e, m, err := s.lookup(ctx, c, id)
		if err != nil {
			return err
		}
		if zone != m.Peer.Name {
			return invalid("availability_zone", "The requested availability zone is not available: server %s can only be unshelved in its own zone %s (the broker does not move shelved servers between clouds)", id, m.Peer.Name)
		}
		srv, err := s.peerServer(ctx, e, m)
		if err != nil {
			return err
		}
		if srv.Status != peers.ServerShelvedOffloaded {
			return &Error{Message: fmt.Sprintf("The server %s is %s; an unshelve with an availability zone needs it SHELVED_OFFLOADED.", id, srv.Status), Err: ErrConflict}
		}
	}
	return s.shelveAction(ctx, c, id, "unshelve", peers.ServerShelver.UnshelveServer)
}

// unlocked finds a server of the caller's and its peer, refusing a
// locked one (checkLock).
func (s *Servers) unlocked(ctx context.Context, c Caller, id string) (index.Entry, *peers.Member, error) {
	e, m, err := s.lookup(ctx, c, id)
	if err != nil {
		return e, m, err
	}
	return e, m, s.checkLock(ctx, c, id)
}

// shelveAction runs one of a ServerShelver's calls on a server of the
// caller's, after the lock check, and records it as Nova names it.
func (s *Servers) shelveAction(ctx context.Context, c Caller, id, name string, call func(peers.ServerShelver, context.Context, string) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	e, m, err := s.unlocked(ctx, c, id)
	if err != nil {
		return err
	}
	sh, ok := m.Cloud.(peers.ServerShelver)
	if !ok {
		return &Error{Message: fmt.Sprintf("The cloud holding server %s cannot shelve servers.", id), Err: faults.WithCause(ErrConflict, peers.ErrNotSupported)}
	}
	err = call(sh, ctx, e.PeerResourceID)
	switch {
	case errors.Is(err, peers.ErrConflict):
		return &Error{Message: fmt.Sprintf("Cannot '%s' instance %s while it is in its current state.", name, id), Err: faults.WithCause(ErrConflict, err)}
	case errors.Is(err, peers.ErrCapacity):
		return &Error{Message: fmt.Sprintf("No valid host was found. The host of server %s has no room to unshelve it now.", id), Err: faults.WithCause(ErrNoValidHost, err)}
	case errors.Is(err, peers.ErrNotFound):
		return notFound(id)
	case err != nil:
		return err
	}
	where := eventHost{m: m}
	if srv, err := m.Cloud.GetServer(ctx, e.PeerResourceID); err == nil {
		where.host = srv.Host
	}
	s.recordAction(ctx, c, id, name, where, nil)
	return nil
}
