package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// Roles: global role names are unique (identity/role-names/<name>), a
// domain-specific role's within its domain
// (identity/role-names/<domain>/<name>). Implied-role rules are records
// identity/implied-roles/<prior>/<implied>: holding prior gives implied,
// transitively, as Keystone's role inference.

// ImpliedRole is one inference rule.
type ImpliedRole struct {
	PriorID   string `json:"prior_role_id"`
	ImpliedID string `json:"implied_role_id"`
}

func roleNameKey(r Role) string {
	if r.DomainID != "" {
		return nameKey(roleNamesPrefix, r.DomainID, r.Name)
	}
	return nameKey(roleNamesPrefix, r.Name)
}

// CreateRole adds a role, global or specific to a domain.
func (d *Directory) CreateRole(ctx context.Context, r Role) (Role, error) {
	errs := []error{validName("role.name", r.Name)}
	if r.DomainID != "" {
		if _, err := d.GetDomain(ctx, r.DomainID); errors.Is(err, ErrNotFound) {
			errs = append(errs, &registry.FieldError{Field: "role.domain_id", Reason: fmt.Sprintf("no domain %q", r.DomainID)})
		} else if err != nil {
			return Role{}, err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Role{}, err
	}
	if r.ID == "" {
		r.ID = NewID()
	}
	return r, d.createNamed(ctx, "role", r.Name, roleNameKey(r), rolesPrefix+r.ID, r.ID, r)
}

// GetRole finds a role by ID.
func (d *Directory) GetRole(ctx context.Context, id string) (Role, error) {
	return getJSON[Role](ctx, d.store, rolesPrefix+id, "role", id)
}

// FindRole finds a global role by name.
func (d *Directory) FindRole(ctx context.Context, name string) (Role, error) {
	return byName[Role](ctx, d.store, nameKey(roleNamesPrefix, name), rolesPrefix, "role", name)
}

// ListRoles lists every role.
func (d *Directory) ListRoles(ctx context.Context) ([]Role, error) {
	return listJSON[Role](ctx, d.store, rolesPrefix)
}

// UpdateRole applies change to a role; ID and domain are kept.
// The bootstrap roles keep their names (builtinRole).
func (d *Directory) UpdateRole(ctx context.Context, id string, change func(*Role)) (Role, error) {
	if cur, err := d.GetRole(ctx, id); err == nil && builtinRole(cur) {
		next := cur
		change(&next)
		if next.Name != cur.Name {
			return Role{}, errBuiltinRole
		}
	}
	return updateNamed(ctx, d, "role", rolesPrefix, id, change,
		func(cur, next *Role) { next.ID, next.DomainID = cur.ID, cur.DomainID },
		func(r *Role) (string, string) { return r.Name, roleNameKey(*r) })
}

// DeleteRole removes a role, its assignments and the inference rules
// naming it. The tokens that carry it are the token service's to revoke
// (Tokens.RevokeRole), first.
func (d *Directory) DeleteRole(ctx context.Context, id string) error {
	r, err := d.GetRole(ctx, id)
	if err != nil {
		return err
	}
	grants, err := d.ListAssignments(ctx, AssignmentFilter{RoleID: id})
	if err != nil {
		return err
	}
	rules, err := d.ListImpliedRoles(ctx)
	if err != nil {
		return err
	}
	bg := context.WithoutCancel(ctx)
	errs := []error{d.store.Delete(ctx, rolesPrefix+id), d.store.Delete(bg, roleNameKey(r))}
	for _, a := range grants {
		errs = append(errs, d.store.Delete(bg, a.key()))
	}
	for _, rule := range rules {
		if rule.PriorID == id || rule.ImpliedID == id {
			errs = append(errs, d.store.Delete(bg, impliedRolesPrefix+rule.PriorID+"/"+rule.ImpliedID))
		}
	}
	return ignoreNotFound(errors.Join(errs...))
}

// CreateImpliedRole makes holding prior give implied. As Keystone's
// default prohibited_implied_role, nothing may imply admin; a global role
// may not imply a domain-specific one.
func (d *Directory) CreateImpliedRole(ctx context.Context, priorID, impliedID string) (ImpliedRole, error) {
	prior, err := d.GetRole(ctx, priorID)
	if err != nil {
		return ImpliedRole{}, err
	}
	implied, err := d.GetRole(ctx, impliedID)
	if err != nil {
		return ImpliedRole{}, err
	}
	switch {
	case implied.Name == RoleAdmin && implied.DomainID == "":
		return ImpliedRole{}, fmt.Errorf("%w: role %s may not be implied", ErrForbidden, implied.Name)
	case prior.ID == implied.ID:
		return ImpliedRole{}, &registry.FieldError{Field: "implies", Reason: "a role does not imply itself"}
	case prior.DomainID == "" && implied.DomainID != "":
		return ImpliedRole{}, &registry.FieldError{Field: "implies", Reason: "a global role may not imply a domain-specific role"}
	}
	rule := ImpliedRole{PriorID: prior.ID, ImpliedID: implied.ID}
	raw, _ := json.Marshal(rule)
	_, err = d.store.Put(ctx, impliedRolesPrefix+prior.ID+"/"+implied.ID, raw)
	return rule, err
}

// GetImpliedRole finds one rule.
func (d *Directory) GetImpliedRole(ctx context.Context, priorID, impliedID string) (ImpliedRole, error) {
	if strings.Contains(priorID, "/") || strings.Contains(impliedID, "/") {
		return ImpliedRole{}, fmt.Errorf("%w implied role", ErrNotFound)
	}
	return getJSON[ImpliedRole](ctx, d.store, impliedRolesPrefix+priorID+"/"+impliedID, "implied role", priorID+"/"+impliedID)
}

// DeleteImpliedRole removes one rule.
func (d *Directory) DeleteImpliedRole(ctx context.Context, priorID, impliedID string) error {
	if _, err := d.GetImpliedRole(ctx, priorID, impliedID); err != nil {
		return err
	}
	return d.store.Delete(ctx, impliedRolesPrefix+priorID+"/"+impliedID)
}

// ListImpliedRoles lists every rule.
func (d *Directory) ListImpliedRoles(ctx context.Context) ([]ImpliedRole, error) {
	return listJSON[ImpliedRole](ctx, d.store, impliedRolesPrefix)
}

// impliedBy lists the roles a role implies directly.
func (d *Directory) impliedBy(ctx context.Context, priorID string) ([]string, error) {
	if priorID == "" || strings.Contains(priorID, "/") {
		return nil, nil
	}
	kvs, err := d.listDir(ctx, impliedRolesPrefix+priorID+"/")
	return lastSegments(kvs), err
}
