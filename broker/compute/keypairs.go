package compute

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Store is the part of registry.Store the keypair store uses.
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	DeleteCAS(ctx context.Context, key string, index uint64) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error)
}

// KeypairStore keeps users' keypairs. As in Nova they belong to a user, not
// a project; the broker imports the public key into a peer when a server
// is booted there with it.
//
// With Quota set, each keypair counts against its user's key_pairs quota
// (Nova counts key pairs per user, under the limit of the project the
// request is scoped to).
//
// Run keeps the keypairs in memory (fed by a Store watch), so reads cost
// no Store call; without Run they read the Store.
type KeypairStore struct {
	store   Store
	records *registry.Records[peers.Keypair]
	now     func() time.Time
	// Quota, when set, charges key_pairs.
	Quota KeypairQuota
}

// KeypairQuota is the part of quota.Ledger keypairs use.
type KeypairQuota interface {
	Reserve(ctx context.Context, s quota.Scope, want quota.Amounts, what string) (*quota.Reservation, error)
	Free(ctx context.Context, s quota.Scope, amounts quota.Amounts) error
}

var _ KeypairQuota = (*quota.Ledger)(nil)

// keypairCharge is what one keypair counts.
var keypairCharge = quota.Amounts{quota.KeyPairs: 1}

// NewKeypairStore returns a keypair store over store.
func NewKeypairStore(store Store) *KeypairStore {
	return &KeypairStore{store: store, now: func() time.Time { return time.Now().UTC() },
		records: registry.NewRecords(store, keypairsPrefix, decodeKeypair, nil)}
}

// Run loads the keypairs and follows the Store until ctx ends.
func (s *KeypairStore) Run(ctx context.Context) error { return s.records.Run(ctx) }

// WaitReady blocks until Run's first load has landed.
func (s *KeypairStore) WaitReady(ctx context.Context) error { return s.records.WaitReady(ctx) }

func decodeKeypair(kv registry.KV) (peers.Keypair, error) {
	var kp peers.Keypair
	err := json.Unmarshal(kv.Value, &kp)
	return kp, err
}

const keypairsPrefix = "compute/keypairs/"

func keypairKey(userID, name string) string {
	return keypairsPrefix + userID + "/" + base64.RawURLEncoding.EncodeToString([]byte(name))
}

// Create imports a public key or, with none, generates a pair and returns
// the private key once (never stored). project is the one the request is
// scoped to: its key_pairs limit applies.
func (s *KeypairStore) Create(ctx context.Context, project, userID string, spec peers.KeypairSpec) (peers.Keypair, error) {
	if !peers.ValidKeypairName(spec.Name) {
		return peers.Keypair{}, fmt.Errorf("keypair name %q: want 1 to 255 letters, digits, spaces or . _ - @: %w", spec.Name, peers.ErrInvalid)
	}
	typ := spec.Type
	if typ == "" {
		typ = "ssh"
	}
	if _, err := s.Get(ctx, userID, spec.Name); err == nil {
		return peers.Keypair{}, fmt.Errorf("key pair '%s' already exists: %w", spec.Name, peers.ErrConflict)
	}
	var private string
	public := strings.TrimSpace(spec.PublicKey)
	if public == "" {
		if typ != "ssh" {
			return peers.Keypair{}, fmt.Errorf("generating an %s keypair; import one: %w", typ, peers.ErrInvalid)
		}
		var err error
		if public, private, err = peers.GenerateSSHKeypair(); err != nil {
			return peers.Keypair{}, err
		}
	}
	fp, err := peers.KeypairFingerprint(typ, public)
	if err != nil {
		return peers.Keypair{}, err
	}
	kp := peers.Keypair{Name: spec.Name, UserID: userID, Type: typ, PublicKey: public, Fingerprint: fp, CreatedAt: s.now()}
	raw, err := json.Marshal(kp)
	if err != nil {
		return peers.Keypair{}, err
	}
	var res *quota.Reservation
	if s.Quota != nil {
		if res, err = s.Quota.Reserve(ctx, quota.Scope{Project: project, User: userID}, keypairCharge, "keypair "+spec.Name); err != nil {
			return peers.Keypair{}, quotaError(err)
		}
	}
	at, err := s.store.CAS(ctx, keypairKey(userID, spec.Name), raw, 0)
	if err != nil {
		if res != nil {
			_ = res.Release(context.WithoutCancel(ctx))
		}
		if errors.Is(err, registry.ErrConflict) {
			return peers.Keypair{}, fmt.Errorf("key pair '%s' already exists: %w", spec.Name, peers.ErrConflict)
		}
		return peers.Keypair{}, err
	}
	if res != nil {
		if err := res.Commit(context.WithoutCancel(ctx)); err != nil {
			_ = s.store.Delete(context.WithoutCancel(ctx), keypairKey(userID, spec.Name))
			return peers.Keypair{}, fmt.Errorf("counting keypair %s in its quota: %w", spec.Name, err)
		}
	}
	s.records.Wrote(keypairKey(userID, spec.Name), kp, at)
	kp.PrivateKey = private
	return kp, nil
}

