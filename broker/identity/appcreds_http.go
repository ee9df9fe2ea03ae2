package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// appCredAuth is the application_credential section of POST
// /v3/auth/tokens: an ID and secret, or a name, secret and the user (by
// ID, or name and domain).
type appCredAuth struct {
	ID     string    `json:"id"`
	Name   string    `json:"name"`
	Secret string    `json:"secret"`
	User   *nameOrID `json:"user"`
}

// appCredLogin authenticates an application credential and returns its
// user and the credential.
func (k *Keystone) appCredLogin(ctx context.Context, a appCredAuth) (User, AppCredential, error) {
	const field = "auth.identity.application_credential"
	var errs []error
	if a.Secret == "" {
		errs = append(errs, &registry.FieldError{Field: field + ".secret", Reason: "is required"})
	}
	if a.ID == "" && a.Name == "" {
		errs = append(errs, &registry.FieldError{Field: field + ".id", Reason: "give the id, or the name and the user"})
	}
	if a.ID == "" && a.Name != "" && (a.User == nil || (a.User.ID == "" && a.User.Name == "")) {
		errs = append(errs, &registry.FieldError{Field: field + ".user", Reason: "is required with a name: the user's id, or name and domain"})
	}
	if err := errors.Join(errs...); err != nil {
		return User{}, AppCredential{}, err
	}
	var userID string
	if a.ID == "" {
		// Keystone binds a credential given by ID to its owner whatever
		// user is sent; by name, the user says whose name it is.
		u, err := k.findUser(ctx, *a.User)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return User{}, AppCredential{}, err
		}
		userID = u.ID // "" when unknown: Authenticate fails as slowly
	}
	ac, err := NewAppCredentials(k.Dir).Authenticate(ctx, a.ID, userID, a.Name, a.Secret)
	if err != nil {
		return User{}, AppCredential{}, err
	}
	u, err := k.Dir.GetUser(ctx, ac.UserID)
	if errors.Is(err, ErrNotFound) || (err == nil && !u.Enabled) {
		return User{}, AppCredential{}, fmt.Errorf("%w: the application credential's user is gone or disabled", ErrUnauthorized)
	}
	return u, ac, err
}

// appCredScope scopes a token to its credential's project with the
// credential's roles the user still holds. Keystone refuses a requested
// scope outright (gophercloud and keystoneauth send none).
func (k *Keystone) appCredScope(ctx context.Context, t *Token, raw json.RawMessage, ac AppCredential) error {
	if s := strings.TrimSpace(string(raw)); s != "" && s != "null" {
		return fmt.Errorf("%w: application credentials cannot request a scope", ErrUnauthorized)
	}
	p, roles, err := NewAppCredentials(k.Dir).Authorize(ctx, ac)
	if err != nil {
		return err
	}
	t.ProjectID, t.ProjectName, t.ProjectDomain, t.Roles = p.ID, p.Name, p.DomainID, roles
	t.AdminProject = IsAdminProject(p)
	t.AppCred = &TokenAppCred{ID: ac.ID, Name: ac.Name, Restricted: !ac.Unrestricted}
	for _, rule := range ac.AccessRules {
		rule.UserID = ""
		t.AppCred.AccessRules = append(t.AppCred.AccessRules, rule)
	}
	if ac.ExpiresAt != nil { // its tokens never outlive it (CVE-2022-2447)
		t.ExpiresAt = *ac.ExpiresAt
	}
	return nil
}

