package identity

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/registry"
)

// projectRoutes serves /v3/projects: identity admins manage projects; a
// token reads the project it is scoped to (Keystone's get_project).
func (k *Keystone) projectRoutes(r chi.Router) {
	r.Get("/{id}", k.showProject)
	r.Group(func(r chi.Router) {
		r.Use(k.adminGate)
		r.Get("/", k.listProjects)
		r.Post("/", k.createProject)
		r.Patch("/{id}", k.updateProject)
		r.Delete("/{id}", k.deleteProject)
		r.Get("/{id}/tags", k.listTags)
		r.Put("/{id}/tags", k.replaceTags)
		r.Delete("/{id}/tags", k.clearTags)
		r.Get("/{id}/tags/{tag}", k.checkTag)
		r.Head("/{id}/tags/{tag}", k.checkTag)
		r.Put("/{id}/tags/{tag}", k.addTag)
		r.Delete("/{id}/tags/{tag}", k.removeTag)
		k.grantRoutes(r, "/{target}", "projects", false)
	})
}

func splitList(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func (k *Keystone) listProjects(w http.ResponseWriter, r *http.Request) {
	ps, err := k.Dir.ListProjects(r.Context())
	if err != nil {
		k.fail(w, r, err)
		return
	}
	q := r.URL.Query()
	if q.Get("is_domain") == "true" {
		ps = nil // no project acts as a domain here
	}
	ps = filterByDomain(r, ps, func(p Project) string { return p.DomainID })
	ps = filterByName(r, ps, func(p Project) string { return p.Name })
	ps = filterBy(r, "parent_id", ps, func(p Project) string {
		if p.ParentID == "" {
			return p.DomainID
		}
		return p.ParentID
	})
	if e := q.Get("enabled"); e != "" {
		want := e != "false" && e != "0"
		ps = slices.DeleteFunc(ps, func(p Project) bool { return p.Enabled != want })
	}
	tags := ProjectTagFilter{Tags: splitList(q.Get("tags")), TagsAny: splitList(q.Get("tags-any")),
		NotTags: splitList(q.Get("not-tags")), NotTagsAny: splitList(q.Get("not-tags-any"))}
	ps = slices.DeleteFunc(ps, func(p Project) bool { return !tags.Match(p.Tags) })
	writeJSON(w, http.StatusOK, map[string]any{"projects": entities(r, "projects", ps, func(p Project) string { return p.ID }), "links": links(r)})
}

// projectFields are a project's writable fields.
type projectFields struct {
	Name        *string   `json:"name"`
	DomainID    *string   `json:"domain_id"`
	ParentID    *string   `json:"parent_id"`
	Description *string   `json:"description"`
	Enabled     *bool     `json:"enabled"`
	IsDomain    *bool     `json:"is_domain"`
	Tags        *[]string `json:"tags"`
}

// errIsDomain: projects acting as domains are not offered; asked for,
// the request is refused rather than the flag dropped.
var errIsDomain = &registry.FieldError{Field: "project.is_domain", Reason: "projects acting as domains are not supported; create a domain"}

func (k *Keystone) createProject(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Project projectFields `json:"project"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	in := req.Project
	if in.IsDomain != nil && *in.IsDomain {
		k.fail(w, r, errIsDomain)
		return
	}
	p := Project{Enabled: true}
	setIf(&p.Name, in.Name)
	setIf(&p.DomainID, in.DomainID)
	setIf(&p.ParentID, in.ParentID)
	setIf(&p.Description, in.Description)
	setIf(&p.Enabled, in.Enabled)
	setIf(&p.Tags, in.Tags)
	if p.DomainID == "" && p.ParentID == "" {
		p.DomainID = defaultDomain(r)
	}
	p, err := k.Dir.CreateProject(r.Context(), p)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"project": entity(r, "projects", p.ID, p)})
}

// showProject answers GET /v3/projects/{id}, with the hierarchy when
// asked: ?parents_as_list / ?subtree_as_list (the projects) or
// ?parents_as_ids / ?subtree_as_ids (nested IDs), as Keystone's.
func (k *Keystone) showProject(w http.ResponseWriter, r *http.Request) {
	ctx, q := r.Context(), r.URL.Query()
	t, _ := TokenFrom(ctx)
	p, err := k.Dir.GetProject(ctx, chi.URLParam(r, "id"))
	if t.ProjectID != chi.URLParam(r, "id") && !t.IdentityAdmin() && !(t.DomainAdmin() && err == nil && p.DomainID == t.DomainID) {
		k.fail(w, r, fmt.Errorf("%w: a project other than the token's", ErrForbidden))
		return
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	view := entity(r, "projects", p.ID, p)
	asList := func(ps []Project) []map[string]any {
		out := make([]map[string]any, len(ps))
		for i, x := range ps {
			out[i] = map[string]any{"project": entity(r, "projects", x.ID, x)}
		}
		return out
	}
	if q.Has("parents_as_list") || q.Has("parents_as_ids") {
		parents, err := k.Dir.Parents(ctx, p)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		if q.Has("parents_as_list") {
			view["parents"] = asList(parents)
		} else {
			var ids map[string]any // innermost: the root's parent (the domain) is not listed
			for i := len(parents) - 1; i >= 0; i-- {
				ids = map[string]any{parents[i].ID: ids}
			}
			view["parents"] = ids
		}
	}
	if q.Has("subtree_as_list") || q.Has("subtree_as_ids") {
		sub, err := k.Dir.Subtree(ctx, p.ID)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		if q.Has("subtree_as_list") {
			view["subtree"] = asList(sub)
		} else {
			view["subtree"] = subtreeIDs(p.ID, sub)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": view})
}

// subtreeIDs nests the IDs of a subtree under their parents; a leaf is
// null, as Keystone writes it.
func subtreeIDs(root string, sub []Project) map[string]any {
	byParent := map[string][]string{}
	for _, p := range sub {
		byParent[p.ParentID] = append(byParent[p.ParentID], p.ID)
	}
	var build func(id string) map[string]any
	build = func(id string) map[string]any {
		kids := byParent[id]
		if len(kids) == 0 {
			return nil
		}
		out := map[string]any{}
		for _, k := range kids {
			out[k] = build(k)
		}
		return out
	}
	return build(root)
}

func (k *Keystone) updateProject(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Project projectFields `json:"project"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	ctx, id, in := r.Context(), chi.URLParam(r, "id"), req.Project
	cur, err := k.Dir.GetProject(ctx, id)
	if err != nil {
		k.fail(w, r, err)
		return
	}
	switch {
	case in.IsDomain != nil && *in.IsDomain:
		k.fail(w, r, errIsDomain)
		return
	case in.ParentID != nil && *in.ParentID != cur.ParentID && !(cur.ParentID == "" && *in.ParentID == cur.DomainID):
		k.fail(w, r, &registry.FieldError{Field: "project.parent_id", Reason: "a project's parent does not change"})
		return
	case in.DomainID != nil && *in.DomainID != cur.DomainID:
		k.fail(w, r, &registry.FieldError{Field: "project.domain_id", Reason: "a project's domain does not change"})
		return
	case in.Tags != nil:
		if err := validTags("project.tags", *in.Tags); err != nil {
			k.fail(w, r, err)
			return
		}
	}
	if in.Enabled != nil && *in.Enabled && !cur.Enabled && cur.ParentID != "" {
		// Nor is a child enabled under a disabled parent (Keystone's 403).
		parent, err := k.Dir.GetProject(ctx, cur.ParentID)
		if err == nil && !parent.Enabled {
			err = errForbiddenf("cannot enable project %s: its parent %s is disabled", cur.Name, parent.Name)
		}
		if err != nil {
			k.fail(w, r, err)
			return
		}
	}
	if in.Enabled != nil && !*in.Enabled {
		// A parent is not disabled under enabled children (Keystone);
		// disabling cuts access at once, on every replica.
		kids, err := k.Dir.Children(ctx, id)
		if err != nil {
			k.fail(w, r, err)
			return
		}
		if slices.ContainsFunc(kids, func(p Project) bool { return p.Enabled }) {
			k.fail(w, r, errForbiddenf("cannot disable project %s: it has enabled children", cur.Name))
			return
		}
		if err := k.Tokens.RevokeProject(ctx, id); err != nil {
			k.fail(w, r, err)
			return
		}
	}
	p, err := k.Dir.UpdateProject(ctx, id, func(p *Project) {
		setIf(&p.Name, in.Name)
		setIf(&p.Description, in.Description)
		setIf(&p.Enabled, in.Enabled)
		setIf(&p.Tags, in.Tags)
	})
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"project": entity(r, "projects", p.ID, p)})
}

