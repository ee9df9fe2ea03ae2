package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Key layout of the peer registry inside a Store. Everything a snapshot
// needs sits under PeerPrefix; credentials sit elsewhere, so a snapshot
// (which lists and watches PeerPrefix) never loads a secret.
const (
	PeerPrefix            = "peers/"
	PeerRecordPrefix      = PeerPrefix + "records/"
	peerHealthPrefix      = PeerPrefix + "health/"
	peerNamePrefix        = PeerPrefix + "names/"
	peerCredentialsPrefix = "credentials/peers/"
)

// The record (admin-owned: name, endpoint, labels, cost, maintenance) and the
// health (prober-owned: status, capacity, heartbeat) are separate keys, so a
// probe never moves the record's revision: an admin's compare-and-swap edit
// does not race the prober, and each probe rewrites one small key.

// PeerRegistry keeps peer records, their health, their name index and
// their credentials in a Store. It is safe for concurrent use by many
// brokers: every read-modify-write is a compare-and-swap.
type PeerRegistry struct {
	store  Store
	sealer Sealer
	now    func() time.Time
}

// NewPeerRegistry returns a registry over store. Credentials are stored as
// they are; use WithSealer to encrypt them.
func NewPeerRegistry(store Store) *PeerRegistry {
	return &PeerRegistry{store: store, sealer: plainSealer{}, now: func() time.Time { return time.Now().UTC() }}
}

// WithSealer makes the registry seal credentials before storing them.
func (r *PeerRegistry) WithSealer(s Sealer) *PeerRegistry {
	r.sealer = s
	return r
}

func recordKey(id string) string      { return PeerRecordPrefix + id }
func healthKey(id string) string      { return peerHealthPrefix + id }
func nameKey(name string) string      { return peerNamePrefix + name }
func credentialsKey(id string) string { return peerCredentialsPrefix + id }

// healthRecord is what the prober last learned about a peer.
type healthRecord struct {
	Status        Status    `json:"status"`
	Reason        string    `json:"reason,omitempty"`
	Capacity      *Capacity `json:"capacity,omitempty"`
	LastHeartbeat time.Time `json:"last_heartbeat,omitzero"`
}

// merge builds the view of a peer from its record and health. An admin's
// maintenance wins over any probe; a peer never probed is down.
func merge(rec Peer, h *healthRecord) Peer {
	p := rec
	switch {
	case rec.Status == StatusMaintenance:
	case h != nil:
		p.Status, p.StatusReason = h.Status, h.Reason
	default:
		p.Status, p.StatusReason = StatusDown, "not probed yet"
	}
	if h != nil {
		if h.Capacity != nil {
			p.Capacity = *h.Capacity
		}
		p.LastHeartbeat = h.LastHeartbeat
	}
	return p
}

