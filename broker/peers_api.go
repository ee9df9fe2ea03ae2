package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/peers/openstack"
	"github.com/cloudmux/cloudmux/registry"
)

func (s *Server) peerRoutes(r chi.Router) {
	r.Use(identity.RequireCloudAdmin)
	r.Get("/", s.listPeers)
	r.Post("/", s.createPeer)
	r.Post("/import", s.importPeers)
	r.Route("/{peer}", func(r chi.Router) {
		r.Get("/", s.showPeer)
		r.Patch("/", s.updatePeer)
		r.Delete("/", s.deletePeer)
		r.Put("/credentials", s.setCredentials)
	})
}

// peerView is a peer as the API shows it: the record (which never holds
// credentials) plus this broker's connection to it.
type peerView struct {
	registry.Peer
	HasCredentials  bool   `json:"has_credentials"`
	Connected       bool   `json:"connected"`
	Driver          string `json:"driver,omitempty"`
	ConnectionError string `json:"connection_error,omitempty"`
}

func (s *Server) viewOf(p registry.Peer) peerView {
	v := peerView{Peer: p, HasCredentials: p.CredentialsRef != ""}
	if s.Pool != nil {
		if m, ok := s.Pool.Get(p.ID); ok {
			v.Connected = m.Cloud != nil
			if m.Cloud != nil {
				v.Driver = m.Cloud.Info().Driver
			}
			if m.Err != nil {
				v.ConnectionError = m.Err.Error()
			}
		}
	}
	return v
}

// listPeers reads the snapshot: no store call on this path. Filters:
// ?kind=, ?status=, ?label=k=v (repeatable).
func (s *Server) listPeers(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	labels, err := parseLabels(q["label"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []peerView{}
	for _, p := range s.Snapshot.View().List() {
		if k := q.Get("kind"); k != "" && string(p.Kind) != k {
			continue
		}
		if st := q.Get("status"); st != "" && string(p.Status) != st {
			continue
		}
		if !hasLabels(p.Labels, labels) {
			continue
		}
		out = append(out, s.viewOf(p))
	}
	writeJSON(w, http.StatusOK, map[string]any{"peers": out})
}

// parseLabels reads repeated ?label=k=v query parameters.
func parseLabels(params []string) (map[string]string, error) {
	labels := map[string]string{}
	for _, l := range params {
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			return nil, &registry.FieldError{Field: "label", Reason: fmt.Sprintf("%q is not key=value", l)}
		}
		labels[k] = v
	}
	return labels, nil
}

func hasLabels(have, want map[string]string) bool {
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

func (s *Server) showPeer(w http.ResponseWriter, r *http.Request) {
	key := chi.URLParam(r, "peer")
	p, ok := s.Snapshot.View().Lookup(key)
	if !ok {
		s.writeError(w, r, fmt.Errorf("peer %q: %w", key, registry.ErrNotFound))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"peer": s.viewOf(p)})
}

// peerRequest is the body of POST /v1/peers. Status may only be set to
// maintenance by hand; the prober owns the others.
type peerRequest struct {
	Name        string                `json:"name"`
	Kind        registry.Kind         `json:"kind"`
	Endpoint    registry.Endpoint     `json:"endpoint"`
	Labels      map[string]string     `json:"labels"`
	Cost        registry.Cost         `json:"cost"`
	Capacity    registry.Capacity     `json:"capacity"`
	Credentials *registry.Credentials `json:"credentials"`
}

func (s *Server) createPeer(w http.ResponseWriter, r *http.Request) {
	var req peerRequest
	if err := decodeJSON(w, r, &req); err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.Peers.Create(r.Context(), registry.Peer{
		Name: req.Name, Kind: req.Kind, Endpoint: req.Endpoint, Labels: req.Labels, Cost: req.Cost, Capacity: req.Capacity,
	}, req.Credentials)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.awaitSnapshot(r.Context(), p.Revision)
	logFrom(r.Context(), s.log).WithField("peer_id", p.ID).WithField("peer", p.Name).Info("peer created")
	writeJSON(w, http.StatusCreated, map[string]any{"peer": s.viewOf(p)})
}

// awaitSnapshot lets a writer read its own write: the next list from this
// client shows the change. Bounded, since the write already succeeded.
func (s *Server) awaitSnapshot(ctx context.Context, rev uint64) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_ = s.Snapshot.WaitIndex(ctx, rev)
}

// awaitGone is awaitSnapshot for a delete: the next list from this client
// no longer shows the peer. Bounded, since the delete already succeeded.
func (s *Server) awaitGone(ctx context.Context, id string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for {
		changed := s.Snapshot.Changed()
		if _, ok := s.Snapshot.View().Get(id); !ok {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return
		}
	}
}

// peerPatch is the body of PATCH /v1/peers/{peer}: absent fields stay.
// Revision, when given, makes the update a compare-and-swap.
type peerPatch struct {
	Name         *string            `json:"name"`
	Endpoint     *registry.Endpoint `json:"endpoint"`
	Labels       *map[string]string `json:"labels"`
	Cost         *registry.Cost     `json:"cost"`
	Status       *registry.Status   `json:"status"`
	StatusReason *string            `json:"status_reason"`
	Revision     uint64             `json:"revision"`
}

