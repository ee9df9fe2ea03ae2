package swift

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/object"
)

// COPY is Swift's copy method; chi routes only registered methods.
func init() { chi.RegisterMethod("COPY") }

// AccountPrefix starts every account's path segment: AUTH_<project ID>,
// the form the catalog's object-store URL and Keystone-backed Swift use.
const AccountPrefix = "AUTH_"

// Tokens validates X-Auth-Token (identity.Tokens).
type Tokens interface {
	Validate(ctx context.Context, token string) (identity.Token, error)
}

// API serves Swift's v1 API over the object service. Mount Routes at
// /swift; the storage URL of a project is /swift/v1/AUTH_<project ID>.
type API struct {
	Objects *object.Service
	Tokens  Tokens
	Log     logrus.FieldLogger
}

// Routes mounts /info and /v1/... on r.
func (a *API) Routes(r chi.Router) {
	r.Get("/info", a.Info)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) { writeStatus(w, r, http.StatusNotFound) })
	r.Handle("/v1/*", http.HandlerFunc(a.serve))
}

// target is what a request's path names.
type target struct {
	account, container, object string
	level                      int // 1 account, 2 container, 3 object
}

// parsePath splits the path after /v1/ as Swift does: account, then
// container, then the object name (which may hold '/').
func parsePath(path string) (target, bool) {
	i := strings.Index(path, "/v1/")
	if i < 0 {
		return target{}, false
	}
	parts := strings.SplitN(path[i+len("/v1/"):], "/", 3)
	t := target{account: parts[0], level: 1}
	if !strings.HasPrefix(t.account, AccountPrefix) || len(t.account) == len(AccountPrefix) {
		return target{}, false
	}
	t.account = t.account[len(AccountPrefix):]
	if len(parts) > 1 && parts[1] != "" {
		t.container, t.level = parts[1], 2
	}
	if len(parts) > 2 && parts[2] != "" {
		if t.level != 2 {
			return target{}, false
		}
		t.object, t.level = parts[2], 3
	}
	return t, true
}

func (a *API) serve(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Trans-Id", middleware.GetReqID(r.Context()))
	t, ok := parsePath(r.URL.Path)
	if !ok {
		writeStatus(w, r, http.StatusNotFound)
		return
	}
	// Without a valid token the caller is anonymous: only a container's
	// referrer ACL lets it read, else 401.
	c := object.Caller{Anonymous: true, Referrer: r.Referer()}
	if _, signed := r.URL.Query()["temp_url_sig"]; signed && identity.AuthToken(r) == "" {
		tc, ok := a.tempURL(r, t)
		if !ok || !slices.Contains(tempURLMethods, r.Method) {
			writeBody(w, r, http.StatusUnauthorized, "text/plain; charset=UTF-8", "Temp URL invalid")
			return
		}
		c, w = tc, &tempURLWriter{ResponseWriter: w, r: r, object: t.object}
	} else if token := identity.AuthToken(r); token != "" {
		tok, err := a.Tokens.Validate(r.Context(), token)
		if err == nil {
			// A token's access rules refuse it as keystonemiddleware
			// does: invalid, so anonymous here too.
			err = identity.CheckAccessRules(tok, r)
		}
		switch {
		case errors.Is(err, identity.ErrUnauthorized):
			// Invalid, expired or revoked: anonymous, as keystoneauth
			// treats an invalid identity, so a public container still
			// reads (verified against a real Swift); anything else is
			// refused with 401 as for no token.
		case err != nil: // the token could not be checked (the Store away)
			unauthorized(w, r)
			return
		case !tok.Scoped():
			writeStatus(w, r, http.StatusForbidden)
			return
		default:
			c = object.CallerOf(tok)
		}
	}
	var h func(http.ResponseWriter, *http.Request, object.Caller, target)
	var allowed string
	switch t.level {
	case 1:
		allowed = "GET, HEAD, POST"
		h = map[string]func(http.ResponseWriter, *http.Request, object.Caller, target){
			http.MethodGet: a.accountGet, http.MethodHead: a.accountGet, http.MethodPost: a.accountPost,
		}[r.Method]
		if _, bulk := r.URL.Query()["bulk-delete"]; bulk && (r.Method == http.MethodPost || r.Method == http.MethodDelete) {
			h = a.bulkDelete
		}
	case 2:
		allowed = "DELETE, GET, HEAD, POST, PUT"
		h = map[string]func(http.ResponseWriter, *http.Request, object.Caller, target){
			http.MethodGet: a.containerGet, http.MethodHead: a.containerGet, http.MethodPost: a.containerPost,
			http.MethodPut: a.containerPut, http.MethodDelete: a.containerDelete,
		}[r.Method]
	default:
		allowed = "COPY, DELETE, GET, HEAD, POST, PUT"
		h = map[string]func(http.ResponseWriter, *http.Request, object.Caller, target){
			http.MethodGet: a.objectGet, http.MethodHead: a.objectGet, http.MethodPost: a.objectPost,
			http.MethodPut: a.objectPut, http.MethodDelete: a.objectDelete, "COPY": a.objectCopy,
		}[r.Method]
	}
	if h == nil {
		w.Header().Set("Allow", allowed)
		writeStatus(w, r, http.StatusMethodNotAllowed)
		return
	}
	h(w, r, c, t)
}

// unauthorized answers 401 with where to get a token.
func unauthorized(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Www-Authenticate", `Keystone uri="`+identity.BaseURL(r)+`/v3"`)
	writeStatus(w, r, http.StatusUnauthorized)
}

