package broker

import (
	"context"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/ec2"
	"github.com/cloudmux/cloudmux/broker/heat"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/policyapi"
	"github.com/cloudmux/cloudmux/broker/swift"
	"github.com/cloudmux/cloudmux/broker/templatesapi"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// PeerAdmin is the part of registry.PeerRegistry the /v1/peers API writes
// through.
type PeerAdmin interface {
	Create(ctx context.Context, p registry.Peer, creds *registry.Credentials) (registry.Peer, error)
	Get(ctx context.Context, idOrName string) (registry.Peer, error)
	Update(ctx context.Context, p registry.Peer) (registry.Peer, error)
	Delete(ctx context.Context, idOrName string) (registry.Peer, error)
	SetCredentials(ctx context.Context, id string, creds registry.Credentials) (registry.Peer, error)
}

// PeerView is the part of registry.PeerSnapshot reads go through.
type PeerView interface {
	View() *registry.PeerView
	WaitIndex(ctx context.Context, idx uint64) error
	Changed() <-chan struct{}
}

// Config wires a Server.
type Config struct {
	Peers    PeerAdmin
	Snapshot PeerView
	Pool     *peers.Pool
	Identity *identity.Keystone
	// Compute serves /compute (Nova); nil leaves it out.
	Compute *compute.Nova
	// Volume serves /volume (Cinder); nil leaves it out.
	Volume *volume.Cinder
	// Image serves /image (Glance); nil leaves it out.
	Image *image.Glance
	// Network serves /network (Neutron); nil leaves it out.
	Network *network.Neutron
	// Swift serves /swift (Swift v1, object storage) and its /info; nil
	// leaves them out.
	Swift *swift.API
	// EC2 serves /ec2 (the EC2 Query API); nil leaves it out.
	EC2 *ec2.API
	// Heat serves /orchestration (Heat v1 over the deployment engine);
	// nil leaves it out.
	Heat *heat.API
	// Templates serves /v1/templates, /v1/bindings and /v1/deployments;
	// nil leaves them out.
	Templates *templatesapi.API
	// Policy serves /v1/policies, /v1/placement/explain and /v1/decisions;
	// nil leaves them out.
	Policy *policyapi.API
	// Index is the resource index /v1/index/rebuild reconciles, with the
	// marks of BrokerID (the installation ID).
	Index    *index.Index
	BrokerID string
	Log      logrus.FieldLogger
	Version  string
	// RequestTimeout bounds every request; default 60s.
	RequestTimeout time.Duration
	// Ready reports whether the broker can serve (snapshot loaded); /healthz
	// answers 503 until it does.
	Ready func() bool
	// Metrics is where the broker registers its collectors; nil makes a
	// private registry (tests run several servers in one process).
	Metrics *prometheus.Registry
	// MetricsToken, when set, is the bearer token /metrics requires.
	MetricsToken string
	// MetricsElsewhere leaves /metrics off this router: cmd serves it on
	// its own admin listener (MetricsHandler).
	MetricsElsewhere bool
	// UI serves the dashboards at /ui (broker/ui, built over the same
	// service layers); nil leaves them out.
	UI http.Handler
}

// Server is the broker's HTTP side.
type Server struct {
	Config
	log     logrus.FieldLogger
	router  chi.Router
	metrics *metrics
}

// New builds the router.
func New(cfg Config) *Server {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 60 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = prometheus.NewRegistry()
	}
	if cfg.Ready == nil {
		cfg.Ready = func() bool { return true }
	}
	s := &Server{Config: cfg, log: cfg.Log}
	s.metrics = newMetrics(cfg.Metrics, cfg.Snapshot)

	r := chi.NewRouter()
	// Order matters: the request ID first so every later log line carries
	// it, then the logger, then Recoverer inside the logger so a panic is
	// logged as a 500, then the timeout (streams of image data excepted).
	r.Use(osapi.RequestID)
	r.Use(s.requestLogger)
	r.Use(middleware.Recoverer)
	r.Use(s.deadlines)

	r.Get("/", cfg.Identity.Versions)
	r.Route("/v3", cfg.Identity.Routes)
	if cfg.Compute != nil {
		r.Route("/compute", cfg.Compute.Routes)
	}
	if cfg.Volume != nil {
		r.Route("/volume", cfg.Volume.Routes)
	}
	if cfg.Image != nil {
		// At /image exactly: Glance's Location headers assume it.
		r.Route("/image", cfg.Image.Routes)
	}
	if cfg.Network != nil {
		r.Route("/network", cfg.Network.Routes)
	}
	if cfg.Swift != nil {
		r.Route("/swift", cfg.Swift.Routes)
		// swiftclient asks for capabilities at the host's /info.
		r.Get("/info", cfg.Swift.Info)
	}
	if cfg.EC2 != nil {
		// The aws CLI signs the path it is given: users pass
		// --endpoint-url http://HOST/ec2/.
		r.Route("/ec2", cfg.EC2.Routes)
	}
	if cfg.UI != nil {
		r.Handle("/ui", cfg.UI)
		r.Handle("/ui/*", cfg.UI)
	}
	if cfg.Heat != nil {
		r.Route("/orchestration", cfg.Heat.Routes)
	}
	r.Get("/healthz", s.healthz)
	if !cfg.MetricsElsewhere {
		r.Handle("/metrics", MetricsHandler(cfg.Metrics, cfg.MetricsToken))
	}
	r.Route("/v1", func(r chi.Router) {
		r.Get("/", s.v1Discovery)
		r.Post("/auth/tokens", s.login)
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			r.Get("/auth/tokens", s.whoami)
			r.Delete("/auth/tokens", s.logout)
			r.Route("/peers", s.peerRoutes)
			r.Route("/index", s.indexRoutes)
			if cfg.Policy != nil {
				r.Group(cfg.Policy.Routes)
			}
			if cfg.Templates != nil {
				r.Route("/templates", cfg.Templates.TemplateRoutes)
				r.Route("/bindings", cfg.Templates.BindingRoutes)
				r.Route("/deployments", cfg.Templates.DeploymentRoutes)
			}
		})
	})
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, r, http.StatusNotFound, "The resource could not be found.")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeJSONError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" is not allowed on "+r.URL.Path)
	})
	s.router = r
	return s
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.router.ServeHTTP(w, r) }

func (s *Server) publicURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if !s.Ready() {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting"})
		return
	}
	view := s.Snapshot.View()
	counts := map[registry.Status]int{}
	for _, p := range view.List() {
		counts[p.Status]++
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": s.Version, "peers": counts})
}

func (s *Server) v1Discovery(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"version": map[string]any{"id": "v1", "status": "CURRENT", "cloudmux": s.Version},
		"links":   []map[string]string{{"rel": "self", "href": s.publicURL(r) + "/v1/"}},
	})
}

func writeJSONError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	var body errorBody
	body.Error.Code, body.Error.Title, body.Error.Message = code, http.StatusText(code), msg
	body.Error.RequestID = middleware.GetReqID(r.Context())
	writeJSON(w, code, body)
}
