package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/registry"
)

const maxBody = 64 << 10

// keystoneError is Keystone's error body, plus the bad fields and the
// request ID cloudmux adds.
type keystoneError struct {
	Error struct {
		Code      int                    `json:"code"`
		Title     string                 `json:"title"`
		Message   string                 `json:"message"`
		Fields    []*registry.FieldError `json:"fields,omitempty"`
		RequestID string                 `json:"request_id,omitempty"`
	} `json:"error"`
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrThrottled):
		return http.StatusTooManyRequests
	case errors.Is(err, ErrInvalid), errors.Is(err, registry.ErrInvalid), errors.Is(err, registry.ErrInvalidKey):
		return http.StatusBadRequest
	case errors.Is(err, registry.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// WriteError answers in Keystone's error shape with what faults.Message
// lets a tenant read: the broker's own words, or the status's generic
// text (the caller logs the rest: see fail).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	var body keystoneError
	body.Error.Code, body.Error.Title = code, http.StatusText(code)
	body.Error.RequestID = requestID(r)
	body.Error.Message, _ = faults.Message(err, code)
	body.Error.Fields = registry.FieldErrors(err)
	if code == http.StatusInternalServerError {
		body.Error.Message = faults.Internal(body.Error.RequestID)
	}
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Keystone uri="`+BaseURL(r)+`/v3"`)
	}
	writeJSON(w, code, body)
}

// fail is WriteError that also logs what a 5xx answer does not echo, under
// the request ID the answer names.
func (k *Keystone) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if _, ok := faults.Message(err, code); !ok || code >= 500 || faults.Foreign(err) {
		t, _ := TokenFrom(r.Context())
		faults.Log(k.Log, requestID(r), code, err, logrus.Fields{"project": t.ProjectID, "user": t.UserName,
			"method": r.Method, "path": r.URL.Path})
	}
	WriteError(w, r, err)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// decode reads one JSON object. Unknown fields are ignored, as Keystone
// does: clients send fields it has no use for (e.g. "options").
func decode(r *http.Request, v any) error {
	raw, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return err
	}
	if len(raw) > maxBody {
		return fmt.Errorf("%w: body larger than %d bytes", ErrInvalid, maxBody)
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return fmt.Errorf("%w: empty body; expected a JSON object", ErrInvalid)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%w: malformed JSON: %v", ErrInvalid, err)
	}
	return nil
}
