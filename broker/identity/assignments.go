package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// Role assignments are stored one record per grant under
// identity/assignments/<target>/<actor>/<role>. A target is a project ID,
// "domain:<id>", "inherited-domain:<id>" (OS-INHERIT: the role on every
// project of the domain), "inherited-project:<id>" (OS-INHERIT: the role
// on every project below it, not on it) or "system:all"; an actor is a user ID or
// "group:<id>". User-on-project grants keep the bare IDs they have always
// had. The cache indexes the records by target and by actor, so a user's
// (or a group's, or a project's) grants are read from memory without a
// walk of everyone's.

const (
	domainTargetPfx     = "domain:"
	inheritedTargetPfx  = "inherited-domain:"
	inheritedProjectPfx = "inherited-project:"
	systemTarget        = "system:all"
	groupActorPfx       = "group:"
)

func domainTarget(id string) string    { return domainTargetPfx + id }
func inheritedTarget(id string) string { return inheritedTargetPfx + id }

// inheritedProjectTarget is the target of grants inherited down a
// project's subtree.
func inheritedProjectTarget(id string) string { return inheritedProjectPfx + id }
func groupActor(id string) string             { return groupActorPfx + id }

// target is the key segment of an assignment's target.
func (a Assignment) target() string {
	switch {
	case a.System:
		return systemTarget
	case a.DomainID != "" && a.Inherited:
		return inheritedTarget(a.DomainID)
	case a.DomainID != "":
		return domainTarget(a.DomainID)
	case a.Inherited:
		return inheritedProjectTarget(a.ProjectID)
	}
	return a.ProjectID
}

// actor is the key segment of an assignment's actor.
func (a Assignment) actor() string {
	if a.GroupID != "" {
		return groupActor(a.GroupID)
	}
	return a.UserID
}

func (a Assignment) key() string {
	return assignmentsPrefix + a.target() + "/" + a.actor() + "/" + a.RoleID
}

// assignmentKey is the key of a user's role on a project.
func assignmentKey(projectID, userID, roleID string) string {
	return Assignment{ProjectID: projectID, UserID: userID, RoleID: roleID}.key()
}

// assignmentFromKey rebuilds an assignment from its key, which says all of
// it; ok is false for a key of another shape.
func assignmentFromKey(key string) (Assignment, bool) {
	parts := strings.Split(strings.TrimPrefix(key, assignmentsPrefix), "/")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Assignment{}, false
	}
	a := Assignment{RoleID: parts[2]}
	if g, ok := strings.CutPrefix(parts[1], groupActorPfx); ok {
		a.GroupID = g
	} else {
		a.UserID = parts[1]
	}
	switch t := parts[0]; {
	case t == systemTarget:
		a.System = true
	case strings.HasPrefix(t, inheritedTargetPfx):
		a.DomainID, a.Inherited = strings.TrimPrefix(t, inheritedTargetPfx), true
	case strings.HasPrefix(t, inheritedProjectPfx):
		a.ProjectID, a.Inherited = strings.TrimPrefix(t, inheritedProjectPfx), true
	case strings.HasPrefix(t, domainTargetPfx):
		a.DomainID = strings.TrimPrefix(t, domainTargetPfx)
	default:
		a.ProjectID = t
	}
	return a, true
}

func assignmentsFromKeys(kvs []registry.KV) []Assignment {
	out := make([]Assignment, 0, len(kvs))
	for _, kv := range kvs {
		if a, ok := assignmentFromKey(kv.Key); ok {
			out = append(out, a)
		}
	}
	return out
}

