package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Glance serves the Image API v2 at /image over a Service.
type Glance struct {
	Images *Service
	Auth   func(http.Handler) http.Handler // Keystone token validation
	Log    logrus.FieldLogger
}

// The Image API versions advertised: 2.0 to 2.7, with 2.7 current, as a
// Glance without multi-store does: members (2.1), import with
// glance-direct (2.6), os_hidden and multihash (2.7). 2.8 and later add
// multi-store, copy-image and the cache API, which are not offered.
var apiVersions = []string{"2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"}

// Pagination defaults, as Glance's limit_param_default and api_limit_max.
const (
	defaultLimit = 25
	maxLimit     = 1000
)

// Routes mounts the API on r (at /image).
func (g *Glance) Routes(r chi.Router) {
	notFound := func(w http.ResponseWriter, r *http.Request) {
		fault(w, r, http.StatusNotFound, "The resource could not be found.")
	}
	r.NotFound(notFound)
	r.Get("/", g.versions(http.StatusMultipleChoices))
	r.Get("/versions", g.versions(http.StatusOK))
	r.Route("/v2", func(r chi.Router) {
		r.NotFound(notFound)
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			fault(w, r, http.StatusMethodNotAllowed, "The method "+r.Method+" is not allowed for this resource.")
		})
		r.Get("/", g.versions(http.StatusOK))
		r.Group(func(r chi.Router) {
			r.Use(g.Auth, requireProject)
			member := requireRole(identity.RoleMember)
			r.Get("/schemas/image", g.schema(imageSchema))
			r.Get("/schemas/images", g.schema(imagesSchema))
			r.Get("/schemas/member", g.schema(memberSchema))
			r.Get("/schemas/members", g.schema(membersSchema))
			r.Get("/info/import", g.importInfo)
			r.Get("/images", g.list)
			r.With(member).Post("/images", g.create)
			r.Route("/images/{id}", func(r chi.Router) {
				r.Get("/", g.show)
				r.With(member).Patch("/", g.update)
				r.With(member).Delete("/", g.delete)
				r.With(member).Put("/file", g.upload)
				r.With(member).Put("/stage", g.stage)
				r.With(member).Post("/import", g.importImage)
				r.Get("/file", g.download)
				r.Head("/file", g.download)
				r.With(member).Put("/tags/{tag}", g.addTag)
				r.With(member).Delete("/tags/{tag}", g.removeTag)
				r.With(member).Post("/members", g.addMember)
				r.Get("/members", g.listMembers)
				r.Get("/members/{member}", g.showMember)
				r.With(member).Put("/members/{member}", g.updateMember)
				r.With(member).Delete("/members/{member}", g.deleteMember)
				r.Post("/actions/deactivate", g.action(g.Images.Deactivate))
				r.Post("/actions/reactivate", g.action(g.Images.Reactivate))
			})
		})
	})
}

func (g *Glance) versions(code int) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		href := identity.BaseURL(r) + "/image/v2/"
		var vs []map[string]any
		for i, v := range apiVersions {
			status := "SUPPORTED"
			if i == 0 {
				status = "CURRENT"
			}
			vs = append(vs, map[string]any{"id": "v" + v, "status": status, "links": []map[string]string{{"rel": "self", "href": href}}})
		}
		osapi.WriteJSON(w, code, map[string]any{"versions": vs})
	}
}

// fault answers with Glance's error body: webob's JSON rendering of an
// HTTP exception, {"message": ..., "code": "404 Not Found", "title":
// "Not Found"}; openstacksdk reads "message" from the root object. msg is
// the broker's own words; the request ID (also in X-Openstack-Request-Id)
// is what a tenant quotes to support.
func fault(w http.ResponseWriter, r *http.Request, code int, msg string) {
	osapi.WriteJSON(w, code, map[string]any{"message": msg, "code": fmt.Sprintf("%d %s", code, http.StatusText(code)),
		"title": http.StatusText(code), "request_id": middleware.GetReqID(r.Context())})
}

