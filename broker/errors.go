package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Errors of the broker itself.
var (
	ErrBadRequest = errors.New("broker: bad request")
	ErrTooLarge   = errors.New("broker: request body too large")
)

// errorBody is the error shape of the /v1 API: Keystone's
// {"error": {"code", "title", "message"}} plus every bad field and the
// request ID to quote in a bug report.
type errorBody struct {
	Error struct {
		Code      int                    `json:"code"`
		Title     string                 `json:"title"`
		Message   string                 `json:"message"`
		Fields    []*registry.FieldError `json:"fields,omitempty"`
		RequestID string                 `json:"request_id,omitempty"`
	} `json:"error"`
}

// statusOf maps sentinel errors to HTTP statuses at the boundary.
func statusOf(err error) int {
	switch {
	case errors.Is(err, peers.ErrUnauthorized), errors.Is(err, identity.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, identity.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, registry.ErrInvalid), errors.Is(err, ErrBadRequest), errors.Is(err, peers.ErrInvalid),
		errors.Is(err, registry.ErrInvalidKey):
		return http.StatusBadRequest
	case errors.Is(err, registry.ErrValueTooLarge), errors.Is(err, ErrTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, registry.ErrNotFound), errors.Is(err, peers.ErrNotFound), errors.Is(err, identity.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, registry.ErrConflict), errors.Is(err, registry.ErrDuplicateName), errors.Is(err, peers.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, peers.ErrCapacity):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, peers.ErrNotSupported):
		return http.StatusNotImplemented
	case errors.Is(err, registry.ErrUnavailable), errors.Is(err, peers.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeError answers with err's status and body. Internal errors are logged
// with their cause and answered without it.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	var body errorBody
	body.Error.Code = code
	body.Error.Title = http.StatusText(code)
	body.Error.Message = err.Error()
	body.Error.Fields = registry.FieldErrors(err)
	body.Error.RequestID = middleware.GetReqID(r.Context())
	if code == http.StatusInternalServerError {
		logFrom(r.Context(), s.log).WithError(err).Error("internal error")
		body.Error.Message = "internal error; see the broker log for request " + body.Error.RequestID
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="`+s.publicURL(r)+`/v3"`)
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
