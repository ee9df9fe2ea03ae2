package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// Kind is the resource index kind, and the placement request kind, of
// images.
const Kind = "image"

// StatusDeactivated is the status Glance shows for a deactivated image.
const StatusDeactivated peers.ImageStatus = "deactivated"

// DefaultMaxImageSize is Glance's default image_size_cap: 1 TiB.
const DefaultMaxImageSize int64 = 1 << 40

// hiddenProperty carries Glance's os_hidden on the peer, whose image type
// has no such field. Like every cloudmux_ property, users never see it.
const hiddenProperty = "cloudmux_os_hidden"

// deactivatedPrefix is where deactivation records live in the Store.
const deactivatedPrefix = "image-deactivated/"

// Pool is the part of peers.Pool the service uses.
type Pool interface {
	Members() []*peers.Member
	Get(id string) (*peers.Member, bool)
}

// Store is the part of registry.Store the service keeps deactivation
// records in.
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	Put(ctx context.Context, key string, value []byte) (uint64, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	DeleteCAS(ctx context.Context, key string, index uint64) error
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error)
}

// Service is the image service across the pool. Its zero value is not
// usable: set Pool, Index, Placer, Store and Log; BrokerID marks the images
// this installation creates.
type Service struct {
	Pool   Pool
	Index  *index.Index
	Placer policy.Placer
	Store  Store
	// Deactivations, when set (and running), serves deactivation records
	// from memory; without it they are read from the Store.
	Deactivations *Deactivations
	// Members, when set (and running), serves image members from memory;
	// without it they are read from the Store.
	Members *Members
	// Imports, when set (and running), serves import records (staged
	// images) from memory.
	Imports *Imports
	Log     logrus.FieldLogger
	// BrokerID is written on every image the broker creates
	// (peers.MetaBrokerID), so its copies on any peer are recognised.
	BrokerID string
	// PeerTimeout bounds each peer's part of a fan-out; default 10s.
	PeerTimeout time.Duration
	// Replicas, when set, are the copies the stager made (the same Stager
	// the servers service uses): updates and deletes reach them too.
	Replicas Replicas
	// MaxImageSize caps an image's data in bytes (Glance's
	// image_size_cap); default DefaultMaxImageSize.
	MaxImageSize int64
}

// Replicas is the part of staging.Stager the service uses.
type Replicas interface {
	Replicas(ctx context.Context, imageID string) ([]staging.Replica, error)
	Forget(ctx context.Context, imageID string) error
}

var _ Replicas = (*staging.Stager)(nil)

// Caller is who asks: the project its token is scoped to, and whether it
// is a cloud admin (who sees and may change every image, as in Glance).
type Caller struct {
	Project string
	Admin   bool
}

// CallerOf returns the caller a Keystone token stands for.
func CallerOf(t identity.Token) Caller {
	return Caller{Project: t.ProjectID, Admin: t.CloudAdmin()}
}

// Image is an image as the broker shows it.
type Image struct {
	// Image is the peer's image under its broker-wide ID, owned by
	// Project, with Properties stripped of cloudmux_ keys and Status
	// StatusDeactivated when deactivated.
	peers.Image
	// Hidden is Glance's os_hidden: left out of default lists.
	Hidden bool
	// PeerID and PeerName name the peer holding the image (its home, for
	// an image the broker created); PeerImageID is its ID there, equal to
	// ID for every image the broker created.
	PeerID, PeerName, PeerImageID string
	// Indexed reports an image the broker created (in the resource index)
	// rather than one native to its peer.
	Indexed bool
}

// CreateSpec is a new image's metadata. DiskFormat and ContainerFormat
// are required (peers take data only for images that have them).
type CreateSpec struct {
	// ID requests a UUID; empty lets the broker choose one.
	ID              string
	Name            string
	DiskFormat      string
	ContainerFormat string
	// Visibility defaults to "shared", as in Glance. "public" takes a
	// cloud admin (Glance's publicize_image policy).
	Visibility string
	// Owner defaults to the caller's project; only a cloud admin may name
	// another.
	Owner      string
	MinRAMMiB  int
	MinDiskGiB int
	Protected  bool
	Hidden     bool
	Tags       []string
	Properties map[string]string
	// Zone, when set, pins the peer by name (each peer is a zone); Glance
	// has no such field: only internal callers (the deployment engine)
	// set it, as they set Marks, cloudmux_ properties written on the
	// peer's image to find it again (see Marked).
	Zone  string
	Marks map[string]string
}

