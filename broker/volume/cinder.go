package volume

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// The Cinder microversions this API implements. 3.42 is what it uses
// beyond 3.0: extending an in-use volume. The views are 3.0's, which
// later versions only add optional fields to.
const (
	MinVersion = "3.0"
	MaxVersion = "3.42"
)

const kind = "volume"

// Pool is the part of peers.Pool the API uses.
type Pool interface {
	Members() []*peers.Member
	Get(id string) (*peers.Member, bool)
}

// Images resolves imageRef for volumes made from images: image.Service.
type Images interface {
	Resolve(ctx context.Context, c image.Caller, id string) (image.Image, error)
}

// Cinder serves /volume.
type Cinder struct {
	// Images, when set, lets volumes be made from images (imageRef);
	// without it such creates are refused.
	Images Images
	Pool   Pool
	Index  *index.Index
	Placer policy.Placer
	Auth   func(http.Handler) http.Handler
	Log    logrus.FieldLogger
	// BrokerID marks every volume this installation creates.
	BrokerID    string
	PeerTimeout time.Duration
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
			r.With(identity.RequireRole(identity.RoleMember)).Delete("/{id}", c.delete)
			r.With(identity.RequireRole(identity.RoleMember)).Post("/{id}/action", c.action)
		}
		r.Group(func(r chi.Router) {
			r.Use(c.Auth, osapi.RequireProject)
			r.Get("/os-availability-zone", c.zones)
			r.Get("/{project}/os-availability-zone", c.zones)
			r.Route("/volumes", volumes)
			r.Route("/{project}/volumes", func(r chi.Router) {
				r.Use(pathProject)
				volumes(r)
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

// pathProject refuses a project in the path other than the token's.
func pathProject(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if t, _ := identity.TokenFrom(r.Context()); chi.URLParam(r, "project") != t.ProjectID {
			osapi.Fault(w, r, http.StatusForbidden, "the project in the path is not the token's project")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (c *Cinder) fail(w http.ResponseWriter, r *http.Request, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, index.ErrNotFound), errors.Is(err, peers.ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, peers.ErrInvalid), errors.Is(err, registry.ErrInvalid), errors.Is(err, peers.ErrConflict):
		code = http.StatusBadRequest // Cinder answers an invalid state with 400
	case errors.Is(err, peers.ErrCapacity):
		code = http.StatusRequestEntityTooLarge
	case errors.Is(err, peers.ErrUnavailable), errors.Is(err, registry.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	osapi.Error(w, r, c.Log, code, err) // the tenant reads the broker's words only
}

// view renders a peer's volume as Cinder shows it, under its broker ID.
// Attachments name servers by their broker IDs (servers, from
// serverIDs); a server the broker did not create keeps the peer's ID.
func view(r *http.Request, e index.Entry, peer string, v peers.Volume, detail bool, servers map[string]string) map[string]any {
	self := identity.BaseURL(r) + "/volume/v3/" + e.Project + "/volumes/" + e.ID
	out := map[string]any{"id": e.ID, "name": v.Name, "links": []map[string]string{{"rel": "self", "href": self}}}
	if !detail {
		return out
	}
	meta := map[string]string{}
	for k, val := range v.Metadata {
		if !strings.HasPrefix(k, "cloudmux_") {
			meta[k] = val
		}
	}
	attachments := []map[string]any{}
	for _, a := range v.Attachments {
		server := a.ServerID
		if id, ok := servers[e.PeerID+"/"+a.ServerID]; ok {
			server = id
		}
		// Cinder's attachment "id" is the volume's; attachment_id is the
		// attachment's own.
		attachments = append(attachments, map[string]any{"id": e.ID, "attachment_id": a.ID, "server_id": server, "volume_id": e.ID, "device": a.Device})
	}
	maps.Copy(out, map[string]any{
		"description": v.Description, "size": v.SizeGiB, "status": v.Status, "availability_zone": peer,
		"created_at": v.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000"), "updated_at": nil,
		"volume_type": v.VolumeType, "bootable": strconv.FormatBool(v.Bootable), "encrypted": false, "multiattach": false,
		"attachments": attachments, "metadata": meta,
		"snapshot_id": nil, "source_volid": nil, "consistencygroup_id": nil, "replication_status": nil,
	})
	if v.SourceImageID != "" {
		// Volumes are made from images on the image's home peer, where
		// its ID is the broker's.
		out["volume_image_metadata"] = map[string]string{"image_id": v.SourceImageID}
	}
	// The owning project is an admin attribute in Cinder (policy
	// volume_extension:volume_tenant_attribute).
	if t, _ := identity.TokenFrom(r.Context()); t.CloudAdmin() {
		out["os-vol-tenant-attr:tenant_id"] = e.Project
	}
	return out
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
	} `json:"volume"`
}

// create places the volume, tries allowed peers best first (a peer out of
// capacity hands over to the next), and indexes it; if the index write
// fails the peer's volume is removed again, so nothing is left unowned.
func (c *Cinder) create(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || req.Volume == nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input: expected {\"volume\": {\"size\": ...}}")
		return
	}
	var problems []string
	size, err := strconv.Atoi(req.Volume.Size.String())
	if err != nil || size < 1 || size > 16384 {
		problems = append(problems, "size: must be a whole number of GiB from 1 to 16384")
	}
	if len(req.Volume.Name) > 255 {
		problems = append(problems, "name: at most 255 characters")
	}
	for k := range req.Volume.Metadata {
		if strings.HasPrefix(k, "cloudmux_") {
			problems = append(problems, "metadata."+k+": the cloudmux_ prefix is reserved")
		}
	}
	if req.Volume.ImageRef != "" && c.Images == nil {
		problems = append(problems, "imageRef: volumes from images are not offered by this broker")
	}
	if len(problems) > 0 {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input: "+strings.Join(problems, "; "))
		return
	}
	t, _ := identity.TokenFrom(r.Context())
	// A volume from an image is made where the image lives: the peer
	// copies its own image's bytes into the volume.
	var img *image.Image
	if ref := req.Volume.ImageRef; ref != "" {
		got, err := c.Images.Resolve(r.Context(), image.CallerOf(t), ref)
		if errors.Is(err, image.ErrNotFound) {
			osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("Invalid input: imageRef: image %s could not be found", ref))
			return
		}
		if errors.Is(err, image.ErrUnavailable) {
			osapi.Error(w, r, c.Log, http.StatusServiceUnavailable, err)
			return
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if got.Status != peers.ImageActive {
			osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("Invalid input: imageRef: image %s is %s, not active", ref, got.Status))
			return
		}
		need := max(got.MinDiskGiB, int((got.Size+(1<<30)-1)>>30))
		if size < need {
			osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("Invalid input: size: image %s needs a volume of at least %d GiB", ref, need))
			return
		}
		if az := req.Volume.AvailabilityZone; az != "" && az != got.PeerName {
			osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("Invalid input: availability_zone: image %s lives in zone %s, not %s", ref, got.PeerName, az))
			return
		}
		img = &got
	}
	id := uuid.NewString()
	meta := maps.Clone(req.Volume.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[peers.MetaID], meta[peers.MetaProject], meta[peers.MetaBrokerID] = id, t.ProjectID, c.BrokerID
	spec := peers.VolumeSpec{Name: req.Volume.Name, Description: req.Volume.Description, Project: t.ProjectID,
		SizeGiB: size, VolumeType: req.Volume.VolumeType, Metadata: meta}
	zone := req.Volume.AvailabilityZone
	if img != nil {
		spec.ImageID, zone = img.PeerImageID, img.PeerName
	}

	candidates, disconnected := peers.Candidates(c.Pool.Members())
	if az := req.Volume.AvailabilityZone; az != "" && !peers.Named(c.Pool.Members(), az) {
		osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("Availability zone '%s' is invalid.", az))
		return
	}
	decision, err := c.Placer.Place(r.Context(), policy.Request{Kind: kind, Project: t.ProjectID, User: t.UserID, ResourceID: id,
		Name: req.Volume.Name, DiskGiB: size, AvailabilityZone: zone}, candidates)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	var tried []string
	for _, p := range decision.Allowed() {
		m, ok := c.Pool.Get(p.ID)
		if !ok || m.Cloud == nil {
			continue
		}
		vol, err := m.Cloud.CreateVolume(r.Context(), spec)
		if errors.Is(err, peers.ErrCapacity) || errors.Is(err, peers.ErrUnavailable) {
			tried = append(tried, fmt.Sprintf("%s: %v", p.Name, err))
			continue
		}
		if err != nil {
			c.fail(w, r, err)
			return
		}
		e := index.Entry{Kind: kind, ID: id, Project: t.ProjectID, PeerID: p.ID, PeerResourceID: vol.ID, Name: vol.Name, CreatedAt: vol.CreatedAt}
		if err := c.Index.Put(r.Context(), e); err != nil {
			_ = m.Cloud.DeleteVolume(context.WithoutCancel(r.Context()), vol.ID)
			c.fail(w, r, err)
			return
		}
		c.Log.WithFields(logrus.Fields{"volume": id, "peer": p.Name, "project": t.ProjectID, "size_gib": size}).Info("volume created")
		osapi.WriteJSON(w, http.StatusAccepted, map[string]any{"volume": view(r, e, p.Name, vol, true, nil)})
		return
	}
	why := decision.Explain()
	if len(tried) > 0 {
		why = strings.Join(tried, "; ") + "; " + why
	}
	for _, name := range disconnected {
		why += "; " + name + ": not connected"
	}
	c.fail(w, r, fmt.Errorf("no peer can hold a %d GiB volume: %s: %w", size, why, peers.ErrCapacity))
}

// zones lists one availability zone per connected peer, as Nova does, so
// --availability-zone pins a volume to a peer.
func (c *Cinder) zones(w http.ResponseWriter, r *http.Request) {
	out := []map[string]any{}
	for _, m := range c.Pool.Members() {
		out = append(out, map[string]any{"zoneName": m.Peer.Name, "zoneState": map[string]bool{"available": m.Usable()}})
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"availabilityZoneInfo": out})
}

