package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cloudmux/cloudmux/registry"
)

// Application credentials: a secret a user makes for a tool, bound to the
// project of the token that made it and to a subset of the user's roles
// there, as Keystone's. Authenticating with one gives a token scoped to
// that project with those of its roles the user still holds; deleting it
// voids every token it gave.
//
// The secret is shown once, at creation, and stored only as a bcrypt hash
// (as user passwords are). bcrypt reads at most 72 bytes and Keystone's
// generated secrets are 86 characters, so the hash is of the secret's
// SHA-256: every byte of any secret counts.
//
// Records live under identity/app-credentials/<id>; a per-user name index
// (identity/app-credential-names/<user>/<name>) makes names unique per user
// and lists a user's credentials without scanning everyone's.

const (
	appCredsPrefix     = "identity/app-credentials/"
	appCredNamesPrefix = "identity/app-credential-names/"
	// MaxAppCredentialsPerUser bounds what a user may create (Keystone's
	// user_limit).
	MaxAppCredentialsPerUser = 100
	// MethodAppCred is the auth method name of application credentials.
	MethodAppCred = "application_credential"
	// appCredTime is how Keystone writes an application credential's
	// expires_at (no zone, UTC), which gophercloud parses.
	appCredTime = "2006-01-02T15:04:05.000000"
)

// AppCredential is a stored application credential. SecretHash never
// leaves this package.
type AppCredential struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Description  string     `json:"description"`
	UserID       string     `json:"user_id"`
	ProjectID    string     `json:"project_id"`
	Roles        []Role     `json:"roles"`
	Unrestricted bool       `json:"unrestricted"`
	ExpiresAt    *time.Time `json:"expires_at,omitempty"`
	SecretHash   string     `json:"secret_bcrypt,omitempty"`
	CreatedAt    time.Time  `json:"created_at"`
	// AccessRules, when any, are all its tokens may do (accessrules.go).
	AccessRules []AccessRule `json:"access_rules,omitempty"`
}

// Expired reports whether the credential has expired at now.
func (a AppCredential) Expired(now time.Time) bool {
	return a.ExpiresAt != nil && !now.Before(*a.ExpiresAt)
}

// AppCredentialRequest is what a user asks for. Roles are named by ID or
// by name; none means every role of the creating token.
type AppCredentialRequest struct {
	Name         string
	Description  string
	Secret       string
	ExpiresAt    *time.Time
	Roles        []Role
	Unrestricted bool
	// AccessRules: existing rules of the user by ID, or new ones by
	// service, method and path.
	AccessRules []AccessRule
}

// AppCredentials keeps application credentials in the directory's store.
type AppCredentials struct {
	dir *Directory
}

// NewAppCredentials returns the application credential service of a
// directory.
func NewAppCredentials(dir *Directory) *AppCredentials { return &AppCredentials{dir: dir} }

// hashAppSecret hashes a secret for storage (see the file comment for the
// SHA-256 step).
func (c *AppCredentials) hashAppSecret(secret string) (string, error) {
	h, err := c.dir.hash(appSecretKey(secret))
	return string(h), err
}

func appSecretKey(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return []byte(base64.StdEncoding.EncodeToString(sum[:]))
}

