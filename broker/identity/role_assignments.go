package identity

import (
	"context"
	"net/http"
	"net/url"

	"github.com/cloudmux/cloudmux/registry"
)

// listed is one row of GET /v3/role_assignments: an assignment and, in
// effective listings, what it came from (the group whose membership gave
// it, the inherited grant, the prior role that implied it).
type listed struct {
	Assignment
	viaGroup string
	viaGrant *Assignment
	prior    string
}

// EffectiveAssignments expands grants as Keystone's ?effective does: a
// group's grants become its members' (narrowed to userID when set), an
// inherited grant on a domain becomes one on each of its projects, one on
// a project one on each project below it (narrowed to projectID when
// set), and each role brings the roles it implies. Domain-specific roles
// are replaced by what they imply.
func (d *Directory) effectiveAssignments(ctx context.Context, grants []Assignment, userID, projectID string) ([]listed, error) {
	var out []listed
	var projects []Project
	for _, g := range grants {
		users := []string{g.UserID}
		if g.GroupID != "" {
			members, err := d.GroupMembers(ctx, g.GroupID)
			if err != nil {
				return nil, err
			}
			users = members
		}
		targets := []Assignment{g}
		switch {
		case g.Inherited && g.ProjectID != "":
			below, err := d.Subtree(ctx, g.ProjectID)
			if err != nil {
				return nil, err
			}
			targets = nil
			for _, p := range below {
				if projectID == "" || p.ID == projectID {
					targets = append(targets, Assignment{ProjectID: p.ID, RoleID: g.RoleID})
				}
			}
		case g.Inherited:
			if projects == nil {
				var err error
				if projects, err = d.ListProjects(ctx); err != nil {
					return nil, err
				}
			}
			targets = nil
			for _, p := range projects {
				if p.DomainID == g.DomainID && (projectID == "" || p.ID == projectID) {
					targets = append(targets, Assignment{ProjectID: p.ID, RoleID: g.RoleID})
				}
			}
		}
		for _, u := range users {
			if userID != "" && u != userID {
				continue
			}
			for _, t := range targets {
				row := listed{Assignment: t}
				row.UserID, row.GroupID, row.viaGroup = u, "", g.GroupID
				if g.Inherited {
					grant := g
					row.viaGrant = &grant
				}
				out = append(out, row)
			}
		}
	}
	return d.withImplied(ctx, out)
}

// withImplied adds, for each row, the roles its role implies, and drops
// domain-specific roles (which only imply).
func (d *Directory) withImplied(ctx context.Context, rows []listed) ([]listed, error) {
	var out []listed
	seen := map[string]bool{}
	for _, row := range rows {
		ids, err := d.impliedClosure(ctx, []string{row.RoleID})
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			role, err := d.GetRole(ctx, id)
			if err != nil || role.DomainID != "" {
				continue
			}
			x := row
			x.RoleID = id
			if id != row.RoleID {
				x.prior = row.RoleID
			}
			if k := x.key(); !seen[k] {
				seen[k] = true
				out = append(out, x)
			}
		}
	}
	return out, nil
}

