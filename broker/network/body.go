package network

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"

	"github.com/google/uuid"
)

// body is one resource of a request body ({"network": {...}}), attribute
// by attribute, so each can be checked as Neutron checks it: wrong types
// and unknown attributes are 400s naming the attribute.
type body map[string]json.RawMessage

// maxBody caps a request body, as Neutron's sizelimit middleware does:
// resource bodies are small, and the body is read whole into memory.
const maxBody = 1 << 20

// decodeBody reads {"<resource>": {...}}: one JSON object of at most
// maxBody bytes (413 past it), nothing after it.
func decodeBody(w http.ResponseWriter, r *http.Request, resource string) (body, error) {
	var outer map[string]json.RawMessage
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	err := dec.Decode(&outer)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON object")
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, &Error{Status: http.StatusRequestEntityTooLarge, Type: "HTTPRequestEntityTooLarge", Message: fmt.Sprintf("Request is too large: the limit is %d bytes.", maxBody), Err: ErrInvalid}
	}
	if err != nil {
		return nil, &Error{Status: 400, Type: "HTTPBadRequest", Message: "Malformed request body: " + err.Error(), Err: ErrInvalid}
	}
	raw, ok := outer[resource]
	if !ok {
		return nil, &Error{Status: 400, Type: "HTTPBadRequest", Message: fmt.Sprintf("Resource body required: expected {\"%s\": {...}}", resource), Err: ErrInvalid}
	}
	var b body
	if err := json.Unmarshal(raw, &b); err != nil || b == nil {
		return nil, &Error{Status: 400, Type: "HTTPBadRequest", Message: fmt.Sprintf("Invalid format for %s: an object is expected", resource), Err: ErrInvalid}
	}
	return b, nil
}

func (b body) has(key string) bool { _, ok := b[key]; return ok }

func (b body) null(key string) bool {
	return b.has(key) && bytes.Equal(bytes.TrimSpace(b[key]), []byte("null"))
}

// maxString is Neutron's limit on its string attributes (names,
// descriptions; IDs and addresses are shorter anyway).
const maxString = 255

func (b body) str(key string, errs *[]error) string {
	var s string
	if b.has(key) && !b.null(key) {
		if err := json.Unmarshal(b[key], &s); err != nil {
			*errs = append(*errs, badInput(key, fmt.Sprintf("'%s' is not a valid string", b[key])))
		} else if len(s) > maxString {
			*errs = append(*errs, badInput(key, fmt.Sprintf("'%.20s...' exceeds maximum length of %d", s, maxString)))
		}
	}
	return s
}

// uuid reads an ID attribute, which Neutron validates as a UUID before
// looking it up (400, not 404, for one that cannot be an ID). Absent or
// null is "".
func (b body) uuid(key string, errs *[]error) string {
	s := b.str(key, errs)
	if s != "" && !isUUID(s) {
		*errs = append(*errs, badInput(key, fmt.Sprintf("'%s' is not a valid UUID", s)))
	}
	return s
}

func isUUID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

func (b body) strPtr(key string, errs *[]error) *string {
	if !b.has(key) {
		return nil
	}
	s := b.str(key, errs)
	return &s
}

func (b body) boolean(key string, errs *[]error) *bool {
	if !b.has(key) || b.null(key) {
		return nil
	}
	var v bool
	if err := json.Unmarshal(b[key], &v); err != nil {
		// Neutron also takes "true"/"false" strings.
		var s string
		if json.Unmarshal(b[key], &s) == nil && (strings.EqualFold(s, "true") || strings.EqualFold(s, "false")) {
			v = strings.EqualFold(s, "true")
			return &v
		}
		*errs = append(*errs, badInput(key, fmt.Sprintf("'%s' cannot be converted to boolean", b[key])))
		return nil
	}
	return &v
}

func (b body) integer(key string, errs *[]error) int {
	var n int
	if b.has(key) && !b.null(key) {
		if err := json.Unmarshal(b[key], &n); err != nil {
			*errs = append(*errs, badInput(key, fmt.Sprintf("'%s' is not an integer", b[key])))
		}
	}
	return n
}

// nonNegative is integer for attributes Neutron validates as
// type:non_negative (mtu).
func (b body) nonNegative(key string, errs *[]error) int {
	n := b.integer(key, errs)
	if n < 0 {
		*errs = append(*errs, badInput(key, fmt.Sprintf("'%d' should be non-negative", n)))
	}
	return n
}

func (b body) strs(key string, errs *[]error) []string {
	var v []string
	if b.has(key) && !b.null(key) {
		if err := json.Unmarshal(b[key], &v); err != nil {
			*errs = append(*errs, badInput(key, fmt.Sprintf("'%s' is not a list of strings", b[key])))
		}
	}
	return v
}

// uuids is strs for a list of IDs (type:uuid_list).
func (b body) uuids(key string, errs *[]error) []string {
	v := b.strs(key, errs)
	for _, s := range v {
		if !isUUID(s) {
			*errs = append(*errs, badInput(key, fmt.Sprintf("'%s' is not a valid UUID", s)))
		}
	}
	return v
}

// into decodes an attribute of structured type.
func (b body) into(key string, v any, errs *[]error) {
	if b.has(key) && !b.null(key) {
		if err := json.Unmarshal(b[key], v); err != nil {
			*errs = append(*errs, badInput(key, fmt.Sprintf("'%s' is not valid: %v", b[key], err)))
		}
	}
}

// tolerate accepts an attribute this cloud does not implement only with a
// value that asks for nothing (false, null, an empty list...), which is
// what clients send by default; any other value is refused, never ignored.
func (b body) tolerate(errs *[]error, key string, harmless ...string) {
	if !b.has(key) {
		return
	}
	got := strings.Join(strings.Fields(string(b[key])), "")
	if slices.Contains(harmless, got) {
		return
	}
	*errs = append(*errs, invalidInput("%s %s is not supported by this cloud", key, got))
}

// unknown reports attributes outside allowed as Neutron does.
func (b body) unknown(errs *[]error, allowed ...string) {
	var extra []string
	for k := range b {
		if !slices.Contains(allowed, k) {
			extra = append(extra, k)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		*errs = append(*errs, &Error{Status: 400, Type: "HTTPBadRequest", Message: fmt.Sprintf("Unrecognized attribute(s) '%s'", strings.Join(extra, ", ")), Err: ErrInvalid})
	}
}

// ownProject refuses project_id/tenant_id naming another project: the
// broker creates resources in the token's project only.
func (b body) ownProject(project string, errs *[]error) {
	for _, key := range []string{"project_id", "tenant_id"} {
		if p := b.str(key, errs); p != "" && p != project {
			*errs = append(*errs, invalidInput("%s %s: resources are created in the token's project only", key, p))
		}
	}
}