// Create validates p (and creds, when given) reporting every problem at
// once, assigns an ID, and stores the record. A taken name is
// ErrDuplicateName. Status may only be maintenance; a new peer is down
// until the prober has seen it.
func (r *PeerRegistry) Create(ctx context.Context, p Peer, creds *Credentials) (Peer, error) {
	if p.ID == "" {
		p.ID = uuid.NewString()
	}
	if p.Status != StatusMaintenance {
		p.Status, p.StatusReason = "", ""
	}
	now := r.now()
	p.CreatedAt, p.UpdatedAt, p.LastHeartbeat, p.Revision = now, now, time.Time{}, 0
	p.CredentialsRef, p.CredentialsUpdatedAt = "", time.Time{}
	if creds != nil && !creds.IsZero() {
		p.CredentialsRef, p.CredentialsUpdatedAt = credentialsKey(p.ID), now
	}
	if err := validatePeer(p, creds); err != nil {
		return Peer{}, err
	}
	if err := r.reserveName(ctx, p.Name, p.ID); err != nil {
		return Peer{}, err
	}
	// From here a failure must give the name back, or it stays taken.
	undo := func() { _ = r.store.Delete(context.WithoutCancel(ctx), nameKey(p.Name)) }
	if p.CredentialsRef != "" {
		if err := r.putCredentials(ctx, p.ID, *creds); err != nil {
			undo()
			return Peer{}, err
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		undo()
		return Peer{}, err
	}
	idx, err := r.store.CAS(ctx, recordKey(p.ID), b, 0)
	if err != nil {
		undo()
		if p.CredentialsRef != "" {
			_ = r.store.Delete(context.WithoutCancel(ctx), credentialsKey(p.ID))
		}
		if errors.Is(err, ErrConflict) {
			return Peer{}, fmt.Errorf("peer id %q already exists: %w", p.ID, ErrConflict)
		}
		return Peer{}, fmt.Errorf("store peer %q: %w", p.Name, err)
	}
	p.Revision = idx
	return merge(p, nil), nil
}

// reserveName takes name for id by create-only CAS. A name left behind by
// a broker that crashed between reserving it and writing the record (or by
// a failed cleanup) points at no record, or at a record with another name:
// such a stale reservation is taken over, by CAS so two takers cannot both
// win.
func (r *PeerRegistry) reserveName(ctx context.Context, name, id string) error {
	for {
		_, err := r.store.CAS(ctx, nameKey(name), []byte(id), 0)
		if err == nil {
			return nil
		}
		if !errors.Is(err, ErrConflict) {
			return fmt.Errorf("reserve peer name %q: %w", name, err)
		}
		kv, gerr := r.store.Get(ctx, nameKey(name))
		if errors.Is(gerr, ErrNotFound) {
			continue // freed meanwhile: try again
		}
		if gerr != nil {
			return gerr
		}
		if owner, err := r.getRecord(ctx, string(kv.Value)); err == nil && owner.Name == name {
			return fmt.Errorf("%w: a peer named %q already exists", ErrDuplicateName, name)
		} else if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if _, err := r.store.CAS(ctx, nameKey(name), []byte(id), kv.ModifyIndex); err == nil {
			return nil
		} else if !errors.Is(err, ErrConflict) {
			return err
		}
	}
}

// validatePeer checks the record and any new credentials together, so a
// caller hears about every problem in one answer.
func validatePeer(p Peer, creds *Credentials) error {
	errs := []error{p.Validate()}
	if creds != nil && !creds.IsZero() {
		errs = append(errs, creds.Validate())
	}
	if p.Kind == KindOpenStack && p.CredentialsRef == "" {
		errs = append(errs, &FieldError{Field: "credentials", Reason: "an openstack peer needs credentials"})
	}
	return errors.Join(errs...)
}

// Get returns the peer with this ID, or with this name.
func (r *PeerRegistry) Get(ctx context.Context, idOrName string) (Peer, error) {
	rec, err := r.lookup(ctx, idOrName)
	if err != nil {
		return Peer{}, err
	}
	h, err := r.getHealth(ctx, rec.ID)
	if err != nil {
		return Peer{}, err
	}
	return merge(rec, h), nil
}

// lookup finds a record by ID, then by name. A name is trusted only if the
// record it points at still carries it (a stale name key after a failed
// rename cleanup must not resolve to the renamed peer).
func (r *PeerRegistry) lookup(ctx context.Context, idOrName string) (Peer, error) {
	rec, err := r.getRecord(ctx, idOrName)
	if !errors.Is(err, ErrNotFound) {
		return rec, err
	}
	notFound := fmt.Errorf("peer %q: %w", idOrName, ErrNotFound)
	if ValidateKey(nameKey(idOrName)) != nil {
		return Peer{}, notFound
	}
	kv, err := r.store.Get(ctx, nameKey(idOrName))
	if errors.Is(err, ErrNotFound) {
		return Peer{}, notFound
	}
	if err != nil {
		return Peer{}, err
	}
	rec, err = r.getRecord(ctx, string(kv.Value))
	if errors.Is(err, ErrNotFound) || (err == nil && rec.Name != idOrName) {
		return Peer{}, notFound
	}
	return rec, err
}

func (r *PeerRegistry) getRecord(ctx context.Context, id string) (Peer, error) {
	if ValidateKey(recordKey(id)) != nil {
		return Peer{}, fmt.Errorf("peer %q: %w", id, ErrNotFound)
	}
	kv, err := r.store.Get(ctx, recordKey(id))
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return Peer{}, fmt.Errorf("peer %q: %w", id, ErrNotFound)
		}
		return Peer{}, err
	}
	return decodePeer(kv)
}

func (r *PeerRegistry) getHealth(ctx context.Context, id string) (*healthRecord, error) {
	kv, err := r.store.Get(ctx, healthKey(id))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeHealth(kv)
}

func decodePeer(kv KV) (Peer, error) {
	var p Peer
	if err := json.Unmarshal(kv.Value, &p); err != nil {
		return Peer{}, fmt.Errorf("decode peer record %q: %w", kv.Key, err)
	}
	p.Revision = kv.ModifyIndex
	return p, nil
}

