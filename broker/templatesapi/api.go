package templatesapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/focus"
)

// API serves /v1/templates, /v1/bindings and /v1/deployments.
type API struct {
	Catalog *focus.Catalog
	Engine  *deploy.Engine
	Log     logrus.FieldLogger
}

// maxBody bounds a request body: a template is at most
// templates.MaxSourceBytes, JSON-quoted in a deployment request.
const maxBody = 2 * templates.MaxSourceBytes

// TemplateRoutes mounts the catalog's templates (at /v1/templates).
func (a *API) TemplateRoutes(r chi.Router) {
	r.Use(osapi.RequireProject)
	r.Get("/", a.listTemplates)
	r.Route("/{name}", func(r chi.Router) {
		r.Get("/", a.templateVersions)
		r.With(identity.RequireRole(identity.RoleMember)).Post("/versions", a.pushTemplate)
		r.Get("/versions/{version}", a.showTemplate)
		r.With(identity.RequireCloudAdmin).Post("/versions/{version}/publish", a.publishTemplate)
		r.Get("/versions/{version}/used-by", a.usedBy)
		r.Get("/diff", a.diffTemplate)
	})
}

// BindingRoutes mounts binding documents (at /v1/bindings).
func (a *API) BindingRoutes(r chi.Router) {
	r.Use(osapi.RequireProject)
	r.Get("/", a.listBindings)
	r.Route("/{name}", func(r chi.Router) {
		r.Get("/", a.bindingVersions)
		r.With(identity.RequireRole(identity.RoleMember)).Post("/versions", a.pushBinding)
		r.Get("/versions/{version}", a.showBinding)
	})
}

// DeploymentRoutes mounts deployments (at /v1/deployments).
func (a *API) DeploymentRoutes(r chi.Router) {
	r.Use(osapi.RequireProject)
	r.Get("/", a.listDeployments)
	r.With(identity.RequireRole(identity.RoleMember)).Post("/", a.createDeployment)
	r.Route("/{id}", func(r chi.Router) {
		r.Get("/", a.showDeployment)
		r.Get("/events", a.events)
		r.Group(func(r chi.Router) {
			r.Use(identity.RequireRole(identity.RoleMember))
			r.Put("/", a.updateDeployment)
			r.Delete("/", a.deleteDeployment)
			r.Post("/retry", a.retryDeployment)
		})
	})
}

func (a *API) log() logrus.FieldLogger {
	if a.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		return l
	}
	return a.Log
}

// fail maps the packages' errors to statuses. Invalid input answers 400
// with every problem, each at its path; a 5xx tells only what
// osapi.Tell allows.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.failMasked(w, r, err, &masker{})
}

// failMasked is fail for errors that may quote hidden parameter values
// (a constraint's reason names the value it refused).
func (a *API) failMasked(w http.ResponseWriter, r *http.Request, err error, m *masker) {
	var code int
	switch {
	case errors.Is(err, templates.ErrInvalid), errors.Is(err, templates.ErrSyntax), errors.Is(err, focus.ErrInvalid),
		errors.Is(err, deploy.ErrInvalid), errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, deploy.ErrQuota):
		code = http.StatusForbidden // Nova's answer to a create over quota
	case errors.Is(err, focus.ErrNotFound), errors.Is(err, deploy.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, deploy.ErrBusy), errors.Is(err, deploy.ErrState), errors.Is(err, deploy.ErrPlacement), errors.Is(err, focus.ErrInUse):
		code = http.StatusConflict
	case errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	default:
		osapi.Internal(w, r, a.log(), err)
		return
	}
	msg := m.str(err.Error()) // templates' problems are about the caller's own input
	if code >= 500 {
		// A peer or the Store out of reach: no internal text to the
		// caller; the log has it under the request ID.
		msg = osapi.Tell(r, a.log(), code, err)
	}
	body := map[string]any{"code": code, "message": msg} // the request ID is in X-Openstack-Request-Id
	if ps := templates.Problems(err); len(ps) > 0 {
		shown := make([]templates.Problem, len(ps))
		for i, p := range ps {
			shown[i] = *p
			shown[i].Reason = m.str(p.Reason)
		}
		body["problems"] = shown
	}
	name := map[int]string{400: "badRequest", 403: "forbidden", 404: "itemNotFound", 409: "conflictingRequest", 503: "serviceUnavailable"}[code]
	osapi.WriteJSON(w, code, map[string]any{name: body})
}

var errBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, badRequest("reading the body: %v", err)
	}
	if len(b) > maxBody {
		return nil, badRequest("the body is larger than %d bytes", maxBody)
	}
	return b, nil
}

func decodeJSON(r *http.Request, v any) error {
	b, err := readBody(r)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest("the body is not the expected JSON: %v", err)
	}
	return nil
}

func userOf(r *http.Request) string {
	t, _ := identity.TokenFrom(r.Context())
	return t.UserName
}
