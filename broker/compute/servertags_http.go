package compute

import (
	"net/http"
	"net/url"
	"slices"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
)

// serverTagRoutes mounts Nova's server tags (2.26) under /servers/{id}.
func (n *Nova) serverTagRoutes(r chi.Router) {
	member := identity.RequireRole(identity.RoleMember)
	r.Route("/tags", func(r chi.Router) {
		r.Use(since("2.26"))
		r.Get("/", n.listServerTags)
		r.With(member).Put("/", n.replaceServerTags)
		r.With(member).Delete("/", n.deleteServerTags)
		r.Get("/{tag}", n.checkServerTag)
		r.With(member).Put("/{tag}", n.addServerTag)
		r.With(member).Delete("/{tag}", n.deleteServerTag)
	})
}

// since makes a path exist from microversion v on: 404 before, as Nova.
func since(v string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !at(r, v) {
				osapi.Fault(w, r, http.StatusNotFound, "The resource could not be found.")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// tagParam is the tag a path names, unescaped.
func tagParam(r *http.Request) string {
	t := chi.URLParam(r, "tag")
	if u, err := url.PathUnescape(t); err == nil {
		return u
	}
	return t
}

func (n *Nova) listServerTags(w http.ResponseWriter, r *http.Request) {
	tags, err := n.Servers.Tags(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

func (n *Nova) replaceServerTags(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Tags *[]string `json:"tags"`
	}
	raw, err := readBody(w, r)
	if err == nil {
		err = decodeStrict(raw, &req)
	}
	if err != nil || req.Tags == nil {
		osapi.Fault(w, r, http.StatusBadRequest, `Invalid input for field/attribute tags: expected {"tags": [...]}`)
		return
	}
	tags, err := n.Servers.SetTags(r.Context(), caller(r), chi.URLParam(r, "id"), *req.Tags)
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"tags": tags})
}

func (n *Nova) deleteServerTags(w http.ResponseWriter, r *http.Request) {
	if _, err := n.Servers.SetTags(r.Context(), caller(r), chi.URLParam(r, "id"), nil); err != nil {
		n.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// checkServerTag answers 204 when the server has the tag, 404 otherwise.
func (n *Nova) checkServerTag(w http.ResponseWriter, r *http.Request) {
	tags, err := n.Servers.Tags(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if !slices.Contains(tags, tagParam(r)) {
		osapi.Fault(w, r, http.StatusNotFound, "Tag "+tagParam(r)+" not found on server "+chi.URLParam(r, "id"))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// addServerTag adds a tag: 201 with its Location when it is new, 204
// when the server had it already.
func (n *Nova) addServerTag(w http.ResponseWriter, r *http.Request) {
	c, id, tag := caller(r), chi.URLParam(r, "id"), tagParam(r)
	before, err := n.Servers.Tags(r.Context(), c, id)
	if err == nil {
		err = n.Servers.AddTag(r.Context(), c, id, tag)
	}
	if err != nil {
		n.writeError(w, r, err)
		return
	}
	if slices.Contains(before, tag) {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	w.Header().Set("Location", identity.BaseURL(r)+"/compute/v2.1/servers/"+id+"/tags/"+url.PathEscape(tag))
	w.WriteHeader(http.StatusCreated)
}

func (n *Nova) deleteServerTag(w http.ResponseWriter, r *http.Request) {
	if err := n.Servers.DeleteTag(r.Context(), caller(r), chi.URLParam(r, "id"), tagParam(r)); err != nil {
		n.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
