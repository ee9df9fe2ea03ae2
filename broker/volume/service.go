package volume

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// Kind is the resource index kind of volumes.
const Kind = "volume"

// kindServer is the index kind of servers, whose broker IDs attachments
// show.
const kindServer = "server"

// metaPrefix marks the broker's own metadata keys: never shown, never
// set by users.
const metaPrefix = "cloudmux_"

// metaSnapshot and metaSource are the marks on a peer's volume naming,
// by broker ID, the snapshot or volume it was copied from: shown as
// snapshot_id and source_volid, and kept with the volume on its peer.
const (
	metaSnapshot = metaPrefix + "snapshot_id"
	metaSource   = metaPrefix + "source_volid"
	// metaType is the name of the volume's type when it was made.
	metaType = metaPrefix + "volume_type"
)

// MaxSizeGiB is the largest volume the broker creates.
const MaxSizeGiB = 16384

// Pool is the part of peers.Pool the service uses.
type Pool interface {
	Members() []*peers.Member
	Get(id string) (*peers.Member, bool)
}

// Images resolves imageRef for volumes made from images: image.Service.
type Images interface {
	Resolve(ctx context.Context, c image.Caller, id string) (image.Image, error)
}

var _ Images = (*image.Service)(nil)

// Store is the part of registry.Store the service uses: what peers cannot
// keep (names, descriptions and metadata changed after the create).
type Store interface {
	Get(ctx context.Context, key string) (registry.KV, error)
	CAS(ctx context.Context, key string, value []byte, index uint64) (uint64, error)
	Delete(ctx context.Context, key string) error
	List(ctx context.Context, prefix string) ([]registry.KV, uint64, error)
	Watch(ctx context.Context, prefix string, index uint64) ([]registry.KV, uint64, error)
}

// Service is the volume service layer, behind Cinder, the EC2 volume
// actions and the servers service's boot volumes: the only code that
// calls a peer's volume API, so every front end applies the same
// placement, tenancy and quota rules.
//
//   - IDs: every volume gets a broker-wide UUID, recorded in the resource
//     index (Kind) with its peer and its ID there, and written on the
//     peer's volume (peers.MetaID, MetaProject, MetaBrokerID) so the index
//     can be rebuilt from the peers. Only broker IDs are accepted: a
//     peer's raw volume ID is not found.
//
//   - Tenancy: a caller sees and touches only its project's volumes;
//     another project's ID is ErrNotFound, never "forbidden".
//
//   - Placement: Create asks Placer among the connected peers and tries
//     the allowed ones best first; a peer out of capacity or unreachable
//     hands over to the next. A volume from an image is made where the
//     image lives. The index write is rolled back (the peer's volume
//     deleted) if it fails.
//
//   - Lists fan out only to the peers holding the project's volumes, in
//     parallel, each under PeerTimeout; peers that do not answer are named
//     in Page.Failed and their volumes left out.
//
//   - Quota: every volume counts {volumes: 1, gigabytes: size} against its
//     project, reserved before a peer is asked (so concurrent creates
//     never pass the limit), committed when the peer made it and freed
//     once when it is deleted. A server's boot volume is a volume; server
//     root disks are not.
//
// Its zero value is not usable: set Pool, Index, Placer, Quota, Store and
// Log.
type Service struct {
	Pool   Pool
	Index  *index.Index
	Placer policy.Placer
	// Images, when set, lets volumes be made from images (ImageRef);
	// without it such creates are refused.
	Images Images
	// Quota counts the project's volumes and gigabytes (quota.Ledger).
	Quota Ledger
	Store Store
	// Attrs, when set (and Run), serves the volumes' attrs from memory;
	// without it they are read from the Store.
	Attrs *AttrsMemory
	// Types, when set (and Run), serves the volume types from memory;
	// without it they are read from the Store.
	Types *TypesMemory
	Log   logrus.FieldLogger
	// BrokerID marks every volume this installation creates.
	BrokerID string
	// PeerTimeout bounds each peer's part of a fan-out and every call to
	// one peer but a create; default 10s.
	PeerTimeout time.Duration
}

func (s *Service) timeout() time.Duration {
	if s.PeerTimeout > 0 {
		return s.PeerTimeout
	}
	return 10 * time.Second
}

// Caller is who asks: the project its token is scoped to, the user, and
// whether it is a cloud admin (who may use any project's images).
type Caller struct {
	Project string
	User    string
	Admin   bool
}

