package compute

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Nova names its instance actions after the API call, which differs from
// the peers' names for a few.
var novaActionName = map[peers.ServerAction]string{
	peers.ActionStart: "start", peers.ActionStop: "stop",
	peers.ActionReboot: "reboot", peers.ActionHardReboot: "reboot",
	peers.ActionPause: "pause", peers.ActionUnpause: "unpause",
	peers.ActionSuspend: "suspend", peers.ActionResume: "resume",
	peers.ActionConfirmResize: "confirmResize", peers.ActionRevertResize: "revertResize",
}

// novaEvent is the event Nova's compute manager records for an action
// (the name of the manager's method, prefixed "compute_").
var novaEvent = map[string]string{
	"create": "compute__do_build_and_run_instance",
	"start":  "compute_start_instance", "stop": "compute_stop_instance",
	"reboot": "compute_reboot_instance",
	"pause":  "compute_pause_instance", "unpause": "compute_unpause_instance",
	"suspend": "compute_suspend_instance", "resume": "compute_resume_instance",
	"resize": "compute_resize_instance", "confirmResize": "compute_confirm_resize", "revertResize": "compute_revert_resize",
	"createImage": "compute_snapshot_instance", "rebuild": "compute_rebuild_instance",
	"shelve": "compute_shelve_instance", "shelveOffload": "compute_shelve_offload_instance", "unshelve": "compute_unshelve_instance",
	"rescue": "compute_rescue_instance", "unrescue": "compute_unrescue_instance",
	"lock": "", "unlock": "", // broker-side: nothing happens on a cloud
}

// Action runs a power action (start, stop, reboot, hard_reboot, pause,
// unpause, suspend, resume) or ends a resize (confirm_resize,
// revert_resize, which settle the quota as Resize says). One the server's state does not allow is
// ErrConflict, and so is any action on a locked server by a caller who is
// not a cloud admin (Nova's InstanceIsLocked). The action is recorded in
// the server's instance actions.
func (s *Servers) Action(ctx context.Context, c Caller, id string, action peers.ServerAction) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout()) // one peer's call: bounded like a fan-out's part
	defer cancel()
	name, known := novaActionName[action]
	if !known {
		return invalid("action", "Invalid action %q", action)
	}
	e, m, err := s.lookup(ctx, c, id)
	if err != nil {
		return err
	}
	if err := s.checkLock(ctx, c, id); err != nil {
		return err
	}
	err = m.Cloud.ServerAction(ctx, e.PeerResourceID, action)
	switch {
	case errors.Is(err, peers.ErrConflict):
		return &Error{Message: fmt.Sprintf("Cannot '%s' instance %s while it is in its current state.", action, id), Err: faults.WithCause(ErrConflict, err)}
	case errors.Is(err, peers.ErrNotFound):
		return notFound(id)
	case err != nil:
		return err
	}
	if action == peers.ActionConfirmResize || action == peers.ActionRevertResize {
		s.settleResize(ctx, c, e, action)
	}
	where := eventHost{m: m}
	if srv, err := m.Cloud.GetServer(ctx, e.PeerResourceID); err == nil { // for the event's hostId; best effort
		where.host = srv.Host
	}
	s.recordAction(ctx, c, id, name, where, nil)
	return nil
}

// checkLock refuses a caller who is not a cloud admin when the server is
// locked. Nova refuses the user who locked it too: only unlock passes.
func (s *Servers) checkLock(ctx context.Context, c Caller, id string) error {
	if c.Admin {
		return nil
	}
	a, _, err := s.attrStore().Load(ctx, c.Project, id) // decided on: the Store's current version, not memory
	if err != nil {
		return err
	}
	if a.Locked {
		return &Error{Message: fmt.Sprintf("Instance %s is locked", id), Err: ErrConflict}
	}
	return nil
}

