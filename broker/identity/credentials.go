package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// The generic credential API (/v3/credentials): blobs a user keeps with
// the identity service (TOTP secrets, certificates, anything a tool
// stores), sealed as the EC2 secrets are. Credentials of type "ec2" are
// the OS-EC2 records themselves: created here they sign EC2 requests,
// created through OS-EC2 they are listed here, with Keystone's ID (the
// SHA-256 of the access key) and blob ({"access", "secret", ...}).
//
// Other types live under identity/credentials/<id>, with a per-user index
// identity/credentials-by-user/<user>/<id> so a user's are one listing.

const (
	credentialsPrefix       = "identity/credentials/"
	credentialsByUserPrefix = "identity/credentials-by-user/"
	// MaxCredentialsPerUser bounds the generic credentials a user holds
	// (EC2 ones count against MaxEC2CredentialsPerUser).
	MaxCredentialsPerUser = 100
	maxCredentialBlob     = 16 << 10
	credentialTypeEC2     = "ec2"
)

// Credential is one generic credential.
type Credential struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	ProjectID string    `json:"project_id,omitempty"`
	Type      string    `json:"type"`
	Blob      string    `json:"blob"`
	CreatedAt time.Time `json:"created_at"`
}

// ec2CredentialID is Keystone's ID of an EC2 credential.
func ec2CredentialID(access string) string {
	sum := sha256.Sum256([]byte(access))
	return hex.EncodeToString(sum[:])
}

// asCredential shows an EC2 record as a generic credential.
func asCredential(c EC2Credential) Credential {
	blob, _ := json.Marshal(map[string]any{"access": c.Access, "secret": c.Secret, "trust_id": nilIfEmpty(c.TrustID)})
	return Credential{ID: ec2CredentialID(c.Access), UserID: c.UserID, ProjectID: c.ProjectID, Type: credentialTypeEC2, Blob: string(blob), CreatedAt: c.CreatedAt}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// Credentials is the generic credential service over the EC2 one (whose
// sealer it shares).
type Credentials struct {
	ec2 *EC2Credentials
}

// NewCredentials returns the credential service of an EC2 credential
// service.
func NewCredentials(ec2 *EC2Credentials) *Credentials { return &Credentials{ec2: ec2} }

func (c *Credentials) store() Store { return c.ec2.dir.store }

// Create stores a credential. An "ec2" blob is {"access", "secret"} (both
// optional: generated when missing) and needs a project the user holds a
// role on.
func (c *Credentials) Create(ctx context.Context, cr Credential) (Credential, error) {
	var errs []error
	if cr.Type == "" || len(cr.Type) > 255 {
		errs = append(errs, &registry.FieldError{Field: "credential.type", Reason: "is required (1-255 characters)"})
	}
	if cr.Blob == "" || len(cr.Blob) > maxCredentialBlob {
		errs = append(errs, &registry.FieldError{Field: "credential.blob", Reason: fmt.Sprintf("is required, at most %d bytes", maxCredentialBlob)})
	}
	if _, err := c.ec2.dir.GetUser(ctx, cr.UserID); errors.Is(err, ErrNotFound) {
		errs = append(errs, &registry.FieldError{Field: "credential.user_id", Reason: fmt.Sprintf("no user %q", cr.UserID)})
	} else if err != nil {
		return Credential{}, err
	}
	if err := errors.Join(errs...); err != nil {
		return Credential{}, err
	}
	if cr.Type == credentialTypeEC2 {
		var blob struct {
			Access string `json:"access"`
			Secret string `json:"secret"`
		}
		if err := json.Unmarshal([]byte(cr.Blob), &blob); err != nil {
			return Credential{}, &registry.FieldError{Field: "credential.blob", Reason: `an ec2 blob is a JSON object {"access": ..., "secret": ...}`}
		}
		ec, err := c.ec2.create(ctx, cr.UserID, cr.ProjectID, blob.Access, blob.Secret)
		if err != nil {
			return Credential{}, err
		}
		return asCredential(ec), nil
	}
	if cr.ProjectID != "" {
		if _, err := c.ec2.dir.GetProject(ctx, cr.ProjectID); err != nil {
			return Credential{}, &registry.FieldError{Field: "credential.project_id", Reason: fmt.Sprintf("no project %q", cr.ProjectID)}
		}
	}
	mine, _, err := c.store().List(ctx, credentialsByUserPrefix+cr.UserID+"/")
	if err != nil {
		return Credential{}, err
	}
	if len(mine) >= MaxCredentialsPerUser {
		return Credential{}, fmt.Errorf("%w: a user may hold at most %d credentials", ErrForbidden, MaxCredentialsPerUser)
	}
	cr.ID, cr.CreatedAt = NewID(), c.ec2.dir.now()
	if err := c.put(ctx, cr, 0); err != nil {
		return Credential{}, err
	}
	if _, err := c.store().Put(ctx, credentialsByUserPrefix+cr.UserID+"/"+cr.ID, []byte("{}")); err != nil {
		_ = c.store().Delete(context.WithoutCancel(ctx), credentialsPrefix+cr.ID)
		return Credential{}, err
	}
	return cr, nil
}

// put seals and writes a generic credential by CAS at index.
func (c *Credentials) put(ctx context.Context, cr Credential, index uint64) error {
	key := credentialsPrefix + cr.ID
	raw, err := json.Marshal(cr)
	if err == nil {
		raw, err = c.ec2.seal(key, raw)
	}
	if err == nil {
		_, err = c.store().CAS(ctx, key, raw, index)
	}
	return err
}

// get reads a generic credential and its index.
func (c *Credentials) get(ctx context.Context, id string) (Credential, uint64, error) {
	key := credentialsPrefix + id
	if strings.Contains(id, "/") || registry.ValidateKey(key) != nil {
		return Credential{}, 0, errNotFoundf("credential %s", id)
	}
	kv, err := c.store().Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		return Credential{}, 0, errNotFoundf("credential %s", id)
	}
	if err != nil {
		return Credential{}, 0, err
	}
	raw, err := c.ec2.open(key, kv.Value)
	if err != nil {
		return Credential{}, 0, err
	}
	var cr Credential
	return cr, kv.ModifyIndex, json.Unmarshal(raw, &cr)
}

