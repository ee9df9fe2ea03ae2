package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

const (
	tokensPrefix  = "auth/tokens/"
	revokedPrefix = "auth/revoked/"
	// revokedUsersPrefix holds per-user revocation events: every token of
	// the user issued before the event is refused. It shares the watched
	// prefix "auth/revoked" with token revocations.
	revokedUsersPrefix = "auth/revoked-users/"
	// revokedProjectsPrefix: every token scoped to the project issued
	// before the event is refused (the project was deleted).
	revokedProjectsPrefix = "auth/revoked-projects/"
	// revokedAppCredsPrefix: every token issued from the application
	// credential is refused (it was deleted).
	revokedAppCredsPrefix = "auth/revoked-appcreds/"
	// revokedDomainsPrefix: every token of a user of the domain, or
	// scoped to it or one of its projects, issued before the event is
	// refused (the domain was disabled or deleted).
	revokedDomainsPrefix = "auth/revoked-domains/"
	// revokedRolesPrefix: every token carrying the role issued before the
	// event is refused (the role was deleted).
	revokedRolesPrefix = "auth/revoked-roles/"
	// revokedTrustsPrefix: every token from the trust is refused (it was
	// deleted).
	revokedTrustsPrefix = "auth/revoked-trusts/"
	revocationsWatch    = "auth/revoked"
	// MaxTokenTTL bounds token lifetimes, and so how long revocation
	// events must be kept.
	MaxTokenTTL = 7 * 24 * time.Hour
	// DefaultTokenTTL is Keystone's default token lifetime.
	DefaultTokenTTL = time.Hour
	maxCached       = 100_000
	// watchStaleAfter: how long the revocation watch may fail before
	// validation stops trusting the cache.
	watchStaleAfter = 30 * time.Second
)

