package identity

import (
	"errors"
	"net/http"
	"slices"

	"github.com/go-chi/chi/v5"
)

// roleRoutes serves /v3/roles and its inference rules (identity admins).
func (k *Keystone) roleRoutes(r chi.Router) {
	r.Get("/", k.listRoles)
	r.Post("/", k.createRole)
	r.Get("/{id}", showOne(k, "role", k.Dir.GetRole, func(r *http.Request, x Role) map[string]any { return entity(r, "roles", x.ID, x) }))
	r.Patch("/{id}", k.updateRole)
	r.Delete("/{id}", k.deleteRole)
	r.Get("/{prior}/implies", k.listImplied)
	r.Put("/{prior}/implies/{implied}", k.createImplied)
	r.Get("/{prior}/implies/{implied}", k.showImplied)
	r.Head("/{prior}/implies/{implied}", k.showImplied)
	r.Delete("/{prior}/implies/{implied}", k.deleteImplied)
}

// listRoles lists the global roles, or with ?domain_id= that domain's
// roles, as Keystone does.
func (k *Keystone) listRoles(w http.ResponseWriter, r *http.Request) {
	rs, err := k.Dir.ListRoles(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	dom := r.URL.Query().Get("domain_id")
	rs = slices.DeleteFunc(rs, func(x Role) bool { return x.DomainID != dom })
	rs = filterByName(r, rs, func(x Role) string { return x.Name })
	writeJSON(w, http.StatusOK, map[string]any{"roles": entities(r, "roles", rs, func(x Role) string { return x.ID }), "links": links(r)})
}

func (k *Keystone) createRole(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role struct {
			Name        string `json:"name"`
			DomainID    string `json:"domain_id"`
			Description string `json:"description"`
		} `json:"role"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	role, err := k.Dir.CreateRole(r.Context(), Role{Name: req.Role.Name, DomainID: req.Role.DomainID, Description: req.Role.Description})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"role": entity(r, "roles", role.ID, role)})
}

func (k *Keystone) updateRole(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Role struct {
			Name        *string `json:"name"`
			Description *string `json:"description"`
		} `json:"role"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	role, err := k.Dir.UpdateRole(r.Context(), chi.URLParam(r, "id"), func(x *Role) {
		if req.Role.Name != nil {
			x.Name = *req.Role.Name
		}
		if req.Role.Description != nil {
			x.Description = *req.Role.Description
		}
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"role": entity(r, "roles", role.ID, role)})
}

// deleteRole deletes a role with its assignments and rules, then voids
// the tokens that carry it and those of its holders: a domain-specific
// role is never in a token, only the global roles it implies are. The
// tokens are voided even when the delete failed half-way. The bootstrap
// roles stay: the broker's own authorization names them.
func (k *Keystone) deleteRole(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), chi.URLParam(r, "id")
	role, err := k.Dir.GetRole(ctx, id)
	if err == nil && builtinRole(role) {
		err = errBuiltinRole
	}
	var holders []string
	if err == nil {
		holders, err = k.Dir.RoleHolders(ctx, id)
	}
	if err == nil {
		err = k.Dir.DeleteRole(ctx, id)
		err = errors.Join(err, k.Tokens.RevokeRole(ctx, id), k.revokeUsers(r, holders))
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// roleRef is a role as an inference rule shows it.
func (k *Keystone) roleRef(r *http.Request, id string) map[string]any {
	out := map[string]any{"id": id, "links": map[string]string{"self": BaseURL(r) + "/v3/roles/" + id}}
	if role, err := k.Dir.GetRole(r.Context(), id); err == nil {
		out["name"], out["description"] = role.Name, role.Description
	}
	return out
}

func (k *Keystone) inference(r *http.Request, rule ImpliedRole) map[string]any {
	return map[string]any{"prior_role": k.roleRef(r, rule.PriorID), "implies": k.roleRef(r, rule.ImpliedID)}
}

func (k *Keystone) createImplied(w http.ResponseWriter, r *http.Request) {
	rule, err := k.Dir.CreateImpliedRole(r.Context(), chi.URLParam(r, "prior"), chi.URLParam(r, "implied"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"role_inference": k.inference(r, rule), "links": links(r)})
}

func (k *Keystone) showImplied(w http.ResponseWriter, r *http.Request) {
	rule, err := k.Dir.GetImpliedRole(r.Context(), chi.URLParam(r, "prior"), chi.URLParam(r, "implied"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"role_inference": k.inference(r, rule), "links": links(r)})
}

func (k *Keystone) deleteImplied(w http.ResponseWriter, r *http.Request) {
	// The prior role's holders lose what the rule gave them.
	ctx, prior := r.Context(), chi.URLParam(r, "prior")
	holders, err := k.Dir.RoleHolders(ctx, prior)
	if err == nil {
		err = k.Dir.DeleteImpliedRole(ctx, prior, chi.URLParam(r, "implied"))
	}
	if err == nil {
		err = k.revokeUsers(r, holders)
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// inferences groups rules by prior role, as Keystone lists them.
func (k *Keystone) inferences(r *http.Request, rules []ImpliedRole) []map[string]any {
	var order []string
	by := map[string][]map[string]any{}
	for _, rule := range rules {
		if _, ok := by[rule.PriorID]; !ok {
			order = append(order, rule.PriorID)
		}
		by[rule.PriorID] = append(by[rule.PriorID], k.roleRef(r, rule.ImpliedID))
	}
	out := make([]map[string]any, 0, len(order))
	for _, prior := range order {
		out = append(out, map[string]any{"prior_role": k.roleRef(r, prior), "implies": by[prior]})
	}
	return out
}

func (k *Keystone) listImplied(w http.ResponseWriter, r *http.Request) {
	prior := chi.URLParam(r, "prior")
	if _, err := k.Dir.GetRole(r.Context(), prior); err != nil {
		k.fail(w, r, err)
		return
	}
	ids, err := k.Dir.impliedBy(r.Context(), prior)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	implies := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		implies = append(implies, k.roleRef(r, id))
	}
	writeJSON(w, http.StatusOK, map[string]any{"role_inference": map[string]any{"prior_role": k.roleRef(r, prior), "implies": implies}, "links": links(r)})
}

func (k *Keystone) listRoleInferences(w http.ResponseWriter, r *http.Request) {
	rules, err := k.Dir.ListImpliedRoles(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"role_inferences": k.inferences(r, rules), "links": links(r)})
}
