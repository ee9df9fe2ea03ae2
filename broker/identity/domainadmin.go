package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
)

// Domain admins: a token scoped to a domain with the admin role manages
// that domain's users, groups, memberships and projects, and grants the
// member and reader roles on the domain and its projects to the domain's
// users and groups, as Keystone's default policies let a domain manager;
// anything in another domain, and everything else an identity admin does
// (domains, roles, the catalog, the system), is 403.
//
// What keeps a domain admin inside the domain: every object a request
// names (in its path, or the domain_id and parent_id of a create) must be
// the domain's; listings are narrowed to the domain; the roles it grants
// are the global member and reader only, as Keystone's manager's (admin
// on a project named admin would make a cloud admin); and it may not touch a user who holds the admin role
// anywhere, nor a group granted it (taking over an admin's password, or
// joining an admin group, would climb out of the domain). The cloud's
// admin project is not the domain's to change.

// DomainAdmin reports whether the token is a domain admin's: scoped to a
// domain, with the admin role there.
func (t Token) DomainAdmin() bool { return t.DomainID != "" && t.HasRole(RoleAdmin) }

// domainGrantableRoles are the roles a domain admin may grant or revoke.
var domainGrantableRoles = []string{RoleMember, RoleReader}

// adminGate answers 403 unless the caller is an identity admin, or a
// domain admin whose request stays in its domain (domainAdminMay). It
// runs before chi routes the request, so it reads the path itself: rel
// is the path below /v3/.
func (k *Keystone) adminGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := TokenFrom(r.Context())
		if t.IdentityAdmin() {
			next.ServeHTTP(w, r)
			return
		}
		if !t.DomainAdmin() {
			WriteError(w, r, fmt.Errorf("%w: this needs the admin role on the %s project, the system or the domain", ErrForbidden, AdminProjectName))
			return
		}
		rel, _ := strings.CutPrefix(r.URL.Path, "/v3/")
		if err := k.domainAdminMay(r, t.DomainID, strings.Split(strings.Trim(rel, "/"), "/")); err != nil {
			k.fail(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// errOutsideDomain is every refusal of a domain admin.
func errOutsideDomain(what string) error {
	return fmt.Errorf("%w: a domain admin manages only its own domain's users, groups and projects (%s)", ErrForbidden, what)
}

// domainAdminMay checks a domain admin's request, by the path's segments.
func (k *Keystone) domainAdminMay(r *http.Request, domain string, seg []string) error {
	ctx, m := r.Context(), r.Method
	read := m == http.MethodGet || m == http.MethodHead
	n := len(seg)
	switch {
	case n == 1 && seg[0] == "role_assignments" && read:
		return nil // rows outside the domain are left out (listAssignments)
	case seg[0] == "roles" && read && n <= 2:
		return nil // the roles it may grant are found by name
	case (seg[0] == "users" || seg[0] == "groups" || seg[0] == "projects") && n == 1:
		if read {
			return narrowToDomain(r, domain)
		}
		if m == http.MethodPost {
			return k.createsInDomain(r, strings.TrimSuffix(seg[0], "s"), domain)
		}
	case seg[0] == "users" && n == 2:
		return k.userMay(ctx, domain, seg[1], !read)
	case seg[0] == "groups" && n >= 2:
		// Deleting the group or changing who is in it changes who holds
		// its grants.
		change := (n == 2 && m == http.MethodDelete) || (n == 4 && (m == http.MethodPut || m == http.MethodDelete))
		if err := k.groupMay(ctx, domain, seg[1], change); err != nil {
			return err
		}
		switch {
		case n <= 3:
			return nil
		case n == 4 && seg[2] == "users":
			return k.userMay(ctx, domain, seg[3], false)
		}
	case seg[0] == "projects" && n >= 2:
		if err := k.projectMay(ctx, domain, seg[1], !read); err != nil {
			return err
		}
		if n <= 4 && (n == 2 || seg[2] == "tags") {
			return nil
		}
		return k.grantMay(r, domain, seg[2:], false)
	case seg[0] == "domains" && n >= 2 && seg[1] == domain:
		if n == 2 && read {
			return nil
		}
		if n > 2 {
			return k.grantMay(r, domain, seg[2:], false)
		}
	case seg[0] == "OS-INHERIT" && n >= 4 && seg[1] == "domains" && seg[2] == domain:
		return k.grantMay(r, domain, seg[3:], true)
	case seg[0] == "OS-INHERIT" && n >= 4 && seg[1] == "projects":
		if err := k.projectMay(ctx, domain, seg[2], false); err != nil {
			return err
		}
		return k.grantMay(r, domain, seg[3:], true)
	}
	return errOutsideDomain(r.Method + " /v3/" + strings.Join(seg, "/"))
}

// narrowToDomain makes a listing the domain's: domain_id defaults to it,
// and another domain's is refused.
func narrowToDomain(r *http.Request, domain string) error {
	q := r.URL.Query()
	if d := q.Get("domain_id"); d != "" && d != domain {
		return errOutsideDomain("another domain's listing")
	}
	q.Set("domain_id", domain)
	r.URL.RawQuery = q.Encode()
	return nil
}

// createsInDomain checks a create's domain_id (none: the token's domain,
// see defaultDomain) and a project's parent.
func (k *Keystone) createsInDomain(r *http.Request, kind, domain string) error {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(raw))
	var body map[string]struct {
		DomainID string `json:"domain_id"`
		ParentID string `json:"parent_id"`
	}
	if json.Unmarshal(raw, &body) != nil {
		return nil // the handler answers a malformed body
	}
	in := body[kind]
	if in.DomainID != "" && in.DomainID != domain {
		return errOutsideDomain("a " + kind + " in another domain")
	}
	if in.ParentID != "" {
		return k.projectMay(r.Context(), domain, in.ParentID, false)
	}
	return nil
}

// defaultDomain is the domain of a create that names none: a
// domain-scoped token's own, as Keystone's, else the default domain.
func defaultDomain(r *http.Request) string {
	if t, _ := TokenFrom(r.Context()); t.DomainID != "" {
		return t.DomainID
	}
	return DefaultDomainID
}

// userMay: the user is the domain's and, for a change, holds the admin
// role nowhere.
func (k *Keystone) userMay(ctx context.Context, domain, id string, change bool) error {
	u, err := k.Dir.GetUser(ctx, id)
	if err != nil {
		return err
	}
	if u.DomainID != domain {
		return errOutsideDomain("a user of another domain")
	}
	if !change {
		return nil
	}
	admin, err := k.Dir.FindRole(ctx, RoleAdmin)
	if err != nil {
		return err
	}
	admins, err := k.Dir.RoleHolders(ctx, admin.ID)
	if err != nil {
		return err
	}
	if slices.Contains(admins, id) {
		return errOutsideDomain("a user holding the admin role")
	}
	return nil
}

// groupMay: the group is the domain's and, when its membership changes
// or it is deleted, is granted the admin role nowhere.
func (k *Keystone) groupMay(ctx context.Context, domain, id string, change bool) error {
	g, err := k.Dir.GetGroup(ctx, id)
	if err != nil {
		return err
	}
	if g.DomainID != domain {
		return errOutsideDomain("a group of another domain")
	}
	if !change {
		return nil
	}
	admin, err := k.Dir.FindRole(ctx, RoleAdmin)
	if err != nil {
		return err
	}
	grants, err := k.Dir.ListAssignments(ctx, AssignmentFilter{GroupID: id, RoleID: admin.ID})
	if err != nil {
		return err
	}
	if len(grants) > 0 {
		return errOutsideDomain("a group granted the admin role")
	}
	return nil
}

// projectMay: the project is the domain's and, for a change, not the
// cloud's admin project.
func (k *Keystone) projectMay(ctx context.Context, domain, id string, change bool) error {
	p, err := k.Dir.GetProject(ctx, id)
	if err != nil {
		return err
	}
	if p.DomainID != domain {
		return errOutsideDomain("a project of another domain")
	}
	if change && IsAdminProject(p) {
		return errOutsideDomain("the cloud's admin project")
	}
	return nil
}

// grantMay checks the rest of a grant path below its target:
// users|groups/{actor}/roles[/{role}][/inherited_to_projects]. The actor
// must be the domain's; a role granted or revoked, member or reader.
func (k *Keystone) grantMay(r *http.Request, domain string, seg []string, inherited bool) error {
	if inherited && len(seg) > 0 && seg[len(seg)-1] == "inherited_to_projects" {
		seg = seg[:len(seg)-1]
	}
	if len(seg) < 3 || seg[2] != "roles" || len(seg) > 4 {
		return errOutsideDomain("no such grant path")
	}
	ctx := r.Context()
	var err error
	switch seg[0] {
	case "users":
		err = k.userMay(ctx, domain, seg[1], false)
	case "groups":
		err = k.groupMay(ctx, domain, seg[1], false)
	default:
		return errOutsideDomain("no such grant path")
	}
	if err != nil || len(seg) == 3 || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return err
	}
	role, err := k.Dir.GetRole(ctx, seg[3])
	if errors.Is(err, ErrNotFound) {
		return err
	}
	if err != nil {
		return err
	}
	if role.DomainID != "" || !slices.Contains(domainGrantableRoles, role.Name) {
		return errOutsideDomain("a domain admin grants the member and reader roles only")
	}
	return nil
}
