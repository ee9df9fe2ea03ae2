package identity

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/registry"
)

// EC2 credentials: access/secret key pairs a user holds for one project,
// Keystone's OS-EC2 extension. The EC2 API verifies a request's signature
// with the secret and acts as the user on the project, with the roles the
// user holds there at that moment: a role removed, a user or project
// disabled or deleted, and the keys stop working at once.
//
// The secret must be readable by the broker (it keys the HMAC): records
// live under identity/ec2-credentials/<access>, sealed when the service has
// a Sealer (WithSealer), as is otherwise, like Keystone's own credential
// blobs; a secret is shown only to its owner and cloud admins, and a
// per-user key lists a user's credentials without scanning everyone's.

const (
	ec2CredsPrefix       = "identity/ec2-credentials/"
	ec2CredsByUserPrefix = "identity/ec2-credentials-by-user/"
	// MaxEC2CredentialsPerUser bounds what a user may create.
	MaxEC2CredentialsPerUser = 100
)

// EC2Credential is one access/secret pair.
type EC2Credential struct {
	Access    string    `json:"access"`
	Secret    string    `json:"secret"`
	UserID    string    `json:"user_id"`
	ProjectID string    `json:"tenant_id"`
	TrustID   string    `json:"trust_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// EC2Credentials keeps EC2 credentials in the directory's store.
type EC2Credentials struct {
	dir    *Directory
	sealer registry.Sealer
}

// NewEC2Credentials returns the EC2 credential service of a directory.
func NewEC2Credentials(dir *Directory) *EC2Credentials { return &EC2Credentials{dir: dir} }

// WithSealer seals the records (secrets included) before they reach the
// store, bound to their key, as the peer registry seals peer credentials.
// Records written unsealed still read.
func (c *EC2Credentials) WithSealer(s registry.Sealer) *EC2Credentials {
	c.sealer = s
	return c
}

func (c *EC2Credentials) seal(key string, raw []byte) ([]byte, error) {
	if c.sealer == nil {
		return raw, nil
	}
	return c.sealer.Seal(raw, []byte(key))
}

func (c *EC2Credentials) open(key string, raw []byte) ([]byte, error) {
	if c.sealer == nil {
		return raw, nil
	}
	return c.sealer.Open(raw, []byte(key))
}

func randomHex(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// Create makes a credential for a user on a project where the user holds a
// role (Keystone refuses others: keys would grant nothing).
func (c *EC2Credentials) Create(ctx context.Context, userID, projectID string) (EC2Credential, error) {
	return c.create(ctx, userID, projectID, "", "")
}

// create makes a credential with the given keys, or new ones where empty
// (the generic credential API may name them).
func (c *EC2Credentials) create(ctx context.Context, userID, projectID, access, secret string) (EC2Credential, error) {
	if len(access) > 128 || strings.ContainsAny(access, "/") || len(secret) > 256 {
		return EC2Credential{}, &registry.FieldError{Field: "credential.blob", Reason: "an access key is at most 128 characters without '/', a secret at most 256"}
	}
	if projectID == "" {
		return EC2Credential{}, &registry.FieldError{Field: "tenant_id", Reason: "is required: the project the keys act on"}
	}
	if _, err := c.dir.GetUser(ctx, userID); err != nil {
		return EC2Credential{}, err
	}
	if _, err := c.dir.GetProject(ctx, projectID); err != nil {
		return EC2Credential{}, &registry.FieldError{Field: "tenant_id", Reason: fmt.Sprintf("no project %q", projectID)}
	}
	roles, err := c.dir.RolesOn(ctx, projectID, userID)
	if err != nil {
		return EC2Credential{}, err
	}
	if len(roles) == 0 {
		return EC2Credential{}, fmt.Errorf("%w: the user has no role on project %s", ErrForbidden, projectID)
	}
	existing, _, err := c.dir.store.List(ctx, ec2CredsByUserPrefix+userID+"/")
	if err != nil {
		return EC2Credential{}, err
	}
	if len(existing) >= MaxEC2CredentialsPerUser {
		return EC2Credential{}, fmt.Errorf("%w: a user may hold at most %d EC2 credentials", ErrConflict, MaxEC2CredentialsPerUser)
	}
	if access == "" {
		if access, err = randomHex(16); err != nil {
			return EC2Credential{}, err
		}
	}
	if secret == "" {
		if secret, err = randomHex(20); err != nil {
			return EC2Credential{}, err
		}
	}
	cred := EC2Credential{Access: access, Secret: secret, UserID: userID, ProjectID: projectID, CreatedAt: c.dir.now()}
	raw, err := json.Marshal(cred)
	if err == nil {
		raw, err = c.seal(ec2CredsPrefix+access, raw)
	}
	if err != nil {
		return EC2Credential{}, err
	}
	if _, err := c.dir.store.CAS(ctx, ec2CredsPrefix+access, raw, 0); errors.Is(err, registry.ErrConflict) {
		return EC2Credential{}, fmt.Errorf("%w: an EC2 credential with access key %q already exists", ErrConflict, access)
	} else if err != nil {
		return EC2Credential{}, fmt.Errorf("store EC2 credential: %w", err)
	}
	if _, err := c.dir.store.CAS(ctx, ec2CredsByUserPrefix+userID+"/"+access, []byte(projectID), 0); err != nil {
		_ = c.dir.store.Delete(context.WithoutCancel(ctx), ec2CredsPrefix+access)
		return EC2Credential{}, fmt.Errorf("store EC2 credential: %w", err)
	}
	return cred, nil
}

// Lookup returns the credential with an access key, whoever owns it.
func (c *EC2Credentials) Lookup(ctx context.Context, access string) (EC2Credential, error) {
	if access == "" || len(access) > 128 {
		return EC2Credential{}, fmt.Errorf("%w ec2 credential", ErrNotFound)
	}
	key := ec2CredsPrefix + access
	if registry.ValidateKey(key) != nil {
		return EC2Credential{}, fmt.Errorf("%w ec2 credential %s", ErrNotFound, access)
	}
	kv, err := c.dir.store.Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		return EC2Credential{}, fmt.Errorf("%w ec2 credential %s", ErrNotFound, access)
	}
	if err != nil {
		return EC2Credential{}, err
	}
	raw, err := c.open(key, kv.Value)
	if err != nil {
		return EC2Credential{}, err
	}
	var cred EC2Credential
	return cred, json.Unmarshal(raw, &cred)
}

// Get returns a user's credential; another user's is ErrNotFound.
func (c *EC2Credentials) Get(ctx context.Context, userID, access string) (EC2Credential, error) {
	cred, err := c.Lookup(ctx, access)
	if err != nil {
		return EC2Credential{}, err
	}
	if cred.UserID != userID {
		return EC2Credential{}, fmt.Errorf("%w ec2 credential %s", ErrNotFound, access)
	}
	return cred, nil
}

// List returns a user's credentials, oldest first.
func (c *EC2Credentials) List(ctx context.Context, userID string) ([]EC2Credential, error) {
	kvs, _, err := c.dir.store.List(ctx, ec2CredsByUserPrefix+userID+"/")
	if err != nil {
		return nil, err
	}
	out := make([]EC2Credential, 0, len(kvs))
	for _, kv := range kvs {
		access := kv.Key[len(ec2CredsByUserPrefix+userID+"/"):]
		cred, err := c.Get(ctx, userID, access)
		if errors.Is(err, ErrNotFound) {
			continue // deleted between the two reads
		}
		if err != nil {
			return nil, err
		}
		out = append(out, cred)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Delete removes a user's credential.
func (c *EC2Credentials) Delete(ctx context.Context, userID, access string) error {
	if _, err := c.Get(ctx, userID, access); err != nil {
		return err
	}
	return errors.Join(c.dir.store.Delete(ctx, ec2CredsPrefix+access),
		c.dir.store.Delete(context.WithoutCancel(ctx), ec2CredsByUserPrefix+userID+"/"+access))
}

// Authorize resolves a credential to the token its requests act with: the
// user, the project and the user's current roles there. A disabled or
// deleted user or project, or no role left, is ErrUnauthorized.
func (c *EC2Credentials) Authorize(ctx context.Context, cred EC2Credential) (Token, error) {
	denied := fmt.Errorf("%w: the EC2 credential's user or project is gone, disabled, or holds no role", ErrUnauthorized)
	u, err := c.dir.GetUser(ctx, cred.UserID)
	if errors.Is(err, ErrNotFound) || (err == nil && !u.Enabled) {
		return Token{}, denied
	}
	if err != nil {
		return Token{}, err
	}
	p, err := c.dir.GetProject(ctx, cred.ProjectID)
	if errors.Is(err, ErrNotFound) || (err == nil && !p.Enabled) {
		return Token{}, denied
	}
	if err != nil {
		return Token{}, err
	}
	roles, err := c.dir.RolesOn(ctx, p.ID, u.ID)
	if err != nil {
		return Token{}, err
	}
	if len(roles) == 0 || !c.dir.domainEnabled(ctx, p.DomainID) || !c.dir.domainEnabled(ctx, u.DomainID) {
		return Token{}, denied
	}
	now := c.dir.now()
	t := Token{UserID: u.ID, UserName: u.Name, UserDomainID: u.DomainID, ProjectID: p.ID, ProjectName: p.Name,
		ProjectDomain: p.DomainID, AdminProject: IsAdminProject(p), Roles: roles, Methods: []string{"ec2credential"},
		IssuedAt: now, ExpiresAt: now.Add(time.Minute), AuditID: cred.Access}
	if dom, err := c.dir.GetDomain(ctx, u.DomainID); err == nil {
		t.UserDomainName = dom.Name
	}
	return t, nil
}

// WithToken returns ctx carrying t, as Authenticate leaves it: for
// authenticators other than X-Auth-Token (EC2 signatures), so handlers
// read the caller with TokenFrom whichever way it came.
func WithToken(ctx context.Context, t Token) context.Context {
	return context.WithValue(ctx, tokenKey, t)
}

// ec2Creds is the credential service the OS-EC2 routes use: the one the
// broker wired (sealed), else an unsealed one over the directory.
func (k *Keystone) ec2Creds() *EC2Credentials {
	if k.EC2 != nil {
		return k.EC2
	}
	return NewEC2Credentials(k.Dir)
}

// ec2CredentialRoutes serves /v3/users/{user}/credentials/OS-EC2 (mounted
// behind Authenticate): a user manages their own keys, a cloud admin
// anyone's.
func (k *Keystone) ec2CredentialRoutes(r chi.Router) {
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, _ := TokenFrom(r.Context())
			if chi.URLParam(r, "user") != t.UserID && !t.IdentityAdmin() {
				k.fail(w, r, fmt.Errorf("%w: another user's EC2 credentials", ErrForbidden))
				return
			}
			next.ServeHTTP(w, r)
		})
	})
	r.Get("/", k.listEC2)
	r.Post("/", k.createEC2)
	r.Get("/{access}", k.showEC2)
	r.Delete("/{access}", k.deleteEC2)
}

func ec2View(r *http.Request, c EC2Credential) map[string]any {
	return map[string]any{"access": c.Access, "secret": c.Secret, "user_id": c.UserID, "tenant_id": c.ProjectID,
		"trust_id": nil, "links": map[string]string{"self": BaseURL(r) + "/v3/users/" + c.UserID + "/credentials/OS-EC2/" + c.Access}}
}

func (k *Keystone) createEC2(w http.ResponseWriter, r *http.Request) {
	var req struct {
		TenantID string `json:"tenant_id"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	t, _ := TokenFrom(r.Context())
	user := chi.URLParam(r, "user")
	// A user creates keys only for a project they hold a role on, which
	// Create checks; an admin may create them for any user's project.
	if req.TenantID == "" && user == t.UserID {
		req.TenantID = t.ProjectID
	}
	cred, err := k.ec2Creds().Create(r.Context(), user, req.TenantID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	k.Log.WithField("user", user).WithField("project", cred.ProjectID).WithField("access", cred.Access).Info("ec2 credential created")
	writeJSON(w, http.StatusCreated, map[string]any{"credential": ec2View(r, cred)})
}

func (k *Keystone) listEC2(w http.ResponseWriter, r *http.Request) {
	creds, err := k.ec2Creds().List(r.Context(), chi.URLParam(r, "user"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(creds))
	for _, c := range creds {
		out = append(out, ec2View(r, c))
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": out, "links": links(r)})
}

func (k *Keystone) showEC2(w http.ResponseWriter, r *http.Request) {
	cred, err := k.ec2Creds().Get(r.Context(), chi.URLParam(r, "user"), chi.URLParam(r, "access"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"credential": ec2View(r, cred)})
}

func (k *Keystone) deleteEC2(w http.ResponseWriter, r *http.Request) {
	user, access := chi.URLParam(r, "user"), chi.URLParam(r, "access")
	if err := k.ec2Creds().Delete(r.Context(), user, access); err != nil {
		k.fail(w, r, err)
		return
	}
	k.Log.WithField("user", user).WithField("access", access).Info("ec2 credential deleted")
	w.WriteHeader(http.StatusNoContent)
}