// Patch changes an image's metadata; nil fields and empty lists change
// nothing.
type Patch struct {
	peers.ImagePatch
	Hidden *bool
}

// The formats and visibilities Glance accepts by default.
var (
	DiskFormats      = []string{"ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop"}
	ContainerFormats = []string{"ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed"}
	Visibilities     = []string{"community", "public", "private", "shared"}
)

// CoreAttributes are Glance's own image attributes: no custom property
// may be named like one.
var CoreAttributes = []string{
	"id", "name", "status", "visibility", "protected", "os_hidden", "checksum", "os_hash_algo", "os_hash_value",
	"owner", "size", "virtual_size", "min_ram", "min_disk", "created_at", "updated_at", "deleted", "deleted_at",
	"disk_format", "container_format", "locations", "direct_url", "self", "file", "schema", "tags", "stores",
}

func (s *Service) timeout() time.Duration {
	if s.PeerTimeout > 0 {
		return s.PeerTimeout
	}
	return 10 * time.Second
}

func (s *Service) maxSize() int64 {
	if s.MaxImageSize > 0 {
		return s.MaxImageSize
	}
	return DefaultMaxImageSize
}

// connected returns the members with a connection, and the names of those
// without one.
func (s *Service) connected() (ms []*peers.Member, down []string) {
	for _, m := range s.Pool.Members() {
		if m.Cloud != nil {
			ms = append(ms, m)
		} else {
			down = append(down, m.Peer.Name)
		}
	}
	return ms, down
}

// managedID returns the broker ID of an image this installation created.
func (s *Service) managedID(img peers.Image) (string, bool) {
	id := img.Properties[peers.MetaID]
	return id, id != "" && img.Properties[peers.MetaBrokerID] == s.BrokerID
}

// located is an image found on a peer.
type located struct {
	img    peers.Image // as the peer has it
	member *peers.Member
	entry  *index.Entry // nil for a native image
}

// locate finds an image by broker ID: through the index for an image the
// broker created, otherwise by asking every connected peer in parallel
// (the first peer by name holding it wins). Visibility is not checked.
// When the index names the image but its peer cannot produce it, the
// error comes with the entry (located.entry set, img zero), so callers can
// hide another project's image (find) or forget a dangling entry (Delete).
func (s *Service) locate(ctx context.Context, id string) (located, error) {
	e, err := s.Index.Get(ctx, Kind, id, "")
	switch {
	case err == nil:
		m, ok := s.Pool.Get(e.PeerID)
		if !ok || m.Cloud == nil {
			// The peer's ID is for the log: a tenant learns only that the
			// image's cloud is out of reach.
			return located{entry: &e}, faults.AtPeer(e.PeerID, fmt.Errorf("image %s is on a cloud that is not connected now; retry later: %w", id, ErrUnavailable))
		}
		img, err := m.Cloud.GetImage(ctx, e.PeerResourceID)
		if errors.Is(err, peers.ErrNotFound) {
			return located{member: m, entry: &e}, fmt.Errorf("no image found with ID %s (gone from its peer %s): %w", id, m.Peer.Name, ErrNotFound)
		}
		if err != nil {
			return located{member: m, entry: &e}, faults.AtPeer(m.Peer.Name, fmt.Errorf("image %s on peer %s: %w", id, m.Peer.Name, err))
		}
		return located{img: img, member: m, entry: &e}, nil
	case !errors.Is(err, index.ErrNotFound):
		return located{}, err
	}
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return located{}, fmt.Errorf("no image found with ID %s: %w", id, ErrNotFound)
	}
	members, _ := s.connected()
	res := peers.Gather(ctx, members, s.timeout(), func(ctx context.Context, m *peers.Member) (peers.Image, error) {
		return m.Cloud.GetImage(ctx, id)
	})
	var failed []string
	for _, r := range res {
		if r.Err == nil && r.Value.Properties[staging.MetaReplicaOf] != "" {
			// A staged copy never stands for its image: with the home
			// peer silent, the image is unavailable, not this copy.
			continue
		}
		if r.Err == nil {
			return located{img: r.Value, member: r.Member}, nil
		}
		if !errors.Is(r.Err, peers.ErrNotFound) {
			failed = append(failed, r.Member.Peer.Name)
		}
	}
	if len(failed) > 0 {
		return located{}, fmt.Errorf("image %s is on no peer that answered; %s did not: %w", id, strings.Join(failed, ", "), ErrUnavailable)
	}
	return located{}, fmt.Errorf("no image found with ID %s: %w", id, ErrNotFound)
}

