package broker

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cloudmux/cloudmux/registry"
)

// Roles a principal may hold.
const (
	RoleAdmin  = "admin"
	RoleMember = "member"
	RoleReader = "reader"
)

// Principal is who a request acts as.
type Principal struct {
	UserID      string    `json:"user_id"`
	UserName    string    `json:"user_name"`
	ProjectID   string    `json:"project_id,omitempty"`
	ProjectName string    `json:"project_name,omitempty"`
	Roles       []string  `json:"roles"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// HasRole reports whether the principal holds role; admin implies all.
func (p Principal) HasRole(role string) bool {
	return slices.Contains(p.Roles, RoleAdmin) || slices.Contains(p.Roles, role)
}

// Tokens issues and validates bearer tokens. Tokens are random; the store
// keeps only their SHA-256, so reading Consul does not yield usable tokens,
// and every broker replica on the same store accepts every token.
type Tokens struct {
	store Store
	now   func() time.Time
}

// Store is the part of registry.Store the broker's own records need.
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
}

const (
	tokenPrefix = "auth/tokens/"
	userPrefix  = "auth/users/"
)

// NewTokens returns a token service over store.
func NewTokens(store Store) *Tokens {
	return &Tokens{store: store, now: func() time.Time { return time.Now().UTC() }}
}

func tokenKey(token string) string {
	sum := sha256.Sum256([]byte(token))
	return tokenPrefix + hex.EncodeToString(sum[:])
}

// Issue creates a token for p valid for ttl.
func (t *Tokens) Issue(ctx context.Context, p Principal, ttl time.Duration) (string, Principal, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", Principal{}, err
	}
	token := "cmx_" + base64.RawURLEncoding.EncodeToString(b[:])
	p.ExpiresAt = t.now().Add(ttl)
	raw, err := json.Marshal(p)
	if err != nil {
		return "", Principal{}, err
	}
	if _, err := t.store.CAS(ctx, tokenKey(token), raw, 0); err != nil {
		return "", Principal{}, fmt.Errorf("store token: %w", err)
	}
	return token, p, nil
}

// Validate returns the principal of a live token.
func (t *Tokens) Validate(ctx context.Context, token string) (Principal, error) {
	if token == "" {
		return Principal{}, fmt.Errorf("%w: send a token in X-Auth-Token", ErrUnauthenticated)
	}
	kv, err := t.store.Get(ctx, tokenKey(token))
	if errors.Is(err, registry.ErrNotFound) {
		return Principal{}, fmt.Errorf("%w: the token is unknown, expired or revoked", ErrUnauthenticated)
	}
	if err != nil {
		return Principal{}, err
	}
	var p Principal
	if err := json.Unmarshal(kv.Value, &p); err != nil {
		return Principal{}, fmt.Errorf("decode token record: %w", err)
	}
	if !t.now().Before(p.ExpiresAt) {
		_ = t.store.Delete(ctx, kv.Key)
		return Principal{}, fmt.Errorf("%w: the token expired at %s", ErrUnauthenticated, p.ExpiresAt.Format(time.RFC3339))
	}
	return p, nil
}

// Revoke invalidates a token.
func (t *Tokens) Revoke(ctx context.Context, token string) error {
	return t.store.Delete(ctx, tokenKey(token))
}

// userRecord is a local user: the bootstrap admin now, Keystone's users later.
type userRecord struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	PasswordHash string   `json:"password_bcrypt"`
	ProjectID    string   `json:"project_id"`
	ProjectName  string   `json:"project_name"`
	Roles        []string `json:"roles"`
}

// BootstrapAdmin creates the admin user with password. With reset it also
// replaces an existing admin's password (an operator who set
// CLOUDMUX_ADMIN_PASSWORD means it); without, an existing admin is kept and
// the answer wraps registry.ErrConflict, so two brokers starting together
// cannot both believe their generated password is the one in force.
func BootstrapAdmin(ctx context.Context, store Store, password string, reset bool) error {
	if len(password) < 8 {
		return fmt.Errorf("%w: the admin password must be at least 8 characters", ErrBadRequest)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	u := userRecord{ID: "admin", Name: "admin", PasswordHash: string(hash), ProjectID: "admin", ProjectName: "admin", Roles: []string{RoleAdmin}}
	raw, err := json.Marshal(u)
	if err != nil {
		return err
	}
	if reset {
		_, err = store.Put(ctx, userPrefix+u.Name, raw)
		return err
	}
	if _, err = store.CAS(ctx, userPrefix+u.Name, raw, 0); err != nil {
		return fmt.Errorf("create the admin user: %w", err)
	}
	return nil
}

var userNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// Login checks a user's password and issues a token.
func (t *Tokens) Login(ctx context.Context, name, password string, ttl time.Duration) (string, Principal, error) {
	if !userNameRE.MatchString(name) {
		// Never a store key: "../users/admin" or "a//b" must not reach it.
		return "", Principal{}, &registry.FieldError{Field: "username", Reason: "1-64 letters, digits, '.', '_', '@' or '-'"}
	}
	kv, err := t.store.Get(ctx, userPrefix+name)
	if err != nil && !errors.Is(err, registry.ErrNotFound) {
		return "", Principal{}, err
	}
	var u userRecord
	if err == nil {
		err = json.Unmarshal(kv.Value, &u)
	}
	// Compare against a fixed hash for unknown users too, so timing does
	// not tell which user names exist.
	hash := []byte(u.PasswordHash)
	if len(hash) == 0 {
		hash = dummyHash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || err != nil {
		return "", Principal{}, fmt.Errorf("%w: wrong user name or password", ErrUnauthenticated)
	}
	return t.Issue(ctx, Principal{UserID: u.ID, UserName: u.Name, ProjectID: u.ProjectID, ProjectName: u.ProjectName, Roles: u.Roles}, ttl)
}

var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("cloudmux-dummy-password"), bcrypt.DefaultCost)

// tokenFrom reads the token the OpenStack way (X-Auth-Token) or as a bearer.
func tokenFrom(r *http.Request) string {
	if t := r.Header.Get("X-Auth-Token"); t != "" {
		return t
	}
	if v, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(v)
	}
	return ""
}
