package volume

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Cinder serves /volume: a front end over the volume service.
type Cinder struct {
	Volumes *Service
	// QuotaAdmin lets cloud admins set and reset projects' volume quotas
	// (os-quota-sets PUT and DELETE); without it they are 501.
	QuotaAdmin QuotaAdmin
	Auth       func(http.Handler) http.Handler
	Log        logrus.FieldLogger
}

// Routes mounts the API on r (at /volume). Volumes are reachable with and
// without the project in the path, as Cinder's are.
func (c *Cinder) Routes(r chi.Router) {
	notFound := func(w http.ResponseWriter, r *http.Request) {
		osapi.Fault(w, r, http.StatusNotFound, "The resource could not be found.")
	}
	r.NotFound(notFound)
	r.Get("/", c.versions)
	r.Route("/v3", func(r chi.Router) {
		r.Use(osapi.Microversion("volume", "", MinVersion, MaxVersion))
		r.NotFound(notFound)
		r.Get("/", c.version)
		volumes := func(r chi.Router) {
			r.Get("/", c.list(false))
			r.Get("/detail", c.list(true))
			// Readers read; writing takes member (admin implies it).
			r.With(identity.RequireRole(identity.RoleMember)).Post("/", c.create)
			r.Get("/{id}", c.show)
			r.Get("/{id}/metadata", c.metadata)
			r.Group(func(r chi.Router) {
				r.Use(identity.RequireRole(identity.RoleMember))
				r.Put("/{id}", c.update)
				r.Delete("/{id}", c.delete)
				r.Post("/{id}/action", c.action)
				r.Post("/{id}/metadata", c.metadata)
				r.Put("/{id}/metadata", c.metadata)
				r.Delete("/{id}/metadata/{key}", c.deleteMetadata)
			})
		}
		r.Group(func(r chi.Router) {
			r.Use(c.Auth, osapi.RequireProject)
			r.Get("/os-availability-zone", c.zones)
			r.Route("/volumes", volumes)
			r.Route("/snapshots", c.snapshotRoutes)
			r.Route("/types", c.typeRoutes)
			c.quotaRoutes(r)
			r.Route("/{project}", func(r chi.Router) {
				r.Use(pathProject(r))
				r.Get("/os-availability-zone", c.zones)
				r.Route("/volumes", volumes)
				r.Route("/snapshots", c.snapshotRoutes)
				r.Route("/types", c.typeRoutes)
				c.quotaRoutes(r)
			})
		})
	})
}

func versionDoc(r *http.Request) map[string]any {
	return map[string]any{"id": "v3.0", "status": "CURRENT", "version": MaxVersion, "min_version": MinVersion,
		"updated": "2016-02-08T12:20:21Z", "links": []map[string]string{{"rel": "self", "href": identity.BaseURL(r) + "/volume/v3/"}}}
}

func (c *Cinder) versions(w http.ResponseWriter, r *http.Request) {
	osapi.WriteJSON(w, http.StatusMultipleChoices, map[string]any{"versions": []any{versionDoc(r)}})
}

func (c *Cinder) version(w http.ResponseWriter, r *http.Request) {
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"versions": []any{versionDoc(r)}})
}

// pathProject refuses a project in the path other than the token's, on
// the paths routes serves: under /volume/v3 any first segment is a
// project, and a path no route serves is 404 whatever that segment says.
func pathProject(routes chi.Routes) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, _ := identity.TokenFrom(r.Context())
			if chi.URLParam(r, "project") == t.ProjectID || !serves(routes, r) {
				next.ServeHTTP(w, r) // the project's own path, or chi's 404 or 405
				return
			}
			osapi.Fault(w, r, http.StatusForbidden, "the project in the path is not the token's project")
		})
	}
}

// serves reports whether routes has a route for r's remaining path, by
// any method (a wrong method is 405, which names no project's data).
func serves(routes chi.Routes, r *http.Request) bool {
	path := r.URL.Path
	if rctx := chi.RouteContext(r.Context()); rctx != nil && rctx.RoutePath != "" {
		path = rctx.RoutePath
	}
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if routes.Match(chi.NewRouteContext(), m, path) {
			return true
		}
	}
	return false
}