// present shows a located image as the broker does.
func (s *Service) present(l located, deactivated bool) Image {
	img := l.img
	out := Image{PeerID: l.member.Peer.ID, PeerName: l.member.Peer.Name, PeerImageID: img.ID, Indexed: l.entry != nil}
	out.Hidden = img.Properties[hiddenProperty] == "true"
	if id, ok := s.managedID(img); ok {
		img.ID = id
		if p := img.Properties[peers.MetaProject]; p != "" {
			img.Project = p
		}
	}
	if l.entry != nil {
		img.ID, img.Project = l.entry.ID, l.entry.Project
	}
	props := map[string]string{}
	for k, v := range img.Properties {
		if !strings.HasPrefix(k, "cloudmux_") {
			props[k] = v
		}
	}
	img.Properties = props
	img.Tags = slices.Clone(img.Tags)
	if deactivated && img.Status == peers.ImageActive {
		img.Status = StatusDeactivated
	}
	out.Image = img
	return out
}

// visible applies Glance's visibility rules but for membership: a
// shared image is also visible to its members (whatever their status, as
// in Glance), which find and List check from the member records.
func visible(c Caller, img Image) bool {
	return c.Admin || img.Visibility == "public" || img.Visibility == "community" || (c.Project != "" && img.Project == c.Project)
}

// find locates an image the caller may see.
func (s *Service) find(ctx context.Context, c Caller, id string) (located, Image, error) {
	l, err := s.locate(ctx, id)
	if err != nil {
		if l.entry != nil && !c.Admin && l.entry.Project != c.Project {
			// Its peer did not answer, so whether it is public is unknown:
			// a 503 would confirm to another project that the ID exists.
			return located{}, Image{}, fmt.Errorf("no image found with ID %s: %w", id, ErrNotFound)
		}
		return l, Image{}, err // the entry, for Delete to forget a dangling one
	}
	img := s.present(l, false)
	if !visible(c, img) {
		member := false
		if img.Visibility == "shared" && img.Indexed {
			if _, member, err = s.membership(ctx, c.Project, img.ID); err != nil {
				return located{}, Image{}, err
			}
		}
		if !member {
			return located{}, Image{}, fmt.Errorf("no image found with ID %s: %w", id, ErrNotFound)
		}
	}
	deact, err := s.isDeactivated(ctx, img.ID)
	if err != nil {
		return located{}, Image{}, err
	}
	if deact && img.Status == peers.ImageActive {
		img.Status = StatusDeactivated
	}
	// A staged image's data is on its peer, which calls it active: it is
	// "uploading" until imported.
	if st, ok, err := s.importState(ctx, img.ID); err != nil {
		return located{}, Image{}, err
	} else if ok && (img.Status == peers.ImageQueued || img.Status == peers.ImageActive) {
		img.Status = st.Status
	}
	return l, img, nil
}

