package identity

import (
	"context"
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/registry"
)

// scopeTrust scopes a token to a trust the user is the trustee of: the
// trust's project, the delegated roles the trustor still holds, the
// trustor as the token's user when the trust impersonates, and no later
// expiry than the trust's.
func (k *Keystone) scopeTrust(ctx context.Context, t *Token, id string, user User) error {
	tr, roles, err := k.Dir.UseTrust(ctx, id, user.ID)
	if err != nil {
		return err
	}
	p, err := k.Dir.GetProject(ctx, tr.ProjectID)
	if err != nil {
		return errTrustAuth
	}
	if tr.Impersonation {
		trustor, err := k.Dir.GetUser(ctx, tr.TrustorID)
		if err != nil {
			return errTrustAuth
		}
		t.UserID, t.UserName, t.UserDomainID, t.PasswordExpiresAt = trustor.ID, trustor.Name, trustor.DomainID, nil
		t.UserDomainName = domainOf(ctx, k.Dir, trustor.DomainID)["name"]
	}
	t.ProjectID, t.ProjectName, t.ProjectDomain, t.Roles = p.ID, p.Name, p.DomainID, roles
	t.AdminProject = IsAdminProject(p)
	t.Trust = &TokenTrust{ID: tr.ID, TrustorID: tr.TrustorID, TrusteeID: tr.TrusteeID, Impersonation: tr.Impersonation}
	if tr.ExpiresAt != nil {
		t.ExpiresAt = *tr.ExpiresAt
	}
	return nil
}

// trustRoutes serves /v3/OS-TRUST/trusts: trustors create and delete
// their trusts; trustor and trustee see them; identity admins see all.
func (k *Keystone) trustRoutes(r chi.Router) {
	r.Get("/", k.listTrusts)
	r.Post("/", k.createTrust)
	r.Get("/{id}", k.showTrust)
	r.Delete("/{id}", k.deleteTrust)
	r.Get("/{id}/roles", k.listTrustRoles)
	r.Get("/{id}/roles/{role}", k.checkTrustRole)
	r.Head("/{id}/roles/{role}", k.checkTrustRole)
}

func trustView(r *http.Request, tr Trust) map[string]any {
	base := BaseURL(r) + "/v3/OS-TRUST/trusts/" + tr.ID
	roles := make([]map[string]any, len(tr.Roles))
	for i, x := range tr.Roles {
		roles[i] = map[string]any{"id": x.ID, "name": x.Name, "links": map[string]string{"self": BaseURL(r) + "/v3/roles/" + x.ID}}
	}
	var exp, uses any
	if tr.ExpiresAt != nil {
		exp = tr.ExpiresAt.UTC().Format(keystoneTime)
	}
	if tr.RemainingUses != nil {
		uses = *tr.RemainingUses
	}
	return map[string]any{"id": tr.ID, "trustor_user_id": tr.TrustorID, "trustee_user_id": tr.TrusteeID, "project_id": tr.ProjectID,
		"impersonation": tr.Impersonation, "roles": roles, "roles_links": map[string]any{"self": base + "/roles", "next": nil, "previous": nil},
		"expires_at": exp, "remaining_uses": uses, "allow_redelegation": false, "redelegation_count": 0, "redelegated_trust_id": nil,
		"links": map[string]string{"self": base}}
}

