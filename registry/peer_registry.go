package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Key layout of the peer registry inside a Store.
const (
	PeerRecordPrefix      = "peers/records/"
	peerNamePrefix        = "peers/names/"
	peerCredentialsPrefix = "peers/credentials/"
)

// PeerRegistry keeps peer records, their name index and their credentials
// in a Store. It is safe for concurrent use by many brokers: every
// read-modify-write is a compare-and-swap on the record's modify index.
type PeerRegistry struct {
	store Store
	now   func() time.Time
}

// NewPeerRegistry returns a registry over store.
func NewPeerRegistry(store Store) *PeerRegistry {
	return &PeerRegistry{store: store, now: func() time.Time { return time.Now().UTC() }}
}

func recordKey(id string) string      { return PeerRecordPrefix + id }
func nameKey(name string) string      { return peerNamePrefix + name }
func credentialsKey(id string) string { return peerCredentialsPrefix + id }

// Create validates p (and creds, when given) reporting every problem at
// once, assigns an ID, and stores the record. A taken name is
// ErrDuplicateName. A new peer is down until the prober has seen it.
func (r *PeerRegistry) Create(ctx context.Context, p Peer, creds *Credentials) (Peer, error) {
	if p.ID == "" {
		p.ID = uuid.NewString()
	}
	if p.Status == "" {
		p.Status, p.StatusReason = StatusDown, "not probed yet"
	}
	now := r.now()
	p.CreatedAt, p.UpdatedAt, p.LastHeartbeat, p.Revision = now, now, time.Time{}, 0
	if creds != nil && !creds.IsZero() {
		p.CredentialsRef = credentialsKey(p.ID)
		p.CredentialsUpdatedAt = now
	} else {
		p.CredentialsRef = ""
	}
	if err := validatePeer(p, creds); err != nil {
		return Peer{}, err
	}

	if _, err := r.store.CAS(ctx, nameKey(p.Name), []byte(p.ID), 0); err != nil {
		if errors.Is(err, ErrConflict) {
			return Peer{}, fmt.Errorf("%w: a peer named %q already exists", ErrDuplicateName, p.Name)
		}
		return Peer{}, fmt.Errorf("reserve peer name %q: %w", p.Name, err)
	}
	// From here a failure must give the name back, or it stays taken forever.
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
	return p, nil
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
	p, err := r.get(ctx, idOrName)
	if !errors.Is(err, ErrNotFound) || ValidateKey(nameKey(idOrName)) != nil {
		return p, err
	}
	kv, nerr := r.store.Get(ctx, nameKey(idOrName))
	if nerr != nil {
		if errors.Is(nerr, ErrNotFound) {
			return Peer{}, fmt.Errorf("peer %q: %w", idOrName, ErrNotFound)
		}
		return Peer{}, nerr
	}
	return r.get(ctx, string(kv.Value))
}

