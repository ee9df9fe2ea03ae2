package volume

import (
	"cmp"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
)

// snapshotRoutes mounts /snapshots: Cinder's snapshots over the volume
// service's.
func (c *Cinder) snapshotRoutes(r chi.Router) {
	r.Get("/", c.listSnapshots(false))
	r.Get("/detail", c.listSnapshots(true))
	r.Get("/{id}", c.showSnapshot)
	r.Get("/{id}/metadata", c.snapshotMetadata)
	r.Get("/{id}/metadata/{key}", c.snapshotMetadataKey)
	r.Group(func(r chi.Router) {
		r.Use(identity.RequireRole(identity.RoleMember))
		r.Post("/", c.createSnapshot)
		r.Put("/{id}", c.updateSnapshot)
		r.Delete("/{id}", c.deleteSnapshot)
		r.Post("/{id}/metadata", c.snapshotMetadata)
		r.Put("/{id}/metadata", c.snapshotMetadata)
		r.Put("/{id}/metadata/{key}", c.snapshotMetadataKey)
		r.Delete("/{id}/metadata/{key}", c.snapshotMetadataKey)
	})
}

// snapshotView renders a snapshot as Cinder shows it.
func snapshotView(r *http.Request, s Snapshot, detail bool) map[string]any {
	out := map[string]any{"id": s.ID, "name": s.Name, "description": s.Description, "volume_id": s.VolumeID, "size": s.SizeGiB,
		"status": s.Status, "created_at": s.CreatedAt.UTC().Format(timeFormat), "updated_at": nil, "metadata": s.Metadata}
	if !s.UpdatedAt.IsZero() {
		out["updated_at"] = s.UpdatedAt.UTC().Format(timeFormat)
	}
	if osapi.VersionAtLeast(r, vSnapshotUserID) {
		out["user_id"] = s.UserID
	}
	if !detail {
		return out
	}
	progress := "0%"
	if s.Status == "available" {
		progress = "100%"
	}
	out["os-extended-snapshot-attributes:progress"] = progress
	if t, _ := identity.TokenFrom(r.Context()); t.CloudAdmin() {
		out["os-extended-snapshot-attributes:project_id"] = s.Project
	}
	return out
}

// createSnapshot is POST /snapshots: {"snapshot": {"volume_id", "force",
// "name", "description", "metadata"}}.
func (c *Cinder) createSnapshot(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Snapshot *struct {
			VolumeID    string            `json:"volume_id"`
			Force       json.RawMessage   `json:"force"`
			Name        string            `json:"name"`
			Description string            `json:"description"`
			Metadata    map[string]string `json:"metadata"`
		} `json:"snapshot"`
	}
	const want = `{"snapshot": {"volume_id": ...}}`
	if !decode(w, r, &req, want) {
		return
	}
	if req.Snapshot == nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: expected "+want)
		return
	}
	force := false
	if len(req.Snapshot.Force) > 0 && string(req.Snapshot.Force) != "null" {
		var ok bool
		if force, ok = boolOf(req.Snapshot.Force); !ok {
			osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: force must be a boolean")
			return
		}
	}
	s, err := c.Volumes.CreateSnapshot(r.Context(), caller(r), SnapshotSpec{VolumeID: req.Snapshot.VolumeID, Name: req.Snapshot.Name,
		Description: req.Snapshot.Description, Force: force, Metadata: req.Snapshot.Metadata})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusAccepted, map[string]any{"snapshot": snapshotView(r, s, true)})
}

func (c *Cinder) showSnapshot(w http.ResponseWriter, r *http.Request) {
	s, err := c.Volumes.GetSnapshot(r.Context(), caller(r), chi.URLParam(r, "id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"snapshot": snapshotView(r, s, true)})
}

// updateSnapshot is PUT /snapshots/{id}: name and description.
func (c *Cinder) updateSnapshot(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Snapshot *struct {
			Name               *string `json:"name"`
			Description        *string `json:"description"`
			DisplayName        *string `json:"display_name"`
			DisplayDescription *string `json:"display_description"`
		} `json:"snapshot"`
	}
	if !decode(w, r, &req, `{"snapshot": {"name": ..., "description": ...}}`) {
		return
	}
	if req.Snapshot != nil {
		req.Snapshot.Name = cmp.Or(req.Snapshot.Name, req.Snapshot.DisplayName)
		req.Snapshot.Description = cmp.Or(req.Snapshot.Description, req.Snapshot.DisplayDescription)
	}
	if req.Snapshot == nil || req.Snapshot.Name == nil && req.Snapshot.Description == nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: the snapshot update needs a name or description")
		return
	}
	s, err := c.Volumes.UpdateSnapshot(r.Context(), caller(r), chi.URLParam(r, "id"), UpdateSpec{Name: req.Snapshot.Name, Description: req.Snapshot.Description})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"snapshot": snapshotView(r, s, true)})
}

func (c *Cinder) deleteSnapshot(w http.ResponseWriter, r *http.Request) {
	if err := c.Volumes.DeleteSnapshot(r.Context(), caller(r), chi.URLParam(r, "id")); err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// snapshotMetadata serves GET (show), POST (merge) and PUT (replace) of
// /snapshots/{id}/metadata.
func (c *Cinder) snapshotMetadata(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	var s Snapshot
	var err error
	if r.Method == http.MethodGet {
		s, err = c.Volumes.GetSnapshot(r.Context(), caller(r), id)
	} else {
		meta, ok := decodeMetadata(w, r)
		if !ok {
			return
		}
		s, err = c.Volumes.UpdateSnapshot(r.Context(), caller(r), id, UpdateSpec{Metadata: meta, MergeMetadata: r.Method == http.MethodPost})
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"metadata": s.Metadata})
}

