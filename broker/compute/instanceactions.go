package compute

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/google/uuid"

	"github.com/cloudmux/cloudmux/broker/kept"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// ActionsPrefix holds every server's instance actions: one record per
// server (Root + project + "/" + server ID), so showing them reads one key
// and deleting the server deletes them.
const ActionsPrefix = "compute/server-actions/"

// maxActions bounds a server's record: the oldest actions are dropped
// beyond it (Nova keeps them all, in a database table; a Store record must
// stay small).
const maxActions = 100

// InstanceAction is one action taken on a server, as Nova's
// os-instance-actions shows it.
type InstanceAction struct {
	Action    string `json:"action"`
	RequestID string `json:"request_id"`
	UserID    string `json:"user_id"`
	ProjectID string `json:"project_id"`
	// Message is "Error" when the action failed, as Nova writes it.
	Message   string        `json:"message,omitempty"`
	StartTime time.Time     `json:"start_time"`
	UpdatedAt time.Time     `json:"updated_at"`
	Events    []ActionEvent `json:"events,omitempty"`
}

// ActionEvent is one step of an action. The broker records the step the
// server's peer took on: Finish is when the peer accepted the request
// (or refused it: Result "Error"), not when the guest settled, which the
// server's status shows.
type ActionEvent struct {
	Event     string    `json:"event"`
	Start     time.Time `json:"start_time"`
	Finish    time.Time `json:"finish_time"`
	Result    string    `json:"result"`
	Traceback string    `json:"traceback,omitempty"`
	// Where the event ran (Nova 2.62's host and hostId): the server's
	// peer, which the broker shows as the server's host, and the peer's
	// host of the server, which its hostId hashes.
	PeerID     string `json:"peer_id,omitempty"`
	Host       string `json:"host,omitempty"`
	Hypervisor string `json:"hypervisor,omitempty"`
}

// eventHost is where an action's event runs: the server's peer and the
// peer's host of it ("" when unknown).
type eventHost struct {
	m    *peers.Member
	host string
}

type actionLog struct {
	Actions []InstanceAction `json:"actions"`
}

func (s *Servers) actionStore() kept.Attrs[actionLog] {
	return kept.Attrs[actionLog]{Store: s.Store, Root: ActionsPrefix, Log: s.Log}
}

// requestID is the API request's ID (the X-Openstack-Request-Id the
// client got), or a fresh one for calls that did not come over HTTP.
func requestID(ctx context.Context) string {
	if id := middleware.GetReqID(ctx); id != "" {
		return id
	}
	return "req-" + uuid.NewString()
}

// recordAction appends an action the caller took on a server, with the
// event the peer's answer makes (failed: nil for success). A record that
// cannot be written is logged, never fails the action that was taken.
func (s *Servers) recordAction(ctx context.Context, c Caller, id, action string, where eventHost, failed error) {
	ctx = context.WithoutCancel(ctx)
	t := time.Now().UTC()
	a := InstanceAction{Action: action, RequestID: requestID(ctx), UserID: c.User, ProjectID: c.Project, StartTime: t, UpdatedAt: t}
	if ev := novaEvent[action]; ev != "" {
		e := ActionEvent{Event: ev, Start: t, Finish: t, Result: "Success", Hypervisor: where.host}
		if where.m != nil {
			e.PeerID, e.Host = where.m.Peer.ID, where.m.Peer.Name
		}
		if failed != nil {
			e.Result, a.Message = "Error", "Error"
		}
		a.Events = []ActionEvent{e}
	}
	for attempt := 0; ; attempt++ {
		log, at, err := s.actionStore().Load(ctx, c.Project, id)
		if err == nil {
			log.Actions = append(log.Actions, a)
			if n := len(log.Actions); n > maxActions {
				log.Actions = slices.Delete(log.Actions, 0, n-maxActions)
			}
			err = s.actionStore().CAS(ctx, c.Project, id, log, at)
		}
		if errors.Is(err, registry.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			s.Log.WithError(err).WithField("server", id).WithField("action", action).Warn("instance action not recorded")
		}
		return
	}
}

// InstanceActions lists a server's actions, newest first, as Nova does,
// with their events (the API decides who sees them).
// changesSince and changesBefore (zero: no bound) keep actions updated at
// or after, and at or before, those times (2.58, 2.66).
func (s *Servers) InstanceActions(ctx context.Context, c Caller, id string, changesSince, changesBefore time.Time) ([]InstanceAction, error) {
	if _, _, err := s.lookup(ctx, c, id); err != nil {
		return nil, err
	}
	log, _, err := s.actionStore().Load(ctx, c.Project, id)
	if err != nil {
		return nil, err
	}
	out := make([]InstanceAction, 0, len(log.Actions))
	for i := len(log.Actions) - 1; i >= 0; i-- {
		a := log.Actions[i]
		if !changesSince.IsZero() && a.UpdatedAt.Before(changesSince) || !changesBefore.IsZero() && a.UpdatedAt.After(changesBefore) {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// InstanceAction returns one action of a server by its request ID.
func (s *Servers) InstanceAction(ctx context.Context, c Caller, id, requestID string) (InstanceAction, error) {
	all, err := s.InstanceActions(ctx, c, id, time.Time{}, time.Time{})
	if err != nil {
		return InstanceAction{}, err
	}
	for _, a := range all {
		if a.RequestID == requestID {
			return a, nil
		}
	}
	return InstanceAction{}, &Error{Message: fmt.Sprintf("Action %s could not be found.", requestID), Err: ErrNotFound}
}

// forgetActions deletes a gone server's actions.
func (s *Servers) forgetActions(ctx context.Context, project, id string) {
	if err := s.actionStore().Delete(ctx, project, id); err != nil {
		s.Log.WithError(err).WithField("server", id).Warn("instance actions of a deleted server left behind; the collector removes them")
	}
}

// ActionsLeftovers returns those of kvs (listed under ActionsPrefix) whose
// server is no longer indexed (it vanished from its peer, or its delete
// could not remove them). It is the judge of a gc.Orphans.
func (s *Servers) ActionsLeftovers(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	return s.Index.Unindexed(ctx, kvs, func(key string) (string, string, bool) {
		rest, ok := strings.CutPrefix(key, ActionsPrefix)
		_, id, found := strings.Cut(rest, "/")
		return KindServer, id, ok && found && id != ""
	})
}