// CallerOf returns the caller a Keystone token stands for.
func CallerOf(t identity.Token) Caller {
	return Caller{Project: t.ProjectID, User: t.UserID, Admin: t.CloudAdmin()}
}

// Volume is a volume as the front ends show it: under its broker ID, with
// the user's metadata only (no cloudmux_ keys) and attachments naming
// servers by their broker IDs.
type Volume struct {
	ID, Project       string
	Name, Description string
	SizeGiB           int
	Status            peers.VolumeStatus
	VolumeType        string
	Bootable          bool
	// ImageID is the image the volume was made from, empty for an empty
	// volume.
	ImageID string
	// SnapshotID and SourceVolID are the snapshot or volume it was copied
	// from (broker IDs), when any.
	SnapshotID, SourceVolID string
	// Zone is the availability zone: the name of the peer holding it.
	Zone        string
	Metadata    map[string]string
	Attachments []Attachment
	CreatedAt   time.Time
	// UpdatedAt is when the broker last changed its name, description or
	// metadata; zero when it never did.
	UpdatedAt time.Time
}

// Attachment is a volume's attachment to a server.
type Attachment struct {
	// ID is the attachment's own ID.
	ID string
	// ServerID is the server's broker ID; for a server the broker did not
	// create (Managed false), the peer's ID for it.
	ServerID string
	Managed  bool
	Device   string
}

// Ref says where a volume of the caller's project lives: for the servers
// service, which attaches it on that peer. It never leaves the broker.
type Ref struct {
	ID             string
	PeerID         string
	PeerName       string
	PeerResourceID string
}

// CreateSpec is a new volume. SizeGiB is required.
type CreateSpec struct {
	Name        string
	Description string
	SizeGiB     int
	// AvailabilityZone pins the volume to the peer of that name.
	AvailabilityZone string
	VolumeType       string
	Metadata         map[string]string
	// ImageRef is an image's broker ID: the volume is made from it, on the
	// peer holding it.
	ImageRef string
	// SnapshotID (a snapshot's broker ID) or SourceVolID (a volume's)
	// makes the volume a copy of it, on its peer; a zero SizeGiB takes its
	// size.
	SnapshotID, SourceVolID string
	// Marks are cloudmux_ metadata an internal caller writes on the peer's
	// volume to find it again (the deployment engine's tags; see Marked).
	// No API takes them from a user.
	Marks map[string]string
}

// validate reports every problem with the spec, naming the first field.
func (spec CreateSpec) validate(images bool) error {
	var fields, problems []string
	add := func(field, msg string) {
		fields, problems = append(fields, field), append(problems, field+": "+msg)
	}
	if spec.SizeGiB < 1 || spec.SizeGiB > MaxSizeGiB {
		add("size", fmt.Sprintf("must be a whole number of GiB from 1 to %d", MaxSizeGiB))
	}
	if len(spec.Name) > 255 {
		add("name", "at most 255 characters")
	}
	if len(spec.Description) > 255 {
		add("description", "at most 255 characters")
	}
	if err := checkMetadata(spec.Metadata); err != nil {
		add("metadata", err.Error())
	}
	if spec.ImageRef != "" && !images {
		add("imageRef", "volumes from images are not offered by this broker")
	}
	if len(problems) > 0 {
		return &Error{Field: fields[0], Message: "Invalid input received: " + strings.Join(problems, "; "), Err: ErrInvalid}
	}
	return nil
}

// checkMetadata refuses reserved and oversized metadata.
func checkMetadata(meta map[string]string) error {
	var problems []string
	for k, v := range meta {
		switch {
		case strings.HasPrefix(k, metaPrefix):
			problems = append(problems, k+": the "+metaPrefix+" prefix is reserved")
		case k == "" || len(k) > 255:
			problems = append(problems, fmt.Sprintf("key %.20q: must be 1 to 255 characters", k))
		case len(v) > 255:
			problems = append(problems, k+": the value is longer than 255 characters")
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, ", "))
	}
	return nil
}