// changeTags applies change to a project's tags, checks them and answers
// with them (code) or, for 204, nothing.
func (k *Keystone) changeTags(w http.ResponseWriter, r *http.Request, code int, change func([]string) []string) {
	var bad error
	p, err := k.Dir.UpdateProject(r.Context(), chi.URLParam(r, "id"), func(p *Project) {
		next := change(slices.Clone(p.Tags))
		if bad = validTags("tags", next); bad == nil {
			p.Tags = next
		}
	})
	if bad != nil {
		err = bad
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	if code == http.StatusNoContent {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, map[string]any{"tags": tagsOf(p), "links": links(r)})
}

func tagsOf(p Project) []string {
	if p.Tags == nil {
		return []string{}
	}
	return p.Tags
}

func (k *Keystone) listTags(w http.ResponseWriter, r *http.Request) {
	p, err := k.Dir.GetProject(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		k.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"tags": tagsOf(p), "links": links(r)})
}

func (k *Keystone) replaceTags(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Tags []string `json:"tags"`
	}
	if err := decode(r, &req); err != nil {
		k.fail(w, r, err)
		return
	}
	k.changeTags(w, r, http.StatusOK, func([]string) []string { return req.Tags })
}

func (k *Keystone) clearTags(w http.ResponseWriter, r *http.Request) {
	k.changeTags(w, r, http.StatusNoContent, func([]string) []string { return nil })
}

func (k *Keystone) checkTag(w http.ResponseWriter, r *http.Request) {
	p, err := k.Dir.GetProject(r.Context(), chi.URLParam(r, "id"))
	k.answerCheck(w, r, err == nil && slices.Contains(p.Tags, chi.URLParam(r, "tag")), ignoreErr(err, ErrNotFound))
}

func (k *Keystone) addTag(w http.ResponseWriter, r *http.Request) {
	tag := chi.URLParam(r, "tag")
	k.changeTags(w, r, http.StatusCreated, func(ts []string) []string {
		if slices.Contains(ts, tag) {
			return ts
		}
		return append(ts, tag)
	})
}

func (k *Keystone) removeTag(w http.ResponseWriter, r *http.Request) {
	tag := chi.URLParam(r, "tag")
	p, err := k.Dir.GetProject(r.Context(), chi.URLParam(r, "id"))
	if err == nil && !slices.Contains(p.Tags, tag) {
		err = errNotFoundf("tag %s on project %s", tag, p.ID)
	}
	if err != nil {
		k.fail(w, r, err)
		return
	}
	k.changeTags(w, r, http.StatusNoContent, func(ts []string) []string { return slices.DeleteFunc(ts, func(t string) bool { return t == tag }) })
}
