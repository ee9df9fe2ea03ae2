package identity

import (
	"context"
	"net/http"

	"github.com/go-chi/chi/v5"
)

// grantPath is what a role-assignment route names: its target kind
// ("projects", "domains", "system"), whether the actor is a group, and
// whether the grant is inherited to a domain's projects or a project's
// subtree (OS-INHERIT).
type grantPath struct {
	target    string
	group     bool
	inherited bool
}

func (g grantPath) assignment(r *http.Request) Assignment {
	a := Assignment{RoleID: chi.URLParam(r, "role"), Inherited: g.inherited}
	if g.group {
		a.GroupID = chi.URLParam(r, "actor")
	} else {
		a.UserID = chi.URLParam(r, "actor")
	}
	switch g.target {
	case "projects":
		a.ProjectID = chi.URLParam(r, "target")
	case "domains":
		a.DomainID = chi.URLParam(r, "target")
	default:
		a.System = true
	}
	return a
}

// assignmentRoutes mounts the grant routes of the system and OS-INHERIT;
// those of projects and domains are in their routes.
func (k *Keystone) assignmentRoutes(r chi.Router) {
	k.grantRoutes(r, "/system", "system", false)
	k.grantRoutes(r, "/OS-INHERIT/domains/{target}", "domains", true)
	k.grantRoutes(r, "/OS-INHERIT/projects/{target}", "projects", true)
}

// grantRoutes mounts list, grant, check and revoke for users and groups
// under prefix.
func (k *Keystone) grantRoutes(r chi.Router, prefix, target string, inherited bool) {
	suffix := ""
	if inherited {
		suffix = "/inherited_to_projects"
	}
	for _, actor := range []string{"users", "groups"} {
		g := grantPath{target: target, group: actor == "groups", inherited: inherited}
		base := prefix + "/" + actor + "/{actor}/roles"
		r.Get(base+suffix, k.listGrantsOn(g))
		r.Put(base+"/{role}"+suffix, k.grantOn(g))
		r.Head(base+"/{role}"+suffix, k.checkGrantOn(g))
		r.Get(base+"/{role}"+suffix, k.checkGrantOn(g))
		r.Delete(base+"/{role}"+suffix, k.ungrantOn(g))
	}
}

func (k *Keystone) grantOn(g grantPath) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := k.Dir.Grant(r.Context(), g.assignment(r)); err != nil {
			k.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func (k *Keystone) checkGrantOn(g grantPath) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, err := k.Dir.HasGrant(r.Context(), g.assignment(r))
		k.answerCheck(w, r, ok, err)
	}
}

// answerCheck answers a HEAD-style check: 204 when ok, 404 when not.
func (k *Keystone) answerCheck(w http.ResponseWriter, r *http.Request, ok bool, err error) {
	switch {
	case err != nil:
		k.fail(w, r, err)
	case ok:
		w.WriteHeader(http.StatusNoContent)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// ungrantOn removes a grant and voids the tokens that carry it: the
// user's, or every member's of a group, as Keystone does.
func (k *Keystone) ungrantOn(g grantPath) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := g.assignment(r)
		if err := k.Dir.Ungrant(r.Context(), a); err != nil {
			k.fail(w, r, err)
			return
		}
		users := []string{a.UserID}
		if a.GroupID != "" {
			var err error
			if users, err = k.Dir.GroupMembers(r.Context(), a.GroupID); err != nil {
				k.fail(w, r, err)
				return
			}
		}
		if err := k.revokeUsers(r, users); err != nil {
			k.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// listGrantsOn lists the roles an actor was granted on a target.
func (k *Keystone) listGrantsOn(g grantPath) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := g.assignment(r)
		as, err := k.Dir.ListAssignments(r.Context(), AssignmentFilter{UserID: a.UserID, GroupID: a.GroupID,
			ProjectID: a.ProjectID, DomainID: a.DomainID, System: a.System, Inherited: a.Inherited})
		if err != nil {
			k.fail(w, r, err)
			return
		}
		roles := []Role{}
		for _, x := range as {
			if x.Inherited != g.inherited {
				continue
			}
			if role, err := k.Dir.GetRole(r.Context(), x.RoleID); err == nil {
				roles = append(roles, role)
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"roles": entities(r, "roles", roles, func(x Role) string { return x.ID }), "links": links(r)})
	}
}

// domainOf names a domain for an assignment listing.
func domainOf(ctx context.Context, d *Directory, id string) map[string]string {
	if dom, err := d.GetDomain(ctx, id); err == nil {
		return map[string]string{"id": dom.ID, "name": dom.Name}
	}
	return map[string]string{"id": id}
}