// Get returns a user's keypair. One memory lacks is looked for in the
// Store: it may have just been made on another replica.
func (s *KeypairStore) Get(ctx context.Context, userID, name string) (peers.Keypair, error) {
	kp, err := s.records.Get(ctx, keypairKey(userID, name), true)
	if errors.Is(err, registry.ErrNotFound) {
		return peers.Keypair{}, fmt.Errorf("keypair %s not found for user %s: %w", name, userID, peers.ErrNotFound)
	}
	return kp, err
}

// List returns a user's keypairs, by name.
func (s *KeypairStore) List(ctx context.Context, userID string) ([]peers.Keypair, error) {
	kps, err := s.records.List(ctx, userID)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(kps, func(a, b peers.Keypair) int { return strings.Compare(a.Name, b.Name) })
	return kps, nil
}

// Delete removes a user's keypair, freeing its quota once (of two
// concurrent deletes, the one that removed it).
func (s *KeypairStore) Delete(ctx context.Context, project, userID, name string) error {
	key := keypairKey(userID, name)
	kv, err := s.store.Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		return fmt.Errorf("keypair %s not found for user %s: %w", name, userID, peers.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if err := s.store.DeleteCAS(ctx, key, kv.ModifyIndex); err != nil {
		if errors.Is(err, registry.ErrConflict) || errors.Is(err, registry.ErrNotFound) {
			return fmt.Errorf("keypair %s not found for user %s: %w", name, userID, peers.ErrNotFound)
		}
		return err
	}
	s.records.Deleted(key)
	if s.Quota != nil {
		if err := s.Quota.Free(ctx, quota.Scope{Project: project, User: userID}, keypairCharge); err != nil {
			return fmt.Errorf("freeing the quota of keypair %s: %w", name, err)
		}
	}
	return nil
}

// keypairView renders a keypair; 2.2 adds its type.
func keypairView(r *http.Request, kp peers.Keypair, full bool) map[string]any {
	v := map[string]any{"name": kp.Name, "public_key": kp.PublicKey, "fingerprint": kp.Fingerprint}
	if kp.PrivateKey != "" {
		v["private_key"] = kp.PrivateKey
	}
	if at(r, "2.2") {
		v["type"] = kp.Type
	}
	if full {
		v["user_id"], v["created_at"], v["deleted"], v["deleted_at"], v["updated_at"], v["id"] = kp.UserID, kp.CreatedAt.Format("2006-01-02T15:04:05.000000"), false, nil, nil, 0
	}
	return v
}

// keypairUser is whose keypairs a request acts on: the caller's, or from
// 2.10 another user's that a cloud admin names (user_id); false when it
// answered a refusal.
func (n *Nova) keypairUser(w http.ResponseWriter, r *http.Request, asked string) (string, bool) {
	t, _ := identity.TokenFrom(r.Context())
	if asked == "" || asked == t.UserID {
		return t.UserID, true
	}
	if !at(r, "2.10") {
		if r.Method == http.MethodGet || r.Method == http.MethodDelete {
			return t.UserID, true // before 2.10 Nova ignores user_id in the query
		}
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute keypair. Additional properties are not allowed ('user_id' was unexpected)")
		return "", false
	}
	if !t.CloudAdmin() {
		osapi.Fault(w, r, http.StatusForbidden, "Policy doesn't allow os_compute_api:os-keypairs to act on another user's keypairs.")
		return "", false
	}
	return asked, true
}

func (n *Nova) listKeypairs(w http.ResponseWriter, r *http.Request) {
	user, ok := n.keypairUser(w, r, r.URL.Query().Get("user_id"))
	if !ok {
		return
	}
	kps, err := n.Keypairs.List(r.Context(), user)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	limit := 0
	if at(r, "2.35") { // paging, by name
		q := r.URL.Query()
		if m := q.Get("marker"); m != "" {
			i := slices.IndexFunc(kps, func(kp peers.Keypair) bool { return kp.Name == m })
			if i < 0 {
				osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("marker [%s] not found", m))
				return
			}
			kps = kps[i+1:]
		}
		if l := q.Get("limit"); l != "" {
			if limit, err = strconv.Atoi(l); err != nil || limit < 0 {
				osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for query parameters limit: must be a non-negative integer")
				return
			}
		}
	}
	// As Nova, a full page links to the next (which may be empty).
	more := limit > 0 && len(kps) >= limit
	if more {
		kps = kps[:limit]
	}
	out := make([]map[string]any, 0, len(kps))
	for _, kp := range kps {
		out = append(out, map[string]any{"keypair": keypairView(r, kp, false)})
	}
	body := map[string]any{"keypairs": out}
	if more {
		next := r.URL.Query()
		next.Set("marker", kps[len(kps)-1].Name)
		body["keypairs_links"] = []map[string]string{{"rel": "next", "href": identity.BaseURL(r) + r.URL.Path + "?" + next.Encode()}}
	}
	osapi.WriteJSON(w, http.StatusOK, body)
}

