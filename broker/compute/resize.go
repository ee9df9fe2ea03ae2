package compute

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
)

// Resize starts resizing a server to flavorRef (a flavor ID or name, as
// create takes it), on the peer the server runs on: the server goes
// RESIZE, then VERIFY_RESIZE with the new flavor, until ConfirmResize or
// RevertResize (Action's confirm_resize, revert_resize).
//
// Quota: the growth (cores, RAM) is reserved before the peer is asked
// and committed when it accepts, so concurrent resizes and creates never
// pass the limits together; a revert frees it again. A shrink is freed
// only at the confirm, as Nova frees the old flavor's usage then. The
// server's index entry carries what it counts, so its delete frees that.
func (s *Servers) Resize(ctx context.Context, c Caller, id, flavorRef string) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	e, m, err := s.unlocked(ctx, c, id)
	if err != nil {
		return err
	}
	rs, ok := m.Cloud.(peers.ServerResizer)
	if !ok {
		return fmt.Errorf("the cloud holding server %s cannot resize servers: %w", id, peers.ErrNotSupported)
	}
	to, brokerFlavor, err := s.resizeFlavor(ctx, m, flavorRef)
	if err != nil {
		return err
	}
	srv, err := s.peerServer(ctx, e, m)
	if err != nil {
		return err
	}
	if srv.FlavorID == to.ID {
		return invalid("flavorRef", "Resize requires a flavor change.")
	}
	from := e.Charge.Clone()
	if len(from) == 0 { // an entry a rebuild adopted counts nothing yet: go by the flavor it has
		f, _ := s.flavors.get(ctx, m, srv.FlavorID)
		from = serverCharge(f)
	}
	next := serverCharge(to)
	grow := chargeDiff(next, from)
	var res *quota.Reservation
	if len(grow) > 0 {
		if res, err = s.Quota.Reserve(ctx, quota.Scope{Project: c.Project}, grow, "resize of "+KindServer+" "+id); err != nil {
			return quotaError(err)
		}
	}
	release := func() {
		if res != nil {
			if rerr := res.Release(context.WithoutCancel(ctx)); rerr != nil {
				s.Log.WithError(rerr).WithField("server", id).Warn("a refused resize's reservation not released; it expires")
			}
		}
	}
	if err := rs.ResizeServer(ctx, e.PeerResourceID, to.ID); err != nil {
		release()
		switch {
		case errors.Is(err, peers.ErrConflict):
			return &Error{Message: fmt.Sprintf("Cannot 'resize' instance %s while it is in its current state.", id), Err: faults.WithCause(ErrConflict, err)}
		case errors.Is(err, peers.ErrCapacity):
			return &Error{Message: fmt.Sprintf("No valid host was found. The cloud holding server %s has no room for flavor %s beside its current one.", id, to.Name), Err: faults.WithCause(ErrNoValidHost, err)}
		case errors.Is(err, peers.ErrInvalid), errors.Is(err, peers.ErrNotFound):
			return &Error{Field: "flavorRef", Message: fmt.Sprintf("Cannot resize server %s to flavor %s: a flavor with a smaller root disk is refused (a disk does not shrink).", id, to.Name), Err: faults.WithCause(ErrInvalid, err)}
		}
		return err
	}
	if res != nil {
		if err := res.Commit(context.WithoutCancel(ctx)); err != nil {
			s.Log.WithError(err).WithField("server", id).Error("a resize's growth not counted; the reservation expires")
		}
	}
	// While it waits, the server counts the larger of both flavors in each
	// dimension: the old one's plus the growth.
	held := addCharge(from, grow)
	if err := s.Index.SetCharge(context.WithoutCancel(ctx), e, held); err != nil {
		s.Log.WithError(err).WithField("server", id).Error("a resized server's charge not recorded; its delete frees the old flavor's")
	}
	if err := s.setAttrs(ctx, c, id, func(a *attrs) error {
		a.ResizeFrom, a.ResizeTo = from, next
		if a.Flavors == nil {
			a.Flavors = map[string]flavorName{}
		}
		if _, known := a.Flavors[srv.FlavorID]; !known { // what a revert goes back to
			cur := s.present(e, m, srv, *a, nil)
			a.Flavors[srv.FlavorID] = flavorName{ID: cur.FlavorID, Name: cur.FlavorName}
		}
		a.Flavors[to.ID] = brokerFlavor
		return nil
	}); err != nil {
		s.Log.WithError(err).WithField("server", id).Error("a resized server's old charge not kept; a revert frees nothing")
	}
	s.recordAction(ctx, c, id, "resize", eventHost{m, srv.Host}, nil)
	return nil
}

