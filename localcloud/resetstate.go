package localcloud

import (
	"context"

	"github.com/cloudmux/cloudmux/peers"
)

var _ peers.ServerStateResetter = (*Cloud)(nil)

// ResetServerState sets a server ACTIVE or ERROR, as Nova's os-resetState
// sets its vm_state; the domain is left as it is. A server whose action
// still runs, or that waits in VERIFY_RESIZE (holding two flavors' room,
// which only a confirm or a revert settles), is ErrConflict: the cloud's
// actions end on their own within their timeouts, so nothing here stays
// stuck the way a lost Nova RPC leaves a task_state. ACTIVE needs the
// domain to exist.
func (c *Cloud) ResetServerState(ctx context.Context, id string, status peers.ServerStatus) error {
	if status != peers.ServerActive && status != peers.ServerError {
		return errf(peers.ErrInvalid, "server %s: a reset sets ACTIVE or ERROR, not %q", id, status)
	}
	s, err := lockOne(c, ctx, "server", c.servers, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	switch {
	case s.task != "" || s.deleteWait:
		return errf(peers.ErrConflict, "server %s is busy (%s); its action ends within its timeout", id, s.task)
	case s.Status == peers.ServerVerifyResize:
		return errf(peers.ErrConflict, "server %s waits for its resize to be confirmed or reverted", id)
	case status == peers.ServerActive && !s.defined:
		return errf(peers.ErrConflict, "server %s has no domain; it cannot be ACTIVE", id)
	}
	s.Status, s.UpdatedAt = status, now()
	if status == peers.ServerActive {
		s.Fault = ""
	} else if s.Fault == "" {
		s.Fault = "state reset to ERROR by an administrator"
	}
	c.markLocked(recServer, id)
	c.log.WithField("server", id).WithField("status", string(status)).Warn("server state reset")
	c.saveLocked()
	return nil
}
