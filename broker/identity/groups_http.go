package identity

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// groupRoutes serves /v3/groups (identity admins).
func (k *Keystone) groupRoutes(r chi.Router) {
	r.Get("/", k.listGroups)
	r.Post("/", k.createGroup)
	r.Get("/{id}", showOne(k, "group", k.Dir.GetGroup, func(r *http.Request, g Group) map[string]any { return entity(r, "groups", g.ID, g) }))
	r.Patch("/{id}", k.updateGroup)
	r.Delete("/{id}", k.deleteGroup)
	r.Get("/{id}/users", k.listMembers)
	r.Put("/{id}/users/{user}", k.addMember)
	r.Head("/{id}/users/{user}", k.checkMember)
	r.Delete("/{id}/users/{user}", k.removeMember)
}

func (k *Keystone) listGroups(w http.ResponseWriter, r *http.Request) {
	gs, err := k.Dir.ListGroups(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	gs = filterByDomain(r, gs, func(g Group) string { return g.DomainID })
	gs = filterByName(r, gs, func(g Group) string { return g.Name })
	writeJSON(w, http.StatusOK, map[string]any{"groups": entities(r, "groups", gs, func(g Group) string { return g.ID }), "links": links(r)})
}

func (k *Keystone) createGroup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Group struct {
			Name        string `json:"name"`
			DomainID    string `json:"domain_id"`
			Description string `json:"description"`
		} `json:"group"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	g := Group{Name: req.Group.Name, DomainID: req.Group.DomainID, Description: req.Group.Description}
	if g.DomainID == "" {
		g.DomainID = defaultDomain(r)
	}
	g, err := k.Dir.CreateGroup(r.Context(), g)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"group": entity(r, "groups", g.ID, g)})
}

func (k *Keystone) updateGroup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Group struct {
			Name        *string `json:"name"`
			Description *string `json:"description"`
		} `json:"group"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	g, err := k.Dir.UpdateGroup(r.Context(), chi.URLParam(r, "id"), func(g *Group) {
		if req.Group.Name != nil {
			g.Name = *req.Group.Name
		}
		if req.Group.Description != nil {
			g.Description = *req.Group.Description
		}
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"group": entity(r, "groups", g.ID, g)})
}

// deleteGroup deletes a group, then voids its former members' tokens,
// which carry the group's roles.
func (k *Keystone) deleteGroup(w http.ResponseWriter, r *http.Request) {
	members, err := k.Dir.DeleteGroup(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	if err := k.revokeUsers(r, members); err != nil {
		k.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// revokeUsers voids the tokens of users who lost roles.
func (k *Keystone) revokeUsers(r *http.Request, users []string) error {
	for _, u := range users {
		if err := k.Tokens.RevokeUser(r.Context(), u); err != nil {
			return err
		}
	}
	return nil
}

func (k *Keystone) listMembers(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if _, err := k.Dir.GetGroup(r.Context(), id); err != nil {
		k.fail(w, r, err)
		return
	}
	ids, err := k.Dir.GroupMembers(r.Context(), id)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	us := make([]User, 0, len(ids))
	for _, uid := range ids {
		if u, err := k.Dir.GetUser(r.Context(), uid); err == nil {
			us = append(us, u)
		}
	}
	us = filterByName(r, us, func(u User) string { return u.Name })
	writeJSON(w, http.StatusOK, map[string]any{"users": entities(r, "users", us, func(u User) string { return u.ID }), "links": links(r)})
}

func (k *Keystone) addMember(w http.ResponseWriter, r *http.Request) {
	if err := k.Dir.AddToGroup(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "user")); err != nil {
		k.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (k *Keystone) checkMember(w http.ResponseWriter, r *http.Request) {
	ok, err := k.Dir.InGroup(r.Context(), chi.URLParam(r, "id"), chi.URLParam(r, "user"))
	k.answerCheck(w, r, ok, err)
}

// removeMember ends a membership and voids the user's tokens, which carry
// the group's roles, as Keystone does.
func (k *Keystone) removeMember(w http.ResponseWriter, r *http.Request) {
	user := chi.URLParam(r, "user")
	if err := k.Dir.RemoveFromGroup(r.Context(), chi.URLParam(r, "id"), user); err != nil {
		k.fail(w, r, err)
		return
	}
	if err := k.Tokens.RevokeUser(r.Context(), user); err != nil {
		k.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// userGroups answers GET /v3/users/{user}/groups: a user's own, or any
// user's for an identity admin.
func (k *Keystone) userGroups(w http.ResponseWriter, r *http.Request) {
	t, _ := TokenFrom(r.Context())
	user := chi.URLParam(r, "user")
	if user != t.UserID && !t.IdentityAdmin() {
		k.fail(w, r, fmt.Errorf("%w: another user's groups", ErrForbidden))
		return
	}
	if _, err := k.Dir.GetUser(r.Context(), user); err != nil {
		k.fail(w, r, err)
		return
	}
	gs, err := k.Dir.GroupsOf(r.Context(), user)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"groups": entities(r, "groups", gs, func(g Group) string { return g.ID }), "links": links(r)})
}
