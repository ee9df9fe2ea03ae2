package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// Trusts (OS-TRUST): a trustor delegates some of its roles on a project
// to a trustee, who gets trust-scoped tokens acting with them (as the
// trustor when impersonation is set). Heat's deferred operations run on
// them. Records live under identity/trusts/<id>, indexed by trustor and by
// trustee (identity/trusts-by-user/<user>/<id>) so each user's trusts are
// one listing; remaining_uses is counted down by CAS at each token.
// Redelegation is not offered: asking for it is refused.

const (
	trustsPrefix       = "identity/trusts/"
	trustsByUserPrefix = "identity/trusts-by-user/"
	// MaxTrustsPerTrustor bounds the trusts a user takes part in.
	MaxTrustsPerTrustor = 100
)

// Trust is a stored trust.
type Trust struct {
	ID            string     `json:"id"`
	TrustorID     string     `json:"trustor_user_id"`
	TrusteeID     string     `json:"trustee_user_id"`
	ProjectID     string     `json:"project_id"`
	Impersonation bool       `json:"impersonation"`
	Roles         []Role     `json:"roles"`
	ExpiresAt     *time.Time `json:"expires_at,omitempty"`
	// RemainingUses is nil for unlimited.
	RemainingUses *int      `json:"remaining_uses,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
}

// Expired reports whether the trust has expired at now.
func (t Trust) Expired(now time.Time) bool { return t.ExpiresAt != nil && !now.Before(*t.ExpiresAt) }

// TokenTrust is what a token records of its trust.
type TokenTrust struct {
	ID            string `json:"id"`
	TrustorID     string `json:"trustor_user_id"`
	TrusteeID     string `json:"trustee_user_id"`
	Impersonation bool   `json:"impersonation"`
}

// TrustRequest is what a trustor asks for; roles by ID or name.
type TrustRequest struct {
	TrusteeID     string
	ProjectID     string
	Impersonation bool
	Roles         []Role
	ExpiresAt     *time.Time
	RemainingUses *int
}

// CreateTrust delegates roles the creator's token carries on its project
// (which must be the trust's) to a trustee.
func (d *Directory) CreateTrust(ctx context.Context, creator Token, req TrustRequest) (Trust, error) {
	now := d.now()
	var errs []error
	if req.ProjectID != creator.ProjectID || creator.ProjectID == "" {
		errs = append(errs, &registry.FieldError{Field: "trust.project_id", Reason: "must be the project the creating token is scoped to"})
	}
	if _, err := d.GetUser(ctx, req.TrusteeID); errors.Is(err, ErrNotFound) {
		errs = append(errs, &registry.FieldError{Field: "trust.trustee_user_id", Reason: fmt.Sprintf("no user %q", req.TrusteeID)})
	} else if err != nil {
		return Trust{}, err
	}
	if req.ExpiresAt != nil && !req.ExpiresAt.After(now) {
		errs = append(errs, &registry.FieldError{Field: "trust.expires_at", Reason: "must be in the future"})
	}
	if req.RemainingUses != nil && *req.RemainingUses <= 0 {
		errs = append(errs, &registry.FieldError{Field: "trust.remaining_uses", Reason: "must be positive, or null for unlimited"})
	}
	if len(req.Roles) == 0 {
		errs = append(errs, &registry.FieldError{Field: "trust.roles", Reason: "name at least one role to delegate"})
	}
	var roles []Role
	for i, want := range req.Roles {
		var r Role
		var err error
		if want.ID != "" {
			r, err = d.GetRole(ctx, want.ID)
		} else {
			r, err = d.FindRole(ctx, want.Name)
		}
		held := err == nil && containsRole(creator.Roles, r.ID)
		if !held {
			errs = append(errs, &registry.FieldError{Field: fmt.Sprintf("trust.roles[%d]", i), Reason: fmt.Sprintf("the trustor does not hold role %q on the project", want.ID+want.Name)})
			continue
		}
		if !containsRole(roles, r.ID) {
			roles = append(roles, r)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Trust{}, err
	}
	mine, _, err := d.store.List(ctx, trustsByUserPrefix+creator.UserID+"/")
	if err != nil {
		return Trust{}, err
	}
	if len(mine) >= MaxTrustsPerTrustor {
		return Trust{}, fmt.Errorf("%w: a user may take part in at most %d trusts", ErrForbidden, MaxTrustsPerTrustor)
	}
	tr := Trust{ID: NewID(), TrustorID: creator.UserID, TrusteeID: req.TrusteeID, ProjectID: req.ProjectID,
		Impersonation: req.Impersonation, Roles: roles, RemainingUses: req.RemainingUses, CreatedAt: now}
	if req.ExpiresAt != nil {
		exp := req.ExpiresAt.UTC()
		tr.ExpiresAt = &exp
	}
	if err := createJSON(ctx, d.store, trustsPrefix+tr.ID, "trust", tr.ID, tr); err != nil {
		return Trust{}, err
	}
	for _, u := range []string{tr.TrustorID, tr.TrusteeID} {
		if _, err := d.store.Put(ctx, trustsByUserPrefix+u+"/"+tr.ID, []byte("{}")); err != nil {
			_ = d.DeleteTrust(context.WithoutCancel(ctx), tr.ID)
			return Trust{}, err
		}
	}
	return tr, nil
}

func containsRole(rs []Role, id string) bool {
	for _, r := range rs {
		if r.ID == id {
			return true
		}
	}
	return false
}

// GetTrust finds a trust.
func (d *Directory) GetTrust(ctx context.Context, id string) (Trust, error) {
	if strings.Contains(id, "/") {
		return Trust{}, errNotFoundf("trust %s", id)
	}
	return getJSON[Trust](ctx, d.store, trustsPrefix+id, "trust", id)
}

// TrustsOf lists the trusts a user is trustor or trustee of; every trust
// when userID is empty (an admin's listing, from memory on a broker).
func (d *Directory) TrustsOf(ctx context.Context, userID string) ([]Trust, error) {
	if userID == "" {
		return listJSON[Trust](ctx, d.store, trustsPrefix)
	}
	kvs, _, err := d.store.List(ctx, trustsByUserPrefix+userID+"/")
	if err != nil {
		return nil, err
	}
	out := []Trust{}
	for _, id := range lastSegments(kvs) {
		tr, err := d.GetTrust(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, tr)
	}
	return out, nil
}

// DeleteTrust removes a trust and its index entries. Its tokens are the
// token service's to void first (Tokens.RevokeTrust).
func (d *Directory) DeleteTrust(ctx context.Context, id string) error {
	tr, err := d.GetTrust(ctx, id)
	if err != nil {
		return err
	}
	bg := context.WithoutCancel(ctx)
	return ignoreNotFound(errors.Join(d.store.Delete(ctx, trustsPrefix+id),
		d.store.Delete(bg, trustsByUserPrefix+tr.TrustorID+"/"+id), d.store.Delete(bg, trustsByUserPrefix+tr.TrusteeID+"/"+id)))
}

// errTrustAuth is every refusal of a trust-scoped token, alike.
var errTrustAuth = fmt.Errorf("%w: the trust is unknown, expired, used up, not yours, or its trustor no longer holds its roles", ErrUnauthorized)

// UseTrust checks that trustee may use a trust now, counts one use, and
// returns the trust with the roles its token carries (those the trustor
// still holds on the project, with what they imply).
func (d *Directory) UseTrust(ctx context.Context, id, trusteeID string) (Trust, []Role, error) {
	if strings.Contains(id, "/") || registry.ValidateKey(trustsPrefix+id) != nil {
		return Trust{}, nil, errTrustAuth
	}
	kv, err := d.store.Get(ctx, trustsPrefix+id)
	if errors.Is(err, registry.ErrNotFound) {
		return Trust{}, nil, errTrustAuth
	}
	if err != nil {
		return Trust{}, nil, err
	}
	var tr Trust
	if err := json.Unmarshal(kv.Value, &tr); err != nil {
		return Trust{}, nil, err
	}
	if tr.TrusteeID != trusteeID || tr.Expired(d.now()) || (tr.RemainingUses != nil && *tr.RemainingUses <= 0) {
		return Trust{}, nil, errTrustAuth
	}
	trustor, err := d.GetUser(ctx, tr.TrustorID)
	if err != nil || !trustor.Enabled || !d.domainEnabled(ctx, trustor.DomainID) {
		return Trust{}, nil, errTrustAuth
	}
	p, err := d.GetProject(ctx, tr.ProjectID)
	if err != nil || !p.Enabled || !d.domainEnabled(ctx, p.DomainID) {
		return Trust{}, nil, errTrustAuth
	}
	held, err := d.RolesOn(ctx, tr.ProjectID, tr.TrustorID)
	if err != nil {
		return Trust{}, nil, err
	}
	var ids []string
	for _, r := range tr.Roles {
		if containsRole(held, r.ID) {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return Trust{}, nil, errTrustAuth
	}
	if tr.RemainingUses != nil {
		left := *tr.RemainingUses - 1
		tr.RemainingUses = &left
		raw, _ := json.Marshal(tr)
		if _, err := d.store.CAS(ctx, trustsPrefix+id, raw, kv.ModifyIndex); err != nil {
			// Another use won the race: the caller may try again.
			return Trust{}, nil, fmt.Errorf("%w: the trust was used concurrently; try again", ErrConflict)
		}
	}
	roles, err := d.expandRoles(ctx, ids)
	return tr, roles, err
}

// ExpiredTrusts is the garbage collector of trusts that expired more
// than Retention ago, and of trusts whose project is gone (they can give
// no token either way).
type ExpiredTrusts struct {
	Dir       *Directory
	Retention time.Duration
}

// Name implements gc.Collector.
func (e ExpiredTrusts) Name() string { return "identity-expired-trusts" }

// Collect implements gc.Collector.
func (e ExpiredTrusts) Collect(ctx context.Context, now time.Time) (int, error) {
	trusts, err := e.Dir.TrustsOf(ctx, "")
	if err != nil {
		return 0, err
	}
	removed := 0
	var errs []error
	for _, tr := range trusts {
		_, perr := e.Dir.GetProject(ctx, tr.ProjectID)
		if !tr.Expired(now.Add(-e.Retention)) && !errors.Is(perr, ErrNotFound) {
			continue
		}
		if err := e.Dir.DeleteTrust(ctx, tr.ID); err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}
