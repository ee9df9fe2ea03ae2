package ui

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/policyapi"
	"github.com/cloudmux/cloudmux/broker/templatesapi"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/registry"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Prefix is where the dashboards are mounted.
const Prefix = "/ui"

// PeerView is the part of the peer snapshot Cosmos reads (memory).
type PeerView interface {
	View() *registry.PeerView
	// WaitIndex waits until the view holds a change (its revision).
	WaitIndex(ctx context.Context, idx uint64) error
}

// PeerAdmin is the part of the peer registry Cosmos writes through
// (maintenance), as /v1/peers does.
type PeerAdmin interface {
	Get(ctx context.Context, idOrName string) (registry.Peer, error)
	Update(ctx context.Context, p registry.Peer) (registry.Peer, error)
}

// Config wires the dashboards to the service layers. Keystone, Servers and
// Peers are required; a nil service leaves its pages out of the menu and
// answers them 404.
type Config struct {
	Keystone *identity.Keystone
	Servers  *compute.Servers
	Keypairs *compute.KeypairStore
	Volumes  *volume.Service
	Images   *image.Service
	Networks *network.Service
	// Templates lists, shows and follows the project's deployments (its
	// engine, and its views that mask hidden parameter values).
	Templates *templatesapi.API
	// Policy explains placements (the launch form's preview: its Engine
	// and Candidates, as /v1/placement/explain uses them) and keeps the
	// policy versions Cosmos lists, pushes, activates and rolls back; its
	// Decisions answer "Why here?" and the decision log.
	Policy    *policyapi.API
	Peers     PeerView
	PeerAdmin PeerAdmin
	Log       logrus.FieldLogger
	// SessionIdle ends a session unused this long (default 30 minutes); a
	// session never outlives its token.
	SessionIdle time.Duration
}

// UI is the dashboards' handler.
type UI struct {
	Config
	sessions *sessions
	pages    map[string]*pageTemplate
	keystone http.Handler
	router   chi.Router
}

// New builds the dashboards. It fails only on a broken embedded template.
func New(cfg Config) (*UI, error) {
	if cfg.Keystone == nil || cfg.Servers == nil || cfg.Peers == nil {
		return nil, errors.New("ui: Keystone, Servers and Peers are required")
	}
	if cfg.Log == nil {
		cfg.Log = logrus.New()
	}
	if cfg.SessionIdle <= 0 {
		cfg.SessionIdle = 30 * time.Minute
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	ks := chi.NewRouter()
	ks.Route("/v3", cfg.Keystone.Routes)
	u := &UI{Config: cfg, sessions: newSessions(), pages: pages, keystone: ks}
	u.router = u.routes()
	return u, nil
}

// ServeHTTP serves everything under Prefix (mount the UI there with the
// prefix left on the path).
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.router.ServeHTTP(w, r) }

func (u *UI) routes() chi.Router {
	r := chi.NewRouter()
	r.Use(securityHeaders)
	static, _ := fs.Sub(staticFS, "static")
	r.Handle(Prefix+"/static/*", http.StripPrefix(Prefix+"/static/", cacheStatic(http.FileServerFS(static))))
	r.Get(Prefix, func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, Prefix+"/", http.StatusSeeOther) })
	r.Get(Prefix+"/login", u.loginForm)
	r.With(sameOrigin).Post(Prefix+"/login", u.login)
	r.Group(func(r chi.Router) {
		r.Use(u.requireSession, sameOrigin, u.checkCSRF)
		r.Get(Prefix+"/", u.overview)
		r.Post(Prefix+"/logout", u.logout)
		r.Post(Prefix+"/project", u.switchProject)
		u.skylineRoutes(r)
		u.resourceRoutes(r)
		u.deploymentRoutes(r)
		r.Route(Prefix+"/admin", func(r chi.Router) {
			r.Use(u.requireAdmin)
			u.cosmosRoutes(r)
		})
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, http.StatusNotFound, "There is nothing here.")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		u.errorPage(w, r, http.StatusMethodNotAllowed, "This page does not take a "+r.Method+".")
	})
	return r
}

// csp allows the page's own scripts, styles and connections only: no
// inline script or style attribute in markup (htmx is configured not to
// add its indicator style, and never to eval), no framing, forms posting
// back here only.
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"

func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// cacheStatic lets browsers keep the embedded files (they change only
// with the binary) for a day.
func cacheStatic(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=86400")
		next.ServeHTTP(w, r)
	})
}

// sameOrigin refuses a POST whose Origin header names another site: with
// SameSite=Strict cookies and CSRF tokens it is a third, cheap wall.
func sameOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			if o := r.Header.Get("Origin"); o != "" && o != "null" && o != identity.BaseURL(r) {
				http.Error(w, "cross-origin request refused", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