// Token is what a token stands for: who, scoped to what, with which roles.
type Token struct {
	UserID         string `json:"user_id"`
	UserName       string `json:"user_name"`
	UserDomainID   string `json:"user_domain_id"`
	UserDomainName string `json:"user_domain_name"`
	ProjectID      string `json:"project_id,omitempty"`
	ProjectName    string `json:"project_name,omitempty"`
	ProjectDomain  string `json:"project_domain_id,omitempty"`
	// DomainID and DomainName: the token is scoped to this domain.
	DomainID   string `json:"domain_id,omitempty"`
	DomainName string `json:"domain_name,omitempty"`
	// System: the token is scoped to the system (Keystone's
	// {"system": {"all": true}}).
	System bool `json:"system,omitempty"`
	// AdminProject: the token is scoped to the cloud's admin project, so
	// its admin role is cloud-wide (Keystone's is_admin_project). Admin on
	// any other project is admin of that project only.
	AdminProject bool      `json:"is_admin_project,omitempty"`
	Roles        []Role    `json:"roles,omitempty"`
	Methods      []string  `json:"methods"`
	IssuedAt     time.Time `json:"issued_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	AuditID      string    `json:"audit_id"`
	// Trust is the trust a trust-scoped token acts under; nil otherwise.
	Trust *TokenTrust `json:"trust,omitempty"`
	// PasswordExpiresAt is when the user's password expires, shown in
	// the token body; nil for never.
	PasswordExpiresAt *time.Time `json:"password_expires_at,omitempty"`
	// AppCred names the application credential the token was issued
	// from; nil for tokens from a password or another token.
	AppCred *TokenAppCred `json:"application_credential,omitempty"`
}

// TokenAppCred is what a token records of its application credential, as
// Keystone shows it in the token body.
type TokenAppCred struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Restricted: the credential may not manage application credentials
	// (Keystone's "unrestricted": false).
	Restricted bool `json:"restricted"`
	// AccessRules, when any, are all the token may do (CheckAccessRules).
	AccessRules []AccessRule `json:"access_rules,omitempty"`
}

// Scoped reports whether the token is scoped to a project.
func (t Token) Scoped() bool { return t.ProjectID != "" }

// HasRole reports whether the token carries role: admin implies member,
// member implies reader (Keystone's default implied roles).
func (t Token) HasRole(role string) bool {
	implied := map[string][]string{RoleAdmin: {RoleAdmin, RoleMember, RoleReader}, RoleMember: {RoleMember, RoleReader}, RoleReader: {RoleReader}}
	for _, r := range t.Roles {
		if slices.Contains(implied[r.Name], role) || r.Name == role {
			return true
		}
	}
	return false
}

// CloudAdmin reports whether the token may act on the whole cloud: the
// admin role, on the admin project.
func (t Token) CloudAdmin() bool { return t.AdminProject && t.HasRole(RoleAdmin) }

// IdentityAdmin reports whether the token may manage the identity
// service: a cloud admin's, or one scoped to the system with the admin
// role. (Other services need a project: a system token is not theirs.)
func (t Token) IdentityAdmin() bool { return t.CloudAdmin() || (t.System && t.HasRole(RoleAdmin)) }

// RoleNames lists the token's role names.
func (t Token) RoleNames() []string {
	out := make([]string, len(t.Roles))
	for i, r := range t.Roles {
		out[i] = r.Name
	}
	return out
}

// Tokens issues, validates and revokes tokens. Validation is served from
// memory once a token has been seen; revocations from any replica reach
// this one through Run's watch.
type Tokens struct {
	store Store
	log   logrus.FieldLogger
	now   func() time.Time

	mu      sync.Mutex
	cache   map[string]Token     // token hash -> token
	revoked map[string]time.Time // token hash -> its expiry (kept until then)
	// events holds revocation events by kind (their key prefix): ID ->
	// time; a token issued until then that names the ID is void (every
	// token naming an application credential's, whenever issued).
	events  map[string]map[string]time.Time
	watchOK time.Time // last time the revocation watch answered
}

// NewTokens returns a token service over store; call Run to follow
// revocations made by other replicas.
func NewTokens(store Store, log logrus.FieldLogger) *Tokens {
	s := &Tokens{store: store, log: log, now: func() time.Time { return time.Now().UTC() },
		cache: map[string]Token{}, revoked: map[string]time.Time{}, events: map[string]map[string]time.Time{}}
	for _, k := range eventKinds {
		s.events[k] = map[string]time.Time{}
	}
	return s
}

// eventKinds are the revocation events by what they name.
var eventKinds = []string{revokedUsersPrefix, revokedProjectsPrefix, revokedAppCredsPrefix, revokedDomainsPrefix, revokedRolesPrefix, revokedTrustsPrefix}

// voidedBy reports whether a revocation event voids t; the caller holds
// the lock.
func (s *Tokens) voidedBy(t Token) bool {
	before := func(kind, id string) bool {
		at, ok := s.events[kind][id]
		return id != "" && ok && !t.IssuedAt.After(at)
	}
	// A deleted application credential voids its tokens whenever they
	// were issued: one issued while the delete ran is void too.
	if t.AppCred != nil {
		if _, ok := s.events[revokedAppCredsPrefix][t.AppCred.ID]; ok {
			return true
		}
	}
	if t.Trust != nil {
		// A deleted trust voids its tokens whenever issued; the trustor's
		// revocation (deleted, disabled) voids what it delegated.
		if _, ok := s.events[revokedTrustsPrefix][t.Trust.ID]; ok || before(revokedUsersPrefix, t.Trust.TrustorID) {
			return true
		}
	}
	if before(revokedUsersPrefix, t.UserID) || before(revokedProjectsPrefix, t.ProjectID) ||
		before(revokedDomainsPrefix, t.UserDomainID) || before(revokedDomainsPrefix, t.ProjectDomain) || before(revokedDomainsPrefix, t.DomainID) {
		return true
	}
	for _, r := range t.Roles {
		if before(revokedRolesPrefix, r.ID) {
			return true
		}
	}
	return false
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// Issue stores t and returns a new random token for it. It lives ttl,
// or until t.ExpiresAt when that is set and sooner (a token never outlives
// the credential it came from).
func (s *Tokens) Issue(ctx context.Context, t Token, ttl time.Duration) (string, Token, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Token{}, err
	}
	var audit [12]byte
	_, _ = rand.Read(audit[:])
	token := "cmx_" + base64.RawURLEncoding.EncodeToString(b[:])
	t.IssuedAt = s.now()
	if exp := t.IssuedAt.Add(ttl); t.ExpiresAt.IsZero() || exp.Before(t.ExpiresAt) {
		t.ExpiresAt = exp
	}
	t.AuditID = base64.RawURLEncoding.EncodeToString(audit[:])
	raw, err := json.Marshal(t)
	if err != nil {
		return "", Token{}, err
	}
	if _, err := s.store.CAS(ctx, tokensPrefix+hashToken(token), raw, 0); err != nil {
		return "", Token{}, fmt.Errorf("store token: %w", err)
	}
	return token, t, nil
}

// Validate returns what a live token stands for.
func (s *Tokens) Validate(ctx context.Context, token string) (Token, error) {
	if token == "" || len(token) > 256 {
		return Token{}, fmt.Errorf("%w: send a token in X-Auth-Token", ErrUnauthorized)
	}
	h := hashToken(token)
	now := s.now()
	s.mu.Lock()
	if _, gone := s.revoked[h]; gone {
		s.mu.Unlock()
		return Token{}, fmt.Errorf("%w: the token was revoked", ErrUnauthorized)
	}
	t, ok := s.cache[h]
	// While the revocation watch is failing, another replica's revocation
	// may not have reached this one: serve from the store (authoritative,
	// Revoke deletes the record) rather than fail open from the cache.
	if ok && now.Sub(s.watchOK) > watchStaleAfter {
		ok = false
	}
	s.mu.Unlock()
	if !ok {
		var err error
		if t, err = s.load(ctx, h); err != nil {
			return Token{}, err
		}
	}
	if !now.Before(t.ExpiresAt) {
		s.forget(h)
		return Token{}, fmt.Errorf("%w: the token expired at %s", ErrUnauthorized, t.ExpiresAt.Format(time.RFC3339))
	}
	s.mu.Lock()
	void := s.voidedBy(t)
	s.mu.Unlock()
	if void {
		s.forget(h)
		return Token{}, fmt.Errorf("%w: the token was revoked", ErrUnauthorized)
	}
	return t, nil
}

// RevokeProject voids every token scoped to a project issued until now,
// on every replica (the project is being deleted or disabled).
func (s *Tokens) RevokeProject(ctx context.Context, projectID string) error {
	return s.revokeEvent(ctx, revokedProjectsPrefix, projectID)
}

// RevokeUser voids every token of a user issued until now, on every
// replica (a deleted or disabled user must lose access at once).
func (s *Tokens) RevokeUser(ctx context.Context, userID string) error {
	return s.revokeEvent(ctx, revokedUsersPrefix, userID)
}

// RevokeApplicationCredential voids every token issued from an
// application credential, on every replica (the credential is being
// deleted).
func (s *Tokens) RevokeApplicationCredential(ctx context.Context, id string) error {
	return s.revokeEvent(ctx, revokedAppCredsPrefix, id)
}

// RevokeDomain voids every token issued until now of the domain's users
// or scoped to the domain or one of its projects (the domain is being
// disabled or deleted).
func (s *Tokens) RevokeDomain(ctx context.Context, domainID string) error {
	return s.revokeEvent(ctx, revokedDomainsPrefix, domainID)
}

// RevokeTrust voids every token issued from a trust (it is being
// deleted).
func (s *Tokens) RevokeTrust(ctx context.Context, id string) error {
	return s.revokeEvent(ctx, revokedTrustsPrefix, id)
}

// RevokeRole voids every token carrying a role issued until now (the role
// is being deleted).
func (s *Tokens) RevokeRole(ctx context.Context, roleID string) error {
	return s.revokeEvent(ctx, revokedRolesPrefix, roleID)
}

func (s *Tokens) revokeEvent(ctx context.Context, kind, id string) error {
	now := s.now()
	raw, _ := json.Marshal(now)
	if _, err := s.store.Put(ctx, kind+id, raw); err != nil {
		return err
	}
	s.mu.Lock()
	s.events[kind][id] = now
	s.mu.Unlock()
	return nil
}

func (s *Tokens) load(ctx context.Context, h string) (Token, error) {
	kv, err := s.store.Get(ctx, tokensPrefix+h)
	if errors.Is(err, registry.ErrNotFound) {
		return Token{}, fmt.Errorf("%w: the token is unknown, expired or revoked", ErrUnauthorized)
	}
	if err != nil {
		return Token{}, err
	}
	var t Token
	if err := json.Unmarshal(kv.Value, &t); err != nil {
		return Token{}, fmt.Errorf("decode token: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, gone := s.revoked[h]; gone { // revoked while we read it
		return Token{}, fmt.Errorf("%w: the token was revoked", ErrUnauthorized)
	}
	if len(s.cache) >= maxCached {
		clear(s.cache) // crude but bounded; entries reload on demand
	}
	s.cache[h] = t
	return t, nil
}

func (s *Tokens) forget(h string) {
	s.mu.Lock()
	delete(s.cache, h)
	s.mu.Unlock()
}

// Revoke invalidates a token on every replica: a revocation record (kept
// until the token would have expired) that every replica watches, then the
// token record itself.
func (s *Tokens) Revoke(ctx context.Context, token string) error {
	t, err := s.Validate(ctx, token)
	if err != nil {
		return err
	}
	h := hashToken(token)
	raw, _ := json.Marshal(t.ExpiresAt)
	if _, err := s.store.Put(ctx, revokedPrefix+h, raw); err != nil {
		return err
	}
	s.mu.Lock()
	s.revoked[h] = t.ExpiresAt
	delete(s.cache, h)
	s.mu.Unlock()
	return s.store.Delete(ctx, tokensPrefix+h)
}

// Run follows revocations from every replica until ctx ends, and sweeps
// expired tokens and revocations from the store every sweep interval; a
// zero sweep leaves that to the broker's garbage collector (Collect), which
// one replica runs for all.
func (s *Tokens) Run(ctx context.Context, sweep time.Duration) error {
	if sweep > 0 {
		go s.sweepLoop(ctx, sweep)
	}
	var index uint64
	for {
		var kvs []registry.KV
		var next uint64
		var err error
		if index == 0 {
			kvs, next, err = s.store.List(ctx, revocationsWatch)
		} else {
			kvs, next, err = s.store.Watch(ctx, revocationsWatch, index)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			s.log.WithError(err).Warn("tokens: revocation watch failed; retrying")
			index = 0
			select {
			case <-time.After(time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
			continue
		}
		index = next
		s.applyRevocations(kvs)
	}
}

// applyRevocations replaces the in-memory revocation sets with what the
// store holds, keeping local revocations the watch has not delivered yet,
// and drops revoked tokens from the cache.
func (s *Tokens) applyRevocations(kvs []registry.KV) {
	revoked := map[string]time.Time{}
	events := map[string]map[string]time.Time{}
	for _, k := range eventKinds {
		events[k] = map[string]time.Time{}
	}
	for _, kv := range kvs {
		var at time.Time
		_ = json.Unmarshal(kv.Value, &at)
		if id, ok := strings.CutPrefix(kv.Key, revokedPrefix); ok {
			revoked[id] = at
			continue
		}
		for _, k := range eventKinds {
			if id, ok := strings.CutPrefix(kv.Key, k); ok {
				events[k][id] = at
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	s.watchOK = now
	for h, exp := range s.revoked {
		if _, ok := revoked[h]; !ok && now.Before(exp) {
			revoked[h] = exp
		}
	}
	// Keep local events the watch has not delivered yet, but only while
	// they can still void a token: the maps stay bounded.
	keepNewer := func(into, local map[string]time.Time) {
		for k, at := range local {
			if prev, ok := into[k]; (!ok || prev.Before(at)) && now.Sub(at) < MaxTokenTTL {
				into[k] = at
			}
		}
	}
	for _, k := range eventKinds {
		keepNewer(events[k], s.events[k])
	}
	s.revoked, s.events = revoked, events
	for h := range revoked {
		delete(s.cache, h)
	}
}

func (s *Tokens) sweepLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := s.Sweep(ctx); err != nil {
				s.log.WithError(err).Warn("tokens: sweep failed")
			} else if n > 0 {
				s.log.WithField("removed", n).Debug("tokens: swept expired records")
			}
		}
	}
}

// Sweep deletes expired tokens and revocations of expired tokens. Every
// replica may sweep; deletes are idempotent.
func (s *Tokens) Sweep(ctx context.Context) (int, error) { return s.sweep(ctx, s.now()) }

func (s *Tokens) sweep(ctx context.Context, now time.Time) (int, error) {
	removed := 0
	for _, prefix := range append([]string{tokensPrefix, revokedPrefix}, eventKinds...) {
		kvs, _, err := s.store.List(ctx, prefix)
		if err != nil {
			return removed, err
		}
		for _, kv := range kvs {
			var exp time.Time
			if prefix == tokensPrefix {
				var t Token
				if json.Unmarshal(kv.Value, &t) != nil {
					continue
				}
				exp = t.ExpiresAt
			} else if json.Unmarshal(kv.Value, &exp) != nil {
				continue
			} else if prefix != revokedPrefix {
				exp = exp.Add(MaxTokenTTL) // every token an event voids has expired by then
			}
			if now.After(exp) {
				if err := s.store.Delete(ctx, kv.Key); err != nil {
					return removed, err
				}
				removed++
			}
		}
	}
	return removed, nil
}