func (c *Cinder) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrExists):
		code = http.StatusConflict
	case errors.Is(err, peers.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, peers.ErrInvalid), errors.Is(err, peers.ErrConflict):
		code = http.StatusBadRequest // Cinder answers an invalid state with 400
	case errors.Is(err, peers.ErrCapacity):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, peers.ErrUnavailable), errors.Is(err, registry.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	var e *Error
	if errors.Is(err, ErrOverQuota) && errors.As(err, &e) {
		// Cinder's QuotaError: 413 overLimit, the exception's name first.
		w.Header().Set("Retry-After", "0")
		osapi.WriteJSON(w, http.StatusRequestEntityTooLarge, map[string]any{"overLimit": map[string]any{
			"code": http.StatusRequestEntityTooLarge, "message": QuotaCode(err) + ": " + e.Message, "retryAfter": "0",
			"request_id": middleware.GetReqID(r.Context())}})
		return
	}
	osapi.Error(w, r, c.Log, code, err) // the tenant reads the broker's words only
}

// view renders a volume as Cinder shows it.
func view(r *http.Request, v Volume, detail bool) map[string]any {
	self := identity.BaseURL(r) + "/volume/v3/" + v.Project + "/volumes/" + v.ID
	out := map[string]any{"id": v.ID, "name": v.Name, "links": []map[string]string{{"rel": "self", "href": self}}}
	if !detail {
		return out
	}
	attachments := []map[string]any{}
	for _, a := range v.Attachments {
		// Cinder's attachment "id" is the volume's; attachment_id is the
		// attachment's own.
		attachments = append(attachments, map[string]any{"id": v.ID, "attachment_id": a.ID, "server_id": a.ServerID, "volume_id": v.ID, "device": a.Device})
	}
	var updated any
	if !v.UpdatedAt.IsZero() {
		updated = v.UpdatedAt.UTC().Format(timeFormat)
	}
	maps.Copy(out, map[string]any{
		"description": v.Description, "size": v.SizeGiB, "status": v.Status, "availability_zone": v.Zone,
		"created_at": v.CreatedAt.UTC().Format(timeFormat), "updated_at": updated,
		"volume_type": v.VolumeType, "bootable": strconv.FormatBool(v.Bootable), "encrypted": false, "multiattach": false,
		"attachments": attachments, "metadata": v.Metadata, "user_id": nil,
		"snapshot_id": orNil(v.SnapshotID), "source_volid": orNil(v.SourceVolID), "consistencygroup_id": nil, "replication_status": nil,
	})
	if v.ImageID != "" {
		out["volume_image_metadata"] = map[string]string{"image_id": v.ImageID}
	}
	// The owning project is an admin attribute in Cinder (policy
	// volume_extension:volume_tenant_attribute).
	if t, _ := identity.TokenFrom(r.Context()); t.CloudAdmin() {
		out["os-vol-tenant-attr:tenant_id"] = v.Project
	}
	return out
}

const timeFormat = "2006-01-02T15:04:05.000000"

// orNil is s, or JSON null when s is empty, as Cinder shows unset IDs.
func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func caller(r *http.Request) Caller {
	t, _ := identity.TokenFrom(r.Context())
	return CallerOf(t)
}

// decode reads a JSON body into v, or answers 400 saying what was
// expected.
func decode(w http.ResponseWriter, r *http.Request, v any, want string) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(v); err != nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: expected "+want)
		return false
	}
	return true
}

// wholeGiB parses a size: a whole number of GiB (JSON number or string).
func wholeGiB(n json.Number) (int, bool) {
	v, err := strconv.Atoi(n.String())
	return v, err == nil
}

type createRequest struct {
	Volume *struct {
		Size             json.Number       `json:"size"`
		Name             string            `json:"name"`
		Description      string            `json:"description"`
		AvailabilityZone string            `json:"availability_zone"`
		VolumeType       string            `json:"volume_type"`
		Metadata         map[string]string `json:"metadata"`
		ImageRef         string            `json:"imageRef"`
		SnapshotID       string            `json:"snapshot_id"`
		SourceVolID      string            `json:"source_volid"`
		// What the broker does not make: refused when set, never dropped.
		BackupID           string `json:"backup_id"`
		ConsistencyGroupID string `json:"consistencygroup_id"`
		GroupID            string `json:"group_id"`
		Multiattach        bool   `json:"multiattach"`
	} `json:"volume"`
}