func decodeHealth(kv KV) (*healthRecord, error) {
	var h healthRecord
	if err := json.Unmarshal(kv.Value, &h); err != nil {
		return nil, fmt.Errorf("decode peer health %q: %w", kv.Key, err)
	}
	return &h, nil
}

// List returns every peer, by ID. The hot path uses PeerSnapshot instead.
func (r *PeerRegistry) List(ctx context.Context) ([]Peer, error) {
	kvs, _, err := r.store.List(ctx, PeerPrefix)
	if err != nil {
		return nil, err
	}
	return decodePeers(kvs)
}

// decodePeers builds merged peers from a listing of PeerPrefix. Undecodable
// keys are reported and skipped, so one bad record does not hide the rest.
func decodePeers(kvs []KV) ([]Peer, error) {
	var recs []Peer
	health := map[string]*healthRecord{}
	var errs []error
	for _, kv := range kvs {
		switch {
		case strings.HasPrefix(kv.Key, PeerRecordPrefix):
			p, err := decodePeer(kv)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			recs = append(recs, p)
		case strings.HasPrefix(kv.Key, peerHealthPrefix):
			h, err := decodeHealth(kv)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			health[strings.TrimPrefix(kv.Key, peerHealthPrefix)] = h
		}
	}
	out := make([]Peer, 0, len(recs))
	for _, rec := range recs {
		out = append(out, merge(rec, health[rec.ID]))
	}
	return out, errors.Join(errs...)
}

// Update replaces the admin-editable fields of the record at p.Revision
// (compare-and-swap: a stale revision is ErrConflict; 0 means "whatever is
// current"). Status may be maintenance (enter, or stay with a new reason)
// or anything else to leave maintenance; health, times and credentials are
// kept. A rename moves the name index.
func (r *PeerRegistry) Update(ctx context.Context, p Peer) (Peer, error) {
	cur, err := r.getRecord(ctx, p.ID)
	if err != nil {
		return Peer{}, err
	}
	if p.Revision != 0 && p.Revision != cur.Revision {
		return Peer{}, fmt.Errorf("peer %q changed since revision %d (now %d): %w", p.ID, p.Revision, cur.Revision, ErrConflict)
	}
	next := cur
	next.Name, next.Kind, next.Endpoint, next.Labels, next.Cost = p.Name, p.Kind, p.Endpoint, p.Labels, p.Cost
	if p.Status == StatusMaintenance {
		next.Status, next.StatusReason = StatusMaintenance, p.StatusReason
	} else {
		next.Status, next.StatusReason = "", ""
	}
	next.UpdatedAt = r.now()
	if err := validatePeer(next, nil); err != nil {
		return Peer{}, err
	}
	renamed := next.Name != cur.Name
	if renamed {
		if err := r.reserveName(ctx, next.Name, next.ID); err != nil {
			return Peer{}, err
		}
	}
	saved, err := r.casRecord(ctx, next, cur.Revision)
	bg := context.WithoutCancel(ctx) // cleanup must not be skipped
	if err != nil {
		if renamed {
			_ = r.store.Delete(bg, nameKey(next.Name))
		}
		return Peer{}, err
	}
	if renamed {
		// Should this fail, lookup ignores the stale name and reserveName
		// takes it over: nothing is lost but a key.
		_ = r.store.Delete(bg, nameKey(cur.Name))
	}
	h, err := r.getHealth(ctx, saved.ID)
	if err != nil {
		return Peer{}, err
	}
	return merge(saved, h), nil
}

func (r *PeerRegistry) casRecord(ctx context.Context, p Peer, rev uint64) (Peer, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return Peer{}, err
	}
	idx, err := r.store.CAS(ctx, recordKey(p.ID), b, rev)
	if err != nil {
		return Peer{}, fmt.Errorf("update peer %q: %w", p.ID, err)
	}
	p.Revision = idx
	return p, nil
}

// Delete removes the peer, its name, its health and its credentials. The
// record is deleted at the revision just read, so the name and credentials
// removed are that record's even if a rename races; a conflict rereads and
// tries again.
func (r *PeerRegistry) Delete(ctx context.Context, idOrName string) (Peer, error) {
	var p Peer
	for {
		var err error
		if p, err = r.lookup(ctx, idOrName); err != nil {
			return Peer{}, err
		}
		err = r.store.DeleteCAS(ctx, recordKey(p.ID), p.Revision)
		if err == nil {
			break
		}
		if !errors.Is(err, ErrConflict) {
			return Peer{}, fmt.Errorf("delete peer %q: %w", p.ID, err)
		}
	}
	bg := context.WithoutCancel(ctx) // the record is gone; cleanup must run
	return p, errors.Join(
		r.store.Delete(bg, nameKey(p.Name)),
		r.store.Delete(bg, healthKey(p.ID)),
		r.store.Delete(bg, credentialsKey(p.ID)),
	)
}

