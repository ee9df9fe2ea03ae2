package identity

import (
	"context"
	"slices"
	"sort"
)

// Tokens carry the global roles their user held when they were issued
// (Keystone's Fernet tokens recompute them at each validation). So when
// something that gave roles is removed (a domain-specific role, an
// inference rule, a group with its domain), the tokens of everyone who
// held roles through it are revoked: RoleHolders finds them.

// builtinRole reports whether r is one of the bootstrap roles the
// broker's own authorization names (HasRole matches by name): they are
// neither deleted nor renamed.
func builtinRole(r Role) bool {
	return r.DomainID == "" && slices.Contains([]string{RoleAdmin, RoleMember, RoleReader}, r.Name)
}

// priorsOf returns roleID and every role that implies it, transitively.
func (d *Directory) priorsOf(ctx context.Context, roleID string) (map[string]bool, error) {
	rules, err := d.ListImpliedRoles(ctx)
	if err != nil {
		return nil, err
	}
	set := map[string]bool{roleID: true}
	for grew := true; grew; {
		grew = false
		for _, rule := range rules {
			if set[rule.ImpliedID] && !set[rule.PriorID] {
				set[rule.PriorID], grew = true, true
			}
		}
	}
	return set, nil
}

// RoleHolders returns, sorted and each once, the users granted roleID or
// a role implying it, on any target, directly or through a group: the
// users whose tokens may carry what roleID gives. An administrative path
// (it reads every grant), not a request's.
func (d *Directory) RoleHolders(ctx context.Context, roleID string) ([]string, error) {
	roles, err := d.priorsOf(ctx, roleID)
	if err != nil {
		return nil, err
	}
	all, err := d.ListAssignments(ctx, AssignmentFilter{})
	if err != nil {
		return nil, err
	}
	users := map[string]bool{}
	for _, a := range all {
		switch {
		case !roles[a.RoleID]:
		case a.GroupID != "":
			members, err := d.GroupMembers(ctx, a.GroupID)
			if err != nil {
				return nil, err
			}
			for _, u := range members {
				users[u] = true
			}
		case a.UserID != "":
			users[a.UserID] = true
		}
	}
	out := make([]string, 0, len(users))
	for u := range users {
		out = append(out, u)
	}
	sort.Strings(out)
	return out, nil
}

// DomainDependents returns what deleting domain id takes away from
// whom: the users of the domain (whose credentials go with them), and the
// users of any domain who hold roles through the domain's groups or
// domain-specific roles (whose tokens must be revoked).
func (d *Directory) DomainDependents(ctx context.Context, id string) (own, holders []string, err error) {
	users, err := d.ListUsers(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, u := range users {
		if u.DomainID == id {
			own = append(own, u.ID)
		}
	}
	groups, err := d.ListGroups(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, g := range groups {
		if g.DomainID == id {
			members, err := d.GroupMembers(ctx, g.ID)
			if err != nil {
				return nil, nil, err
			}
			holders = append(holders, members...)
		}
	}
	roles, err := d.ListRoles(ctx)
	if err != nil {
		return nil, nil, err
	}
	for _, r := range roles {
		if r.DomainID == id {
			hs, err := d.RoleHolders(ctx, r.ID)
			if err != nil {
				return nil, nil, err
			}
			holders = append(holders, hs...)
		}
	}
	sort.Strings(holders)
	return own, slices.Compact(holders), nil
}
