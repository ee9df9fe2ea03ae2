package heat

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/templatesapi"
	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy"
)

// API serves /orchestration.
type API struct {
	Engine *deploy.Engine
	// Templates masks hidden parameter values as /v1/deployments does.
	Templates *templatesapi.API
	// Auth validates the Keystone token and puts it in the context.
	Auth func(http.Handler) http.Handler
	Log  logrus.FieldLogger
}

// Routes mounts the API (at /orchestration).
func (a *API) Routes(r chi.Router) {
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, errNotFound("The resource could not be found."))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, &heatError{code: 405, typ: "HTTPMethodNotAllowed", msg: "The method " + r.Method + " is not allowed for this resource."})
	})
	r.Get("/", a.versions)
	r.Route("/v1/{project}", func(r chi.Router) {
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			a.fail(w, r, errNotFound("The resource could not be found."))
		})
		r.Use(a.Auth, a.ownProject)
		member := identity.RoleMember
		r.Get("/resource_types", a.listResourceTypes)
		r.Get("/resource_types/{type}", a.showResourceType)
		r.Get("/resource_types/{type}/template", a.resourceTypeTemplate)
		r.Post("/validate", a.validate)
		r.Route("/stacks", func(r chi.Router) {
			r.Get("/", a.listStacks)
			r.With(role(member)).Post("/", a.createStack)
			r.With(role(member)).Post("/preview", a.previewStack)
			// A name (or an ID alone) redirects to /stacks/NAME/ID, for
			// every method, as Heat's stack_lookup: heatclient updates and
			// deletes by name and follows the 302 with the same method.
			r.Get("/{name}", a.lookup)
			r.With(role(member)).Put("/{name}", a.lookup)
			r.With(role(member)).Patch("/{name}", a.lookup)
			r.With(role(member)).Delete("/{name}", a.lookup)
			r.Get("/{name}/{sub:resources|events|outputs|template|environment}", a.lookup)
			r.With(role(member)).Post("/{name}/{sub:actions}", a.lookup)
			r.Route("/{name}/{id}", func(r chi.Router) {
				r.Get("/", a.showStack)
				r.With(role(member)).Put("/", a.updateStack(false))
				r.With(role(member)).Patch("/", a.updateStack(true))
				r.With(role(member)).Put("/preview", a.previewUpdate(false))
				r.With(role(member)).Patch("/preview", a.previewUpdate(true))
				r.With(role(member)).Delete("/", a.deleteStack)
				r.With(role(member)).Post("/actions", a.action)
				r.Get("/template", a.showTemplate)
				r.Get("/environment", a.showEnvironment)
				r.Get("/outputs", a.listOutputs)
				r.Get("/outputs/{key}", a.showOutput)
				r.Get("/events", a.stackEvents)
				r.Get("/resources", a.listResources)
				r.Get("/resources/{res}", a.showResource)
				r.With(role(member)).Patch("/resources/{res}", a.markUnhealthy)
				r.Get("/resources/{res}/metadata", a.resourceMetadata)
				r.Get("/resources/{res}/events", a.resourceEvents)
				r.Get("/resources/{res}/events/{event}", a.showEvent)
			})
		})
	})
}

// versions answers Heat's version document (300, as Heat does).
func (a *API) versions(w http.ResponseWriter, r *http.Request) {
	osapi.WriteJSON(w, http.StatusMultipleChoices, map[string]any{"versions": []any{map[string]any{
		"id": "v1.0", "status": "CURRENT",
		"links": []any{map[string]any{"rel": "self", "href": identity.BaseURL(r) + "/orchestration/v1/"}},
	}}})
}

