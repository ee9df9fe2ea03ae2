package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/registry"
)

// filterByName keeps the items whose name equals ?name= (the openstack CLI
// resolves names this way), case-insensitively like Keystone.
func filterByName[T any](r *http.Request, items []T, name func(T) string) []T {
	want := r.URL.Query().Get("name")
	if want == "" {
		return items
	}
	out := []T{}
	for _, it := range items {
		if strings.EqualFold(name(it), want) {
			out = append(out, it)
		}
	}
	return out
}

// filterByDomain keeps the items of ?domain_id=, when given.
func filterByDomain[T any](r *http.Request, items []T, domain func(T) string) []T {
	want := r.URL.Query().Get("domain_id")
	if want == "" {
		return items
	}
	out := []T{}
	for _, it := range items {
		if domain(it) == want {
			out = append(out, it)
		}
	}
	return out
}

func links(r *http.Request) map[string]any {
	return map[string]any{"self": BaseURL(r) + r.URL.Path, "next": nil, "previous": nil}
}

// entity renders v (a Domain, Project, User or Role) with Keystone's
// per-entity links, which clients such as the openstack CLI read.
func entity(r *http.Request, collection, id string, v any) map[string]any {
	raw, _ := json.Marshal(v)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	m["links"] = map[string]string{"self": BaseURL(r) + "/v3/" + collection + "/" + id}
	switch collection {
	case "users":
		// Keystone writes it without a zone, as gophercloud parses it.
		if u, ok := v.(User); ok && u.PasswordExpiresAt != nil {
			m["password_expires_at"] = u.PasswordExpiresAt.UTC().Format(appCredTime)
		}
	case "projects":
		m["is_domain"] = false
		if m["parent_id"] == nil {
			m["parent_id"] = m["domain_id"] // a top-level project's parent, as Keystone shows it
		}
		if m["tags"] == nil {
			m["tags"] = []string{}
		}
	case "roles":
		if m["domain_id"] == nil {
			m["domain_id"] = nil // a global role: Keystone shows null
		}
		if m["description"] == nil {
			m["description"] = ""
		}
	}
	return m
}

func entities[T any](r *http.Request, collection string, items []T, id func(T) string) []map[string]any {
	out := make([]map[string]any, len(items))
	for i, it := range items {
		out[i] = entity(r, collection, id(it), it)
	}
	return out
}

func (k *Keystone) deleteProject(w http.ResponseWriter, r *http.Request) {
	k.deleteRevoking(w, r,
		func(ctx context.Context, id string) error { _, err := k.Dir.GetProject(ctx, id); return err },
		k.Tokens.RevokeProject, k.Dir.DeleteProject)
}