// Get returns a credential by ID: a generic one, or an EC2 one by its
// Keystone ID among userID's (every user's when userID is empty: an
// admin's read, from the cached records).
func (c *Credentials) Get(ctx context.Context, userID, id string) (Credential, error) {
	cr, _, err := c.get(ctx, id)
	if err == nil {
		if userID != "" && cr.UserID != userID {
			return Credential{}, errNotFoundf("credential %s", id)
		}
		return cr, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Credential{}, err
	}
	ecs, err := c.ec2s(ctx, userID)
	if err != nil {
		return Credential{}, err
	}
	for _, ec := range ecs {
		if ec2CredentialID(ec.Access) == id {
			return asCredential(ec), nil
		}
	}
	return Credential{}, errNotFoundf("credential %s", id)
}

// ec2s lists userID's EC2 credentials, or everyone's when userID is empty.
func (c *Credentials) ec2s(ctx context.Context, userID string) ([]EC2Credential, error) {
	if userID != "" {
		return c.ec2.List(ctx, userID)
	}
	kvs, _, err := c.store().List(ctx, ec2CredsPrefix)
	if err != nil {
		return nil, err
	}
	out := make([]EC2Credential, 0, len(kvs))
	for _, kv := range kvs {
		ec, err := c.ec2.Lookup(ctx, strings.TrimPrefix(kv.Key, ec2CredsPrefix))
		if err == nil {
			out = append(out, ec)
		}
	}
	return out, nil
}

// List returns userID's credentials (everyone's when empty), generic and
// EC2, oldest first.
func (c *Credentials) List(ctx context.Context, userID string) ([]Credential, error) {
	var ids []string
	if userID != "" {
		kvs, _, err := c.store().List(ctx, credentialsByUserPrefix+userID+"/")
		if err != nil {
			return nil, err
		}
		ids = lastSegments(kvs)
	} else {
		kvs, _, err := c.store().List(ctx, credentialsPrefix)
		if err != nil {
			return nil, err
		}
		for _, kv := range kvs {
			ids = append(ids, strings.TrimPrefix(kv.Key, credentialsPrefix))
		}
	}
	out := []Credential{}
	for _, id := range ids {
		cr, _, err := c.get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted between the reads
		}
		if err != nil {
			return nil, err
		}
		out = append(out, cr)
	}
	ecs, err := c.ec2s(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, ec := range ecs {
		out = append(out, asCredential(ec))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out, nil
}

// Update changes a generic credential's blob or project; the type, owner
// and EC2 keys do not change (Keystone refuses an ec2 ID that would no
// longer match its access key; here EC2 keys are made and deleted whole).
func (c *Credentials) Update(ctx context.Context, userID, id string, blob, projectID *string) (Credential, error) {
	// The version this update replaces comes from the Store: memory may
	// lag another replica's update, and its index would then conflict.
	cr, idx, err := c.get(ReadStore(ctx), id)
	if errors.Is(err, ErrNotFound) {
		if _, ecErr := c.Get(ctx, userID, id); ecErr == nil {
			return Credential{}, &registry.FieldError{Field: "credential", Reason: "ec2 credentials are not changed: create a new one and delete this one"}
		}
	}
	if err != nil {
		return Credential{}, err
	}
	if userID != "" && cr.UserID != userID {
		return Credential{}, errNotFoundf("credential %s", id)
	}
	if blob != nil {
		if *blob == "" || len(*blob) > maxCredentialBlob {
			return Credential{}, &registry.FieldError{Field: "credential.blob", Reason: fmt.Sprintf("is required, at most %d bytes", maxCredentialBlob)}
		}
		cr.Blob = *blob
	}
	if projectID != nil && *projectID != cr.ProjectID {
		if _, err := c.ec2.dir.GetProject(ctx, *projectID); *projectID != "" && err != nil {
			return Credential{}, &registry.FieldError{Field: "credential.project_id", Reason: fmt.Sprintf("no project %q", *projectID)}
		}
		cr.ProjectID = *projectID
	}
	return cr, c.put(ctx, cr, idx)
}

// Delete removes a credential of userID's (anyone's when empty).
func (c *Credentials) Delete(ctx context.Context, userID, id string) error {
	cr, err := c.Get(ctx, userID, id)
	if err != nil {
		return err
	}
	if cr.Type == credentialTypeEC2 {
		if ec, ok := c.ec2ByID(ctx, cr.UserID, id); ok {
			return c.ec2.Delete(ctx, cr.UserID, ec.Access)
		}
	}
	return ignoreNotFound(errors.Join(c.store().Delete(ctx, credentialsPrefix+id),
		c.store().Delete(context.WithoutCancel(ctx), credentialsByUserPrefix+cr.UserID+"/"+id)))
}

func (c *Credentials) ec2ByID(ctx context.Context, userID, id string) (EC2Credential, bool) {
	ecs, err := c.ec2.List(ctx, userID)
	if err != nil {
		return EC2Credential{}, false
	}
	for _, ec := range ecs {
		if ec2CredentialID(ec.Access) == id {
			return ec, true
		}
	}
	return EC2Credential{}, false
}