func (c *Cinder) lookup(r *http.Request) (index.Entry, *peers.Member, error) {
	t, _ := identity.TokenFrom(r.Context())
	e, err := c.Index.Get(r.Context(), kind, chi.URLParam(r, "id"), t.ProjectID)
	if err != nil {
		return index.Entry{}, nil, fmt.Errorf("volume %s could not be found: %w", chi.URLParam(r, "id"), err)
	}
	m, ok := c.Pool.Get(e.PeerID)
	if !ok || m.Cloud == nil {
		return e, nil, fmt.Errorf("the peer holding volume %s is not connected: %w", e.ID, peers.ErrUnavailable)
	}
	return e, m, nil
}

func (c *Cinder) show(w http.ResponseWriter, r *http.Request) {
	e, m, err := c.lookup(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v, err := m.Cloud.GetVolume(r.Context(), e.PeerResourceID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"volume": view(r, e, m.Peer.Name, v, true, c.serverIDs(r, e.Project, []peers.Volume{v}))})
}

func (c *Cinder) delete(w http.ResponseWriter, r *http.Request) {
	e, m, err := c.lookup(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := m.Cloud.DeleteVolume(r.Context(), e.PeerResourceID); err != nil && !errors.Is(err, peers.ErrNotFound) {
		c.fail(w, r, err)
		return
	}
	if err := c.Index.Delete(r.Context(), e); err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// action runs a volume action; os-extend grows a volume (Cinder refuses to
// shrink, and so does this: the new size must be larger).
func (c *Cinder) action(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Extend *struct {
			NewSize json.Number `json:"new_size"`
		} `json:"os-extend"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil || req.Extend == nil {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input: the supported action is {\"os-extend\": {\"new_size\": N}}")
		return
	}
	size, err := strconv.Atoi(req.Extend.NewSize.String())
	if err != nil || size < 1 || size > 16384 {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid input: new_size must be a whole number of GiB from 1 to 16384")
		return
	}
	e, m, err := c.lookup(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	cur, err := m.Cloud.GetVolume(r.Context(), e.PeerResourceID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if cur.Status == peers.VolumeInUse && !osapi.VersionAtLeast(r, "3.42") {
		osapi.Fault(w, r, http.StatusBadRequest, "Invalid volume: volume status must be available to extend; extending an in-use volume takes microversion 3.42")
		return
	}
	if size <= cur.SizeGiB {
		osapi.Fault(w, r, http.StatusBadRequest, fmt.Sprintf("Invalid input: new size %d GiB must be larger than the current %d GiB", size, cur.SizeGiB))
		return
	}
	if _, err := m.Cloud.ExtendVolume(r.Context(), e.PeerResourceID, size); err != nil {
		c.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

// serverIDs maps "peerID/peer server ID" to the broker's server ID for the
// servers vols are attached to, from the project's server index. Only
// looked up when some volume is attached; a failure leaves peer IDs.
func (c *Cinder) serverIDs(r *http.Request, project string, vols []peers.Volume) map[string]string {
	attached := false
	for _, v := range vols {
		attached = attached || len(v.Attachments) > 0
	}
	if !attached {
		return nil
	}
	entries, err := c.Index.List(r.Context(), "server", project)
	if err != nil {
		c.Log.WithError(err).Warn("listing servers for volume attachments; showing peer server IDs")
		return nil
	}
	out := make(map[string]string, len(entries))
	for _, e := range entries {
		out[e.PeerID+"/"+e.PeerResourceID] = e.ID
	}
	return out
}

// list merges the project's volumes from every peer holding some: one
// list call per peer, in parallel, each under a deadline. Peers that do
// not answer are named in PartialHeader and their volumes left out.
// Filters: name, status; paging: limit, marker; newest first, as Cinder.
func (c *Cinder) list(detail bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := identity.TokenFrom(r.Context())
		entries, err := c.Index.List(r.Context(), kind, t.ProjectID)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		byPeer := map[string]map[string]index.Entry{} // peer ID -> peer volume ID -> entry
		for _, e := range entries {
			if byPeer[e.PeerID] == nil {
				byPeer[e.PeerID] = map[string]index.Entry{}
			}
			byPeer[e.PeerID][e.PeerResourceID] = e
		}
		var members []*peers.Member
		var failed []string
		for peerID := range byPeer {
			switch m, ok := c.Pool.Get(peerID); {
			case ok && m.Cloud != nil:
				members = append(members, m)
			case ok:
				failed = append(failed, m.Peer.Name)
			default:
				failed = append(failed, peerID) // the peer left the pool: only its ID is known
			}
		}
		timeout := c.PeerTimeout
		if timeout <= 0 {
			timeout = 10 * time.Second
		}
		res := peers.Gather(r.Context(), members, timeout, func(ctx context.Context, m *peers.Member) ([]peers.Volume, error) {
			return m.Cloud.ListVolumes(ctx, peers.ListOptions{Metadata: map[string]string{peers.MetaProject: t.ProjectID}})
		})
		type item struct {
			e    index.Entry
			peer string
			v    peers.Volume
		}
		var items []item
		for _, rr := range res {
			if rr.Err != nil {
				failed = append(failed, rr.Member.Peer.Name)
				continue
			}
			for _, v := range rr.Value {
				if e, ok := byPeer[rr.Member.Peer.ID][v.ID]; ok {
					items = append(items, item{e, rr.Member.Peer.Name, v})
				}
			}
		}
		sort.Strings(failed)
		osapi.FlagPartial(w, r, c.Log, "volumes", failed, nil)
		var servers map[string]string
		if detail {
			vols := make([]peers.Volume, len(items))
			for i, it := range items {
				vols[i] = it.v
			}
			servers = c.serverIDs(r, t.ProjectID, vols)
		}
		q := r.URL.Query()
		sort.Slice(items, func(i, j int) bool {
			if !items[i].v.CreatedAt.Equal(items[j].v.CreatedAt) {
				return items[i].v.CreatedAt.After(items[j].v.CreatedAt)
			}
			return items[i].e.ID < items[j].e.ID
		})
		out := []map[string]any{}
		var last string
		more := false
		started := q.Get("marker") == ""
		limit := 0
		if s := q.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				osapi.Fault(w, r, http.StatusBadRequest, "Invalid input received: limit must be a non-negative integer")
				return
			}
			limit = n
		}
		for _, it := range items {
			if !started {
				started = it.e.ID == q.Get("marker")
				continue
			}
			if name := q.Get("name"); name != "" && it.v.Name != name {
				continue
			}
			if st := q.Get("status"); st != "" && string(it.v.Status) != st {
				continue
			}
			if limit > 0 && len(out) == limit {
				more = true // one more matches: the page is full and not the last
				break
			}
			out = append(out, view(r, it.e, it.peer, it.v, detail, servers))
			last = it.e.ID
		}
		if !started {
			osapi.Fault(w, r, http.StatusBadRequest, "marker "+q.Get("marker")+" not found")
			return
		}
		body := map[string]any{"volumes": out}
		if more {
			// Cinder's next link: the same query from after the last ID.
			next := r.URL.Query()
			next.Set("marker", last)
			body["volumes_links"] = []map[string]string{{"rel": "next", "href": identity.BaseURL(r) + r.URL.Path + "?" + next.Encode()}}
		}
		osapi.WriteJSON(w, http.StatusOK, body)
	}
}