// deleteRevoking deletes a user or project that must exist, revoking its
// tokens first: one half-deleted must not keep access.
func (k *Keystone) deleteRevoking(w http.ResponseWriter, r *http.Request, exists, revoke, remove func(context.Context, string) error) {
	id := chi.URLParam(r, "id")
	for _, step := range []func(context.Context, string) error{exists, revoke, remove} {
		if err := step(r.Context(), id); err != nil {
			k.fail(w, r, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

func (k *Keystone) listUsers(w http.ResponseWriter, r *http.Request) {
	us, err := k.Dir.ListUsers(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	us = filterByName(r, us, func(u User) string { return u.Name })
	us = filterByDomain(r, us, func(u User) string { return u.DomainID })
	writeJSON(w, http.StatusOK, map[string]any{"users": entities(r, "users", us, func(u User) string { return u.ID }), "links": links(r)})
}

func (k *Keystone) createUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User struct {
			Name             string           `json:"name"`
			Password         string           `json:"password"`
			DomainID         string           `json:"domain_id"`
			DefaultProjectID string           `json:"default_project_id"`
			Enabled          *bool            `json:"enabled"`
			Options          map[string]*bool `json:"options"`
		} `json:"user"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	u := User{Name: req.User.Name, DomainID: req.User.DomainID, DefaultProjectID: req.User.DefaultProjectID, Enabled: req.User.Enabled == nil || *req.User.Enabled}
	if err := ApplyUserOptions(&u, req.User.Options); err != nil {
		k.fail(w, r, err)
		return
	}
	if u.DomainID == "" {
		u.DomainID = defaultDomain(r)
	}
	if u.DefaultProjectID != "" {
		if _, err := k.Dir.GetProject(r.Context(), u.DefaultProjectID); err != nil {
			k.fail(w, r, &registry.FieldError{Field: "user.default_project_id", Reason: "no such project"})
			return
		}
	}
	u, err := k.Dir.CreateUser(r.Context(), u, req.User.Password)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"user": entity(r, "users", u.ID, u)})
}

// showUser answers GET /v3/users/{id}: a user reads itself, an identity
// admin anyone, a domain admin its domain's.
func (k *Keystone) showUser(w http.ResponseWriter, r *http.Request) {
	t, _ := TokenFrom(r.Context())
	u, err := k.Dir.GetUser(r.Context(), chi.URLParam(r, "id"))
	if t.UserID != chi.URLParam(r, "id") && !t.IdentityAdmin() && !(t.DomainAdmin() && err == nil && u.DomainID == t.DomainID) {
		k.fail(w, r, fmt.Errorf("%w: another user", ErrForbidden))
		return
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": entity(r, "users", u.ID, u)})
}

func (k *Keystone) updateUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User struct {
			Name             *string          `json:"name"`
			Password         *string          `json:"password"`
			DefaultProjectID *string          `json:"default_project_id"`
			Enabled          *bool            `json:"enabled"`
			Options          map[string]*bool `json:"options"`
		} `json:"user"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	ctx, id, u := r.Context(), chi.URLParam(r, "id"), req.User
	if u.DefaultProjectID != nil && *u.DefaultProjectID != "" {
		if _, err := k.Dir.GetProject(ctx, *u.DefaultProjectID); err != nil {
			k.fail(w, r, &registry.FieldError{Field: "user.default_project_id", Reason: "no such project"})
			return
		}
	}
	cur, err := k.Dir.GetUser(ctx, id)
	if err == nil {
		err = ApplyUserOptions(&cur, u.Options) // checked before anything changes
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	// A disabled user, or one whose password changed, keeps no old token.
	if (u.Enabled != nil && !*u.Enabled) || u.Password != nil {
		if err := k.Tokens.RevokeUser(ctx, id); err != nil {
			k.fail(w, r, err)
			return
		}
	}
	if u.Password != nil {
		if err := k.Dir.SetPassword(ctx, id, *u.Password); err != nil {
			k.fail(w, r, err)
			return
		}
	}
	user, err := k.Dir.UpdateUser(ctx, id, func(x *User) {
		if u.Name != nil {
			x.Name = *u.Name
		}
		if u.DefaultProjectID != nil {
			x.DefaultProjectID = *u.DefaultProjectID
		}
		if u.Enabled != nil {
			x.Enabled = *u.Enabled
		}
		_ = ApplyUserOptions(x, u.Options) // checked above
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": entity(r, "users", user.ID, user)})
}

func (k *Keystone) deleteUser(w http.ResponseWriter, r *http.Request) {
	k.deleteRevoking(w, r,
		func(ctx context.Context, id string) error { _, err := k.Dir.GetUser(ctx, id); return err },
		k.Tokens.RevokeUser, func(ctx context.Context, id string) error {
			if err := k.Dir.DeleteUser(ctx, id); err != nil {
				return err
			}
			k.forgetCredentialsOf(ctx, id)
			return nil
		})
}

// forgetCredentialsOf deletes a deleted user's application, EC2 and other
// credentials and trusts, as Keystone does. They could authorize nothing
// any more (each use checks the user), so a failure is logged, not
// returned: the user is gone either way, and DeletedUsersCredentials
// collects what is left.
func (k *Keystone) forgetCredentialsOf(ctx context.Context, userID string) {
	if err := forgetCredentials(ctx, k.ec2Creds(), k.Tokens, userID); err != nil {
		k.Log.WithField("user", userID).WithError(err).Warn("deleting a deleted user's credentials")
	}
}

// forgetCredentials deletes what forgetCredentialsOf says, through ec2
// (its directory is the user's), voiding trust tokens with tokens.
func forgetCredentials(ctx context.Context, ec2 *EC2Credentials, tokens *Tokens, userID string) error {
	var errs []error
	apps := NewAppCredentials(ec2.dir)
	acs, err := apps.List(ctx, userID)
	errs = append(errs, err)
	for _, ac := range acs {
		errs = append(errs, alreadyGone(apps.Delete(ctx, userID, ac.ID)))
	}
	trusts, err := ec2.dir.TrustsOf(ctx, userID)
	errs = append(errs, err)
	for _, tr := range trusts {
		errs = append(errs, tokens.RevokeTrust(ctx, tr.ID), alreadyGone(ec2.dir.DeleteTrust(ctx, tr.ID)))
	}
	creds := NewCredentials(ec2)
	cs, err := creds.List(ctx, userID)
	errs = append(errs, err)
	for _, c := range cs {
		if c.Type != credentialTypeEC2 { // below, with the EC2 keys
			errs = append(errs, alreadyGone(creds.Delete(ctx, userID, c.ID)))
		}
	}
	ecs, err := ec2.List(ctx, userID)
	errs = append(errs, err)
	for _, ec := range ecs {
		errs = append(errs, alreadyGone(ec2.Delete(ctx, userID, ec.Access)))
	}
	// The access rules last: the credentials that used them are gone.
	errs = append(errs, ec2.dir.deleteAccessRulesOf(ctx, userID))
	return errors.Join(errs...)
}

// alreadyGone drops the not-found of a delete another deleter won.
func alreadyGone(err error) error {
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return ignoreNotFound(err)
}