// requireProject refuses unscoped tokens: every image has an owner.
func requireProject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, _ := identity.TokenFrom(r.Context()); !t.Scoped() {
			fault(w, r, http.StatusForbidden, "a project-scoped token is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// requireRole refuses a token without role with Glance's error body:
// identity.RequireRole answers in Keystone's shape, which Glance clients
// do not read.
func requireRole(role string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if t, _ := identity.TokenFrom(r.Context()); !t.HasRole(role) {
				fault(w, r, http.StatusForbidden, "You are not authorized to complete this action: it needs the "+role+" role on the project.")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func caller(r *http.Request) Caller {
	t, _ := identity.TokenFrom(r.Context())
	return CallerOf(t)
}

// fail maps an error to Glance's status; osapi.Tell decides what the
// tenant reads and logs the rest.
func (g *Glance) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound), errors.Is(err, index.ErrNotFound), errors.Is(err, peers.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrForbidden):
		code = http.StatusForbidden
	case errors.Is(err, ErrInvalid), errors.Is(err, peers.ErrInvalid), errors.Is(err, registry.ErrInvalid):
		code = http.StatusBadRequest
	case errors.Is(err, ErrConflict), errors.Is(err, peers.ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, ErrNoPeer) && errors.Is(err, ErrUnavailable):
		code = http.StatusServiceUnavailable
	case errors.Is(err, ErrTooLarge), errors.Is(err, peers.ErrCapacity), errors.Is(err, ErrNoPeer):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrUnavailable), errors.Is(err, peers.ErrUnavailable), errors.Is(err, registry.ErrUnavailable):
		code = http.StatusServiceUnavailable
	case errors.Is(err, peers.ErrNotSupported):
		code = http.StatusNotImplemented
	}
	fault(w, r, code, osapi.Tell(r, g.Log, code, err))
}

func glanceTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }

// view renders an image as Glance does: core attributes and custom
// properties side by side at the top level, links relative to the API root.
func view(img Image) map[string]any {
	out := make(map[string]any, len(img.Properties)+24)
	for k, v := range img.Properties {
		out[k] = v
	}
	self := "/v2/images/" + img.ID
	maps.Copy(out, map[string]any{
		"id": img.ID, "name": nullable(img.Name), "status": img.Status, "visibility": img.Visibility,
		"protected": img.Protected, "os_hidden": img.Hidden, "owner": nullable(img.Project),
		"checksum": nullable(img.Checksum), "os_hash_algo": nullable(img.OSHashAlgo), "os_hash_value": nullable(img.OSHashValue),
		"size": nil, "virtual_size": nil, "min_ram": img.MinRAMMiB, "min_disk": img.MinDiskGiB,
		"disk_format": nullable(img.DiskFormat), "container_format": nullable(img.ContainerFormat),
		"created_at": glanceTime(img.CreatedAt), "updated_at": glanceTime(img.UpdatedAt),
		"tags": nonNil(img.Tags), "self": self, "file": self + "/file", "schema": "/v2/schemas/image",
	})
	if img.Checksum != "" || img.Size > 0 {
		out["size"] = img.Size
	}
	return out
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (g *Glance) show(w http.ResponseWriter, r *http.Request) {
	img, err := g.Images.Get(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		g.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, view(img))
}

func (g *Glance) delete(w http.ResponseWriter, r *http.Request) {
	if err := g.Images.Delete(r.Context(), caller(r), chi.URLParam(r, "id")); err != nil {
		g.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (g *Glance) action(fn func(ctx context.Context, c Caller, id string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := fn(r.Context(), caller(r), chi.URLParam(r, "id")); err != nil {
			g.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func tagParam(r *http.Request) string {
	tag := chi.URLParam(r, "tag")
	if t, err := url.PathUnescape(tag); err == nil {
		return t
	}
	return tag
}

func (g *Glance) addTag(w http.ResponseWriter, r *http.Request) {
	if err := g.Images.AddTag(r.Context(), caller(r), chi.URLParam(r, "id"), tagParam(r)); err != nil {
		g.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (g *Glance) removeTag(w http.ResponseWriter, r *http.Request) {
	if err := g.Images.RemoveTag(r.Context(), caller(r), chi.URLParam(r, "id"), tagParam(r)); err != nil {
		g.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// upload streams the request body to the image's peer as it arrives:
// nothing is buffered, and the announced length goes along so the peer
// can check it.
func (g *Glance) upload(w http.ResponseWriter, r *http.Request) {
	g.putData(w, r, g.Images.Upload)
}

// putData hands image data (an upload's or a stage's) to put as it
// arrives, refusing any type but application/octet-stream (or none).
func (g *Glance) putData(w http.ResponseWriter, r *http.Request, put func(ctx context.Context, c Caller, id string, data io.Reader, size int64) error) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/octet-stream" {
			fault(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Content-Type %q is not supported for image data; use application/octet-stream", ct))
			return
		}
	}
	if err := put(r.Context(), caller(r), chi.URLParam(r, "id"), r.Body, r.ContentLength); err != nil {
		g.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// download streams the image's bytes from its peer as they come, with the
// headers Glance sends (Content-MD5 is the image's checksum, which
// clients verify). An image without data is 204, as in Glance.
func (g *Glance) download(w http.ResponseWriter, r *http.Request) {
	img, rc, err := g.Images.Download(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		g.fail(w, r, err)
		return
	}
	if rc == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	defer rc.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Length", strconv.FormatInt(img.Size, 10))
	if img.Checksum != "" {
		h.Set("Content-MD5", img.Checksum)
	}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if n, err := io.Copy(w, rc); err != nil {
		// The status is out: all that is left is to cut the response
		// short, which the declared length makes visible to the client.
		g.Log.WithError(err).WithFields(logrus.Fields{"image": img.ID, "sent": n, "size": img.Size,
			"request_id": middleware.GetReqID(r.Context())}).Warn("image download interrupted")
	}
}

// readOnly are attributes no request may set; reserved ones are Glance's
// internals.
var (
	readOnly = []string{"status", "checksum", "os_hash_algo", "os_hash_value", "size", "virtual_size", "created_at",
		"updated_at", "direct_url", "self", "file", "schema", "stores"}
	reserved = []string{"location", "deleted", "deleted_at"}
)

// create registers an image: Glance's body is the image's attributes,
// custom properties alongside core ones.
func (g *Glance) create(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if !decodeJSON(w, r, &body, "a JSON object of image attributes") {
		return
	}
	if body == nil {
		fault(w, r, http.StatusBadRequest, "Body expected in request: a JSON object of image attributes")
		return
	}
	spec, err := createSpec(body)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	img, err := g.Images.Create(r.Context(), caller(r), spec)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	w.Header().Set("Location", identity.BaseURL(r)+"/image/v2/images/"+img.ID)
	w.Header().Set(importMethodsHeader, importMethods())
	osapi.WriteJSON(w, http.StatusCreated, view(img))
}

// maxBody caps a JSON request body: image metadata is small, and an
// unbounded body would be read whole into memory.
const maxBody = 1 << 20

// decodeJSON reads a JSON request body of at most maxBody bytes into v,
// answering 413 when it is larger and 400 naming what was expected when
// it is not one JSON value. It reports whether v was read.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, want string) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON value")
	}
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		fault(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("The request body is larger than %d bytes.", maxBody))
		return false
	case err != nil:
		fault(w, r, http.StatusBadRequest, fmt.Sprintf("Malformed request body (%v): want %s.", err, want))
		return false
	}
	return true
}

// createSpec reads a create body, naming every bad attribute at once.
func createSpec(body map[string]json.RawMessage) (CreateSpec, error) {
	var spec CreateSpec
	var errs []error
	str := func(k string, dst *string) {
		if err := decodeString(body[k], dst); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", k, err))
		}
	}
	for _, k := range sortedKeys(body) {
		raw := body[k]
		switch {
		case k == "id":
			str(k, &spec.ID)
		case k == "name":
			str(k, &spec.Name)
		case k == "disk_format":
			str(k, &spec.DiskFormat)
		case k == "container_format":
			str(k, &spec.ContainerFormat)
		case k == "visibility":
			str(k, &spec.Visibility)
		case k == "owner":
			str(k, &spec.Owner)
		case k == "protected", k == "os_hidden":
			dst := map[string]*bool{"protected": &spec.Protected, "os_hidden": &spec.Hidden}[k]
			if err := decodeBool(raw, dst); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
		case k == "min_ram", k == "min_disk":
			dst := map[string]*int{"min_ram": &spec.MinRAMMiB, "min_disk": &spec.MinDiskGiB}[k]
			if err := decodeInt(raw, dst); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", k, err))
			}
		case k == "tags":
			if err := json.Unmarshal(raw, &spec.Tags); err != nil {
				errs = append(errs, fmt.Errorf("tags: want an array of strings: %w", ErrInvalid))
			}
		case slices.Contains(readOnly, k):
			errs = append(errs, fmt.Errorf("attribute '%s' is read-only: %w", k, ErrForbidden))
		case slices.Contains(reserved, k):
			errs = append(errs, fmt.Errorf("attribute '%s' is reserved: %w", k, ErrForbidden))
		case k == "locations":
			errs = append(errs, fmt.Errorf("attribute 'locations' is not offered: image data is uploaded: %w", ErrForbidden))
		default:
			var v string
			if err := json.Unmarshal(raw, &v); err != nil {
				errs = append(errs, fmt.Errorf("property '%s': want a string value: %w", k, ErrInvalid))
				continue
			}
			if spec.Properties == nil {
				spec.Properties = map[string]string{}
			}
			spec.Properties[k] = v
		}
	}
	if err := errors.Join(errs...); err != nil {
		return spec, err
	}
	return spec, spec.Validate()
}

// decodeString reads a JSON string; null reads as "".
func decodeString(raw json.RawMessage, dst *string) error {
	if string(raw) == "null" {
		*dst = ""
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return fmt.Errorf("want a string: %w", ErrInvalid)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

func (g *Glance) schema(doc string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, doc)
	}
}
