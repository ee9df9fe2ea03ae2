package identity

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// credentialRoutes serves /v3/credentials: a user manages their own, an
// identity admin anyone's. Tokens from application credentials do not
// reach them (as the EC2 keys).
func (k *Keystone) credentialRoutes(r chi.Router) {
	r.Use(refuseAppCredTokens("credentials"))
	r.Get("/", k.listCredentials)
	r.Post("/", k.createCredential)
	r.Get("/{id}", k.showCredential)
	r.Patch("/{id}", k.updateCredential)
	r.Delete("/{id}", k.deleteCredential)
}

func (k *Keystone) credentials() *Credentials { return NewCredentials(k.ec2Creds()) }

// credentialOwner is whose credentials the caller reaches: its own, or
// anyone's ("") for an identity admin.
func credentialOwner(r *http.Request) string {
	t, _ := TokenFrom(r.Context())
	if t.IdentityAdmin() {
		return ""
	}
	return t.UserID
}

func credentialView(r *http.Request, c Credential) map[string]any {
	return map[string]any{"id": c.ID, "user_id": c.UserID, "project_id": nilIfEmpty(c.ProjectID), "type": c.Type, "blob": c.Blob,
		"links": map[string]string{"self": BaseURL(r) + "/v3/credentials/" + c.ID}}
}

func (k *Keystone) listCredentials(w http.ResponseWriter, r *http.Request) {
	owner, q := credentialOwner(r), r.URL.Query()
	if u := q.Get("user_id"); u != "" && owner != "" && u != owner {
		k.fail(w, r, fmt.Errorf("%w: another user's credentials", ErrForbidden))
		return
	}
	if owner == "" {
		owner = q.Get("user_id")
	}
	cs, err := k.credentials().List(r.Context(), owner)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	cs = filterBy(r, "type", cs, func(c Credential) string { return c.Type })
	out := make([]map[string]any, len(cs))
	for i, c := range cs {
		out[i] = credentialView(r, c)
	}
	writeJSON(w, http.StatusOK, map[string]any{"credentials": out, "links": links(r)})
}

func (k *Keystone) createCredential(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Credential struct {
			UserID    string `json:"user_id"`
			ProjectID string `json:"project_id"`
			Type      string `json:"type"`
			Blob      string `json:"blob"`
		} `json:"credential"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	in, owner := req.Credential, credentialOwner(r)
	if in.UserID == "" {
		t, _ := TokenFrom(r.Context())
		in.UserID = t.UserID
	}
	if owner != "" && in.UserID != owner {
		k.fail(w, r, fmt.Errorf("%w: only an admin creates another user's credentials", ErrForbidden))
		return
	}
	c, err := k.credentials().Create(r.Context(), Credential{UserID: in.UserID, ProjectID: in.ProjectID, Type: in.Type, Blob: in.Blob})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	k.Log.WithField("user", c.UserID).WithField("credential", c.ID).WithField("type", c.Type).Info("credential created")
	writeJSON(w, http.StatusCreated, map[string]any{"credential": credentialView(r, c)})
}

func (k *Keystone) showCredential(w http.ResponseWriter, r *http.Request) {
	c, err := k.credentials().Get(r.Context(), credentialOwner(r), chi.URLParam(r, "id"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"credential": credentialView(r, c)})
}

func (k *Keystone) updateCredential(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Credential struct {
			ProjectID *string `json:"project_id"`
			Blob      *string `json:"blob"`
			Type      *string `json:"type"`
			UserID    *string `json:"user_id"`
		} `json:"credential"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	in, id := req.Credential, chi.URLParam(r, "id")
	cur, err := k.credentials().Get(r.Context(), credentialOwner(r), id)
	if err == nil && ((in.Type != nil && *in.Type != cur.Type) || (in.UserID != nil && *in.UserID != cur.UserID)) {
		err = fmt.Errorf("%w: a credential's type and user do not change", ErrInvalid)
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	c, err := k.credentials().Update(r.Context(), credentialOwner(r), id, in.Blob, in.ProjectID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"credential": credentialView(r, c)})
}

func (k *Keystone) deleteCredential(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if err := k.credentials().Delete(r.Context(), credentialOwner(r), id); err != nil {
		k.fail(w, r, err)
		return
	}
	k.Log.WithField("credential", id).Info("credential deleted")
	w.WriteHeader(http.StatusNoContent)
}