func (c *Cinder) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if !decode(w, r, &req, `{"volume": {"size": ...}}`) {
		return
	}
	if req.Volume == nil {
		osapi.Fault(w, r, http.StatusBadRequest, `Invalid input received: expected {"volume": {"size": ...}}`)
		return
	}
	if msg := unoffered(req.Volume.BackupID, req.Volume.ConsistencyGroupID, req.Volume.GroupID, req.Volume.Multiattach); msg != "" {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: "+msg)
		return
	}
	size, ok := wholeGiB(req.Volume.Size)
	switch {
	case req.Volume.Size == "" && (req.Volume.SnapshotID != "" || req.Volume.SourceVolID != ""):
		size = 0 // the snapshot's or source volume's size
	case !ok || size == 0:
		size = -1 // validation names the field
	}
	v, err := c.Volumes.Create(r.Context(), caller(r), CreateSpec{Name: req.Volume.Name, Description: req.Volume.Description, SizeGiB: size,
		AvailabilityZone: req.Volume.AvailabilityZone, VolumeType: req.Volume.VolumeType, Metadata: req.Volume.Metadata, ImageRef: req.Volume.ImageRef,
		SnapshotID: req.Volume.SnapshotID, SourceVolID: req.Volume.SourceVolID})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusAccepted, map[string]any{"volume": view(r, v, true)})
}

// unoffered names the create's fields asking for what the broker does
// not make (a volume restored from a backup, in a consistency group or
// group, attachable to many servers), or "": a create must not quietly
// make a plain volume instead.
func unoffered(backupID, consistencyGroupID, groupID string, multiattach bool) string {
	var fields []string
	for _, f := range []struct {
		set  bool
		name string
	}{{backupID != "", "backup_id"}, {consistencyGroupID != "", "consistencygroup_id"}, {groupID != "", "group_id"}, {multiattach, "multiattach"}} {
		if f.set {
			fields = append(fields, f.name)
		}
	}
	if len(fields) == 0 {
		return ""
	}
	return strings.Join(fields, ", ") + ": volumes restored from backups, in groups or attachable to many servers are not offered by this broker"
}

// zones lists one availability zone per peer, as Nova does, so
// --availability-zone pins a volume to a peer.
func (c *Cinder) zones(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	for _, m := range c.Volumes.Pool.Members() {
		out = append(out, map[string]any{"zoneName": m.Peer.Name, "zoneState": map[string]bool{"available": m.Usable()}})
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": out})
}

func (c *Cinder) show(w http.ResponseWriter, r *http.Request) {
	v, err := c.Volumes.Get(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"volume": view(r, v, true)})
}

// update is PUT /volumes/{id}: name, description and metadata (which it
// replaces whole, as Cinder does).
func (c *Cinder) update(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Volume *struct {
			Name        *string           `json:"name"`
			Description *string           `json:"description"`
			Metadata    map[string]string `json:"metadata"`
			// Cinder takes v1's names too (the openstack CLI sends them).
			DisplayName        *string `json:"display_name"`
			DisplayDescription *string `json:"display_description"`
		} `json:"volume"`
	}
	if !decode(w, r, &req, `{"volume": {"name": ..., "description": ..., "metadata": {...}}}`) {
		return
	}
	if req.Volume != nil {
		req.Volume.Name = cmp.Or(req.Volume.Name, req.Volume.DisplayName)
		req.Volume.Description = cmp.Or(req.Volume.Description, req.Volume.DisplayDescription)
	}
	if req.Volume == nil || req.Volume.Name == nil && req.Volume.Description == nil && req.Volume.Metadata == nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: the volume update needs a name, description or metadata")
		return
	}
	v, err := c.Volumes.Update(r.Context(), caller(r), chi.URLParam(r, "id"),
		UpdateSpec{Name: req.Volume.Name, Description: req.Volume.Description, Metadata: req.Volume.Metadata})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"volume": view(r, v, true)})
}

// metadata serves GET (show), POST (merge) and PUT (replace) of
// /volumes/{id}/metadata, as openstack volume set --property uses.
func (c *Cinder) metadata(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	var v Volume
	var err error
	if r.Method == http.MethodGet {
		v, err = c.Volumes.Get(r.Context(), caller(r), id)
	} else {
		var req struct {
			Metadata map[string]string `json:"metadata"`
		}
		if !decode(w, r, &req, `{"metadata": {"key": "value"}}`) {
			return
		}
		if req.Metadata == nil {
			osapi.Fault(w, r, http.StatusBadRequest, `Invalid input received: expected {"metadata": {"key": "value"}}`)
			return
		}
		v, err = c.Volumes.Update(r.Context(), caller(r), id, UpdateSpec{Metadata: req.Metadata, MergeMetadata: r.Method == http.MethodPost})
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"metadata": v.Metadata})
}