// statusBodies are Swift's own error bodies (swob's RESPONSE_REASONS).
var statusBodies = map[int]string{
	http.StatusBadRequest:                   "The server could not comply with the request since it is either malformed or otherwise incorrect.",
	http.StatusUnauthorized:                 "This server could not verify that you are authorized to access the document you requested.",
	http.StatusForbidden:                    "Access was denied to this resource.",
	http.StatusNotFound:                     "The resource could not be found.",
	http.StatusMethodNotAllowed:             "The method is not allowed for this resource.",
	http.StatusConflict:                     "There was a conflict when trying to complete your request.",
	http.StatusLengthRequired:               "Content-Length header required.",
	http.StatusPreconditionFailed:           "A precondition for this request was not met.",
	http.StatusRequestEntityTooLarge:        "The body of your request was too large for this server.",
	http.StatusRequestedRangeNotSatisfiable: "The Range requested is not available.",
	http.StatusUnprocessableEntity:          "Unable to process the contained instructions",
	499:                                     "The client was disconnected during request.",
	http.StatusInternalServerError:          "The server has either erred or is incapable of performing the requested operation.",
	http.StatusServiceUnavailable:           "The server is currently unavailable. Please try again at a later time.",
	http.StatusInsufficientStorage:          "There was not enough space to save the resource.",
	http.StatusAccepted:                     "The request is accepted for processing.",
}

func statusText(code int) string {
	if code == 499 {
		return "Client Disconnect"
	}
	return http.StatusText(code)
}

// writeStatus answers code with Swift's HTML body for it.
func writeStatus(w http.ResponseWriter, r *http.Request, code int) {
	writeBody(w, r, code, "text/html; charset=UTF-8", "<html><h1>"+statusText(code)+"</h1><p>"+statusBodies[code]+"</p></html>")
}

// writeText answers code with a plain-text message of the broker's own
// words, as Swift answers refusals it explains.
func writeText(w http.ResponseWriter, r *http.Request, code int, msg string) {
	writeBody(w, r, code, "text/plain; charset=UTF-8", msg)
}

func writeBody(w http.ResponseWriter, r *http.Request, code int, ctype, body string) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
}

// statuses are the service's sentinels' statuses, first match wins.
var statuses = []struct {
	err  error
	code int
}{
	{object.ErrPrecondition, http.StatusPreconditionFailed},
	{object.ErrForbidden, http.StatusForbidden},
	{object.ErrNotFound, http.StatusNotFound},
	{object.ErrETagMismatch, http.StatusUnprocessableEntity},
	{object.ErrTooLarge, http.StatusRequestEntityTooLarge},
	{object.ErrNotEmpty, http.StatusConflict},
	{object.ErrRange, http.StatusRequestedRangeNotSatisfiable},
	{object.ErrIncomplete, 499},
	{object.ErrInvalid, http.StatusBadRequest},
	{object.ErrNoCapacity, http.StatusInsufficientStorage},
	{object.ErrUnavailable, http.StatusServiceUnavailable},
	{context.DeadlineExceeded, http.StatusServiceUnavailable},
}

// fail answers err: the service's sentinels as Swift's statuses, its
// authored messages (never a peer's words) for refusals a user can fix;
// everything else is logged under the request ID.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var authored *object.Error
	msg := ""
	if errors.As(err, &authored) {
		msg = authored.Message
	}
	if errors.Is(err, object.ErrUnauthorized) {
		unauthorized(w, r)
		return
	}
	if errors.Is(err, object.ErrOverQuota) {
		writeText(w, r, http.StatusRequestEntityTooLarge, "Upload exceeds quota.")
		return
	}
	if errors.Is(err, object.ErrPrecondition) && msg != "" {
		writeText(w, r, http.StatusPreconditionFailed, msg)
		return
	}
	if errors.Is(err, object.ErrInvalid) && msg != "" {
		writeText(w, r, http.StatusBadRequest, msg)
		return
	}
	code := http.StatusInternalServerError
	for _, s := range statuses {
		if errors.Is(err, s.err) {
			code = s.code
			break
		}
	}
	if code >= 500 || code == 499 || (code == http.StatusBadRequest && msg == "") {
		a.Log.WithError(err).WithFields(logrus.Fields{"request_id": middleware.GetReqID(r.Context()), "path": r.URL.Path,
			"method": r.Method}).Warn("swift request failed")
	}
	writeStatus(w, r, code)
}

// timestamp is Swift's X-Timestamp form.
func timestamp(t time.Time) string {
	if t.IsZero() {
		t = time.Now()
	}
	return fmt.Sprintf("%d.%05d", t.Unix(), t.Nanosecond()/10000)
}

// listTime is the last_modified form of Swift's listings.
func listTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000") }

// metaChange reads a request's metadata headers of one kind ("Container",
// "Account", "Object"): X-<Kind>-Meta-* set (an empty value removes),
// X-Remove-<Kind>-Meta-* remove.
func metaChange(h http.Header, kind string) object.MetaChange {
	set, remove := map[string]string{}, []string(nil)
	prefix, removePrefix := "X-"+kind+"-Meta-", "X-Remove-"+kind+"-Meta-"
	for k := range h {
		switch {
		case strings.HasPrefix(k, prefix) && len(k) > len(prefix):
			set[strings.ToLower(k[len(prefix):])] = h.Get(k)
		case strings.HasPrefix(k, removePrefix) && len(k) > len(removePrefix):
			remove = append(remove, strings.ToLower(k[len(removePrefix):]))
		}
	}
	return object.MetaChange{Set: set, Remove: remove}
}

// setMeta writes metadata as X-<Kind>-Meta-* headers.
func setMeta(h http.Header, kind string, meta map[string]string) {
	for k, v := range meta {
		h.Set("X-"+kind+"-Meta-"+k, v)
	}
}