func (r *PeerRegistry) get(ctx context.Context, id string) (Peer, error) {
	if err := ValidateKey(recordKey(id)); err != nil {
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

func decodePeer(kv KV) (Peer, error) {
	var p Peer
	if err := json.Unmarshal(kv.Value, &p); err != nil {
		return Peer{}, fmt.Errorf("decode peer record %q: %w", kv.Key, err)
	}
	p.Revision = kv.ModifyIndex
	return p, nil
}

// List returns every peer, by ID. The hot path uses PeerSnapshot instead.
func (r *PeerRegistry) List(ctx context.Context) ([]Peer, error) {
	kvs, _, err := r.store.List(ctx, PeerRecordPrefix)
	if err != nil {
		return nil, err
	}
	return decodePeers(kvs)
}

func decodePeers(kvs []KV) ([]Peer, error) {
	out := make([]Peer, 0, len(kvs))
	var errs []error
	for _, kv := range kvs {
		p, err := decodePeer(kv)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	return out, errors.Join(errs...)
}

// Update replaces the admin-editable fields of the record at p.Revision
// (compare-and-swap: a stale revision is ErrConflict). Health fields, times
// and the credentials reference are kept from the stored record; a rename
// moves the name index.
func (r *PeerRegistry) Update(ctx context.Context, p Peer) (Peer, error) {
	cur, err := r.get(ctx, p.ID)
	if err != nil {
		return Peer{}, err
	}
	if p.Revision != 0 && p.Revision != cur.Revision {
		return Peer{}, fmt.Errorf("peer %q changed since revision %d (now %d): %w", p.ID, p.Revision, cur.Revision, ErrConflict)
	}
	next := cur
	next.Name, next.Kind, next.Endpoint, next.Labels, next.Cost = p.Name, p.Kind, p.Endpoint, p.Labels, p.Cost
	if p.Status != "" && p.Status != cur.Status {
		next.Status, next.StatusReason = p.Status, p.StatusReason
	}
	next.UpdatedAt = r.now()
	if err := validatePeer(next, nil); err != nil {
		return Peer{}, err
	}
	if next.Name != cur.Name {
		if _, err := r.store.CAS(ctx, nameKey(next.Name), []byte(next.ID), 0); err != nil {
			if errors.Is(err, ErrConflict) {
				return Peer{}, fmt.Errorf("%w: a peer named %q already exists", ErrDuplicateName, next.Name)
			}
			return Peer{}, err
		}
	}
	saved, err := r.casRecord(ctx, next, cur.Revision)
	if err != nil {
		if next.Name != cur.Name {
			_ = r.store.Delete(context.WithoutCancel(ctx), nameKey(next.Name))
		}
		return Peer{}, err
	}
	if next.Name != cur.Name {
		_ = r.store.Delete(ctx, nameKey(cur.Name))
	}
	return saved, nil
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

// Delete removes the peer, its name and its credentials. The record is
// deleted at the revision just read, so the name and credentials removed
// are that record's even if a rename races; a conflict (the prober writes
// every record each round) rereads and tries again.
func (r *PeerRegistry) Delete(ctx context.Context, idOrName string) (Peer, error) {
	var p Peer
	for {
		var err error
		if p, err = r.Get(ctx, idOrName); err != nil {
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
	// The record is gone; the rest is cleanup that must not be skipped.
	bg := context.WithoutCancel(ctx)
	return p, errors.Join(r.store.Delete(bg, nameKey(p.Name)), r.store.Delete(bg, credentialsKey(p.ID)))
}

// SetCredentials replaces the peer's credentials and stamps the record so
// the pool reconnects with them.
func (r *PeerRegistry) SetCredentials(ctx context.Context, id string, creds Credentials) (Peer, error) {
	if err := creds.Validate(); err != nil {
		return Peer{}, err
	}
	if _, err := r.get(ctx, id); err != nil {
		return Peer{}, err
	}
	if err := r.putCredentials(ctx, id, creds); err != nil {
		return Peer{}, err
	}
	return r.modify(ctx, id, func(p *Peer) {
		p.CredentialsRef = credentialsKey(id)
		p.CredentialsUpdatedAt = r.now()
	})
}

func (r *PeerRegistry) putCredentials(ctx context.Context, id string, creds Credentials) error {
	b, err := MarshalCredentialsSecret(creds)
	if err != nil {
		return err
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
	kv, err := r.store.Get(ctx, p.CredentialsRef)
	if err != nil {
		return Credentials{}, fmt.Errorf("credentials of peer %q: %w", p.ID, err)
	}
	var c Credentials
	if err := json.Unmarshal(kv.Value, &c); err != nil {
		return Credentials{}, fmt.Errorf("decode credentials of peer %q: %w", p.ID, err)
	}
	return c, nil
}

// Health is what a probe learned about a peer.
type Health struct {
	Status   Status
	Reason   string
	Capacity *Capacity // nil keeps the stored capacity
	At       time.Time
}

// ReportHealth records a probe result. An admin's maintenance status wins:
// the probe then refreshes capacity and heartbeat only.
func (r *PeerRegistry) ReportHealth(ctx context.Context, id string, h Health) (Peer, error) {
	return r.modify(ctx, id, func(p *Peer) {
		if p.Status != StatusMaintenance {
			p.Status, p.StatusReason = h.Status, h.Reason
		}
		if h.Capacity != nil {
			p.Capacity = *h.Capacity
		}
		p.LastHeartbeat = h.At.UTC()
	})
}

// modify is a read-modify-CAS loop for writes that do not come from an
// admin holding a revision (probes, credential stamps): they retry on
// conflict instead of failing.
func (r *PeerRegistry) modify(ctx context.Context, id string, change func(*Peer)) (Peer, error) {
	for {
		cur, err := r.get(ctx, id)
		if err != nil {
			return Peer{}, err
		}
		next := cur
		change(&next)
		saved, err := r.casRecord(ctx, next, cur.Revision)
		if errors.Is(err, ErrConflict) {
			continue
		}
		return saved, err
	}
}