// checkAssignment validates an assignment's shape and that what it names
// exists; a domain-specific role is granted only within its domain.
func (d *Directory) checkAssignment(ctx context.Context, a Assignment) error {
	actors, targets := 0, 0
	for _, set := range []bool{a.UserID != "", a.GroupID != ""} {
		if set {
			actors++
		}
	}
	for _, set := range []bool{a.ProjectID != "", a.DomainID != "", a.System} {
		if set {
			targets++
		}
	}
	switch {
	case actors != 1:
		return &registry.FieldError{Field: "actor", Reason: "name exactly one user or group"}
	case targets != 1:
		return &registry.FieldError{Field: "scope", Reason: "name exactly one project, domain or the system"}
	case a.Inherited && a.System:
		return &registry.FieldError{Field: "inherited_to_projects", Reason: "inherited assignments are made on a domain or a project"}
	}
	for _, seg := range []string{a.UserID, a.GroupID, a.ProjectID, a.DomainID, a.RoleID} {
		if strings.ContainsAny(seg, "/:") || seg == "." || seg == ".." {
			return fmt.Errorf("%w role assignment target %q", ErrNotFound, seg)
		}
	}
	var errs []error
	var targetDomain string
	if a.UserID != "" {
		if _, err := d.GetUser(ctx, a.UserID); err != nil {
			errs = append(errs, err)
		}
	} else if _, err := d.GetGroup(ctx, a.GroupID); err != nil {
		errs = append(errs, err)
	}
	if a.ProjectID != "" {
		p, err := d.GetProject(ctx, a.ProjectID)
		if err != nil {
			errs = append(errs, err)
		}
		targetDomain = p.DomainID
	} else if a.DomainID != "" {
		if _, err := d.GetDomain(ctx, a.DomainID); err != nil {
			errs = append(errs, err)
		}
		targetDomain = a.DomainID
	}
	role, err := d.GetRole(ctx, a.RoleID)
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if role.DomainID != "" && role.DomainID != targetDomain {
		return &registry.FieldError{Field: "role", Reason: fmt.Sprintf("role %s is specific to domain %s and is assigned only there", role.Name, role.DomainID)}
	}
	return nil
}

// Grant gives an actor a role on a target (idempotent).
func (d *Directory) Grant(ctx context.Context, a Assignment) error {
	if err := d.checkAssignment(ctx, a); err != nil {
		return err
	}
	raw, _ := json.Marshal(a)
	_, err := d.store.Put(ctx, a.key(), raw)
	return err
}

// Ungrant removes a role assignment.
func (d *Directory) Ungrant(ctx context.Context, a Assignment) error {
	ok, err := d.HasGrant(ctx, a)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%w role assignment", ErrNotFound)
	}
	return d.store.Delete(ctx, a.key())
}