// decodeMetadata reads {"metadata": {...}}, or answers 400.
func decodeMetadata(w http.ResponseWriter, r *http.Request) (map[string]string, bool) {
	var req struct {
		Metadata map[string]string `json:"metadata"`
	}
	const want = `{"metadata": {"key": "value"}}`
	if !decode(w, r, &req, want) {
		return nil, false
	}
	if req.Metadata == nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: expected "+want)
		return nil, false
	}
	return req.Metadata, true
}

// snapshotMetadataKey serves GET, PUT ({"meta": {key: value}}) and
// DELETE of /snapshots/{id}/metadata/{key}; a key the snapshot does not
// have is 404.
func (c *Cinder) snapshotMetadataKey(w http.ResponseWriter, r *http.Request) {
	id, key := chi.URLParam(r, "id"), chi.URLParam(r, "key")
	s, err := c.Volumes.GetSnapshot(r.Context(), caller(r), id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	switch r.Method {
	case http.MethodPut:
		var req struct {
			Meta map[string]string `json:"meta"`
		}
		if !decode(w, r, &req, `{"meta": {"`+key+`": "value"}}`) {
			return
		}
		v, ok := req.Meta[key]
		if len(req.Meta) != 1 || !ok {
			osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: the body must name exactly the key in the path")
			return
		}
		if _, err := c.Volumes.UpdateSnapshot(r.Context(), caller(r), id, UpdateSpec{Metadata: map[string]string{key: v}, MergeMetadata: true}); err != nil {
			c.fail(w, r, err)
			return
		}
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
		return
	}
	v, ok := s.Metadata[key]
	if !ok {
		osapi.Fault(w, r, http.StatusNotFound, fmt.Sprintf("Snapshot %s has no metadata with key %s.", id, key))
		return
	}
	if r.Method == http.MethodGet {
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"meta": map[string]string{key: v}})
		return
	}
	if _, err := c.Volumes.UpdateSnapshot(r.Context(), caller(r), id, UpdateSpec{DeleteKeys: []string{key}}); err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// listSnapshots shows the project's snapshots, newest first; filters:
// name, status, volume_id; paging: limit, marker.
func (c *Cinder) listSnapshots(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, ok := listLimit(w, r)
		if !ok {
			return
		}
		page, err := c.Volumes.ListSnapshots(r.Context(), caller(r))
		if err != nil {
			c.fail(w, r, err)
			return
		}
		osapi.FlagPartial(w, r, c.Log, "snapshots", page.Failed, nil)
		var meta map[string]string
		if raw := q.Get("metadata"); raw != "" && osapi.VersionAtLeast(r, vSnapshotMetadataFilter) {
			// cinderclient sends a Python dict's repr: {'k': 'v'}.
			if json.Unmarshal([]byte(strings.ReplaceAll(raw, "'", `"`)), &meta) != nil {
				osapi.Fault(w, r, http.StatusBadRequest, `Invalid input received: metadata must be a map of strings, as {"key": "value"}`)
				return
			}
		}
		keep := func(s Snapshot) bool {
			for k, v := range meta {
				if s.Metadata[k] != v {
					return false
				}
			}
			return (q.Get("name") == "" || s.Name == q.Get("name")) && (q.Get("status") == "" || string(s.Status) == q.Get("status")) &&
				(q.Get("volume_id") == "" || s.VolumeID == q.Get("volume_id"))
		}
		writePage(w, r, "snapshots", page.Snapshots, limit, func(s Snapshot) string { return s.ID }, keep,
			func(s Snapshot) map[string]any { return snapshotView(r, s, detail) })
	}
}

// listLimit reads a list's limit (0: none), or answers 400.
func listLimit(w http.ResponseWriter, r *http.Request) (int, bool) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: limit must be a non-negative integer")
		return 0, false
	}
	return n, true
}

// writePage answers a list: the items keep passes after the marker, at
// most limit of them (0: all), with Cinder's next link when more match.
func writePage[T any](w http.ResponseWriter, r *http.Request, name string, items []T, limit int, id func(T) string, keep func(T) bool, view func(T) map[string]any) {
	marker := r.URL.Query().Get("marker")
	out := []map[string]any{}
	var last string
	more := false
	started := marker == ""
	for _, it := range items {
		if !started {
			started = id(it) == marker
			continue
		}
		if !keep(it) {
			continue
		}
		if limit > 0 && len(out) == limit {
			more = true // one more matches: the page is full and not the last
			break
		}
		out = append(out, view(it))
		last = id(it)
	}
	if !started {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: marker "+marker+" not found")
		return
	}
	body := map[string]any{name: out}
	if more {
		// Cinder's next link: the same query from after the last ID.
		next := r.URL.Query()
		next.Set("marker", last)
		body[name+"_links"] = []map[string]string{{"rel": "next", "href": identity.BaseURL(r) + r.URL.Path + "?" + next.Encode()}}
	}
	osapi.WriteJSON(w, http.StatusOK, body)
}