// SetCredentials replaces the peer's credentials and stamps the record so
// the pool reconnects with them.
func (r *PeerRegistry) SetCredentials(ctx context.Context, id string, creds Credentials) (Peer, error) {
	if err := creds.Validate(); err != nil {
		return Peer{}, err
	}
	if _, err := r.getRecord(ctx, id); err != nil {
		return Peer{}, err
	}
	if err := r.putCredentials(ctx, id, creds); err != nil {
		return Peer{}, err
	}
	for {
		cur, err := r.getRecord(ctx, id)
		if err != nil {
			return Peer{}, err
		}
		next := cur
		next.CredentialsRef, next.CredentialsUpdatedAt = credentialsKey(id), r.now()
		saved, err := r.casRecord(ctx, next, cur.Revision)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return Peer{}, err
		}
		h, err := r.getHealth(ctx, id)
		if err != nil {
			return Peer{}, err
		}
		return merge(saved, h), nil
	}
}

func (r *PeerRegistry) putCredentials(ctx context.Context, id string, creds Credentials) error {
	b, err := MarshalCredentialsSecret(creds)
	if err != nil {
		return err
	}
	if b, err = r.sealer.Seal(b, []byte(credentialsKey(id))); err != nil {
		return fmt.Errorf("seal credentials of peer %q: %w", id, err)
	}
	if _, err := r.store.Put(ctx, credentialsKey(id), b); err != nil {
		return fmt.Errorf("store credentials of peer %q: %w", id, err)
	}
	return nil
}

// Credentials returns the stored credentials of a peer, for the pool's
// connectors only. A peer without credentials gets the zero value.
func (r *PeerRegistry) Credentials(ctx context.Context, p Peer) (Credentials, error) {
	if p.CredentialsRef == "" {
		return Credentials{}, nil
	}
	// Always the peer's own key, whatever the record names: a record
	// edited to point at another peer's credentials gets nothing.
	key := credentialsKey(p.ID)
	kv, err := r.store.Get(ctx, key)
	if err != nil {
		return Credentials{}, fmt.Errorf("credentials of peer %q: %w", p.ID, err)
	}
	plain, err := r.sealer.Open(kv.Value, []byte(key))
	if err != nil {
		return Credentials{}, fmt.Errorf("credentials of peer %q: %w", p.ID, err)
	}
	var c Credentials
	if err := json.Unmarshal(plain, &c); err != nil {
		return Credentials{}, fmt.Errorf("decode credentials of peer %q: %w", p.ID, err)
	}
	return c, nil
}

// Health is what a probe learned about a peer.
type Health struct {
	Status   Status
	Reason   string
	Capacity *Capacity // nil keeps the last reported capacity
	// At is when the peer last answered; zero (a failed probe) keeps the
	// previous heartbeat, so LastHeartbeat means "last seen alive".
	At time.Time
}

// ReportHealth records a probe result under the peer's health key; the
// record and its revision are untouched. An admin's maintenance status still
// wins in the merged view. A peer that no longer exists is ErrNotFound and
// nothing is written.
func (r *PeerRegistry) ReportHealth(ctx context.Context, id string, h Health) (Peer, error) {
	rec, err := r.getRecord(ctx, id)
	if err != nil {
		return Peer{}, err
	}
	prev, err := r.getHealth(ctx, id)
	if err != nil {
		return Peer{}, err
	}
	next := healthRecord{Status: h.Status, Reason: h.Reason, Capacity: h.Capacity}
	if !h.At.IsZero() {
		next.LastHeartbeat = h.At.UTC()
	}
	if prev != nil {
		if next.Capacity == nil {
			next.Capacity = prev.Capacity
		}
		if next.LastHeartbeat.IsZero() {
			next.LastHeartbeat = prev.LastHeartbeat
		}
	}
	b, err := json.Marshal(next)
	if err != nil {
		return Peer{}, err
	}
	if _, err := r.store.Put(ctx, healthKey(id), b); err != nil {
		return Peer{}, fmt.Errorf("record health of peer %q: %w", id, err)
	}
	return merge(rec, &next), nil
}