// findWritable locates an image the caller may change: its own, or any
// for a cloud admin. Seeing another project's public image but not owning
// it is ErrForbidden, as in Glance.
func (s *Service) findWritable(ctx context.Context, c Caller, id string) (located, Image, error) {
	l, img, err := s.find(ctx, c, id)
	if err != nil {
		return l, img, err
	}
	if !c.Admin && img.Project != c.Project {
		return l, img, fmt.Errorf("you are not permitted to modify image %s, owned by another project: %w", id, ErrForbidden)
	}
	return l, img, nil
}

// Get returns an image the caller may see; any other ID is ErrNotFound.
func (s *Service) Get(ctx context.Context, c Caller, id string) (Image, error) {
	_, img, err := s.find(ctx, c, id)
	return img, err
}

// Resolve is Get for the APIs that reference images (Nova's imageRef,
// EC2's image IDs): the image the caller may use, with the peer holding
// it (PeerID) and its ID there (PeerImageID). Callers booting from it
// check Status themselves (only "active" has bytes; "deactivated" must be
// refused).
func (s *Service) Resolve(ctx context.Context, c Caller, id string) (Image, error) {
	return s.Get(ctx, c, id)
}

func checkOneOf(field, v string, allowed []string) error {
	if !slices.Contains(allowed, v) {
		return fmt.Errorf("invalid value '%s' for %s: want one of %s: %w", v, field, strings.Join(allowed, ", "), ErrInvalid)
	}
	return nil
}

func checkProperties(props map[string]string) error {
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(props)) {
		switch {
		case strings.HasPrefix(k, "cloudmux_"):
			errs = append(errs, fmt.Errorf("attribute '%s' is reserved (the cloudmux_ prefix is the broker's): %w", k, ErrForbidden))
		case strings.HasPrefix(k, "os_glance"):
			errs = append(errs, fmt.Errorf("attribute '%s' is reserved (the os_glance prefix is Glance's): %w", k, ErrForbidden))
		case slices.Contains(CoreAttributes, k):
			errs = append(errs, fmt.Errorf("attribute '%s' is reserved: %w", k, ErrForbidden))
		case len(k) > 255:
			errs = append(errs, fmt.Errorf("property name %.20q...: longer than 255 characters: %w", k, ErrInvalid))
		}
	}
	return errors.Join(errs...)
}

func checkTags(tags []string) error {
	var errs []error
	for _, t := range tags {
		if t == "" || len(t) > 255 {
			errs = append(errs, fmt.Errorf("tag %q: want 1 to 255 characters: %w", t, ErrInvalid))
		}
	}
	return errors.Join(errs...)
}

// Validate returns every problem of the spec at once.
func (spec CreateSpec) Validate() error {
	var errs []error
	if spec.ID != "" {
		if _, err := uuid.Parse(spec.ID); err != nil || len(spec.ID) != 36 {
			errs = append(errs, fmt.Errorf("id '%s' is not a UUID: %w", spec.ID, ErrInvalid))
		}
	}
	if len(spec.Name) > 255 {
		errs = append(errs, fmt.Errorf("name: longer than 255 characters: %w", ErrInvalid))
	}
	if spec.DiskFormat == "" {
		errs = append(errs, fmt.Errorf("disk_format is required: %w", ErrInvalid))
	} else if err := checkOneOf("disk_format", spec.DiskFormat, DiskFormats); err != nil {
		errs = append(errs, err)
	}
	if spec.ContainerFormat == "" {
		errs = append(errs, fmt.Errorf("container_format is required: %w", ErrInvalid))
	} else if err := checkOneOf("container_format", spec.ContainerFormat, ContainerFormats); err != nil {
		errs = append(errs, err)
	}
	if spec.Visibility != "" {
		if err := checkOneOf("visibility", spec.Visibility, Visibilities); err != nil {
			errs = append(errs, err)
		}
	}
	if spec.MinRAMMiB < 0 || spec.MinDiskGiB < 0 {
		errs = append(errs, fmt.Errorf("min_ram and min_disk may not be negative: %w", ErrInvalid))
	}
	errs = append(errs, checkTags(spec.Tags), checkProperties(spec.Properties))
	return errors.Join(errs...)
}

