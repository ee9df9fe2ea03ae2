package volume

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// attrs are what the broker keeps of a volume because peers cannot change
// it after the create: a new name, description or metadata.
type attrs struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
	// Metadata replaces the peer's user metadata when MetadataSet.
	Metadata    map[string]string `json:"metadata,omitempty"`
	MetadataSet bool              `json:"metadata_set,omitempty"`
	UpdatedAt   time.Time         `json:"updated_at,omitzero"`
	// ExtendedGiB is what extends through the broker added to the
	// gigabytes the index entry charged: a delete frees both.
	ExtendedGiB int `json:"extended_gib,omitempty"`
	// Bootable, when set, is what os-set_bootable said, over the peer's
	// flag (set when it made the volume from an image).
	Bootable *bool `json:"bootable,omitempty"`
	// VolumeType, when set, is the type a retype gave the volume.
	VolumeType *string `json:"volume_type,omitempty"`
}

const attrsRoot = "volume/attrs/"

// over sets what the broker keeps (a rename, a description, metadata)
// over a peer's fields.
func (a attrs) over(name, description *string, metadata *map[string]string) {
	if a.Name != nil {
		*name = *a.Name
	}
	if a.Description != nil {
		*description = *a.Description
	}
	if a.MetadataSet {
		*metadata = maps.Clone(a.Metadata)
		if *metadata == nil {
			*metadata = map[string]string{}
		}
	}
}

// present shows a peer's volume under its broker ID, with the broker's
// attrs over the peer's fields. servers maps the index.PeerKey of a peer's
// server to its broker ID.
func present(e index.Entry, m *peers.Member, v peers.Volume, a attrs, servers map[string]string) Volume {
	out := Volume{ID: e.ID, Project: e.Project, Name: v.Name, Description: v.Description, SizeGiB: v.SizeGiB, Status: v.Status,
		VolumeType: cmp.Or(v.Metadata[metaType], v.VolumeType), Bootable: v.Bootable, ImageID: v.SourceImageID, Zone: m.Peer.Name, CreatedAt: v.CreatedAt,
		Metadata: userMetadata(v.Metadata), UpdatedAt: a.UpdatedAt, SnapshotID: v.Metadata[metaSnapshot], SourceVolID: v.Metadata[metaSource]}
	a.over(&out.Name, &out.Description, &out.Metadata)
	if a.Bootable != nil {
		out.Bootable = *a.Bootable
	}
	if a.VolumeType != nil {
		out.VolumeType = *a.VolumeType
	}
	for _, att := range v.Attachments {
		server, managed := servers[index.PeerKey(e.PeerID, att.ServerID)]
		if !managed {
			server = att.ServerID
		}
		out.Attachments = append(out.Attachments, Attachment{ID: att.ID, ServerID: server, Managed: managed, Device: att.Device})
	}
	return out
}

// lookup finds a volume of the caller's project and the connected peer
// holding it.
func (s *Service) lookup(ctx context.Context, c Caller, id string) (index.Entry, *peers.Member, error) {
	e, m, err := s.Index.Locate(ctx, s.Pool, Kind, id, c.Project)
	switch {
	case errors.Is(err, index.ErrNotFound):
		return e, nil, notFound(id)
	case errors.Is(err, index.ErrNotConnected):
		return e, nil, &Error{Message: fmt.Sprintf("The peer holding volume %s is not connected", id), Err: ErrUnavailable}
	}
	return e, m, err
}

// Resolve finds a volume of the caller's project by its broker ID, for
// the servers service to attach it or boot from it.
func (s *Service) Resolve(ctx context.Context, c Caller, id string) (Ref, error) {
	e, err := s.Index.Get(ctx, Kind, id, c.Project)
	if errors.Is(err, index.ErrNotFound) {
		return Ref{}, notFound(id)
	}
	if err != nil {
		return Ref{}, err
	}
	ref := Ref{ID: e.ID, PeerID: e.PeerID, PeerName: e.PeerID, PeerResourceID: e.PeerResourceID}
	if m, ok := s.Pool.Get(e.PeerID); ok {
		ref.PeerName = m.Peer.Name
	}
	return ref, nil
}