// resizeFlavor finds flavorRef among the flavors every peer offers, by ID
// then by name, and returns m's flavor of that name and the broker's.
func (s *Servers) resizeFlavor(ctx context.Context, m *peers.Member, ref string) (peers.Flavor, flavorName, error) {
	members, _ := s.connected()
	merged, i := findFlavor(s.cachedFlavors(ctx, members, false), ref)
	if i < 0 {
		return peers.Flavor{}, flavorName{}, &Error{Field: "flavorRef", Message: fmt.Sprintf("Flavor %s could not be found.", ref), Err: ErrInvalid}
	}
	own, err := s.flavors.list(ctx, m, false)
	if err != nil {
		return peers.Flavor{}, flavorName{}, err
	}
	j := slices.IndexFunc(own, func(f peers.Flavor) bool { return f.Name == merged[i].Name })
	if j < 0 {
		return peers.Flavor{}, flavorName{}, &Error{Field: "flavorRef", Message: fmt.Sprintf("Flavor %s is not offered where the server runs (%s).", merged[i].Name, m.Peer.Name), Err: ErrInvalid}
	}
	return own[j], flavorName{ID: merged[i].ID, Name: merged[i].Name}, nil
}

// settleResize adjusts the quota and the entry's charge once the peer took
// a confirm (the server keeps the new flavor: a shrink's difference is
// freed) or a revert (the old flavor again: the growth is freed).
func (s *Servers) settleResize(ctx context.Context, c Caller, e index.Entry, action peers.ServerAction) {
	ctx = context.WithoutCancel(ctx)
	a, _, err := s.attrStore().Load(ctx, c.Project, e.ID)
	if err != nil || a.ResizeTo == nil {
		if err != nil {
			s.Log.WithError(err).WithField("server", e.ID).Error("a resize's charges not read; the quota keeps the larger flavor")
		}
		return
	}
	held := addCharge(a.ResizeFrom, chargeDiff(a.ResizeTo, a.ResizeFrom))
	keep := a.ResizeTo
	if action == peers.ActionRevertResize {
		keep = a.ResizeFrom
	}
	if free := chargeDiff(held, keep); len(free) > 0 {
		if err := s.Quota.Free(ctx, quota.Scope{Project: c.Project}, free); err != nil {
			s.Log.WithError(err).WithField("server", e.ID).Error("a settled resize's difference not freed; it stays counted")
		}
	}
	if err := s.Index.SetCharge(ctx, e, keep); err != nil {
		s.Log.WithError(err).WithField("server", e.ID).Error("a settled resize's charge not recorded")
	}
	if err := s.setAttrs(ctx, c, e.ID, func(a *attrs) error {
		a.ResizeFrom, a.ResizeTo = nil, nil
		return nil
	}); err != nil {
		s.Log.WithError(err).WithField("server", e.ID).Warn("a settled resize's charges left in the server's attributes")
	}
}

// chargeDiff is what a counts beyond b, dimension by dimension (none
// where a is not larger).
func chargeDiff(a, b quota.Amounts) quota.Amounts {
	out := quota.Amounts{}
	for k, v := range a {
		if d := v - b[k]; d > 0 {
			out[k] = d
		}
	}
	return out
}

// addCharge is a plus b.
func addCharge(a, b quota.Amounts) quota.Amounts {
	out := a.Clone()
	if out == nil {
		out = quota.Amounts{}
	}
	for k, v := range b {
		out[k] += v
	}
	return out
}