// Create places the volume, tries the allowed peers best first, and
// indexes it. It returns at once with the volume as the peer has it
// (usually creating), as Cinder does.
func (s *Service) Create(ctx context.Context, c Caller, spec CreateSpec) (Volume, error) {
	from, err := s.copySource(ctx, c, &spec)
	if err != nil {
		return Volume{}, err
	}
	if err := spec.validate(s.Images != nil); err != nil {
		return Volume{}, err
	}
	if az := spec.AvailabilityZone; az != "" && !peers.Named(s.Pool.Members(), az) {
		return Volume{}, invalid("availability_zone", "Availability zone '%s' is invalid.", az)
	}
	zone, peerImage, err := s.image(ctx, c, spec)
	if err != nil {
		return Volume{}, err
	}
	if from.zone != "" {
		zone = from.zone // a copy is made on its source's peer
	}
	vt, err := s.GetType(ctx, c, cmp.Or(spec.VolumeType, DefaultTypeID))
	if err != nil {
		return Volume{}, err
	}
	id := uuid.NewString()
	meta := maps.Clone(spec.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	for k, v := range spec.Marks {
		if strings.HasPrefix(k, "cloudmux_") {
			meta[k] = v
		}
	}
	meta[peers.MetaID], meta[peers.MetaProject], meta[peers.MetaBrokerID] = id, c.Project, s.BrokerID
	if spec.SnapshotID != "" {
		meta[metaSnapshot] = spec.SnapshotID
	}
	if spec.SourceVolID != "" {
		meta[metaSource] = spec.SourceVolID
	}
	meta[metaType] = vt.Name
	ps := peers.VolumeSpec{Name: spec.Name, Description: spec.Description, Project: c.Project,
		SizeGiB: spec.SizeGiB, VolumeType: vt.ExtraSpecs[SpecPeerType], Metadata: meta, ImageID: peerImage,
		SnapshotID: from.peerSnapshot, SourceVolumeID: from.peerVolume}

	// The type's labels bind placement: only peers carrying them qualify.
	req := policy.Request{Kind: Kind, Project: c.Project, User: c.User, ResourceID: id,
		Name: spec.Name, DiskGiB: spec.SizeGiB, AvailabilityZone: zone, RequiredLabels: vt.Labels()}
	res, err := s.reserve(ctx, c, volumeCharge(spec.SizeGiB), Kind+" "+id, &req)
	if err != nil {
		return Volume{}, err
	}
	done := false // the reservation was committed, or the create undone
	defer s.release(ctx, res, &done, id)
	candidates, disconnected := peers.Candidates(s.Pool.Members())
	decision, err := s.Placer.Place(ctx, req, candidates)
	if err != nil {
		return Volume{}, err
	}
	var tried []string
	for _, p := range decision.Allowed() {
		m, ok := s.Pool.Get(p.ID)
		if !ok || m.Cloud == nil {
			continue
		}
		v, err := m.Cloud.CreateVolume(ctx, ps)
		if errors.Is(err, peers.ErrCapacity) || errors.Is(err, peers.ErrUnavailable) {
			// The peer's own words (its IDs, its address) stay in the log.
			s.Log.WithError(err).WithFields(logrus.Fields{"peer": p.Name, "volume": id}).Info("peer refused a volume")
			tried = append(tried, p.Name+": no room or not reachable")
			continue
		}
		if err != nil {
			return Volume{}, peerErr(err, p.Name, "creating the volume on "+p.Name)
		}
		done = true
		vol, err := s.record(ctx, c, id, m, v, res)
		if err == nil && from.zone != "" && from.bootable != vol.Bootable {
			if err := s.updateAttrs(ctx, c, id, UpdateSpec{Bootable: &from.bootable}, nil); err != nil {
				s.Log.WithError(err).WithField("volume", id).Warn("a copy's bootable flag not kept; it shows the peer's")
			} else {
				vol.Bootable = from.bootable
			}
		}
		return vol, err
	}
	why := decision.Explain()
	if len(tried) > 0 {
		why = strings.Join(tried, "; ") + "; " + why
	}
	for _, name := range disconnected {
		why += "; " + name + ": not connected"
	}
	return Volume{}, &Error{Message: fmt.Sprintf("No peer can hold a %d GiB volume: %s", spec.SizeGiB, why), Err: ErrNoCapacity}
}

// image resolves a create's imageRef: the zone the volume must be made in
// (the image's peer; the spec's zone without an image) and the image's ID
// there.
func (s *Service) image(ctx context.Context, c Caller, spec CreateSpec) (zone, peerImage string, err error) {
	ref := spec.ImageRef
	if ref == "" {
		return spec.AvailabilityZone, "", nil
	}
	img, err := s.Images.Resolve(ctx, image.Caller{Project: c.Project, Admin: c.Admin}, ref)
	switch {
	case errors.Is(err, image.ErrNotFound):
		return "", "", invalid("imageRef", "Invalid input received: imageRef: image %s could not be found", ref)
	case errors.Is(err, image.ErrUnavailable):
		return "", "", &Error{Field: "imageRef", Message: fmt.Sprintf("The peer holding image %s is not available", ref), Err: ErrUnavailable}
	case err != nil:
		return "", "", err
	}
	if img.Status != peers.ImageActive {
		return "", "", invalid("imageRef", "Invalid input received: imageRef: image %s is %s, not active", ref, img.Status)
	}
	if need := max(img.MinDiskGiB, int((img.Size+(1<<30)-1)>>30)); spec.SizeGiB < need {
		return "", "", invalid("size", "Invalid input received: size: image %s needs a volume of at least %d GiB", ref, need)
	}
	// A volume from an image is made where the image lives: the peer
	// copies its own image's bytes into the volume.
	if az := spec.AvailabilityZone; az != "" && az != img.PeerName {
		return "", "", invalid("availability_zone", "Invalid input received: availability_zone: image %s lives in zone %s, not %s", ref, img.PeerName, az)
	}
	return img.PeerName, img.PeerImageID, nil
}

// copyFrom is where a copy is made (its source's peer, by name) and what
// it copies there (the peer's IDs).
type copyFrom struct {
	zone, peerSnapshot, peerVolume string
	// bootable is the source volume's flag as shown (os-set_bootable may
	// have set it in the broker only): the copy shows it too.
	bootable bool
}

// copySource resolves a create's snapshot_id or source_volid in the
// caller's project (another project's is not found): the copy is made on
// the source's peer, at least as large as the source, its size when the
// spec gives none.
func (s *Service) copySource(ctx context.Context, c Caller, spec *CreateSpec) (copyFrom, error) {
	var from copyFrom
	switch {
	case spec.SnapshotID == "" && spec.SourceVolID == "":
		return from, nil
	case spec.SnapshotID != "" && spec.SourceVolID != "" || spec.ImageRef != "":
		return from, invalid("snapshot_id", "Invalid input received: give at most one of imageRef, snapshot_id and source_volid")
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	var size int
	what := "snapshot " + spec.SnapshotID
	if spec.SnapshotID != "" {
		e, m, sn, err := s.lookupSnapshot(ctx, c, spec.SnapshotID)
		if err != nil {
			return from, err
		}
		p, err := sn.GetSnapshot(pctx, e.PeerResourceID)
		if err != nil {
			return from, snapshotPeerErr(err, m.Peer.Name, "reading "+what)
		}
		if p.Status != peers.SnapshotAvailable {
			return from, invalid("snapshot_id", "Invalid snapshot: Originating snapshot status must be one of 'available' values; %s is %s", what, p.Status)
		}
		from, size = copyFrom{zone: m.Peer.Name, peerSnapshot: p.ID}, p.SizeGiB
		if v, err := s.Get(ctx, c, cmp.Or(p.Metadata[metaVolume], e.Parent)); err == nil {
			from.bootable = v.Bootable
		}
	} else {
		what = "source volume " + spec.SourceVolID
		_, m, v, err := s.locateVolume(ctx, c, spec.SourceVolID)
		if err != nil {
			return from, err
		}
		if _, err := snapshotsOf(m); err != nil {
			return from, err
		}
		from, size = copyFrom{zone: m.Peer.Name, peerVolume: v.ID}, v.SizeGiB
		if shown, err := s.Get(ctx, c, spec.SourceVolID); err == nil {
			from.bootable = shown.Bootable
		}
	}
	if spec.SizeGiB == 0 {
		spec.SizeGiB = size
	}
	if spec.SizeGiB > 0 && spec.SizeGiB < size {
		return from, invalid("size", "Invalid input received: size: %d GiB is smaller than %s (%d GiB)", spec.SizeGiB, what, size)
	}
	if az := spec.AvailabilityZone; az != "" && az != from.zone {
		return from, invalid("availability_zone", "Invalid input received: availability_zone: %s lives in zone %s, not %s", what, from.zone, az)
	}
	return from, nil
}

// BootSpec is a server's root volume, made from an image on the peer the
// server's placement chose: the servers service resolved the image with
// the caller's visibility and staged it there, so PeerImageID is the
// image's ID on that peer, never a user's input.
type BootSpec struct {
	Name        string
	SizeGiB     int
	PeerID      string
	PeerImageID string
}

// CreateBoot makes a server's root volume: a volume of the project like
// any other (listed, counted, deletable through every front end), on the
// server's peer without a placement of its own.
func (s *Service) CreateBoot(ctx context.Context, c Caller, spec BootSpec) (Volume, error) {
	if spec.SizeGiB < 1 || spec.SizeGiB > MaxSizeGiB {
		return Volume{}, invalid("volume_size", "Invalid input received: volume_size must be a whole number of GiB from 1 to %d", MaxSizeGiB)
	}
	m, ok := s.Pool.Get(spec.PeerID)
	if !ok || m.Cloud == nil {
		return Volume{}, &Error{Message: "The server's peer is not connected", Err: ErrUnavailable}
	}
	id := uuid.NewString()
	res, err := s.reserve(ctx, c, volumeCharge(spec.SizeGiB), Kind+" "+id, nil)
	if err != nil {
		return Volume{}, err
	}
	done := false
	defer s.release(ctx, res, &done, id)
	cctx, cancel := context.WithTimeout(ctx, s.timeout())
	v, err := m.Cloud.CreateVolume(cctx, peers.VolumeSpec{Name: spec.Name, Project: c.Project, SizeGiB: spec.SizeGiB, ImageID: spec.PeerImageID,
		Metadata: map[string]string{peers.MetaID: id, peers.MetaProject: c.Project, peers.MetaBrokerID: s.BrokerID}})
	cancel()
	if err != nil {
		return Volume{}, fmt.Errorf("root volume on %s: %w", m.Peer.Name, err)
	}
	done = true
	return s.record(ctx, c, id, m, v, res)
}

// record commits the quota reservation of a volume the peer just created
// and indexes it, deleting it again (and freeing its quota) if that
// fails, so nothing is left unowned or uncounted. The commit comes first:
// a broker dying between it and the index write leaves a counted volume
// an index rebuild adopts, never an uncounted one.
func (s *Service) record(ctx context.Context, c Caller, id string, m *peers.Member, v peers.Volume, res *quota.Reservation) (Volume, error) {
	e := index.Entry{Kind: Kind, ID: id, Project: c.Project, PeerID: m.Peer.ID, PeerResourceID: v.ID, Name: v.Name, CreatedAt: v.CreatedAt,
		Charge: res.Amounts()}
	undo := func(why error) error {
		if derr := m.Cloud.DeleteVolume(context.WithoutCancel(ctx), v.ID); derr != nil {
			s.Log.WithError(derr).WithFields(logrus.Fields{"volume": id, "peer": m.Peer.Name}).Error("volume left on its peer after a failed create; an index rebuild adopts it")
		}
		return why
	}
	if err := res.Commit(context.WithoutCancel(ctx)); err != nil {
		// The reservation stays until it expires: it frees itself.
		return Volume{}, undo(fmt.Errorf("counting volume %s in its quota: %w", id, err))
	}
	if err := s.Index.Put(ctx, e); err != nil {
		if ferr := s.Quota.Free(context.WithoutCancel(ctx), quota.Scope{Project: c.Project}, e.Charge); ferr != nil {
			s.Log.WithError(ferr).WithField("volume", id).Error("quota of an undone volume not freed")
		}
		return Volume{}, undo(fmt.Errorf("indexing volume %s: %w", id, err))
	}
	s.Log.WithFields(logrus.Fields{"volume": id, "peer": m.Peer.Name, "project": c.Project, "size_gib": v.SizeGiB}).Info("volume created")
	return present(e, m, v, attrs{}, nil), nil
}

// peerErr turns a peer's refusal into the service's sentinels, with a
// message fit for the user: the kind of refusal, never the peer's own
// text, which stays in the log (faults.WithCause) under the peer's name
// (faults.AtPeer), so whoever holds the request ID knows which cloud.
func peerErr(err error, peer, doing string) error {
	var e *Error
	switch {
	case errors.Is(err, peers.ErrNotFound):
		e = &Error{Message: doing + ": the volume is gone from its cloud", Err: ErrNotFound}
	case errors.Is(err, peers.ErrConflict):
		e = &Error{Message: "Invalid volume: " + doing + ": " + faults.Reason(err), Err: ErrConflict}
	case errors.Is(err, peers.ErrInvalid):
		e = &Error{Message: "Invalid input received: " + doing + ": " + faults.Reason(err), Err: ErrInvalid}
	case errors.Is(err, peers.ErrCapacity):
		e = &Error{Message: doing + ": " + faults.Reason(err), Err: ErrNoCapacity}
	case errors.Is(err, peers.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		e = &Error{Message: doing + ": the cloud holding it did not answer", Err: ErrUnavailable}
	default:
		return faults.AtPeer(peer, fmt.Errorf("%s: %w", doing, err))
	}
	return faults.AtPeer(peer, faults.WithCause(e, err))
}
