package identity

import (
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// domainRoutes serves /v3/domains (identity admins only).
func (k *Keystone) domainRoutes(r chi.Router) {
	r.Get("/", k.listDomains)
	r.Post("/", k.createDomain)
	r.Get("/{id}", showOne(k, "domain", k.Dir.GetDomain, func(r *http.Request, d Domain) map[string]any { return entity(r, "domains", d.ID, d) }))
	r.Patch("/{id}", k.updateDomain)
	r.Delete("/{id}", k.deleteDomain)
	k.grantRoutes(r, "/{target}", "domains", false)
}

func (k *Keystone) listDomains(w http.ResponseWriter, r *http.Request) {
	ds, err := k.Dir.ListDomains(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	ds = filterByName(r, ds, func(d Domain) string { return d.Name })
	if e := r.URL.Query().Get("enabled"); e != "" {
		want := e != "false" && e != "0"
		kept := ds[:0]
		for _, d := range ds {
			if d.Enabled == want {
				kept = append(kept, d)
			}
		}
		ds = kept
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": entities(r, "domains", ds, func(d Domain) string { return d.ID }), "links": links(r)})
}

func (k *Keystone) createDomain(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Domain struct {
			Name        string `json:"name"`
			Description string `json:"description"`
			Enabled     *bool  `json:"enabled"`
		} `json:"domain"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	d, err := k.Dir.CreateDomain(r.Context(), Domain{Name: req.Domain.Name, Description: req.Domain.Description,
		Enabled: req.Domain.Enabled == nil || *req.Domain.Enabled})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"domain": entity(r, "domains", d.ID, d)})
}

func (k *Keystone) updateDomain(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Domain struct {
			Name        *string `json:"name"`
			Description *string `json:"description"`
			Enabled     *bool   `json:"enabled"`
		} `json:"domain"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	ctx, id, in := r.Context(), chi.URLParam(r, "id"), req.Domain
	if _, err := k.Dir.GetDomain(ctx, id); err != nil {
		k.fail(w, r, err)
		return
	}
	// Disabling cuts access at once, on every replica: the domain's
	// users' tokens and those scoped to it or its projects.
	if in.Enabled != nil && !*in.Enabled {
		if id == DefaultDomainID {
			k.fail(w, r, errDefaultDomain)
			return
		}
		if err := k.Tokens.RevokeDomain(ctx, id); err != nil {
			k.fail(w, r, err)
			return
		}
	}
	d, err := k.Dir.UpdateDomain(ctx, id, func(d *Domain) {
		if in.Name != nil {
			d.Name = *in.Name
		}
		if in.Description != nil {
			d.Description = *in.Description
		}
		if in.Enabled != nil {
			d.Enabled = *in.Enabled
		}
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"domain": entity(r, "domains", d.ID, d)})
}

func (k *Keystone) deleteDomain(w http.ResponseWriter, r *http.Request) {
	ctx, id := r.Context(), chi.URLParam(r, "id")
	// A disabled domain's tokens were voided when it was disabled; once
	// more here, for what was issued in between.
	d, err := k.Dir.GetDomain(ctx, id)
	if err == nil && !d.Enabled && d.ID != DefaultDomainID {
		err = k.Tokens.RevokeDomain(ctx, id)
	}
	// Its groups and domain-specific roles gave roles to users of other
	// domains too; its users' credentials go with them.
	var own, holders []string
	if err == nil {
		own, holders, err = k.Dir.DomainDependents(ctx, id)
	}
	if err == nil {
		err = k.Dir.DeleteDomain(ctx, id)
		err = errors.Join(err, k.revokeUsers(r, holders))
		for _, u := range own {
			if _, gone := k.Dir.GetUser(ctx, u); errors.Is(gone, ErrNotFound) {
				k.forgetCredentialsOf(ctx, u)
			}
		}
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// myDomains answers GET /v3/auth/domains: the domains the caller holds a
// role on, which it may scope a token to.
func (k *Keystone) myDomains(w http.ResponseWriter, r *http.Request) {
	t, _ := TokenFrom(r.Context())
	as, err := k.Dir.ListAssignments(r.Context(), AssignmentFilter{UserID: t.UserID})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	groups, err := k.Dir.groupIDsOf(r.Context(), t.UserID)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	for _, g := range groups {
		gas, err := k.Dir.ListAssignments(r.Context(), AssignmentFilter{GroupID: g})
		if err != nil {
			k.fail(w, r, err)
			return
		}
		as = append(as, gas...)
	}
	seen := map[string]bool{}
	out := []Domain{}
	for _, a := range as {
		if a.DomainID == "" || a.Inherited || seen[a.DomainID] {
			continue
		}
		seen[a.DomainID] = true
		if d, err := k.Dir.GetDomain(r.Context(), a.DomainID); err == nil && d.Enabled {
			out = append(out, d)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"domains": entities(r, "domains", out, func(d Domain) string { return d.ID }), "links": links(r)})
}
