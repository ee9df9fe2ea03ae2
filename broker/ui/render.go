package ui

import (
	"bytes"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/broker/identity"
)

// view is what every page template gets.
type view struct {
	Title  string
	Crumbs []crumb
	// Nav is the menu entry to highlight.
	Nav string
	// Me is the logged-in user (nil on the login page).
	Me   *me
	Data any
	// Flash is a one-line notice above the page (an action's result).
	Flash string
}

type crumb struct{ Name, Href string }

// me is the session as the layout shows it.
type me struct {
	User, Project, ProjectID string
	Projects                 []identity.Project
	Admin                    bool
	CSRF                     string
	// Has says which services are wired (the menu shows only those).
	Has map[string]bool
}

type pageTemplate struct{ t *template.Template }

var funcs = template.FuncMap{
	"ago": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		d := time.Since(t).Round(time.Second)
		if d < 0 {
			d = 0
		}
		return d.String() + " ago"
	},
	"stamp": func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"pct": func(used, total int64) int {
		if total <= 0 {
			return 0
		}
		return int(min(100, used*100/total))
	},
	"lower": strings.ToLower,
	"join":  strings.Join,
	"list":  func(a ...string) []string { return a },
}

// parsePages parses each page with the layout.
func parsePages() (map[string]*pageTemplate, error) {
	names, err := templateFS.ReadDir("templates")
	if err != nil {
		return nil, err
	}
	out := map[string]*pageTemplate{}
	for _, n := range names {
		if n.Name() == "layout.html" || strings.HasPrefix(n.Name(), "_") {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/_*.html", "templates/"+n.Name())
		if err != nil {
			return nil, fmt.Errorf("ui template %s: %w", n.Name(), err)
		}
		out[strings.TrimSuffix(n.Name(), ".html")] = &pageTemplate{t: t}
	}
	return out, nil
}

// render writes a page; for an htmx request asking for a fragment
// (HX-Target naming one of the page's blocks) only that block.
func (u *UI) render(w http.ResponseWriter, r *http.Request, code int, page string, v view) {
	p, ok := u.pages[page]
	if !ok {
		http.Error(w, "no such page", http.StatusInternalServerError)
		return
	}
	if c := callerOf(r); c != nil && v.Me == nil {
		v.Me = u.meOf(r, c)
	}
	name := "layout.html"
	if frag := r.Header.Get("HX-Target"); frag != "" && r.Header.Get("HX-Request") != "" && p.t.Lookup("frag-"+frag) != nil {
		name = "frag-" + frag
	}
	var buf bytes.Buffer
	if err := p.t.ExecuteTemplate(&buf, name, v); err != nil {
		u.Log.WithError(err).WithField("page", page).Error("dashboard template failed")
		http.Error(w, "the page could not be drawn", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func (u *UI) meOf(r *http.Request, c *caller) *me {
	m := &me{User: c.token.UserName, Project: c.token.ProjectName, ProjectID: c.token.ProjectID,
		Admin: c.token.CloudAdmin(), CSRF: c.s.csrf, Has: map[string]bool{
			"volumes": u.Volumes != nil, "images": u.Images != nil, "networks": u.Networks != nil,
			"keypairs": u.Keypairs != nil, "deployments": u.Templates != nil,
		}}
	// The project switcher; the directory serves it from memory.
	if ps, err := u.Keystone.Dir.ProjectsOf(r.Context(), c.token.UserID); err == nil {
		m.Projects = ps
	}
	return m
}

func (u *UI) errorPage(w http.ResponseWriter, r *http.Request, code int, msg string) {
	if callerOf(r) == nil && code != http.StatusNotFound {
		http.Error(w, msg, code)
		return
	}
	u.render(w, r, code, "error", view{Title: http.StatusText(code), Data: map[string]any{"Code": code, "Message": msg}})
}

// pager is a list's page links: offset pages of pageSize rows.
type pager struct {
	Page, Pages, Total int
	Prev, Next         string
}

const pageSize = 20

// paginate cuts items to the request's ?page= (1-based) and returns the
// links to the neighbouring pages.
func paginate[T any](r *http.Request, items []T) ([]T, pager) {
	n, _ := strconv.Atoi(r.URL.Query().Get("page"))
	pages := max(1, (len(items)+pageSize-1)/pageSize)
	n = min(max(n, 1), pages)
	p := pager{Page: n, Pages: pages, Total: len(items)}
	link := func(to int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(to))
		return r.URL.Path + "?" + q.Encode()
	}
	if n > 1 {
		p.Prev = link(n - 1)
	}
	if n < pages {
		p.Next = link(n + 1)
	}
	lo := (n - 1) * pageSize
	return items[lo:min(lo+pageSize, len(items))], p
}

// markerPager is a page of a list the service pages by marker (the last
// ID shown): Next continues after it, Prev goes back to the start.
func markerPager(r *http.Request, more bool, last string) pager {
	p := pager{}
	if r.URL.Query().Get("marker") != "" {
		p.Prev = r.URL.Path
	}
	if more && last != "" {
		p.Next = r.URL.Path + "?marker=" + url.QueryEscape(last)
	}
	return p
}

// crumbs builds breadcrumbs from pairs of name and path (the last is the
// current page, unlinked).
func crumbs(pairs ...string) []crumb {
	out := []crumb{{Name: "Home", Href: Prefix + "/"}}
	for i := 0; i+1 < len(pairs); i += 2 {
		href := ""
		if i+2 < len(pairs) {
			href = path.Join(Prefix, pairs[i+1])
		}
		out = append(out, crumb{Name: pairs[i], Href: href})
	}
	return out
}

// seeOther sends the browser to a page after a POST (htmx follows it
// with HX-Location so the page is not re-posted on reload).
func seeOther(w http.ResponseWriter, r *http.Request, to string) {
	if r.Header.Get("HX-Request") != "" {
		w.Header().Set("HX-Redirect", to)
		w.WriteHeader(http.StatusNoContent)
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}