// Create registers a queued image on the peer placement picks among those
// that can hold image bytes, falling back to the next allowed peer when
// one is out of capacity, and indexes it under its broker ID, which is also
// its ID on the peer. If the index write fails the peer's image is removed
// again. The data comes later, through Upload.
func (s *Service) Create(ctx context.Context, c Caller, spec CreateSpec) (Image, error) {
	ps, err := s.prepare(ctx, c, spec)
	if err != nil {
		return Image{}, err
	}
	id, owner := ps.ID, ps.Project

	// Only peers that can take image bytes are candidates; the others are
	// reasons, like the disconnected ones.
	members, down := s.connected()
	var candidates []registry.Peer
	var reasons []string
	for _, m := range members {
		if _, ok := m.Cloud.(peers.ImageData); !ok {
			reasons = append(reasons, m.Peer.Name+": cannot store image data")
			continue
		}
		if spec.Zone != "" && m.Peer.Name != spec.Zone {
			reasons = append(reasons, m.Peer.Name+": not zone "+spec.Zone)
			continue
		}
		candidates = append(candidates, m.Peer)
	}
	for _, name := range down {
		reasons = append(reasons, name+": not connected")
	}
	var tried []string
	full := false // a peer refused for capacity (not only unavailable ones)
	if len(candidates) > 0 {
		decision, err := s.Placer.Place(ctx, policy.Request{Kind: Kind, Project: owner, AvailabilityZone: spec.Zone}, candidates)
		if err != nil {
			return Image{}, err
		}
		for _, p := range decision.Allowed() {
			m, ok := s.Pool.Get(p.ID)
			if !ok || m.Cloud == nil {
				continue
			}
			img, err := m.Cloud.CreateImage(ctx, ps)
			if errors.Is(err, peers.ErrCapacity) || errors.Is(err, peers.ErrUnavailable) {
				s.dropHalfCreated(ctx, m, id, err)
				s.Log.WithError(err).WithFields(logrus.Fields{"image": id, "peer": p.Name}).Warn("image create: peer refused; trying the next")
				tried = append(tried, fmt.Sprintf("%s: %s", p.Name, faults.Reason(err)))
				full = full || errors.Is(err, peers.ErrCapacity)
				continue
			}
			if errors.Is(err, peers.ErrConflict) {
				return Image{}, fmt.Errorf("image ID %s already exists on peer %s: %w", id, p.Name, ErrConflict)
			}
			if err != nil {
				return Image{}, fmt.Errorf("creating image on peer %s: %w", p.Name, err)
			}
			e := index.Entry{Kind: Kind, ID: id, Project: owner, PeerID: p.ID, PeerResourceID: img.ID, Name: img.Name, CreatedAt: img.CreatedAt}
			if err := s.Index.Put(ctx, e); err != nil {
				if derr := m.Cloud.DeleteImage(context.WithoutCancel(ctx), img.ID); derr != nil {
					s.Log.WithError(derr).WithFields(logrus.Fields{"image": id, "peer": p.Name}).Warn("image left on its peer after a failed index write")
				}
				if errors.Is(err, registry.ErrConflict) {
					return Image{}, fmt.Errorf("image ID %s already exists: %w", id, ErrConflict)
				}
				return Image{}, fmt.Errorf("indexing image %s: %w", id, err)
			}
			if spec.ID != "" {
				// A deactivation recorded for an earlier image of this ID (a
				// deactivate racing that image's delete) must not apply to
				// this one; the ID is this image's now that it is indexed.
				if err := s.Store.Delete(ctx, deactivatedPrefix+id); err != nil && !errors.Is(err, registry.ErrNotFound) {
					s.Log.WithError(err).WithField("image", id).Warn("could not clear a stale deactivation record")
				} else {
					s.deactivations().Deleted(deactivatedPrefix + id)
				}
			}
			s.Log.WithFields(logrus.Fields{"image": id, "peer": p.Name, "project": owner}).Info("image created")
			return s.present(located{img: img, member: m, entry: &e}, false), nil
		}
		reasons = append(reasons, decision.Explain())
	}
	why := strings.Join(append(tried, reasons...), "; ")
	if len(tried) > 0 && !full {
		// Every allowed peer was only unavailable: worth a retry, unlike
		// a pool that is full or that policy rules out.
		return Image{}, fmt.Errorf("%s: %w: %w", why, ErrNoPeer, ErrUnavailable)
	}
	return Image{}, fmt.Errorf("%s: %w", why, ErrNoPeer)
}

