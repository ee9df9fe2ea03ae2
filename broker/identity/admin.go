package identity

import (
	"context"
	"encoding/json"
	"errors"
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
	if collection == "projects" {
		m["is_domain"], m["parent_id"], m["tags"] = false, m["domain_id"], []string{}
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

func (k *Keystone) listDomains(w http.ResponseWriter, r *http.Request) {
	ds, err := k.Dir.ListDomains(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	ds = filterByName(r, ds, func(d Domain) string { return d.Name })
	writeJSON(w, http.StatusOK, map[string]any{"domains": entities(r, "domains", ds, func(d Domain) string { return d.ID }), "links": links(r)})
}

func (k *Keystone) showDomain(w http.ResponseWriter, r *http.Request) {
	d, err := k.Dir.GetDomain(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"domain": entity(r, "domains", d.ID, d)})
}

func (k *Keystone) listProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := k.Dir.ListProjects(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	if d := r.URL.Query().Get("domain_id"); d != "" {
		kept := ps[:0]
		for _, p := range ps {
			if p.DomainID == d {
				kept = append(kept, p)
			}
		}
		ps = kept
	}
	ps = filterByName(r, ps, func(p Project) string { return p.Name })
	writeJSON(w, http.StatusOK, map[string]any{"projects": entities(r, "projects", ps, func(p Project) string { return p.ID }), "links": links(r)})
}

func (k *Keystone) createProject(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Project struct {
			Name        string `json:"name"`
			DomainID    string `json:"domain_id"`
			Description string `json:"description"`
			Enabled     *bool  `json:"enabled"`
		} `json:"project"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	p := Project{Name: req.Project.Name, DomainID: req.Project.DomainID, Description: req.Project.Description, Enabled: req.Project.Enabled == nil || *req.Project.Enabled}
	if p.DomainID == "" {
		p.DomainID = DefaultDomainID
	}
	p, err := k.Dir.CreateProject(r.Context(), p)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"project": entity(r, "projects", p.ID, p)})
}

func (k *Keystone) showProject(w http.ResponseWriter, r *http.Request) {
	p, err := k.Dir.GetProject(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": entity(r, "projects", p.ID, p)})
}

func (k *Keystone) updateProject(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Project struct {
			Name        *string `json:"name"`
			Description *string `json:"description"`
			Enabled     *bool   `json:"enabled"`
		} `json:"project"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	id := chi.URLParam(r, "id")
	if p := req.Project; p.Enabled != nil && !*p.Enabled {
		// Disabling cuts access at once, on every replica.
		if _, err := k.Dir.GetProject(r.Context(), id); err != nil {
			k.fail(w, r, err)
			return
		}
		if err := k.Tokens.RevokeProject(r.Context(), id); err != nil {
			k.fail(w, r, err)
			return
		}
	}
	p, err := k.Dir.UpdateProject(r.Context(), id, func(p *Project) {
		if req.Project.Name != nil {
			p.Name = *req.Project.Name
		}
		if req.Project.Description != nil {
			p.Description = *req.Project.Description
		}
		if req.Project.Enabled != nil {
			p.Enabled = *req.Project.Enabled
		}
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": entity(r, "projects", p.ID, p)})
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
	writeJSON(w, http.StatusOK, map[string]any{"users": entities(r, "users", us, func(u User) string { return u.ID }), "links": links(r)})
}

func (k *Keystone) createUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User struct {
			Name             string `json:"name"`
			Password         string `json:"password"`
			DomainID         string `json:"domain_id"`
			DefaultProjectID string `json:"default_project_id"`
			Enabled          *bool  `json:"enabled"`
		} `json:"user"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	u := User{Name: req.User.Name, DomainID: req.User.DomainID, DefaultProjectID: req.User.DefaultProjectID, Enabled: req.User.Enabled == nil || *req.User.Enabled}
	if u.DomainID == "" {
		u.DomainID = DefaultDomainID
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

func (k *Keystone) showUser(w http.ResponseWriter, r *http.Request) {
	u, err := k.Dir.GetUser(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": entity(r, "users", u.ID, u)})
}

func (k *Keystone) updateUser(w http.ResponseWriter, r *http.Request) {
	var req struct {
		User struct {
			Name             *string `json:"name"`
			Password         *string `json:"password"`
			DefaultProjectID *string `json:"default_project_id"`
			Enabled          *bool   `json:"enabled"`
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
	if _, err := k.Dir.GetUser(ctx, id); err != nil {
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

// forgetCredentialsOf deletes a deleted user's application and EC2
// credentials, as Keystone does. They could authorize nothing any more
// (each use checks the user), so a failure is logged, not returned: the
// user is gone either way.
func (k *Keystone) forgetCredentialsOf(ctx context.Context, userID string) {
	log := k.Log.WithField("user", userID)
	apps := NewAppCredentials(k.Dir)
	if acs, err := apps.List(ctx, userID); err != nil {
		log.WithError(err).Warn("listing a deleted user's application credentials")
	} else {
		for _, ac := range acs {
			if err := apps.Delete(ctx, userID, ac.ID); err != nil {
				log.WithError(err).WithField("application_credential", ac.ID).Warn("deleting a deleted user's application credential")
			}
		}
	}
	ec2 := k.ec2Creds()
	if ecs, err := ec2.List(ctx, userID); err != nil {
		log.WithError(err).Warn("listing a deleted user's EC2 credentials")
	} else {
		for _, ec := range ecs {
			if err := ec2.Delete(ctx, userID, ec.Access); err != nil {
				log.WithError(err).WithField("access", ec.Access).Warn("deleting a deleted user's EC2 credential")
			}
		}
	}
}

func (k *Keystone) listRoles(w http.ResponseWriter, r *http.Request) {
	rs, err := k.Dir.ListRoles(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	rs = filterByName(r, rs, func(x Role) string { return x.Name })
	writeJSON(w, http.StatusOK, map[string]any{"roles": entities(r, "roles", rs, func(x Role) string { return x.ID }), "links": links(r)})
}

func (k *Keystone) createRole(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role struct {
			Name string `json:"name"`
		} `json:"role"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	role, err := k.Dir.CreateRole(r.Context(), Role{Name: req.Role.Name})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"role": entity(r, "roles", role.ID, role)})
}

func assignmentFrom(r *http.Request) Assignment {
	return Assignment{ProjectID: chi.URLParam(r, "project"), UserID: chi.URLParam(r, "user"), RoleID: chi.URLParam(r, "role")}
}

func (k *Keystone) grant(w http.ResponseWriter, r *http.Request) {
	if err := k.Dir.Grant(r.Context(), assignmentFrom(r)); err != nil {
		k.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (k *Keystone) checkGrant(w http.ResponseWriter, r *http.Request) {
	a := assignmentFrom(r)
	as, err := k.Dir.Assignments(r.Context(), a.ProjectID, a.UserID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	for _, x := range as {
		if x.RoleID == a.RoleID {
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	w.WriteHeader(http.StatusNotFound)
}

func (k *Keystone) ungrant(w http.ResponseWriter, r *http.Request) {
	a := assignmentFrom(r)
	if err := k.Dir.Ungrant(r.Context(), a); err != nil {
		k.fail(w, r, err)
		return
	}
	// The user's live tokens carry the role: void them, as Keystone does;
	// the user logs in again with what it still holds.
	if err := k.Tokens.RevokeUser(r.Context(), a.UserID); err != nil {
		k.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// listAssignments answers GET /v3/role_assignments with the filters the
// openstack CLI sends (scope.project.id, user.id) and, with include_names,
// the names it prints for --names.
func (k *Keystone) listAssignments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ctx := r.Context()
	as, err := k.Dir.Assignments(ctx, q.Get("scope.project.id"), q.Get("user.id"))
	if err != nil && !errors.Is(err, ErrNotFound) {
		k.fail(w, r, err)
		return
	}
	names := q.Has("include_names") && q.Get("include_names") != "false" && q.Get("include_names") != "0"
	domain := map[string]string{"id": DefaultDomainID, "name": DefaultDomainName}
	out := make([]map[string]any, 0, len(as))
	for _, a := range as {
		role := map[string]any{"id": a.RoleID}
		user := map[string]any{"id": a.UserID}
		project := map[string]any{"id": a.ProjectID}
		if names {
			if x, err := k.Dir.GetRole(ctx, a.RoleID); err == nil {
				role["name"] = x.Name
			}
			if x, err := k.Dir.GetUser(ctx, a.UserID); err == nil {
				user["name"], user["domain"] = x.Name, domainOf(ctx, k.Dir, x.DomainID, domain)
			}
			if x, err := k.Dir.GetProject(ctx, a.ProjectID); err == nil {
				project["name"], project["domain"] = x.Name, domainOf(ctx, k.Dir, x.DomainID, domain)
			}
		}
		out = append(out, map[string]any{"role": role, "user": user, "scope": map[string]any{"project": project}})
	}
	writeJSON(w, http.StatusOK, map[string]any{"role_assignments": out, "links": links(r)})
}

// domainOf names a domain for an assignment listing, falling back to the
// default domain's names when the lookup fails.
func domainOf(ctx context.Context, d *Directory, id string, fallback map[string]string) map[string]string {
	if dom, err := d.GetDomain(ctx, id); err == nil {
		return map[string]string{"id": dom.ID, "name": dom.Name}
	}
	return fallback
}