func (k *Keystone) createTrust(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Trust struct {
			TrustorID         string  `json:"trustor_user_id"`
			TrusteeID         string  `json:"trustee_user_id"`
			ProjectID         string  `json:"project_id"`
			Impersonation     *bool   `json:"impersonation"`
			Roles             []Role  `json:"roles"`
			ExpiresAt         *string `json:"expires_at"`
			RemainingUses     *int    `json:"remaining_uses"`
			AllowRedelegation bool    `json:"allow_redelegation"`
		} `json:"trust"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	t, _ := TokenFrom(r.Context())
	in := req.Trust
	switch {
	case t.Trust != nil || t.AppCred != nil:
		k.fail(w, r, fmt.Errorf("%w: a delegated token does not create trusts (redelegation is not offered)", ErrForbidden))
		return
	case in.TrustorID != t.UserID:
		k.fail(w, r, fmt.Errorf("%w: the trustor must be the caller", ErrForbidden))
		return
	case in.Impersonation == nil:
		k.fail(w, r, &registry.FieldError{Field: "trust.impersonation", Reason: "is required"})
		return
	case in.AllowRedelegation:
		k.fail(w, r, &registry.FieldError{Field: "trust.allow_redelegation", Reason: "redelegation is not supported"})
		return
	}
	want := TrustRequest{TrusteeID: in.TrusteeID, ProjectID: in.ProjectID, Impersonation: *in.Impersonation, Roles: in.Roles, RemainingUses: in.RemainingUses}
	if in.ExpiresAt != nil && *in.ExpiresAt != "" {
		exp, err := parseExpiry(*in.ExpiresAt)
		if err != nil {
			k.fail(w, r, &registry.FieldError{Field: "trust.expires_at", Reason: "must be an ISO 8601 time such as 2030-01-31T12:00:00Z"})
			return
		}
		want.ExpiresAt = exp
	}
	tr, err := k.Dir.CreateTrust(r.Context(), t, want)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	k.Log.WithField("trust", tr.ID).WithField("trustor", tr.TrustorID).WithField("trustee", tr.TrusteeID).Info("trust created")
	writeJSON(w, http.StatusCreated, map[string]any{"trust": trustView(r, tr)})
}

// visibleTrust returns a trust the caller is trustor or trustee of (any,
// for an identity admin); others are not found.
func (k *Keystone) visibleTrust(r *http.Request) (Trust, error) {
	t, _ := TokenFrom(r.Context())
	tr, err := k.Dir.GetTrust(r.Context(), chi.URLParam(r, "id"))
	if err == nil && !t.IdentityAdmin() && t.UserID != tr.TrustorID && t.UserID != tr.TrusteeID {
		err = errNotFoundf("trust %s", tr.ID)
	}
	return tr, err
}

func (k *Keystone) listTrusts(w http.ResponseWriter, r *http.Request) {
	t, _ := TokenFrom(r.Context())
	q := r.URL.Query()
	user := q.Get("trustor_user_id") + q.Get("trustee_user_id")
	if q.Get("trustor_user_id") != "" && q.Get("trustee_user_id") != "" {
		user = q.Get("trustor_user_id")
	}
	switch {
	case user == "" && !t.IdentityAdmin():
		user = t.UserID
	case user != "" && user != t.UserID && !t.IdentityAdmin():
		k.fail(w, r, fmt.Errorf("%w: another user's trusts", ErrForbidden))
		return
	}
	trusts, err := k.Dir.TrustsOf(r.Context(), user)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	trusts = filterBy(r, "trustor_user_id", trusts, func(x Trust) string { return x.TrustorID })
	trusts = filterBy(r, "trustee_user_id", trusts, func(x Trust) string { return x.TrusteeID })
	out := make([]map[string]any, len(trusts))
	for i, x := range trusts {
		out[i] = trustView(r, x)
	}
	writeJSON(w, http.StatusOK, map[string]any{"trusts": out, "links": links(r)})
}

func (k *Keystone) showTrust(w http.ResponseWriter, r *http.Request) {
	tr, err := k.visibleTrust(r)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"trust": trustView(r, tr)})
}

// deleteTrust voids the trust's tokens, then deletes it: the trustor's
// or an identity admin's call.
func (k *Keystone) deleteTrust(w http.ResponseWriter, r *http.Request) {
	t, _ := TokenFrom(r.Context())
	tr, err := k.visibleTrust(r)
	if err == nil && t.UserID != tr.TrustorID && !t.IdentityAdmin() {
		err = fmt.Errorf("%w: only the trustor deletes a trust", ErrForbidden)
	}
	if err == nil {
		err = k.Tokens.RevokeTrust(r.Context(), tr.ID)
	}
	if err == nil {
		err = k.Dir.DeleteTrust(r.Context(), tr.ID)
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (k *Keystone) listTrustRoles(w http.ResponseWriter, r *http.Request) {
	tr, err := k.visibleTrust(r)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"roles": trustView(r, tr)["roles"], "links": links(r)})
}

func (k *Keystone) checkTrustRole(w http.ResponseWriter, r *http.Request) {
	tr, err := k.visibleTrust(r)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	role := chi.URLParam(r, "role")
	for _, x := range tr.Roles {
		if x.ID == role {
			if r.Method == http.MethodHead {
				w.WriteHeader(http.StatusOK)
				return
			}
			writeJSON(w, http.StatusOK, map[string]any{"role": map[string]any{"id": x.ID, "name": x.Name}})
			return
		}
	}
	k.fail(w, r, errNotFoundf("role %s in trust %s", role, tr.ID))
}