func (n *Nova) createKeypair(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Keypair *struct {
			Name      string  `json:"name"`
			PublicKey *string `json:"public_key"`
			Type      string  `json:"type"`
			UserID    string  `json:"user_id"`
		} `json:"keypair"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || req.Keypair == nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute keypair: expected {\"keypair\": {\"name\": ...}}")
		return
	}
	b := req.Keypair
	if b.PublicKey == nil && at(r, "2.92") {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input for field/attribute keypair. 'public_key' is a required property")
		return
	}
	user, ok := n.keypairUser(w, r, b.UserID)
	if !ok {
		return
	}
	public := ""
	if b.PublicKey != nil {
		public = *b.PublicKey
	}
	t, _ := identity.TokenFrom(r.Context())
	kp, err := n.Keypairs.Create(r.Context(), t.ProjectID, user, peers.KeypairSpec{Name: b.Name, PublicKey: public, Type: b.Type, UserID: user})
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	v := keypairView(r, kp, false)
	v["user_id"] = kp.UserID
	code := http.StatusOK
	if at(r, "2.2") {
		code = http.StatusCreated
	}
	osapi.WriteJSON(w, code, map[string]any{"keypair": v})
}

func (n *Nova) showKeypair(w http.ResponseWriter, r *http.Request) {
	user, ok := n.keypairUser(w, r, r.URL.Query().Get("user_id"))
	if !ok {
		return
	}
	kp, err := n.Keypairs.Get(r.Context(), user, chi.URLParam(r, "name"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"keypair": keypairView(r, kp, true)})
}

func (n *Nova) deleteKeypair(w http.ResponseWriter, r *http.Request) {
	user, ok := n.keypairUser(w, r, r.URL.Query().Get("user_id"))
	if !ok {
		return
	}
	t, _ := identity.TokenFrom(r.Context())
	if err := n.Keypairs.Delete(r.Context(), t.ProjectID, user, chi.URLParam(r, "name")); err != nil {
		n.writeError(w, r, err)
		return
	}
	if at(r, "2.2") {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}
