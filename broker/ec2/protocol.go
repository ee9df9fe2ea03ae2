package ec2

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5/middleware"

	"github.com/cloudmux/cloudmux/peers"
)

// APIVersion is the EC2 API version whose namespace the answers use.
const APIVersion = "2016-11-15"

// Namespace is the XML namespace of EC2 answers.
const Namespace = "http://ec2.amazonaws.com/doc/" + APIVersion + "/"

// Error is an EC2 error: the HTTP status and the code clients switch on,
// and a message written for the tenant. What went wrong below (a peer's
// answer, a service's wording around it, which can carry peer addresses
// and raw IDs) is the cause: logged with the request ID, never sent.
type Error struct {
	Status  int
	Code    string
	Message string
	cause   error
}

// ownText is err's text when a broker service wrote it for the tenant (it
// wraps sentinel and nothing a peer answered), less the sentinel's own
// words; "" when it may quote a peer.
func ownText(err, sentinel error) string {
	for _, p := range []error{peers.ErrNotFound, peers.ErrConflict, peers.ErrCapacity, peers.ErrUnavailable,
		peers.ErrInvalid, peers.ErrNotSupported, peers.ErrUnauthorized} {
		if errors.Is(err, p) {
			return ""
		}
	}
	return strings.TrimSuffix(err.Error(), ": "+sentinel.Error())
}

// hiding returns e with err as its cause, for the log.
func (e *Error) hiding(err error) *Error {
	e.cause = err
	return e
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// The error codes EC2 clients know, with EC2's statuses.
func authFailure(format string, args ...any) *Error {
	return errorf(http.StatusUnauthorized, "AuthFailure", format, args...)
}

func invalidParameter(format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, "InvalidParameterValue", format, args...)
}

func missingParameter(name string) *Error {
	return errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter %s", name)
}

func notFound(code, format string, args ...any) *Error {
	return errorf(http.StatusBadRequest, code, format, args...)
}

func unauthorizedOperation(format string, args ...any) *Error {
	return errorf(http.StatusForbidden, "UnauthorizedOperation", format, args...)
}

// errorResponse is EC2's error body.
type errorResponse struct {
	XMLName xml.Name `xml:"Response"`
	Errors  []struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Errors>Error"`
	RequestID string `xml:"RequestID"`
}

func writeError(w http.ResponseWriter, r *http.Request, e *Error) {
	var body errorResponse
	body.Errors = append(body.Errors, struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}{e.Code, e.Message})
	body.RequestID = middleware.GetReqID(r.Context())
	writeXML(w, e.Status, body)
}

func writeXML(w http.ResponseWriter, status int, v any) {
	raw, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, "encoding the answer failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(raw)
}

// response wraps an action's answer: <{Action}Response xmlns=...> with the
// requestId first, then the fields of the body.
type response struct {
	XMLName   xml.Name
	Xmlns     string `xml:"xmlns,attr"`
	RequestID string `xml:"requestId"`
	Inner     string `xml:",innerxml"`
}

func writeResponse(w http.ResponseWriter, r *http.Request, action string, body any) {
	// The body's fields go straight under the response element: encode it
	// under a throw-away element and keep what is inside.
	var buf bytes.Buffer
	enc := xml.NewEncoder(&buf)
	if err := enc.EncodeElement(body, xml.StartElement{Name: xml.Name{Local: "x"}}); err != nil || enc.Flush() != nil {
		http.Error(w, "encoding the answer failed", http.StatusInternalServerError)
		return
	}
	inner := strings.TrimSuffix(strings.TrimPrefix(buf.String(), "<x>"), "</x>")
	writeXML(w, http.StatusOK, response{XMLName: xml.Name{Local: action + "Response"}, Xmlns: Namespace,
		RequestID: middleware.GetReqID(r.Context()), Inner: inner})
}

// items is an EC2 list: <wrapper><item>...</item>...</wrapper>; the wrapper
// is written even when empty, so clients see an empty list, not none.
type items[T any] struct {
	Items []T `xml:"item"`
}