// dropHalfCreated removes the image a peer may have made of a create
// that failed for want of an answer (a timeout after the peer acted):
// left there, it is a queued image the caller was told does not exist,
// and, under the ID of the image created on the next peer, a copy without
// data that a server could be booted from. Refusals made nothing. Best
// effort: what cannot be removed is logged.
func (s *Service) dropHalfCreated(ctx context.Context, m *peers.Member, id string, cause error) {
	if !errors.Is(cause, peers.ErrUnavailable) && !errors.Is(cause, context.DeadlineExceeded) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout())
	defer cancel()
	log := s.Log.WithFields(logrus.Fields{"image": id, "peer": m.Peer.Name})
	img, err := m.Cloud.GetImage(ctx, id)
	switch {
	case errors.Is(err, peers.ErrNotFound):
		return
	case err != nil:
		log.WithError(err).Warn("could not check the peer for a half-made image; it may keep an orphan")
		return
	}
	if mid, ok := s.managedID(img); !ok || mid != id {
		return // not ours: an image of that ID the peer had before
	}
	if err := m.Cloud.DeleteImage(ctx, id); err != nil && !errors.Is(err, peers.ErrNotFound) {
		log.WithError(err).Error("could not remove a half-made image; the peer keeps an orphan")
		return
	}
	log.Info("removed an image the peer made for a create that failed")
}