// HasGrant reports whether the assignment exists (as made: not through a
// group, inheritance or an implied role).
func (d *Directory) HasGrant(ctx context.Context, a Assignment) (bool, error) {
	key := a.key()
	if registry.ValidateKey(key) != nil {
		return false, nil
	}
	_, err := d.store.Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// AssignmentFilter narrows a listing: by actor, target and role; empty
// fields match all. DomainID and ProjectID match direct and inherited
// grants on the domain or project unless Inherited narrows them to the
// inherited ones.
type AssignmentFilter struct {
	UserID, GroupID, ProjectID, DomainID, RoleID string
	System, Inherited                            bool
}

// ListAssignments lists assignments as made (see EffectiveAssignments).
func (d *Directory) ListAssignments(ctx context.Context, f AssignmentFilter) ([]Assignment, error) {
	var actors, targets []string
	switch {
	case f.UserID != "":
		actors = []string{f.UserID}
	case f.GroupID != "":
		actors = []string{groupActor(f.GroupID)}
	}
	switch {
	case f.ProjectID != "" && f.Inherited:
		targets = []string{inheritedProjectTarget(f.ProjectID)}
	case f.ProjectID != "":
		targets = []string{f.ProjectID, inheritedProjectTarget(f.ProjectID)}
	case f.DomainID != "" && f.Inherited:
		targets = []string{inheritedTarget(f.DomainID)}
	case f.DomainID != "":
		targets = []string{domainTarget(f.DomainID), inheritedTarget(f.DomainID)}
	case f.System:
		targets = []string{systemTarget}
	}
	var kvs []registry.KV
	switch {
	case len(actors) > 0 && len(targets) > 0:
		for _, t := range targets {
			got, err := d.grantsAt(ctx, t, actors[0])
			if err != nil {
				return nil, err
			}
			kvs = append(kvs, got...)
		}
	case len(actors) > 0:
		got, err := d.assignmentsIndexed(ctx, false, actors[0])
		if err != nil {
			return nil, err
		}
		kvs = got
	case len(targets) > 0:
		for _, t := range targets {
			got, err := d.assignmentsIndexed(ctx, true, t)
			if err != nil {
				return nil, err
			}
			kvs = append(kvs, got...)
		}
	default:
		all, _, err := d.store.List(ctx, assignmentsPrefix)
		if err != nil {
			return nil, err
		}
		kvs = all
	}
	out := assignmentsFromKeys(kvs)[:0:0]
	for _, a := range assignmentsFromKeys(kvs) {
		if (f.RoleID == "" || a.RoleID == f.RoleID) && (!f.Inherited || a.Inherited) {
			out = append(out, a)
		}
	}
	return out, nil
}

// Assignments lists a user's assignments, on one project when projectID
// is set, on every target otherwise.
func (d *Directory) Assignments(ctx context.Context, projectID, userID string) ([]Assignment, error) {
	return d.ListAssignments(ctx, AssignmentFilter{ProjectID: projectID, UserID: userID})
}

// grantsAt lists one actor's grants on one target. A user's roles on a
// project read the Store when memory holds none (a grant another replica
// has just made); everything else is memory once the cache has loaded, as
// any other record another replica changed.
func (d *Directory) grantsAt(ctx context.Context, target, actor string) ([]registry.KV, error) {
	dir := assignmentsPrefix + target + "/" + actor + "/"
	if registry.ValidateKey(dir[:len(dir)-1]) != nil {
		return nil, nil
	}
	if strings.Contains(target, ":") || strings.HasPrefix(actor, groupActorPfx) {
		return d.listDir(ctx, dir)
	}
	kvs, _, err := d.store.List(ctx, dir)
	return kvs, err
}

// assignmentsIndexed lists the grants on a target (byTarget) or of an
// actor, from the cache's indexes when it has loaded.
func (d *Directory) assignmentsIndexed(ctx context.Context, byTarget bool, k string) ([]registry.KV, error) {
	if c, ok := d.store.(*Cache); ok && !readsStore(ctx) {
		if kvs, ok := c.assignmentsBy(byTarget, k); ok {
			return kvs, nil
		}
	}
	if byTarget {
		kvs, _, err := d.store.List(ctx, assignmentsPrefix+k+"/")
		return kvs, err
	}
	all, _, err := d.store.List(ctx, assignmentsPrefix)
	if err != nil {
		return nil, err
	}
	out := all[:0:0]
	for _, kv := range all {
		if assignmentActor(kv.Key) == k {
			out = append(out, kv)
		}
	}
	return out, nil
}

// listDir lists the records directly under dir (which ends in "/"): from
// memory when the cache holds that prefix and has loaded, else the Store.
func (d *Directory) listDir(ctx context.Context, dir string) ([]registry.KV, error) {
	if c, ok := d.store.(*Cache); ok && !readsStore(ctx) {
		if kvs, ok := c.dir(dir); ok {
			return kvs, nil
		}
	}
	kvs, _, err := d.store.List(ctx, dir)
	return kvs, err
}

// actorsOf is a user and the groups the user belongs to, as actors.
func (d *Directory) actorsOf(ctx context.Context, userID string) ([]string, error) {
	gs, err := d.groupIDsOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := []string{userID}
	for _, g := range gs {
		out = append(out, groupActor(g))
	}
	return out, nil
}

// roleIDsAt collects the role IDs the actors hold on the targets.
func (d *Directory) roleIDsAt(ctx context.Context, targets, actors []string) ([]string, error) {
	var ids []string
	for _, t := range targets {
		for _, a := range actors {
			kvs, err := d.grantsAt(ctx, t, a)
			if err != nil {
				return nil, err
			}
			for _, kv := range kvs {
				ids = append(ids, kv.Key[strings.LastIndex(kv.Key, "/")+1:])
			}
		}
	}
	return ids, nil
}

// effectiveRolesAt returns the roles a user holds on the targets, directly
// or through a group, with the roles they imply; domain-specific roles are
// left out (Keystone puts only the global roles they imply in tokens).
func (d *Directory) effectiveRolesAt(ctx context.Context, userID string, targets ...string) ([]Role, error) {
	actors, err := d.actorsOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	ids, err := d.roleIDsAt(ctx, targets, actors)
	if err != nil {
		return nil, err
	}
	return d.expandRoles(ctx, ids)
}

// RolesOn returns the roles a user holds on a project: granted to the user
// or a group of the user, on the project, inherited from its domain or
// from one of its ancestors, and the roles those imply.
func (d *Directory) RolesOn(ctx context.Context, projectID, userID string) ([]Role, error) {
	p, err := d.GetProject(ctx, projectID)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	targets, err := d.projectTargets(ctx, p)
	if err != nil {
		return nil, err
	}
	return d.effectiveRolesAt(ctx, userID, targets...)
}

// projectTargets are the grant targets whose roles reach p: p itself,
// its domain's inherited grants and its ancestors' inherited grants.
func (d *Directory) projectTargets(ctx context.Context, p Project) ([]string, error) {
	parents, err := d.Parents(ctx, p)
	if err != nil {
		return nil, err
	}
	targets := []string{p.ID, inheritedTarget(p.DomainID)}
	for _, parent := range parents {
		targets = append(targets, inheritedProjectTarget(parent.ID))
	}
	return targets, nil
}

// ScopeProject returns the roles a token of user scoped to p carries, or
// ErrUnauthorized when p or its domain is disabled or the user holds no
// role there. Every login path scopes through it.
func (d *Directory) ScopeProject(ctx context.Context, p Project, user User) ([]Role, error) {
	roles, err := d.RolesOn(ctx, p.ID, user.ID)
	if err != nil {
		return nil, err
	}
	if len(roles) == 0 || !p.Enabled || !d.domainEnabled(ctx, p.DomainID) {
		return nil, fmt.Errorf("%w: user %s has no role on project %s", ErrUnauthorized, user.Name, p.Name)
	}
	return roles, nil
}

// RolesOnDomain returns the roles a user holds on a domain (a
// domain-scoped token's).
func (d *Directory) RolesOnDomain(ctx context.Context, domainID, userID string) ([]Role, error) {
	return d.effectiveRolesAt(ctx, userID, domainTarget(domainID))
}

// RolesOnSystem returns the roles a user holds on the system (a
// system-scoped token's).
func (d *Directory) RolesOnSystem(ctx context.Context, userID string) ([]Role, error) {
	return d.effectiveRolesAt(ctx, userID, systemTarget)
}

// expandRoles resolves role IDs and the roles they imply, transitively,
// to global roles sorted by name; roles deleted under a grant count for
// nothing.
func (d *Directory) expandRoles(ctx context.Context, ids []string) ([]Role, error) {
	all, err := d.impliedClosure(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make([]Role, 0, len(all))
	for _, id := range all {
		r, err := d.GetRole(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if r.DomainID == "" {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// impliedClosure returns ids and every role they imply, each once, in
// discovery order; a cycle of rules ends.
func (d *Directory) impliedClosure(ctx context.Context, ids []string) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	queue := append([]string(nil), ids...)
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if seen[id] {
			continue
		}
		seen[id] = true
		out = append(out, id)
		next, err := d.impliedBy(ctx, id)
		if err != nil {
			return nil, err
		}
		queue = append(queue, next...)
	}
	return out, nil
}

// ProjectsOf lists the projects a user holds a role on: granted to the
// user or a group of the user, on the project or inherited from its
// domain.
func (d *Directory) ProjectsOf(ctx context.Context, userID string) ([]Project, error) {
	actors, err := d.actorsOf(ctx, userID)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var projects []string
	var inherited, subtrees []string
	for _, actor := range actors {
		kvs, err := d.assignmentsIndexed(ctx, false, actor)
		if err != nil {
			return nil, err
		}
		for _, a := range assignmentsFromKeys(kvs) {
			switch {
			case a.ProjectID != "" && a.Inherited:
				subtrees = append(subtrees, a.ProjectID)
			case a.ProjectID != "" && !seen[a.ProjectID]:
				seen[a.ProjectID] = true
				projects = append(projects, a.ProjectID)
			case a.Inherited:
				inherited = append(inherited, a.DomainID)
			}
		}
	}
	for _, root := range subtrees {
		below, err := d.Subtree(ctx, root)
		if err != nil {
			return nil, err
		}
		for _, p := range below {
			if !seen[p.ID] {
				seen[p.ID] = true
				projects = append(projects, p.ID)
			}
		}
	}
	out := []Project{}
	if len(inherited) > 0 {
		all, err := d.ListProjects(ctx)
		if err != nil {
			return nil, err
		}
		for _, p := range all {
			if !seen[p.ID] && slices.Contains(inherited, p.DomainID) {
				seen[p.ID] = true
				out = append(out, p)
			}
		}
	}
	for _, id := range projects {
		if p, err := d.GetProject(ctx, id); err == nil {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