// Lock locks a server of the caller's project with an optional reason
// (Nova's lock, 2.73's locked_reason): later actions, deletes, rebuilds
// and metadata changes by anyone but a cloud admin are refused until it
// is unlocked. locked_by is "owner" as Nova records a lock by the
// server's own project (the only one that sees it: admins of other
// projects do not reach it through the broker).
func (s *Servers) Lock(ctx context.Context, c Caller, id, reason string) error {
	if len(reason) > 255 {
		return invalid("locked_reason", "Invalid input for field/attribute locked_reason: at most 255 characters")
	}
	if err := s.setAttrs(ctx, c, id, func(a *attrs) error {
		a.Locked, a.LockedBy, a.LockedByUser, a.LockedReason = true, "owner", c.User, reason
		if c.Admin {
			a.LockedBy = "admin"
		}
		return nil
	}); err != nil {
		return err
	}
	s.recordAction(ctx, c, id, "lock", eventHost{}, nil)
	return nil
}

// Unlock unlocks a server. A lock an admin took takes an admin to lift
// (Nova's unlock_override policy: 403 for others); unlocking an unlocked
// server is no error, as in Nova.
func (s *Servers) Unlock(ctx context.Context, c Caller, id string) error {
	if err := s.setAttrs(ctx, c, id, func(a *attrs) error {
		if a.Locked && a.LockedBy == "admin" && !c.Admin {
			return &Error{Message: "Policy doesn't allow os_compute_api:os-lock-server:unlock:unlock_override to be performed.", Err: ErrForbidden}
		}
		a.Locked, a.LockedBy, a.LockedByUser, a.LockedReason = false, "", "", ""
		return nil
	}); err != nil {
		return err
	}
	s.recordAction(ctx, c, id, "unlock", eventHost{}, nil)
	return nil
}

// setAttrs applies change to a server's attrs with a CAS, trying again on
// a concurrent update.
func (s *Servers) setAttrs(ctx context.Context, c Caller, id string, change func(*attrs) error) error {
	if _, _, err := s.lookup(ctx, c, id); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		a, at, err := s.attrStore().Load(ctx, c.Project, id)
		if err != nil {
			return err
		}
		if err := change(&a); err != nil {
			return err
		}
		a.UpdatedAt = time.Now().UTC()
		err = s.attrStore().CAS(ctx, c.Project, id, a, at)
		if errors.Is(err, registry.ErrConflict) && attempt < 5 {
			continue
		}
		return err
	}
}

// ResetState forces a server ACTIVE or ERROR (Nova's os-resetState,
// "active" or "error"): a cloud admin's tool for a server stuck in a
// state, passed to its peer (peers.ServerStateResetter). Anyone else is
// ErrForbidden, as Nova's default policy has it.
func (s *Servers) ResetState(ctx context.Context, c Caller, id, state string) error {
	if !c.Admin {
		return &Error{Message: "Policy doesn't allow os_compute_api:os-admin-actions:reset_state to be performed.", Err: ErrForbidden}
	}
	status, ok := map[string]peers.ServerStatus{"active": peers.ServerActive, "error": peers.ServerError}[state]
	if !ok {
		return invalid("state", "Invalid input for field/attribute state. Value: %s. %q is not one of ['active', 'error']", state, state)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	e, m, err := s.lookup(ctx, c, id)
	if err != nil {
		return err
	}
	rs, ok := m.Cloud.(peers.ServerStateResetter)
	if !ok {
		return fmt.Errorf("the cloud holding server %s cannot reset states: %w", id, peers.ErrNotSupported)
	}
	err = rs.ResetServerState(ctx, e.PeerResourceID, status)
	switch {
	case errors.Is(err, peers.ErrConflict):
		return &Error{Message: fmt.Sprintf("Cannot reset the state of instance %s now: an action on it is still running or a resize waits for its confirm or revert.", id), Err: faults.WithCause(ErrConflict, err)}
	case errors.Is(err, peers.ErrNotFound):
		return notFound(id)
	case err != nil:
		return err
	}
	s.Log.WithField("server", id).WithField("state", state).Warn("server state reset by an admin")
	return nil
}