func list[T any](v []T) items[T] { return items[T]{Items: v} }

// returnTrue is the answer of actions that answer nothing but success.
type returnTrue struct {
	Return bool `xml:"return"`
}

// params reads EC2 Query parameters: flat names, lists as Name.1, Name.2,
// structures as Name.1.Member.
type params url.Values

func (p params) get(name string) string { return url.Values(p).Get(name) }

func (p params) has(name string) bool { return url.Values(p).Has(name) }

func (p params) require(name string) (string, *Error) {
	v := p.get(name)
	if v == "" {
		return "", missingParameter(name)
	}
	return v, nil
}

// indexes returns the N of every parameter prefix.N[.rest], ascending.
func (p params) indexes(prefix string) []int {
	seen := map[int]bool{}
	for k := range p {
		rest, ok := strings.CutPrefix(k, prefix+".")
		if !ok {
			continue
		}
		num, _, _ := strings.Cut(rest, ".")
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			seen[n] = true
		}
	}
	out := make([]int, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Ints(out)
	return out
}

// list returns the values of prefix.1, prefix.2, ...
func (p params) list(prefix string) []string {
	var out []string
	for _, n := range p.indexes(prefix) {
		if v := p.get(fmt.Sprintf("%s.%d", prefix, n)); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// Tag is a resource tag.
type Tag struct {
	Key   string `xml:"key" json:"key"`
	Value string `xml:"value" json:"value"`
}

// tags reads prefix.N.Key / prefix.N.Value.
func (p params) tags(prefix string) ([]Tag, *Error) {
	var out []Tag
	for _, n := range p.indexes(prefix) {
		t := Tag{Key: p.get(fmt.Sprintf("%s.%d.Key", prefix, n)), Value: p.get(fmt.Sprintf("%s.%d.Value", prefix, n))}
		if t.Key == "" || len(t.Key) > 128 || len(t.Value) > 256 {
			return nil, invalidParameter("tag %d: a key of 1-128 characters and a value of at most 256 are required", n)
		}
		if strings.HasPrefix(strings.ToLower(t.Key), "aws:") {
			return nil, invalidParameter("tag keys starting with aws: are reserved")
		}
		out = append(out, t)
	}
	return out, nil
}

// filter is one Filter.N: a name and the values any of which matches.
type filter struct {
	Name   string
	Values []string
}

func (p params) filters() []filter {
	var out []filter
	for _, n := range p.indexes("Filter") {
		out = append(out, filter{Name: p.get(fmt.Sprintf("Filter.%d.Name", n)), Values: p.list(fmt.Sprintf("Filter.%d.Value", n))})
	}
	return out
}

// tagSpecs reads TagSpecification.N.ResourceType and .Tag.M.
func (p params) tagSpecs() (map[string][]Tag, *Error) {
	out := map[string][]Tag{}
	for _, n := range p.indexes("TagSpecification") {
		typ := p.get(fmt.Sprintf("TagSpecification.%d.ResourceType", n))
		ts, err := p.tags(fmt.Sprintf("TagSpecification.%d.Tag", n))
		if err != nil {
			return nil, err
		}
		out[typ] = append(out[typ], ts...)
	}
	return out, nil
}

// matchValue applies EC2's filter wildcards (* any run, ? one character).
func matchValue(pattern, s string) bool {
	if !strings.ContainsAny(pattern, "*?") {
		return pattern == s
	}
	// Iterative wildcard match with backtracking on the last star.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(pattern) && (pattern[pi] == '?' || pattern[pi] == s[si]):
			pi++
			si++
		case pi < len(pattern) && pattern[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(pattern) && pattern[pi] == '*' {
		pi++
	}
	return pi == len(pattern)
}

// matchAny reports whether any of values matches any of patterns.
func matchAny(patterns []string, values ...string) bool {
	for _, p := range patterns {
		for _, v := range values {
			if matchValue(p, v) {
				return true
			}
		}
	}
	return false
}