// listAssignments answers GET /v3/role_assignments with Keystone's
// filters (user.id, group.id, role.id, scope.project.id (and
// include_subtree), scope.domain.id,
// scope.system, scope.OS-INHERIT:inherited_to), ?effective and
// ?include_names.
func (k *Keystone) listAssignments(w http.ResponseWriter, r *http.Request) {
	q, ctx := r.URL.Query(), r.Context()
	flag := func(name string) bool { return q.Has(name) && q.Get(name) != "false" && q.Get(name) != "0" }
	f := AssignmentFilter{UserID: q.Get("user.id"), GroupID: q.Get("group.id"), ProjectID: q.Get("scope.project.id"),
		DomainID: q.Get("scope.domain.id"), RoleID: q.Get("role.id"), System: q.Get("scope.system") == "all",
		Inherited: q.Get("scope.OS-INHERIT:inherited_to") == "projects"}
	effective := flag("effective")
	if effective && f.GroupID != "" {
		k.fail(w, r, &registry.FieldError{Field: "group.id", Reason: "effective listings are of users: filter by user.id"})
		return
	}
	subtree := flag("include_subtree")
	if subtree && f.ProjectID == "" {
		k.fail(w, r, &registry.FieldError{Field: "include_subtree", Reason: "scope.project.id needs to be specified if include_subtree is also specified"})
		return
	}
	rows, err := k.assignmentRows(ctx, f, effective)
	if err == nil && subtree {
		rows, err = k.subtreeRows(ctx, f, effective, rows)
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	if t, _ := TokenFrom(ctx); !t.IdentityAdmin() { // a domain admin's (adminGate)
		rows = k.inDomain(ctx, rows, t.DomainID)
	}
	names := flag("include_names")
	out := make([]map[string]any, 0, len(rows))
	for _, row := range rows {
		out = append(out, k.assignmentView(r, row, names))
	}
	writeJSON(w, http.StatusOK, map[string]any{"role_assignments": out, "links": links(r)})
}

// assignmentRows lists the grants the filter selects, expanded when
// effective.
func (k *Keystone) assignmentRows(ctx context.Context, f AssignmentFilter, effective bool) ([]listed, error) {
	if !effective {
		as, err := k.Dir.ListAssignments(ctx, f)
		if err != nil {
			return nil, err
		}
		rows := make([]listed, len(as))
		for i, a := range as {
			rows[i] = listed{Assignment: a}
		}
		return rows, nil
	}
	// The grants that may reach the filtered user or project: the user's
	// and its groups', the project's, its domain's and its ancestors'
	// inherited ones.
	base := f
	base.RoleID, base.Inherited = "", false
	var grants []Assignment
	add := func(x AssignmentFilter) error {
		as, err := k.Dir.ListAssignments(ctx, x)
		grants = append(grants, as...)
		return err
	}
	var project Project
	var parents []Project
	if f.ProjectID != "" {
		p, err := k.Dir.GetProject(ctx, f.ProjectID)
		if err != nil {
			return nil, nil // no such project: nothing is assigned on it
		}
		project = p
		if parents, err = k.Dir.Parents(ctx, p); err != nil {
			return nil, err
		}
	}
	actors := []AssignmentFilter{{UserID: f.UserID}}
	if f.UserID != "" {
		gs, err := k.Dir.groupIDsOf(ctx, f.UserID)
		if err != nil {
			return nil, err
		}
		for _, g := range gs {
			actors = append(actors, AssignmentFilter{GroupID: g})
		}
	}
	for _, a := range actors {
		x := base
		x.UserID, x.GroupID = a.UserID, a.GroupID
		if err := add(x); err != nil {
			return nil, err
		}
		if project.ID != "" {
			x.ProjectID, x.DomainID, x.Inherited = "", project.DomainID, true
			if err := add(x); err != nil {
				return nil, err
			}
			for _, parent := range parents {
				x.ProjectID, x.DomainID = parent.ID, ""
				if err := add(x); err != nil {
					return nil, err
				}
			}
		}
	}
	rows, err := k.Dir.effectiveAssignments(ctx, dedupe(grants), f.UserID, f.ProjectID)
	if err != nil {
		return nil, err
	}
	kept := rows[:0]
	for _, row := range rows {
		if (f.RoleID == "" || row.RoleID == f.RoleID) && (f.DomainID == "" || row.DomainID == f.DomainID) && (!f.System || row.System) {
			kept = append(kept, row)
		}
	}
	return kept, nil
}

// subtreeRows adds to rows, the listing on f's project, the listings on
// every project below it, as Keystone's include_subtree: each project's
// own listing (effective or as made), so an inherited grant on the top
// project shows on it as made and on its subprojects when effective.
func (k *Keystone) subtreeRows(ctx context.Context, f AssignmentFilter, effective bool, rows []listed) ([]listed, error) {
	below, err := k.Dir.Subtree(ctx, f.ProjectID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, row := range rows {
		seen[row.key()] = true
	}
	for _, p := range below {
		x := f
		x.ProjectID = p.ID
		more, err := k.assignmentRows(ctx, x, effective)
		if err != nil {
			return nil, err
		}
		for _, row := range more {
			if key := row.key(); !seen[key] {
				seen[key] = true
				rows = append(rows, row)
			}
		}
	}
	return rows, nil
}

func dedupe(as []Assignment) []Assignment {
	seen := map[string]bool{}
	out := as[:0:0]
	for _, a := range as {
		if k := a.key(); !seen[k] {
			seen[k] = true
			out = append(out, a)
		}
	}
	return out
}

// assignmentView renders a row as Keystone does, with names when asked.
func (k *Keystone) assignmentView(r *http.Request, row listed, names bool) map[string]any {
	ctx, base := r.Context(), BaseURL(r)+"/v3"
	role := map[string]any{"id": row.RoleID}
	if names {
		if x, err := k.Dir.GetRole(ctx, row.RoleID); err == nil {
			role["name"] = x.Name
			if x.DomainID != "" {
				role["domain"] = domainOf(ctx, k.Dir, x.DomainID)
			}
		}
	}
	out := map[string]any{"role": role}
	actorPath := ""
	if row.GroupID != "" {
		group := map[string]any{"id": row.GroupID}
		if names {
			if x, err := k.Dir.GetGroup(ctx, row.GroupID); err == nil {
				group["name"], group["domain"] = x.Name, domainOf(ctx, k.Dir, x.DomainID)
			}
		}
		out["group"], actorPath = group, "/groups/"+row.GroupID
	} else {
		user := map[string]any{"id": row.UserID}
		if names {
			if x, err := k.Dir.GetUser(ctx, row.UserID); err == nil {
				user["name"], user["domain"] = x.Name, domainOf(ctx, k.Dir, x.DomainID)
			}
		}
		out["user"], actorPath = user, "/users/"+row.UserID
	}
	var scope map[string]any
	var targetPath string
	switch {
	case row.System:
		scope, targetPath = map[string]any{"system": map[string]bool{"all": true}}, "/system"
	case row.DomainID != "":
		dom := map[string]any{"id": row.DomainID}
		if names {
			dom["name"] = domainOf(ctx, k.Dir, row.DomainID)["name"]
		}
		scope, targetPath = map[string]any{"domain": dom}, "/domains/"+row.DomainID
		if row.Inherited {
			scope["OS-INHERIT:inherited_to"], targetPath = "projects", "/OS-INHERIT/domains/"+row.DomainID
		}
	default:
		project := map[string]any{"id": row.ProjectID}
		if names {
			if x, err := k.Dir.GetProject(ctx, row.ProjectID); err == nil {
				project["name"], project["domain"] = x.Name, domainOf(ctx, k.Dir, x.DomainID)
			}
		}
		scope, targetPath = map[string]any{"project": project}, "/projects/"+row.ProjectID
		if row.Inherited {
			scope["OS-INHERIT:inherited_to"], targetPath = "projects", "/OS-INHERIT/projects/"+row.ProjectID
		}
	}
	out["scope"] = scope
	links := map[string]any{"assignment": base + targetPath + actorPath + "/roles/" + row.RoleID}
	if row.Inherited {
		links["assignment"] = links["assignment"].(string) + "/inherited_to_projects"
	}
	if row.viaGrant != nil {
		g := row.viaGrant
		actor := "/users/" + g.UserID
		if g.GroupID != "" {
			actor = "/groups/" + g.GroupID
		}
		target := "/OS-INHERIT/domains/" + g.DomainID
		if g.ProjectID != "" {
			target = "/OS-INHERIT/projects/" + g.ProjectID
		}
		links["assignment"] = base + target + actor + "/roles/" + g.RoleID + "/inherited_to_projects"
	}
	if row.viaGroup != "" {
		links["membership"] = base + "/groups/" + row.viaGroup + "/users/" + row.UserID
	}
	if row.prior != "" {
		links["prior_role"] = base + "/roles/" + url.PathEscape(row.prior)
	}
	out["links"] = links
	return out
}

// inDomain keeps the rows on the domain and its projects.
func (k *Keystone) inDomain(ctx context.Context, rows []listed, domain string) []listed {
	kept := rows[:0:0]
	for _, row := range rows {
		in := row.DomainID == domain && domain != ""
		if row.ProjectID != "" {
			p, err := k.Dir.GetProject(ctx, row.ProjectID)
			in = err == nil && p.DomainID == domain
		}
		if in {
			kept = append(kept, row)
		}
	}
	return kept
}
