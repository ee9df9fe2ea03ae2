package policyapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// Errors of the API itself.
var (
	errBadRequest = errors.New("bad request")
	errTooLarge   = errors.New("request body too large")
	errForbidden  = errors.New("forbidden")
	errNotFound   = errors.New("not found")
)

// errorBody is the /v1 error shape (broker/errors.go), with the positions
// of a policy that does not compile.
type errorBody struct {
	Error struct {
		Code      int               `json:"code"`
		Title     string            `json:"title"`
		Message   string            `json:"message"`
		Positions []policy.Position `json:"positions,omitempty"`
		RequestID string            `json:"request_id,omitempty"`
	} `json:"error"`
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, policy.ErrInvalid), errors.Is(err, policy.ErrCompile),
		errors.Is(err, policy.ErrTestsFailed), errors.Is(err, registry.ErrInvalidKey):
		return http.StatusBadRequest
	case errors.Is(err, errForbidden), errors.Is(err, identity.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, errNotFound), errors.Is(err, policy.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, policy.ErrNoRollback), errors.Is(err, registry.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, errTooLarge), errors.Is(err, registry.ErrValueTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, registry.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// fail answers err in the /v1 shape. A failing policy is the admin's to
// read (500, with the policy's error); other internal errors are logged
// and not echoed.
func fail(w http.ResponseWriter, r *http.Request, log logrus.FieldLogger, err error) {
	code := statusOf(err)
	var body errorBody
	body.Error.Code, body.Error.Title, body.Error.Message = code, http.StatusText(code), err.Error()
	body.Error.Positions = policy.Positions(err)
	body.Error.RequestID = middleware.GetReqID(r.Context())
	if code >= 500 {
		t, _ := identity.TokenFrom(r.Context())
		faults.Log(log, body.Error.RequestID, code, err, logrus.Fields{"project": t.ProjectID, "user": t.UserName,
			"method": r.Method, "path": r.URL.Path})
		switch {
		case code == http.StatusInternalServerError && errors.Is(err, policy.ErrEvaluation):
			// The admin's own policy failed: theirs to read.
		case code == http.StatusInternalServerError:
			body.Error.Message = faults.Internal(body.Error.RequestID)
		default:
			body.Error.Message, _ = faults.Message(err, code) // the Store out of reach: no keys, no addresses
		}
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