// refuseAppCredTokens answers 403 to tokens from application credentials,
// as Keystone does for APIs they must not reach (what, in the message).
func refuseAppCredTokens(what string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t, _ := TokenFrom(r.Context()); t.AppCred != nil {
				WriteError(w, r, fmt.Errorf("%w: tokens from application credentials cannot manage %s", ErrForbidden, what))
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// requireUnrestricted answers 403 to tokens from restricted application
// credentials: they may not make or delete application credentials.
func requireUnrestricted(t Token) error {
	if t.AppCred != nil && t.AppCred.Restricted {
		return fmt.Errorf("%w: using method 'application_credential' is not allowed for managing additional application credentials", ErrForbidden)
	}
	return nil
}

// appCredentialRoutes serves /v3/users/{user}/application_credentials
// (behind Authenticate). A user manages their own; a cloud admin may list,
// show and delete anyone's; nobody creates one for someone else. Another
// user's credential is not found, not forbidden: its ID tells nothing.
func (k *Keystone) appCredentialRoutes(r chi.Router) {
	r.Get("/", k.listAppCreds)
	r.Head("/", k.listAppCreds) // Keystone answers GET and HEAD
	r.Post("/", k.createAppCred)
	r.Get("/{id}", k.showAppCred)
	r.Head("/{id}", k.showAppCred)
	r.Delete("/{id}", k.deleteAppCred)
}

func appCredView(r *http.Request, ac AppCredential, secret string) map[string]any {
	roles := make([]map[string]any, len(ac.Roles))
	for i, x := range ac.Roles {
		roles[i] = map[string]any{"id": x.ID, "name": x.Name, "domain_id": nil}
	}
	rules := make([]map[string]any, len(ac.AccessRules))
	for i, x := range ac.AccessRules {
		rules[i] = map[string]any{"id": x.ID, "service": x.Service, "method": x.Method, "path": x.Path}
	}
	var expires any
	if ac.ExpiresAt != nil {
		expires = ac.ExpiresAt.UTC().Format(appCredTime)
	}
	v := map[string]any{"id": ac.ID, "name": ac.Name, "description": ac.Description, "project_id": ac.ProjectID,
		"user_id": ac.UserID, "roles": roles, "unrestricted": ac.Unrestricted, "expires_at": expires, "access_rules": rules,
		"links": map[string]string{"self": BaseURL(r) + "/v3/users/" + ac.UserID + "/application_credentials/" + ac.ID}}
	if secret != "" {
		v["secret"] = secret
	}
	return v
}

// parseExpiry reads Keystone's expires_at: ISO 8601, UTC when it names no
// zone (gophercloud sends none; the openstack CLI sends Z).
func parseExpiry(s string) (*time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(layout, s); err == nil {
			t = t.UTC()
			return &t, nil
		}
	}
	return nil, &registry.FieldError{Field: "application_credential.expires_at", Reason: "must be an ISO 8601 time such as 2030-01-31T12:00:00Z"}
}

func (k *Keystone) createAppCred(w http.ResponseWriter, r *http.Request) {
	var req struct {
		AppCred *struct {
			Name         string       `json:"name"`
			Description  *string      `json:"description"`
			Secret       *string      `json:"secret"`
			ExpiresAt    *string      `json:"expires_at"`
			Roles        []Role       `json:"roles"`
			Unrestricted *bool        `json:"unrestricted"`
			AccessRules  []AccessRule `json:"access_rules"`
		} `json:"application_credential"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	t, _ := TokenFrom(r.Context())
	if err := requireUnrestricted(t); err != nil {
		k.fail(w, r, err)
		return
	}
	if chi.URLParam(r, "user") != t.UserID {
		k.fail(w, r, fmt.Errorf("%w: cannot create an application credential for another user", ErrForbidden))
		return
	}
	if !t.Scoped() {
		k.fail(w, r, fmt.Errorf("%w: an application credential is bound to the token's project: use a project-scoped token", ErrForbidden))
		return
	}
	if req.AppCred == nil {
		k.fail(w, r, &registry.FieldError{Field: "application_credential", Reason: "is required"})
		return
	}
	in := req.AppCred
	for i := range in.AccessRules {
		in.AccessRules[i].UserID = "" // the creator's, whatever is sent
	}
	want := AppCredentialRequest{Name: in.Name, Roles: in.Roles, Unrestricted: in.Unrestricted != nil && *in.Unrestricted, AccessRules: in.AccessRules}
	var errs []error
	if in.Description != nil {
		want.Description = *in.Description
	}
	if in.Secret != nil {
		want.Secret = *in.Secret
	}
	if in.ExpiresAt != nil && *in.ExpiresAt != "" {
		exp, err := parseExpiry(*in.ExpiresAt)
		errs = append(errs, err)
		want.ExpiresAt = exp
	}
	if err := errors.Join(errs...); err != nil {
		k.fail(w, r, err)
		return
	}
	ac, secret, err := NewAppCredentials(k.Dir).Create(r.Context(), t, want)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	k.Log.WithFields(logrus.Fields{"user": ac.UserID, "project": ac.ProjectID, "application_credential": ac.ID, "unrestricted": ac.Unrestricted,
		"access_rules": len(ac.AccessRules)}).Info("application credential created")
	writeJSON(w, http.StatusCreated, map[string]any{"application_credential": appCredView(r, ac, secret)})
}

// appCredOwner is the user whose credentials the path names, when the
// caller may see them; ok false means answer "not found".
func appCredOwner(r *http.Request) (string, bool) {
	t, _ := TokenFrom(r.Context())
	user := chi.URLParam(r, "user")
	return user, user == t.UserID || t.IdentityAdmin()
}

func (k *Keystone) listAppCreds(w http.ResponseWriter, r *http.Request) {
	user, ok := appCredOwner(r)
	if !ok {
		k.fail(w, r, fmt.Errorf("%w: another user's application credentials", ErrForbidden))
		return
	}
	svc := NewAppCredentials(k.Dir)
	var acs []AppCredential
	var err error
	if name := r.URL.Query().Get("name"); name != "" {
		var ac AppCredential
		if ac, err = svc.FindByName(r.Context(), user, name); err == nil {
			acs = []AppCredential{ac}
		} else if errors.Is(err, ErrNotFound) {
			acs, err = []AppCredential{}, nil
		}
	} else {
		acs, err = svc.List(r.Context(), user)
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	out := make([]map[string]any, 0, len(acs))
	for _, ac := range acs {
		out = append(out, appCredView(r, ac, ""))
	}
	writeJSON(w, http.StatusOK, map[string]any{"application_credentials": out, "links": links(r)})
}

func (k *Keystone) showAppCred(w http.ResponseWriter, r *http.Request) {
	user, ok := appCredOwner(r)
	id := chi.URLParam(r, "id")
	if !ok {
		k.fail(w, r, fmt.Errorf("%w application credential %s", ErrNotFound, id))
		return
	}
	ac, err := NewAppCredentials(k.Dir).Get(r.Context(), user, id)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"application_credential": appCredView(r, ac, "")})
}

func (k *Keystone) deleteAppCred(w http.ResponseWriter, r *http.Request) {
	user, ok := appCredOwner(r)
	id := chi.URLParam(r, "id")
	if !ok {
		k.fail(w, r, fmt.Errorf("%w application credential %s", ErrNotFound, id))
		return
	}
	t, _ := TokenFrom(r.Context())
	if err := requireUnrestricted(t); err != nil {
		k.fail(w, r, err)
		return
	}
	svc := NewAppCredentials(k.Dir)
	// Its tokens go first: a credential half-deleted keeps no access.
	for _, step := range []func(context.Context, string) error{
		func(ctx context.Context, id string) error { _, err := svc.Get(ctx, user, id); return err },
		k.Tokens.RevokeApplicationCredential,
		func(ctx context.Context, id string) error { return svc.Delete(ctx, user, id) },
	} {
		if err := step(r.Context(), id); err != nil {
			k.fail(w, r, err)
			return
		}
	}
	k.Log.WithFields(logrus.Fields{"user": user, "application_credential": id}).Info("application credential deleted")
	w.WriteHeader(http.StatusNoContent)
}
