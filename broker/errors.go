package broker

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
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

// refusal is a /v1 answer in the broker's own words with its status; its
// cause is for the log.
type refusal struct {
	code  int
	msg   string
	cause error
}

func (e *refusal) Error() string       { return e.msg }
func (e *refusal) UserMessage() string { return e.msg }
func (e *refusal) Unwrap() error       { return e.cause }

// statusOf maps sentinel errors to HTTP statuses at the boundary.
func statusOf(err error) int {
	var rf *refusal
	switch {
	case errors.As(err, &rf):
		return rf.code
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

// writeError answers with err's status and body. What the caller reads is
// decided by faults.Message (the broker's own words, or the status's
// generic text, or for a 500 the request ID); whatever it does not say is
// logged under the request ID.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	var body errorBody
	body.Error.Code = code
	body.Error.Title = http.StatusText(code)
	body.Error.RequestID = middleware.GetReqID(r.Context())
	msg, ok := faults.Message(err, code)
	t, _ := identity.TokenFrom(r.Context())
	if !ok && code < 500 && t.CloudAdmin() {
		// The peers and index APIs are a cloud admin's tools: the admin
		// reads the cause ("peer \"eu\" changed since revision 3"),
		// without the sentinels' names.
		msg = faults.Detail(err)
	}
	body.Error.Message = msg
	body.Error.Fields = registry.FieldErrors(err)
	if !ok || code >= 500 || faults.Foreign(err) {
		faults.Log(s.log, body.Error.RequestID, code, err, logrus.Fields{"project": t.ProjectID, "user": t.UserName,
			"method": r.Method, "path": r.URL.Path})
	}
	if code == http.StatusInternalServerError {
		body.Error.Message = faults.Internal(body.Error.RequestID)
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