// copies runs fn on every other connected peer holding a copy of the
// image, in parallel, with the copy's ID there: the image's own ID (the
// stager keeps it where the peer allows), or another one the stager
// recorded (a peer never reuses a deleted image's ID). A copy is an image
// marked as a replica of this one, or carrying its broker ID. Failures are
// logged, not returned: the home peer is the image's truth.
func (s *Service) copies(ctx context.Context, l located, what string, fn func(ctx context.Context, m *peers.Member, copyID string) error) {
	members, _ := s.connected()
	members = slices.DeleteFunc(members, func(m *peers.Member) bool { return m.Peer.ID == l.member.Peer.ID })
	if len(members) == 0 {
		return
	}
	elsewhere := map[string][]string{} // peer ID -> copy IDs other than the image's
	if s.Replicas != nil {
		reps, err := s.Replicas.Replicas(ctx, l.img.ID)
		if err != nil {
			s.Log.WithError(err).WithField("image", l.img.ID).Warn("reading the image's staged copies")
		}
		for _, r := range reps {
			if r.PeerImageID != l.img.ID {
				elsewhere[r.PeerID] = append(elsewhere[r.PeerID], r.PeerImageID)
			}
		}
	}
	res := peers.Gather(ctx, members, s.timeout(), func(ctx context.Context, m *peers.Member) (bool, error) {
		var errs []error
		for _, copyID := range append([]string{l.img.ID}, elsewhere[m.Peer.ID]...) {
			img, err := m.Cloud.GetImage(ctx, copyID)
			if errors.Is(err, peers.ErrNotFound) {
				continue
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			ours := img.Properties[staging.MetaReplicaOf] == l.img.ID ||
				(img.Properties[peers.MetaID] != "" && img.Properties[peers.MetaID] == l.img.Properties[peers.MetaID])
			if !ours {
				continue // the same ID, but not a copy of this image
			}
			errs = append(errs, fn(ctx, m, copyID))
		}
		return true, errors.Join(errs...)
	})
	for _, r := range res {
		if r.Err != nil {
			s.Log.WithError(r.Err).WithFields(logrus.Fields{"image": l.img.ID, "peer": r.Member.Peer.Name, "op": what}).Warn("a copy of the image was not updated")
		}
	}
}

// Update changes an image's metadata on its peer (and on the peers holding
// copies of it). Making an image public takes a cloud admin.
func (s *Service) Update(ctx context.Context, c Caller, id string, p Patch) (Image, error) {
	l, cur, err := s.findWritable(ctx, c, id)
	if err != nil {
		return Image{}, err
	}
	if p.Visibility != nil {
		if err := checkOneOf("visibility", *p.Visibility, Visibilities); err != nil {
			return Image{}, err
		}
		if *p.Visibility == "public" && cur.Visibility != "public" && !c.Admin {
			return Image{}, fmt.Errorf("only a cloud admin may publicize an image (visibility public): %w", ErrForbidden)
		}
	}
	if p.Name != nil && len(*p.Name) > 255 {
		return Image{}, fmt.Errorf("name: longer than 255 characters: %w", ErrInvalid)
	}
	if (p.MinRAMMiB != nil && *p.MinRAMMiB < 0) || (p.MinDiskGiB != nil && *p.MinDiskGiB < 0) {
		return Image{}, fmt.Errorf("min_ram and min_disk may not be negative: %w", ErrInvalid)
	}
	remove := map[string]string{}
	for _, k := range p.RemoveProperties {
		remove[k] = ""
	}
	if err := errors.Join(checkProperties(p.SetProperties), checkProperties(remove), checkTags(p.AddTags)); err != nil {
		return Image{}, err
	}
	pp := p.ImagePatch
	pp.SetProperties = maps.Clone(p.SetProperties)
	pp.RemoveProperties = slices.Clone(p.RemoveProperties)
	if p.Hidden != nil {
		if *p.Hidden {
			if pp.SetProperties == nil {
				pp.SetProperties = map[string]string{}
			}
			pp.SetProperties[hiddenProperty] = "true"
		} else {
			pp.RemoveProperties = append(pp.RemoveProperties, hiddenProperty)
		}
	}
	img, err := l.member.Cloud.UpdateImage(ctx, l.img.ID, pp)
	if err != nil {
		return Image{}, fmt.Errorf("updating image %s on peer %s: %w", id, l.member.Peer.Name, err)
	}
	s.copies(ctx, l, "update", func(ctx context.Context, m *peers.Member, copyID string) error {
		_, err := m.Cloud.UpdateImage(ctx, copyID, pp)
		return err
	})
	l.img = img
	out := s.present(l, cur.Status == StatusDeactivated)
	return out, nil
}

// AddTag tags an image (tags are a set: adding one twice is no error).
func (s *Service) AddTag(ctx context.Context, c Caller, id, tag string) error {
	_, err := s.Update(ctx, c, id, Patch{ImagePatch: peers.ImagePatch{AddTags: []string{tag}}})
	return err
}

// RemoveTag untags an image; a tag it lacks is ErrNotFound, as in Glance.
func (s *Service) RemoveTag(ctx context.Context, c Caller, id, tag string) error {
	_, img, err := s.findWritable(ctx, c, id)
	if err != nil {
		return err
	}
	if !slices.Contains(img.Tags, tag) {
		return fmt.Errorf("tag %s not found on image %s: %w", tag, id, ErrNotFound)
	}
	_, err = s.Update(ctx, c, id, Patch{ImagePatch: peers.ImagePatch{RemoveTags: []string{tag}}})
	return err
}

// Delete deletes an image from its peer and the peers holding copies, and
// forgets it. A protected image is ErrForbidden.
func (s *Service) Delete(ctx context.Context, c Caller, id string) error {
	l, img, err := s.findWritable(ctx, c, id)
	if errors.Is(err, ErrNotFound) && l.entry != nil && l.member != nil {
		// The caller's image is indexed but gone from its peer: a delete
		// cut short between the peer and the index. Finishing it is the
		// only way the entry ever goes (every other call says 404).
		l.img.ID = l.entry.PeerResourceID
		l.img.Properties = map[string]string{peers.MetaID: l.entry.ID}
		return s.forget(ctx, c, l, id)
	}
	if err != nil {
		return err
	}
	if img.Protected {
		return fmt.Errorf("image %s is protected and cannot be deleted: %w", id, ErrForbidden)
	}
	err = l.member.Cloud.DeleteImage(ctx, l.img.ID)
	if errors.Is(err, peers.ErrConflict) {
		// Glance's InUseByStore: a 409 with the reason, not a 403 that
		// reads as a permission the caller lacks.
		return faults.WithCause(fmt.Errorf("image %s could not be deleted because it is in use: %w", id, ErrConflict), err)
	}
	if err != nil && !errors.Is(err, peers.ErrNotFound) {
		return fmt.Errorf("deleting image %s on peer %s: %w", id, l.member.Peer.Name, err)
	}
	return s.forget(ctx, c, l, id)
}

// forget finishes a delete once the home peer's image is gone: the staged
// copies, the index entry, the deactivation record. The index goes last so
// that a failure before it leaves the entry for a retried delete to find.
func (s *Service) forget(ctx context.Context, c Caller, l located, id string) error {
	s.copies(ctx, l, "delete", func(ctx context.Context, m *peers.Member, copyID string) error {
		return m.Cloud.DeleteImage(ctx, copyID)
	})
	if s.Replicas != nil {
		if err := s.Replicas.Forget(ctx, l.img.ID); err != nil {
			s.Log.WithError(err).WithField("image", id).Warn("staged-copy records of a deleted image left behind")
		}
	}
	if err := s.Store.Delete(ctx, deactivatedPrefix+id); err != nil && !errors.Is(err, registry.ErrNotFound) {
		s.Log.WithError(err).WithField("image", id).Warn("deactivation record of a deleted image left behind")
	} else {
		s.deactivations().Deleted(deactivatedPrefix + id)
	}
	s.forgetMembers(ctx, id)
	if _, ok, _ := s.importState(ctx, id); ok {
		s.dropImport(ctx, id)
	}
	if l.entry != nil {
		if err := s.Index.Delete(ctx, *l.entry); err != nil {
			return fmt.Errorf("forgetting image %s: %w", id, err)
		}
	}
	s.Log.WithFields(logrus.Fields{"image": id, "peer": l.member.Peer.Name, "project": c.Project}).Info("image deleted")
	return nil
}

// Deactivate makes an active image unusable (no downloads but by cloud
// admins, so no boots) until Reactivate. Cloud admins only, as in Glance;
// deactivating a deactivated image changes nothing.
func (s *Service) Deactivate(ctx context.Context, c Caller, id string) error {
	return s.setDeactivated(ctx, c, id, true)
}

// Reactivate undoes Deactivate. Cloud admins only; reactivating an active
// image changes nothing.
func (s *Service) Reactivate(ctx context.Context, c Caller, id string) error {
	return s.setDeactivated(ctx, c, id, false)
}

func (s *Service) setDeactivated(ctx context.Context, c Caller, id string, on bool) error {
	if !c.Admin {
		return fmt.Errorf("deactivate and reactivate take a cloud admin: %w", ErrForbidden)
	}
	_, img, err := s.find(ctx, c, id)
	if err != nil {
		return err
	}
	verb := map[bool]string{true: "deactivate", false: "reactivate"}[on]
	if img.Status != peers.ImageActive && img.Status != StatusDeactivated {
		return fmt.Errorf("not allowed to %s image in status '%s': %w", verb, img.Status, ErrForbidden)
	}
	if !on {
		if err := s.Store.Delete(ctx, deactivatedPrefix+img.ID); err != nil {
			return err
		}
		s.deactivations().Deleted(deactivatedPrefix + img.ID)
		return nil
	}
	rec, _ := json.Marshal(map[string]any{"id": img.ID, "by_project": c.Project, "at": time.Now().UTC()})
	at, err := s.Store.Put(ctx, deactivatedPrefix+img.ID, rec)
	if err != nil {
		return fmt.Errorf("deactivating image %s: %w", id, err)
	}
	s.deactivations().Wrote(deactivatedPrefix+img.ID, img.ID, at)
	s.Log.WithField("image", id).Info("image deactivated")
	return nil
}