// newAppSecret is Keystone's: 64 random bytes, URL-safe base64 unpadded.
func newAppSecret() (string, error) {
	b := make([]byte, 64)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func appCredNameKey(userID, name string) string { return nameKey(appCredNamesPrefix, userID, name) }

func appCredUserPrefix(userID string) string { return nameKey(appCredNamesPrefix, userID) + "/" }

// Create makes a credential for the creator token's user on the token's
// project, and returns it with its secret (the only time the secret is
// seen). Requested roles must be roles of the token that the user holds on
// the project now: a credential never grants more than its creator had.
func (c *AppCredentials) Create(ctx context.Context, creator Token, req AppCredentialRequest) (AppCredential, string, error) {
	now := c.dir.now()
	var errs []error
	if req.Name == "" {
		errs = append(errs, &registry.FieldError{Field: "application_credential.name", Reason: "is required"})
	} else if err := validName("application_credential.name", req.Name); err != nil {
		errs = append(errs, err)
	}
	if len(req.Description) > 1024 {
		errs = append(errs, &registry.FieldError{Field: "application_credential.description", Reason: "must be at most 1024 characters"})
	}
	if len(req.Secret) > 1024 {
		errs = append(errs, &registry.FieldError{Field: "application_credential.secret", Reason: "must be at most 1024 characters"})
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(now) {
		errs = append(errs, &registry.FieldError{Field: "application_credential.expires_at", Reason: "must be in the future"})
	}
	roles, err := c.resolveRoles(ctx, creator, req.Roles)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return AppCredential{}, "", err
	}
	existing, _, err := c.dir.store.List(ctx, appCredUserPrefix(creator.UserID))
	if err != nil {
		return AppCredential{}, "", err
	}
	if len(existing) >= MaxAppCredentialsPerUser {
		return AppCredential{}, "", fmt.Errorf("%w: a user may hold at most %d application credentials", ErrForbidden, MaxAppCredentialsPerUser)
	}
	secret := req.Secret
	if secret == "" {
		if secret, err = newAppSecret(); err != nil {
			return AppCredential{}, "", err
		}
	}
	hash, err := c.hashAppSecret(secret)
	if err != nil {
		return AppCredential{}, "", err
	}
	rules, err := c.resolveAccessRules(ctx, creator.UserID, req.AccessRules)
	if err != nil {
		return AppCredential{}, "", err
	}
	ac := AppCredential{ID: NewID(), Name: req.Name, Description: req.Description, UserID: creator.UserID,
		ProjectID: creator.ProjectID, Roles: roles, Unrestricted: req.Unrestricted, SecretHash: hash, CreatedAt: now, AccessRules: rules}
	if req.ExpiresAt != nil {
		exp := req.ExpiresAt.UTC()
		ac.ExpiresAt = &exp
	}
	idx := appCredNameKey(ac.UserID, ac.Name)
	if _, err := c.dir.store.CAS(ctx, idx, []byte(ac.ID), 0); err != nil {
		if errors.Is(err, registry.ErrConflict) {
			return AppCredential{}, "", fmt.Errorf("%w: an application credential named %q already exists for this user", ErrConflict, ac.Name)
		}
		return AppCredential{}, "", err
	}
	raw, err := json.Marshal(ac)
	if err == nil {
		_, err = c.dir.store.CAS(ctx, appCredsPrefix+ac.ID, raw, 0)
	}
	if err != nil {
		_ = c.dir.store.Delete(context.WithoutCancel(ctx), idx)
		return AppCredential{}, "", fmt.Errorf("store application credential %q: %w", ac.Name, err)
	}
	if err := c.keepAccessRules(ctx, ac.AccessRules); err != nil {
		return AppCredential{}, "", err
	}
	ac.SecretHash = ""
	return ac, secret, nil
}

// resolveRoles turns requested roles (by ID or name) into roles, each one
// the creator's token carries and the user holds on the project now.
// Keystone answers a role outside them with 400, not 403 or 404.
func (c *AppCredentials) resolveRoles(ctx context.Context, creator Token, want []Role) ([]Role, error) {
	held, err := c.dir.RolesOn(ctx, creator.ProjectID, creator.UserID)
	if err != nil {
		return nil, err
	}
	holds := func(id string) bool {
		inToken := false
		for _, r := range creator.Roles {
			inToken = inToken || r.ID == id
		}
		for _, r := range held {
			if r.ID == id {
				return inToken
			}
		}
		return false
	}
	if len(want) == 0 {
		out := []Role{}
		for _, r := range creator.Roles {
			if holds(r.ID) {
				out = append(out, r)
			}
		}
		if len(out) == 0 {
			return nil, &registry.FieldError{Field: "application_credential.roles", Reason: "the token holds no role on its project to delegate"}
		}
		return out, nil
	}
	var out []Role
	var errs []error
	seen := map[string]bool{}
	for i, w := range want {
		field := fmt.Sprintf("application_credential.roles[%d]", i)
		var r Role
		var err error
		switch {
		case (w.ID == "") == (w.Name == ""):
			errs = append(errs, &registry.FieldError{Field: field, Reason: "give exactly one of id and name"})
			continue
		case w.ID != "":
			r, err = c.dir.GetRole(ctx, w.ID)
		default:
			r, err = c.dir.FindRole(ctx, w.Name)
		}
		if errors.Is(err, ErrNotFound) {
			errs = append(errs, &registry.FieldError{Field: field, Reason: fmt.Sprintf("no role %q", w.ID+w.Name)})
			continue
		}
		if err != nil {
			return nil, err
		}
		if !holds(r.ID) {
			errs = append(errs, &registry.FieldError{Field: field, Reason: fmt.Sprintf("cannot create an application credential with unassigned role %q", r.Name)})
			continue
		}
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	return out, errors.Join(errs...)
}

// Lookup returns a credential by ID, whoever owns it.
func (c *AppCredentials) Lookup(ctx context.Context, id string) (AppCredential, error) {
	if id == "" || len(id) > 64 || strings.ContainsAny(id, "/.") {
		return AppCredential{}, fmt.Errorf("%w application credential %q", ErrNotFound, id)
	}
	ac, err := getJSON[AppCredential](ctx, c.dir.store, appCredsPrefix+id, "application credential", id)
	ac.SecretHash = ""
	return ac, err
}

// Get returns a user's credential; another user's is ErrNotFound.
func (c *AppCredentials) Get(ctx context.Context, userID, id string) (AppCredential, error) {
	ac, err := c.Lookup(ctx, id)
	if err != nil {
		return AppCredential{}, err
	}
	if ac.UserID != userID {
		return AppCredential{}, fmt.Errorf("%w application credential %s", ErrNotFound, id)
	}
	return ac, nil
}

// FindByName returns a user's credential by name (case-insensitive).
func (c *AppCredentials) FindByName(ctx context.Context, userID, name string) (AppCredential, error) {
	ac, err := byName[AppCredential](ctx, c.dir.store, appCredNameKey(userID, name), appCredsPrefix, "application credential", name)
	ac.SecretHash = ""
	if err == nil && ac.UserID != userID {
		return AppCredential{}, fmt.Errorf("%w application credential %s", ErrNotFound, name)
	}
	return ac, err
}

// List returns a user's credentials, oldest first.
func (c *AppCredentials) List(ctx context.Context, userID string) ([]AppCredential, error) {
	kvs, _, err := c.dir.store.List(ctx, appCredUserPrefix(userID))
	if err != nil {
		return nil, err
	}
	out := make([]AppCredential, 0, len(kvs))
	for _, kv := range kvs {
		ac, err := c.Get(ctx, userID, string(kv.Value))
		if errors.Is(err, ErrNotFound) {
			continue // deleted between the two reads
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ac)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Delete removes a user's credential. Its tokens are the token service's
// to void, before this (Tokens.RevokeApplicationCredential).
func (c *AppCredentials) Delete(ctx context.Context, userID, id string) error {
	ac, err := c.Get(ctx, userID, id)
	if err != nil {
		return err
	}
	return errors.Join(c.dir.store.Delete(ctx, appCredsPrefix+id),
		c.dir.store.Delete(context.WithoutCancel(ctx), appCredNameKey(ac.UserID, ac.Name)))
}

// errAppCredAuth is every authentication failure, alike, so a caller
// learns nothing about which credentials exist.
var errAppCredAuth = fmt.Errorf("%w: invalid application credential ID, name or secret, or it has expired", ErrUnauthorized)

// Authenticate checks a secret against a credential (by ID, or by the
// user's ID and the credential's name) and its expiry.
func (c *AppCredentials) Authenticate(ctx context.Context, id, userID, name, secret string) (AppCredential, error) {
	key := appCredsPrefix + id
	if id == "" && userID != "" {
		kv, err := c.dir.store.Get(ctx, appCredNameKey(userID, name))
		if err != nil && !errors.Is(err, registry.ErrNotFound) {
			return AppCredential{}, err
		}
		key = appCredsPrefix + string(kv.Value)
	}
	ac, err := getJSON[AppCredential](ctx, c.dir.store, key, "application credential", id)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return AppCredential{}, err
	}
	hash := []byte(ac.SecretHash)
	if err != nil || len(hash) == 0 || (id == "" && ac.UserID != userID) {
		hash = c.dir.dummyHash() // as slow as a real check
		err = ErrNotFound
	}
	if bcrypt.CompareHashAndPassword(hash, appSecretKey(secret)) != nil || err != nil || ac.Expired(c.dir.now()) {
		return AppCredential{}, errAppCredAuth
	}
	ac.SecretHash = ""
	return ac, nil
}

// Authorize resolves a credential to what its token holds: its project
// (which must exist and be enabled) and those of its roles the user holds
// there now. A disabled or deleted user, or no role left, is
// ErrUnauthorized.
func (c *AppCredentials) Authorize(ctx context.Context, ac AppCredential) (Project, []Role, error) {
	denied := fmt.Errorf("%w: the application credential's user or project is gone or disabled, or its roles are no longer held", ErrUnauthorized)
	u, err := c.dir.GetUser(ctx, ac.UserID)
	if errors.Is(err, ErrNotFound) || (err == nil && !u.Enabled) {
		return Project{}, nil, denied
	}
	if err != nil {
		return Project{}, nil, err
	}
	p, err := c.dir.GetProject(ctx, ac.ProjectID)
	if errors.Is(err, ErrNotFound) || (err == nil && !p.Enabled) {
		return Project{}, nil, denied
	}
	if err != nil {
		return Project{}, nil, err
	}
	held, err := c.dir.RolesOn(ctx, p.ID, u.ID)
	if err != nil {
		return Project{}, nil, err
	}
	var ids []string
	for _, want := range ac.Roles {
		for _, h := range held {
			if h.ID == want.ID {
				ids = append(ids, h.ID)
				break
			}
		}
	}
	if len(ids) == 0 || !c.dir.domainEnabled(ctx, p.DomainID) || !c.dir.domainEnabled(ctx, u.DomainID) {
		return Project{}, nil, denied
	}
	// The token carries what the credential's roles imply, as any token.
	roles, err := c.dir.expandRoles(ctx, ids)
	if err != nil {
		return Project{}, nil, err
	}
	return p, roles, nil
}