func (s *Server) updatePeer(w http.ResponseWriter, r *http.Request) {
	var patch peerPatch
	if err := decodeJSON(w, r, &patch); err != nil {
		s.writeError(w, r, err)
		return
	}
	cur, err := s.Peers.Get(r.Context(), chi.URLParam(r, "peer"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	next := cur
	if patch.Revision != 0 {
		next.Revision = patch.Revision
	}
	if patch.Name != nil {
		next.Name = *patch.Name
	}
	if patch.Endpoint != nil {
		next.Endpoint = *patch.Endpoint
	}
	if patch.Labels != nil {
		next.Labels = *patch.Labels
	}
	if patch.Cost != nil {
		next.Cost = *patch.Cost
	}
	if patch.Status != nil {
		// Admins put a peer into maintenance and take it out; health
		// statuses belong to the prober.
		switch *patch.Status {
		case registry.StatusMaintenance:
			next.Status = registry.StatusMaintenance
		case registry.StatusUp:
			next.Status, next.StatusReason = "", ""
		default:
			s.writeError(w, r, &registry.FieldError{Field: "status", Reason: "admins may set maintenance, or up to leave maintenance; the prober sets the rest"})
			return
		}
	}
	if patch.StatusReason != nil {
		if next.Status != registry.StatusMaintenance {
			s.writeError(w, r, &registry.FieldError{Field: "status_reason", Reason: "only a peer in maintenance carries an admin's reason"})
			return
		}
		next.StatusReason = *patch.StatusReason
	}
	p, err := s.Peers.Update(r.Context(), next)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.awaitSnapshot(r.Context(), p.Revision)
	writeJSON(w, http.StatusOK, map[string]any{"peer": s.viewOf(p)})
}

func (s *Server) deletePeer(w http.ResponseWriter, r *http.Request) {
	p, err := s.Peers.Delete(r.Context(), chi.URLParam(r, "peer"))
	if err != nil && p.ID == "" {
		s.writeError(w, r, err)
		return
	}
	if err != nil {
		logFrom(r.Context(), s.log).WithError(err).WithField("peer_id", p.ID).Warn("peer deleted; cleanup incomplete")
	}
	s.awaitGone(r.Context(), p.ID)
	logFrom(r.Context(), s.log).WithField("peer_id", p.ID).WithField("peer", p.Name).Info("peer deleted")
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) setCredentials(w http.ResponseWriter, r *http.Request) {
	var creds registry.Credentials
	if err := decodeJSON(w, r, &creds); err != nil {
		s.writeError(w, r, err)
		return
	}
	cur, err := s.Peers.Get(r.Context(), chi.URLParam(r, "peer"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	p, err := s.Peers.SetCredentials(r.Context(), cur.ID, creds)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.awaitSnapshot(r.Context(), p.Revision)
	w.WriteHeader(http.StatusNoContent)
}

// importPeers takes a clouds.yaml body. ?cloud=NAME (repeatable) picks
// entries; ?label=k=v (repeatable) labels every imported peer. Everything is
// validated before anything is created; names already taken are refused
// together, before any is created.
func (s *Server) importPeers(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		s.writeError(w, r, jsonError(err))
		return
	}
	q := r.URL.Query()
	labels, err := parseLabels(q["label"])
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	imported, err := openstack.ImportCloudsYAML(body, openstack.ImportOptions{Only: q["cloud"], Labels: labels})
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var dups []error
	for _, imp := range imported {
		if _, ok := s.Snapshot.View().Lookup(imp.Peer.Name); ok {
			dups = append(dups, fmt.Errorf("%w: a peer named %q already exists", registry.ErrDuplicateName, imp.Peer.Name))
		}
	}
	if err := errors.Join(dups...); err != nil {
		s.writeError(w, r, err)
		return
	}
	out := []peerView{}
	var last uint64
	for _, imp := range imported {
		p, err := s.Peers.Create(r.Context(), imp.Peer, &imp.Credentials)
		if err != nil {
			// All or nothing: take back what this import created.
			bg := context.WithoutCancel(r.Context())
			var undo []error
			for _, done := range out {
				if _, derr := s.Peers.Delete(bg, done.ID); derr != nil {
					undo = append(undo, fmt.Errorf("roll back %q: %w", done.Name, derr))
				}
			}
			cause := errors.Join(append([]error{fmt.Errorf("import %q: %w", imp.Peer.Name, err)}, undo...)...)
			code := statusOf(err)
			why := faults.Generic(code)
			if code < 500 {
				why = faults.Detail(err)
			}
			s.writeError(w, r, &refusal{code: code, msg: fmt.Sprintf("import %q: %s (nothing imported)", imp.Peer.Name, why), cause: cause})
			return
		}
		last = max(last, p.Revision)
		out = append(out, s.viewOf(p))
	}
	s.awaitSnapshot(r.Context(), last)
	writeJSON(w, http.StatusCreated, map[string]any{"peers": out})
}