// locateVolume finds a volume of the caller's project, the connected
// peer holding it, and the peer's view of it (read under PeerTimeout).
func (s *Service) locateVolume(ctx context.Context, c Caller, id string) (index.Entry, *peers.Member, peers.Volume, error) {
	e, m, err := s.lookup(ctx, c, id)
	if err != nil {
		return e, nil, peers.Volume{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	v, err := m.Cloud.GetVolume(pctx, e.PeerResourceID)
	if err != nil {
		return e, m, v, peerErr(err, m.Peer.Name, "reading volume "+id)
	}
	return e, m, v, nil
}

// Get returns a volume of the caller's project.
func (s *Service) Get(ctx context.Context, c Caller, id string) (Volume, error) {
	e, m, v, err := s.locateVolume(ctx, c, id)
	if err != nil {
		return Volume{}, err
	}
	a, err := s.attrStore().View(ctx, c.Project, id)
	if err != nil {
		return Volume{}, err
	}
	return present(e, m, v, a, s.serverIDs(ctx, c.Project, v)), nil
}

// serverIDs maps index.PeerKey(peer, peer server ID) to the broker ID for
// the servers vols are attached to, from the project's server index.
// Only looked up when some volume is attached; a failure leaves peer IDs.
func (s *Service) serverIDs(ctx context.Context, project string, vols ...peers.Volume) map[string]string {
	if !slices.ContainsFunc(vols, func(v peers.Volume) bool { return len(v.Attachments) > 0 }) {
		return nil
	}
	entries, err := s.Index.List(ctx, kindServer, project)
	if err != nil {
		s.Log.WithError(err).Warn("listing servers for volume attachments; showing peer server IDs")
		return nil
	}
	return index.BrokerIDs(entries)
}

// Page is a project's volumes, newest first, and the peers that did not
// answer in time (their volumes are left out).
type Page struct {
	Volumes []Volume
	Failed  []string
}

// List merges the caller's project's volumes from the peers holding some:
// one list call per such peer, in parallel, each under PeerTimeout.
func (s *Service) List(ctx context.Context, c Caller) (Page, error) {
	found, failed, err := gatherProject(ctx, s, Kind, c.Project, func(ctx context.Context, m *peers.Member) ([]peers.Volume, error) {
		return m.Cloud.ListVolumes(ctx, peers.ListOptions{Metadata: map[string]string{peers.MetaProject: c.Project}})
	}, func(v peers.Volume) string { return v.ID })
	if err != nil {
		return Page{}, err
	}
	vols := make([]peers.Volume, 0, len(found))
	for _, f := range found {
		vols = append(vols, f.held)
	}
	servers := s.serverIDs(ctx, c.Project, vols...)
	page := Page{Failed: failed}
	for _, f := range found {
		page.Volumes = append(page.Volumes, present(f.entry, f.member, f.held, f.attrs, servers))
	}
	slices.SortFunc(page.Volumes, func(a, b Volume) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return page, nil
}

// foundOnPeer is one resource of a project's list: its index entry, its
// peer, the peer's view of it and the broker's attrs.
type foundOnPeer[P any] struct {
	entry  index.Entry
	member *peers.Member
	held   P
	attrs  attrs
}

// gatherProject lists a project's resources of kind from the peers
// holding some (list on each, in parallel under PeerTimeout), keeping
// those the index has; failed names the peers that did not answer, in
// order.
func gatherProject[P any](ctx context.Context, s *Service, kind, project string, list func(context.Context, *peers.Member) ([]P, error), id func(P) string) ([]foundOnPeer[P], []string, error) {
	entries, err := s.Index.List(ctx, kind, project)
	if err != nil {
		return nil, nil, err
	}
	spread := index.SpreadOver(entries, s.Pool)
	failed := spread.Failed
	all := map[string]attrs{}
	if len(entries) > 0 {
		if all, err = s.attrStore().Project(ctx, project); err != nil {
			return nil, nil, err
		}
	}
	var out []foundOnPeer[P]
	for _, rr := range peers.Gather(ctx, spread.Members, s.timeout(), list) {
		if rr.Err != nil {
			failed = append(failed, rr.Member.Peer.Name)
			continue
		}
		for _, p := range rr.Value {
			if e, ok := spread.Entry(rr.Member, id(p)); ok {
				out = append(out, foundOnPeer[P]{entry: e, member: rr.Member, held: p, attrs: all[e.ID]})
			}
		}
	}
	slices.Sort(failed)
	return out, failed, nil
}

// UpdateSpec changes a volume's name, description or metadata; nil
// leaves the field as it is. Metadata replaces the user's metadata whole
// (MergeMetadata adds to it instead).
type UpdateSpec struct {
	Name        *string
	Description *string
	Metadata    map[string]string
	// MergeMetadata keeps the keys Metadata does not name; DeleteKeys are
	// removed.
	MergeMetadata bool
	DeleteKeys    []string
	// Bootable sets the bootable flag (Cinder's os-set_bootable).
	Bootable *bool
	// VolumeType is the type a retype gives the volume (Retype checks).
	VolumeType *string
}

// Update changes what UpdateSpec names and returns the volume. The
// broker keeps the change (peers cannot rename a volume), so every front
// end shows it.
func (s *Service) Update(ctx context.Context, c Caller, id string, spec UpdateSpec) (Volume, error) {
	return updateShown(ctx, s, c, id, spec, s.Get, func(v Volume) map[string]string { return v.Metadata })
}

// updateShown checks spec, reads the resource (get: tenancy, and the
// metadata it shows now), keeps the change in its attrs and reads it
// again.
func updateShown[T any](ctx context.Context, s *Service, c Caller, id string, spec UpdateSpec, get func(context.Context, Caller, string) (T, error), meta func(T) map[string]string) (T, error) {
	var zero T
	if err := checkUpdate(spec); err != nil {
		return zero, err
	}
	cur, err := get(ctx, c, id)
	if err != nil {
		return zero, err
	}
	if err := s.updateAttrs(ctx, c, id, spec, meta(cur)); err != nil {
		return zero, err
	}
	return get(ctx, c, id)
}

// Delete deletes a volume of the caller's project: on its peer (an
// attached volume is ErrConflict), then its index entry and attrs.
func (s *Service) Delete(ctx context.Context, c Caller, id string) error {
	e, m, err := s.lookup(ctx, c, id)
	if err != nil {
		return err
	}
	if n, err := s.snapshotsOfVolume(ctx, c, id); err != nil || n > 0 {
		if err == nil {
			err = &Error{Message: fmt.Sprintf("Invalid volume: Volume %s still has %d dependent snapshots.", id, n), Err: ErrConflict}
		}
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	if err := m.Cloud.DeleteVolume(pctx, e.PeerResourceID); err != nil && !errors.Is(err, peers.ErrNotFound) {
		if errors.Is(err, peers.ErrConflict) {
			return faults.AtPeer(m.Peer.Name, faults.WithCause(&Error{Message: fmt.Sprintf("Invalid volume: Volume %s is attached or busy", id), Err: ErrConflict}, err))
		}
		return peerErr(err, m.Peer.Name, "deleting volume "+id)
	}
	// What the volume was charged: its entry's, and what extends added
	// (read before the entry goes, while its attrs are surely there).
	a, _, err := s.attrStore().Load(ctx, c.Project, id)
	if err != nil {
		return err
	}
	// Of two deletes at once, only the one whose removal wins frees the
	// quota and the attrs.
	cur, removed, err := s.Index.Remove(ctx, e)
	if err != nil || !removed {
		return err
	}
	charge := cur.Charge.Clone() // none for a volume an index rebuild adopted: it was never counted
	if a.ExtendedGiB > 0 {
		charge = quota.Amounts{quota.Volumes: charge[quota.Volumes], quota.Gigabytes: charge[quota.Gigabytes] + a.ExtendedGiB}
	}
	if err := s.Quota.Free(ctx, quota.Scope{Project: e.Project}, charge); err != nil {
		s.Log.WithError(err).WithField("volume", id).Error("a deleted volume's quota not freed; it stays counted")
	}
	if err := s.attrStore().Delete(ctx, c.Project, id); err != nil {
		s.Log.WithError(err).WithField("volume", id).Warn("attrs of a deleted volume left behind")
	}
	s.Log.WithFields(map[string]any{"volume": id, "peer": m.Peer.Name, "project": c.Project}).Info("volume deleted")
	return nil
}

// ExtendOptions qualify an extend.
type ExtendOptions struct {
	// InUse allows extending an attached volume (Cinder's 3.42).
	InUse bool
}

// Extend grows a volume to newSizeGiB; shrinking is refused, as in
// Cinder.
func (s *Service) Extend(ctx context.Context, c Caller, id string, newSizeGiB int, opts ExtendOptions) error {
	if newSizeGiB < 1 || newSizeGiB > MaxSizeGiB {
		return invalid("new_size", "Invalid input received: new_size must be a whole number of GiB from 1 to %d", MaxSizeGiB)
	}
	e, m, cur, err := s.locateVolume(ctx, c, id)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	if cur.Status == peers.VolumeInUse && !opts.InUse {
		return &Error{Message: "Invalid volume: volume status must be available to extend; extending an in-use volume takes microversion 3.42", Err: ErrConflict}
	}
	if newSizeGiB <= cur.SizeGiB {
		return invalid("new_size", "Invalid input received: new size %d GiB must be larger than the current %d GiB", newSizeGiB, cur.SizeGiB)
	}
	added := newSizeGiB - cur.SizeGiB
	res, err := s.reserve(ctx, c, quota.Amounts{quota.Gigabytes: added}, Kind+" "+id+" extend", nil)
	if err != nil {
		return err
	}
	done := false
	defer s.release(ctx, res, &done, id)
	if _, err := m.Cloud.ExtendVolume(pctx, e.PeerResourceID, newSizeGiB); err != nil {
		return peerErr(err, m.Peer.Name, "extending volume "+id)
	}
	done = true
	if err := res.Commit(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("counting the extend of volume %s in its quota: %w", id, err)
	}
	for {
		a, at, err := s.attrStore().Load(ctx, c.Project, id)
		if err == nil {
			a.ExtendedGiB += added
			err = s.attrStore().CAS(ctx, c.Project, id, a, at)
		}
		if errors.Is(err, registry.ErrConflict) && ctx.Err() == nil {
			continue
		}
		if err != nil {
			s.Log.WithError(err).WithField("volume", id).Error("an extend's gigabytes not recorded; its delete frees only the original size")
		}
		return nil
	}
}