// deleteMetadata is DELETE /volumes/{id}/metadata/{key}; a key the volume
// does not have is 404, as in Cinder.
func (c *Cinder) deleteMetadata(w http.ResponseWriter, r *http.Request) {
	id, key := chi.URLParam(r, "id"), chi.URLParam(r, "key")
	v, err := c.Volumes.Get(r.Context(), caller(r), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if _, ok := v.Metadata[key]; !ok {
		osapi.Fault(w, r, http.StatusNotFound, fmt.Sprintf("Volume %s has no metadata with key %s.", id, key))
		return
	}
	if _, err := c.Volumes.Update(r.Context(), caller(r), id, UpdateSpec{DeleteKeys: []string{key}}); err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (c *Cinder) delete(w http.ResponseWriter, r *http.Request) {
	if err := c.Volumes.Delete(r.Context(), caller(r), chi.URLParam(r, "id")); err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// action runs a volume action: os-extend grows a volume (Cinder refuses
// to shrink, and so does this: the new size must be larger);
// os-set_bootable sets the flag Cinder shows as bootable; os-retype
// gives it a type its peer already satisfies (no migration). Any other
// action is 400 naming the ones served.
func (c *Cinder) action(w http.ResponseWriter, r *http.Request) {
	var req map[string]json.RawMessage
	const want = `one of the actions os-extend, os-retype, os-set_bootable`
	if !decode(w, r, &req, want) {
		return
	}
	if len(req) != 1 {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: expected "+want)
		return
	}
	id := chi.URLParam(r, "id")
	for name, body := range req {
		switch name {
		case "os-extend":
			var a struct {
				NewSize json.Number `json:"new_size"`
			}
			_ = json.Unmarshal(body, &a)
			size, ok := wholeGiB(a.NewSize)
			if !ok {
				size = 0 // the service names the field
			}
			if err := c.Volumes.Extend(r.Context(), caller(r), id, size, ExtendOptions{InUse: osapi.VersionAtLeast(r, vExtendInUse)}); err != nil {
				c.fail(w, r, err)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		case "os-retype":
			var a struct {
				NewType string `json:"new_type"`
			}
			_ = json.Unmarshal(body, &a)
			if _, err := c.Volumes.Retype(r.Context(), caller(r), id, a.NewType); err != nil {
				c.fail(w, r, err)
				return
			}
			w.WriteHeader(http.StatusAccepted)
		case "os-set_bootable":
			var a struct {
				Bootable json.RawMessage `json:"bootable"`
			}
			_ = json.Unmarshal(body, &a)
			b, ok := boolOf(a.Bootable)
			if !ok {
				osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: os-set_bootable: bootable must be a boolean")
				return
			}
			if _, err := c.Volumes.Update(r.Context(), caller(r), id, UpdateSpec{Bootable: &b}); err != nil {
				c.fail(w, r, err)
				return
			}
			w.WriteHeader(http.StatusOK)
		default:
			osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: action "+name+" is not offered by this broker; expected "+want)
		}
	}
}

// boolOf reads a boolean as Cinder's strict bool_from_string does: a JSON
// boolean, or one of the strings true/false, yes/no, on/off, 1/0.
func boolOf(raw json.RawMessage) (bool, bool) {
	var b bool
	if json.Unmarshal(raw, &b) == nil {
		return b, true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return false, false
	}
	switch strings.ToLower(s) {
	case "true", "yes", "on", "1", "t", "y":
		return true, true
	case "false", "no", "off", "0", "f", "n":
		return false, true
	}
	return false, false
}

// list shows the project's volumes merged from the peers holding them;
// peers that do not answer are named in osapi.PartialHeader. Filters:
// name, status; paging: limit, marker; newest first, as Cinder.
func (c *Cinder) list(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, ok := listLimit(w, r)
		if !ok {
			return
		}
		page, err := c.Volumes.List(r.Context(), caller(r))
		if err != nil {
			c.fail(w, r, err)
			return
		}
		osapi.FlagPartial(w, r, c.Log, "volumes", page.Failed, nil)
		keep := func(v Volume) bool {
			return (q.Get("name") == "" || v.Name == q.Get("name")) && (q.Get("status") == "" || string(v.Status) == q.Get("status"))
		}
		writePage(w, r, "volumes", page.Volumes, limit, func(v Volume) string { return v.ID }, keep,
			func(v Volume) map[string]any { return view(r, v, detail) })
	}
}
