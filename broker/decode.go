package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// maxBody bounds request bodies; clouds.yaml files and peer records are small.
const maxBody = 1 << 20

// decodeJSON reads one JSON object into v, refusing unknown fields, trailing
// data and oversize bodies, with errors that name the field.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: unexpected data after the JSON object", ErrBadRequest)
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	var tooBig *http.MaxBytesError
	var fe *registry.FieldError
	switch {
	case errors.As(err, &fe): // from a type's own UnmarshalJSON, already precise
		return fe
	case errors.As(err, &syn):
		return fmt.Errorf("%w: malformed JSON at byte %d: %v", ErrBadRequest, syn.Offset, err)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return &registry.FieldError{Field: field, Reason: fmt.Sprintf("must be %s, not %s", typ.Type, typ.Value)}
	case errors.As(err, &tooBig):
		return fmt.Errorf("%w: larger than %d bytes", ErrTooLarge, tooBig.Limit)
	case errors.Is(err, io.EOF):
		return fmt.Errorf("%w: empty body; expected a JSON object", ErrBadRequest)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &registry.FieldError{Field: field, Reason: "unknown field"}
	}
	return fmt.Errorf("%w: %v", ErrBadRequest, err)
}
