package compute

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Members is the part of peers.Pool the API reads.
type Members interface {
	Members() []*peers.Member
}

// Nova serves /compute.
type Nova struct {
	Pool Members
	// Keypairs must be the store Servers (and the EC2 API) use, so a
	// keypair made here boots servers there.
	Keypairs *KeypairStore
	// Servers serves /servers (with os-volume_attachments, os-interface
	// and metadata) and /limits; nil leaves them unmounted.
	Servers *Servers
	Auth    func(http.Handler) http.Handler // Keystone token validation
	Log     logrus.FieldLogger
	// PeerTimeout bounds each peer's part of a fan-out; default 10s.
	PeerTimeout time.Duration
}

// Routes mounts the API on r (at /compute).
func (n *Nova) Routes(r chi.Router) {
	notFound := func(w http.ResponseWriter, r *http.Request) {
		osapi.Fault(w, r, http.StatusNotFound, "The resource could not be found.")
	}
	r.NotFound(notFound)
	r.Get("/", n.versions)
	r.Route("/v2.1", func(r chi.Router) {
		r.Use(osapi.Microversion("compute", "X-OpenStack-Nova-API-Version", MinVersion, MaxVersion))
		r.NotFound(notFound)
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			osapi.Fault(w, r, http.StatusMethodNotAllowed, "The method "+r.Method+" is not allowed for this resource.")
		})
		r.Get("/", n.version)
		r.Group(func(r chi.Router) {
			r.Use(n.Auth, osapi.RequireProject)
			r.Route("/flavors", func(r chi.Router) {
				r.Get("/", n.listFlavors(false))
				r.Get("/detail", n.listFlavors(true))
				r.Get("/{id}", n.showFlavor)
				if n.Servers != nil {
					r.With(since("2.55")).Put("/{id}", n.updateFlavor)
				}
				r.Get("/{id}/os-extra_specs", n.flavorExtraSpecs)
			})
			r.Route("/os-availability-zone", func(r chi.Router) {
				r.Get("/", n.zones(false))
				r.With(identity.RequireCloudAdmin).Get("/detail", n.zones(true))
			})
			r.Route("/os-keypairs", func(r chi.Router) {
				r.Get("/", n.listKeypairs)
				r.With(identity.RequireRole(identity.RoleMember)).Post("/", n.createKeypair)
				r.Get("/{name}", n.showKeypair)
				r.With(identity.RequireRole(identity.RoleMember)).Delete("/{name}", n.deleteKeypair)
			})
			if n.Servers != nil {
				if err := n.Servers.Validate(); err != nil {
					panic(err) // a wiring mistake: fail at start, not on the first request
				}
				n.serverRoutes(r)
				r.With(before("2.36")).Route("/os-security-groups", func(r chi.Router) {
					r.Get("/", n.listProjectGroups)
					r.Get("/{id}", n.showProjectGroup)
				})
				n.groupRoutes(r)
			}
		})
	})
}

func versionDoc(r *http.Request) map[string]any {
	return map[string]any{
		"id": "v2.1", "status": "CURRENT", "version": MaxVersion, "min_version": MinVersion,
		"updated": "2013-07-23T11:33:21Z",
		"links":   []map[string]string{{"rel": "self", "href": identity.BaseURL(r) + "/compute/v2.1/"}},
	}
}

func (n *Nova) versions(w http.ResponseWriter, r *http.Request) {
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"versions": []any{versionDoc(r)}})
}

func (n *Nova) version(w http.ResponseWriter, r *http.Request) {
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"version": versionDoc(r)})
}

// writeError maps sentinels to Nova faults; osapi.Error decides what the
// tenant reads (the broker's own words or the status's generic text) and
// logs the rest.
func (n *Nova) writeError(w http.ResponseWriter, r *http.Request, err error) {
	err = QuotaRefusal(err) // a policy's quota refusal is Nova's 403, not no valid host
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNoValidHost):
		// Nova would accept the request and fail the server later; the
		// broker knows at once, and says why each peer cannot take it.
		code = http.StatusBadRequest
	case errors.Is(err, ErrForbidden):
		code = http.StatusForbidden
	case errors.Is(err, peers.ErrNotFound), errors.Is(err, registry.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, peers.ErrInvalid), errors.Is(err, registry.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, peers.ErrConflict), errors.Is(err, registry.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, peers.ErrCapacity):
		code = http.StatusForbidden // Nova's quota refusals are 403
	case errors.Is(err, peers.ErrNotSupported):
		code = http.StatusNotImplemented
	case errors.Is(err, peers.ErrUnavailable), errors.Is(err, registry.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	osapi.Error(w, r, n.Log, code, err)
}

// connected lists the members this broker can talk to.
func (n *Nova) connected() []*peers.Member {
	var out []*peers.Member
	for _, m := range n.Pool.Members() {
		if m.Cloud != nil {
			out = append(out, m)
		}
	}
	return out
}

func (n *Nova) peerTimeout() time.Duration {
	if n.PeerTimeout > 0 {
		return n.PeerTimeout
	}
	return 10 * time.Second
}
