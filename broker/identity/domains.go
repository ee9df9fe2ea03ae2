package identity

import (
	"context"
	"errors"
	"fmt"
	"sort"
)

// UpdateDomain applies change to a domain; the ID is kept. Disabling one
// is the caller's to follow with Tokens.RevokeDomain.
func (d *Directory) UpdateDomain(ctx context.Context, id string, change func(*Domain)) (Domain, error) {
	return updateNamed(ctx, d, "domain", domainsPrefix, id, change,
		func(cur, next *Domain) { next.ID = cur.ID },
		func(x *Domain) (string, string) { return x.Name, nameKey(domainNamesPrefix, x.Name) })
}

// domainEnabled reports whether a domain exists and is enabled.
func (d *Directory) domainEnabled(ctx context.Context, id string) bool {
	dom, err := d.GetDomain(ctx, id)
	return err == nil && dom.Enabled
}

// DeleteDomain removes a disabled domain and, as Keystone does, what it
// holds: its projects, users, groups, domain-specific roles and the
// assignments on it. The default domain stays (the admin lives there).
// Tokens are the caller's to void first (Tokens.RevokeDomain).
func (d *Directory) DeleteDomain(ctx context.Context, id string) error {
	dom, err := d.GetDomain(ctx, id)
	if err != nil {
		return err
	}
	switch {
	case dom.ID == DefaultDomainID:
		return fmt.Errorf("%w: the default domain may not be deleted", ErrForbidden)
	case dom.Enabled:
		return fmt.Errorf("%w: cannot delete domain %s: disable it first", ErrForbidden, dom.Name)
	}
	var errs []error
	projects, err := d.ListProjects(ctx)
	if err != nil {
		return err
	}
	// Children before parents: a parent with children is not deleted.
	for _, p := range sortChildrenFirst(projects) {
		if p.DomainID == id {
			errs = append(errs, d.DeleteProject(ctx, p.ID))
		}
	}
	users, err := d.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.DomainID == id {
			errs = append(errs, d.DeleteUser(ctx, u.ID))
		}
	}
	groups, err := d.ListGroups(ctx)
	if err != nil {
		return err
	}
	for _, g := range groups {
		if g.DomainID == id {
			_, err := d.DeleteGroup(ctx, g.ID)
			errs = append(errs, err)
		}
	}
	roles, err := d.ListRoles(ctx)
	if err != nil {
		return err
	}
	for _, r := range roles {
		if r.DomainID == id {
			errs = append(errs, d.DeleteRole(ctx, r.ID))
		}
	}
	grants, err := d.ListAssignments(ctx, AssignmentFilter{DomainID: id})
	if err != nil {
		return err
	}
	for _, a := range grants {
		errs = append(errs, d.store.Delete(ctx, a.key()))
	}
	if err := ignoreNotFound(errors.Join(errs...)); err != nil {
		return fmt.Errorf("delete what domain %s holds: %w", dom.Name, err)
	}
	return ignoreNotFound(errors.Join(d.store.Delete(ctx, domainsPrefix+id),
		d.store.Delete(context.WithoutCancel(ctx), nameKey(domainNamesPrefix, dom.Name))))
}

// sortChildrenFirst orders projects so that each comes before its parent
// (deepest first).
func sortChildrenFirst(ps []Project) []Project {
	byID := map[string]Project{}
	for _, p := range ps {
		byID[p.ID] = p
	}
	depth := func(p Project) int {
		n := 0
		for p.ParentID != "" && n <= len(ps) {
			p, n = byID[p.ParentID], n+1
		}
		return n
	}
	out := append([]Project(nil), ps...)
	sort.SliceStable(out, func(i, j int) bool { return depth(out[i]) > depth(out[j]) })
	return out
}