// ownProject refuses a path naming another project than the token's,
// as Heat's tenant_local does (403), and unscoped tokens.
func (a *API) ownProject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t, _ := identity.TokenFrom(r.Context())
		if !t.Scoped() || t.ProjectID == "" {
			a.fail(w, r, &heatError{code: 403, typ: "Forbidden", msg: "a project-scoped token is required"})
			return
		}
		if chi.URLParam(r, "project") != t.ProjectID {
			a.fail(w, r, &heatError{code: 403, typ: "Forbidden", msg: "the path names another project than the token's"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

func role(name string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t, _ := identity.TokenFrom(r.Context()); !t.HasRole(name) {
				writeError(w, &heatError{code: 403, typ: "Forbidden", msg: "this needs the " + name + " role"})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func (a *API) log() logrus.FieldLogger {
	if a.Log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		return l
	}
	return a.Log
}

// heatError is an answer in Heat's error body.
type heatError struct {
	code int
	typ  string
	msg  string
}

func (e *heatError) Error() string { return e.msg }

func errNotFound(msg string) *heatError {
	return &heatError{code: 404, typ: "EntityNotFound", msg: msg}
}

func badRequest(format string, args ...any) *heatError {
	return &heatError{code: 400, typ: "HTTPBadRequest", msg: fmt.Sprintf(format, args...)}
}

func stackNotFound(ref string) *heatError {
	return &heatError{code: 404, typ: "StackNotFound", msg: fmt.Sprintf("The Stack (%s) could not be found.", ref)}
}

// webob's titles and explanations, which Heat's fault body carries.
var titles = map[int][2]string{
	400: {"Bad Request", "The server could not comply with the request since it is either malformed or otherwise incorrect."},
	401: {"Unauthorized", "This server could not verify that you are authorized to access the document you requested."},
	403: {"Forbidden", "Access was denied to this resource."},
	404: {"Not Found", "The resource could not be found."},
	405: {"Method Not Allowed", "The server could not comply with the request since it is either malformed or otherwise incorrect."},
	409: {"Conflict", "There was a conflict when trying to complete your request."},
	413: {"Request Entity Too Large", "The server could not comply with the request since it is either malformed or otherwise incorrect."},
	500: {"Internal Server Error", "The server has either erred or is incapable of performing the requested operation."},
	503: {"Service Unavailable", "The server is currently unavailable. Please try again at a later time."},
}

func writeError(w http.ResponseWriter, e *heatError) {
	t := titles[e.code]
	osapi.WriteJSON(w, e.code, map[string]any{
		"explanation": t[1], "code": e.code, "title": t[0],
		"error": map[string]any{"message": e.msg, "type": e.typ, "traceback": nil},
	})
}

// fail answers err in Heat's shape: the engine's errors by kind with the
// engine's words (about the caller's own input, hidden values masked by
// the caller of fail), anything else a 500 telling only the request ID.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	a.failMasked(w, r, err, nil)
}

func (a *API) failMasked(w http.ResponseWriter, r *http.Request, err error, m *templatesapi.Masker) {
	var he *heatError
	if errors.As(err, &he) {
		writeError(w, he)
		return
	}
	msg := err.Error()
	if m != nil {
		msg = m.String(msg)
	}
	switch {
	case errors.Is(err, templates.ErrInvalid), errors.Is(err, templates.ErrSyntax), errors.Is(err, deploy.ErrInvalid):
		writeError(w, &heatError{code: 400, typ: "StackValidationFailed", msg: msg})
	case errors.Is(err, deploy.ErrQuota):
		writeError(w, &heatError{code: 403, typ: "Forbidden", msg: msg})
	case errors.Is(err, deploy.ErrPlacement):
		writeError(w, &heatError{code: 409, typ: "StackValidationFailed", msg: msg})
	case errors.Is(err, deploy.ErrBusy), errors.Is(err, deploy.ErrState):
		writeError(w, &heatError{code: 409, typ: "ActionInProgress", msg: msg})
	case errors.Is(err, deploy.ErrNoResource):
		writeError(w, errNotFound(msg))
	default:
		code := http.StatusInternalServerError
		writeError(w, &heatError{code: code, typ: "HTTPInternalServerError", msg: osapi.Tell(r, a.log(), code, err)})
	}
}

// maxBody bounds a request: a template and its files, JSON-quoted.
const maxBody = 4 * templates.MaxSourceBytes

func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return badRequest("reading the body: %v", err)
	}
	if len(b) > maxBody {
		return &heatError{code: 413, typ: "RequestLimitExceeded", msg: fmt.Sprintf("Request limit exceeded: the body is larger than %d bytes", maxBody)}
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest("The request body is not the expected JSON: %v", err)
	}
	return nil
}

// base is the API's root for the request's project, for links.
func base(r *http.Request) string {
	return identity.BaseURL(r) + "/orchestration/v1/" + chi.URLParam(r, "project")
}

func stackPath(d *deploy.Deployment) string { return "/stacks/" + d.Name + "/" + d.ID }

func link(href, rel string) map[string]any { return map[string]any{"href": href, "rel": rel} }

func project(r *http.Request) string {
	t, _ := identity.TokenFrom(r.Context())
	return t.ProjectID
}
