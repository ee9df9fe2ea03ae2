package volume

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// SnapshotKind is the resource index kind of volume snapshots. A
// snapshot's entry names its volume's broker ID as Parent.
const SnapshotKind = "snapshot"

// metaVolume marks a peer's snapshot with its volume's broker ID, so an
// entry an index rebuild adopts still names it.
const metaVolume = metaPrefix + "volume_id"

// metaUser marks a peer's snapshot with the ID of the user who took it
// (Cinder's user_id, shown from microversion 3.41).
const metaUser = metaPrefix + "user_id"

// Snapshot is a volume snapshot as the front ends show it: under its
// broker ID, naming its volume by the volume's broker ID, with the user's
// metadata only.
type Snapshot struct {
	ID, Project       string
	Name, Description string
	VolumeID          string
	// UserID is who took it.
	UserID    string
	SizeGiB   int
	Status    peers.SnapshotStatus
	Metadata  map[string]string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// SnapshotSpec is a new snapshot of the caller's volume VolumeID (a
// broker ID); Force allows an in-use volume.
type SnapshotSpec struct {
	VolumeID    string
	Name        string
	Description string
	Force       bool
	Metadata    map[string]string
}

// snapshotCharge is what a snapshot of a sizeGiB volume counts: Cinder
// counts its gigabytes with the volumes'.
func snapshotCharge(sizeGiB int) quota.Amounts {
	return quota.Amounts{quota.Snapshots: 1, quota.Gigabytes: sizeGiB}
}

// A snapshot's attrs (a rename, a description, metadata set after the
// create) are kept as a volume's are, in the same records (broker IDs
// are UUIDs: a snapshot's never names a volume), so the one watch-fed
// memory serves both.

func snapshotNotFound(id string) error {
	return &Error{Message: fmt.Sprintf("Snapshot %s could not be found.", id), Err: ErrNotFound}
}

// snapshotsOf returns m's snapshot ability, or a refusal naming the peer.
func snapshotsOf(m *peers.Member) (peers.Snapshots, error) {
	if sn, ok := m.Cloud.(peers.Snapshots); ok {
		return sn, nil
	}
	return nil, &Error{Message: fmt.Sprintf("Snapshots are not offered in availability zone %s", m.Peer.Name), Err: ErrInvalid}
}

// lookupSnapshot finds a snapshot of the caller's project and its peer.
func (s *Service) lookupSnapshot(ctx context.Context, c Caller, id string) (index.Entry, *peers.Member, peers.Snapshots, error) {
	e, m, err := s.Index.Locate(ctx, s.Pool, SnapshotKind, id, c.Project)
	switch {
	case errors.Is(err, index.ErrNotFound):
		return e, nil, nil, snapshotNotFound(id)
	case errors.Is(err, index.ErrNotConnected):
		return e, nil, nil, &Error{Message: fmt.Sprintf("The peer holding snapshot %s is not connected", id), Err: ErrUnavailable}
	case err != nil:
		return e, nil, nil, err
	}
	sn, err := snapshotsOf(m)
	return e, m, sn, err
}

// presentSnapshot shows a peer's snapshot under its broker ID.
func presentSnapshot(e index.Entry, p peers.Snapshot, a attrs) Snapshot {
	out := Snapshot{ID: e.ID, Project: e.Project, Name: p.Name, Description: p.Description, VolumeID: cmp.Or(p.Metadata[metaVolume], e.Parent), UserID: p.Metadata[metaUser], SizeGiB: p.SizeGiB,
		Status: p.Status, CreatedAt: p.CreatedAt, UpdatedAt: a.UpdatedAt, Metadata: userMetadata(p.Metadata)}
	a.over(&out.Name, &out.Description, &out.Metadata)
	return out
}

// userMetadata is meta without the broker's own keys.
func userMetadata(meta map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range meta {
		if !strings.HasPrefix(k, metaPrefix) {
			out[k] = v
		}
	}
	return out
}

// CreateSnapshot snapshots a volume of the caller's project on its peer,
// counting {snapshots: 1, gigabytes: the volume's size} in the project's
// quota (reserved first, committed once the peer took it).
func (s *Service) CreateSnapshot(ctx context.Context, c Caller, spec SnapshotSpec) (Snapshot, error) {
	if err := checkNaming(spec.Name, spec.Description, spec.Metadata); err != nil {
		return Snapshot{}, err
	}
	if spec.VolumeID == "" {
		return Snapshot{}, invalid("volume_id", "Invalid input received: volume_id is required")
	}
	e, m, v, err := s.locateVolume(ctx, c, spec.VolumeID)
	if err != nil {
		return Snapshot{}, err
	}
	sn, err := snapshotsOf(m)
	if err != nil {
		return Snapshot{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	if v.Status == peers.VolumeInUse && !spec.Force {
		return Snapshot{}, &Error{Message: fmt.Sprintf("Invalid volume: volume %s is in-use; a snapshot of an in-use volume must be forced (force: true)", spec.VolumeID), Err: ErrConflict}
	}
	id := uuid.NewString()
	res, err := s.reserve(ctx, c, snapshotCharge(v.SizeGiB), SnapshotKind+" "+id, nil)
	if err != nil {
		return Snapshot{}, err
	}
	done := false
	defer s.release(ctx, res, &done, id)
	meta := maps.Clone(spec.Metadata)
	if meta == nil {
		meta = map[string]string{}
	}
	meta[peers.MetaID], meta[peers.MetaProject], meta[peers.MetaBrokerID] = id, c.Project, s.BrokerID
	meta[metaVolume], meta[metaUser] = spec.VolumeID, c.User
	p, err := sn.CreateSnapshot(pctx, peers.SnapshotSpec{VolumeID: e.PeerResourceID, Name: spec.Name, Description: spec.Description,
		Project: c.Project, Force: spec.Force, Metadata: meta})
	if err != nil {
		return Snapshot{}, peerErr(err, m.Peer.Name, "snapshotting volume "+spec.VolumeID)
	}
	done = true
	se := index.Entry{Kind: SnapshotKind, ID: id, Project: c.Project, PeerID: m.Peer.ID, PeerResourceID: p.ID, Name: p.Name,
		CreatedAt: p.CreatedAt, Charge: res.Amounts(), Parent: spec.VolumeID}
	undo := func(why error) error {
		if derr := sn.DeleteSnapshot(context.WithoutCancel(ctx), p.ID); derr != nil {
			s.Log.WithError(derr).WithFields(logrus.Fields{"snapshot": id, "peer": m.Peer.Name}).Error("snapshot left on its peer after a failed create; an index rebuild adopts it")
		}
		return why
	}
	if err := res.Commit(context.WithoutCancel(ctx)); err != nil {
		return Snapshot{}, undo(fmt.Errorf("counting snapshot %s in its quota: %w", id, err))
	}
	if err := s.Index.Put(ctx, se); err != nil {
		if ferr := s.Quota.Free(context.WithoutCancel(ctx), quota.Scope{Project: c.Project}, se.Charge); ferr != nil {
			s.Log.WithError(ferr).WithField("snapshot", id).Error("quota of an undone snapshot not freed")
		}
		return Snapshot{}, undo(fmt.Errorf("indexing snapshot %s: %w", id, err))
	}
	s.Log.WithFields(logrus.Fields{"snapshot": id, "volume": spec.VolumeID, "peer": m.Peer.Name, "project": c.Project}).Info("snapshot created")
	return presentSnapshot(se, p, attrs{}), nil
}

// checkNaming refuses an oversized name or description and reserved or
// oversized metadata, naming the field.
func checkNaming(name, description string, meta map[string]string) error {
	switch {
	case len(name) > 255:
		return invalid("name", "Invalid input received: name: at most 255 characters")
	case len(description) > 255:
		return invalid("description", "Invalid input received: description: at most 255 characters")
	}
	if err := checkMetadata(meta); err != nil {
		return invalid("metadata", "Invalid input received: metadata: %v", err)
	}
	return nil
}

// GetSnapshot returns a snapshot of the caller's project.
func (s *Service) GetSnapshot(ctx context.Context, c Caller, id string) (Snapshot, error) {
	e, m, sn, err := s.lookupSnapshot(ctx, c, id)
	if err != nil {
		return Snapshot{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	p, err := sn.GetSnapshot(pctx, e.PeerResourceID)
	if err != nil {
		return Snapshot{}, snapshotPeerErr(err, m.Peer.Name, "reading snapshot "+id)
	}
	a, err := s.attrStore().View(ctx, c.Project, id)
	if err != nil {
		return Snapshot{}, err
	}
	return presentSnapshot(e, p, a), nil
}

// snapshotPeerErr is peerErr, where a resource gone from its peer is the
// snapshot, not a volume.
func snapshotPeerErr(err error, peer, doing string) error {
	if errors.Is(err, peers.ErrNotFound) {
		return &Error{Message: doing + ": the snapshot is gone from its cloud", Err: ErrNotFound}
	}
	return peerErr(err, peer, doing)
}

// SnapshotPage is a project's snapshots, newest first, and the peers that
// did not answer in time.
type SnapshotPage struct {
	Snapshots []Snapshot
	Failed    []string
}

// ListSnapshots merges the caller's project's snapshots from the peers
// holding some, each under PeerTimeout.
func (s *Service) ListSnapshots(ctx context.Context, c Caller) (SnapshotPage, error) {
	found, failed, err := gatherProject(ctx, s, SnapshotKind, c.Project, func(ctx context.Context, m *peers.Member) ([]peers.Snapshot, error) {
		sn, err := snapshotsOf(m)
		if err != nil {
			return nil, err
		}
		return sn.ListSnapshots(ctx, peers.ListOptions{Metadata: map[string]string{peers.MetaProject: c.Project}})
	}, func(p peers.Snapshot) string { return p.ID })
	if err != nil {
		return SnapshotPage{}, err
	}
	page := SnapshotPage{Failed: failed}
	for _, f := range found {
		page.Snapshots = append(page.Snapshots, presentSnapshot(f.entry, f.held, f.attrs))
	}
	slices.SortFunc(page.Snapshots, func(a, b Snapshot) int {
		return cmp.Or(b.CreatedAt.Compare(a.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return page, nil
}

// UpdateSnapshot changes a snapshot's name, description or metadata, as
// Update does a volume's.
func (s *Service) UpdateSnapshot(ctx context.Context, c Caller, id string, spec UpdateSpec) (Snapshot, error) {
	return updateShown(ctx, s, c, id, spec, s.GetSnapshot, func(sn Snapshot) map[string]string { return sn.Metadata })
}

// checkUpdate refuses an oversized name or description and reserved or
// oversized metadata.
func checkUpdate(spec UpdateSpec) error {
	var name, desc string
	if spec.Name != nil {
		name = *spec.Name
	}
	if spec.Description != nil {
		desc = *spec.Description
	}
	return checkNaming(name, desc, spec.Metadata)
}

// updateAttrs applies spec to the attrs of id (a volume or snapshot),
// whose metadata shows as shown now.
func (s *Service) updateAttrs(ctx context.Context, c Caller, id string, spec UpdateSpec, shown map[string]string) error {
	for {
		a, at, err := s.attrStore().Load(ctx, c.Project, id)
		if err != nil {
			return err
		}
		if spec.Name != nil {
			a.Name = spec.Name
		}
		if spec.Description != nil {
			a.Description = spec.Description
		}
		if spec.Bootable != nil {
			a.Bootable = spec.Bootable
		}
		if spec.VolumeType != nil {
			a.VolumeType = spec.VolumeType
		}
		if spec.Metadata != nil || len(spec.DeleteKeys) > 0 {
			meta := map[string]string{}
			if spec.MergeMetadata || spec.Metadata == nil {
				meta = maps.Clone(shown) // as shown: the peer's, or the broker's earlier change
				if a.MetadataSet {
					meta = maps.Clone(a.Metadata)
				}
				if meta == nil {
					meta = map[string]string{}
				}
			}
			maps.Copy(meta, spec.Metadata)
			for _, k := range spec.DeleteKeys {
				delete(meta, k)
			}
			a.Metadata, a.MetadataSet = meta, true
		}
		a.UpdatedAt = time.Now().UTC()
		err = s.attrStore().CAS(ctx, c.Project, id, a, at)
		if errors.Is(err, registry.ErrConflict) && ctx.Err() == nil {
			continue // another update landed first: apply this one over it
		}
		return err
	}
}

// DeleteSnapshot deletes a snapshot of the caller's project on its peer
// (one a volume is being made from, or not yet available, is ErrConflict),
// then its index entry, quota and attrs.
func (s *Service) DeleteSnapshot(ctx context.Context, c Caller, id string) error {
	e, m, sn, err := s.lookupSnapshot(ctx, c, id)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	if err := sn.DeleteSnapshot(pctx, e.PeerResourceID); err != nil && !errors.Is(err, peers.ErrNotFound) {
		return snapshotPeerErr(err, m.Peer.Name, "deleting snapshot "+id)
	}
	cur, removed, err := s.Index.Remove(ctx, e)
	if err != nil || !removed {
		return err
	}
	if err := s.Quota.Free(ctx, quota.Scope{Project: e.Project}, cur.Charge); err != nil {
		s.Log.WithError(err).WithField("snapshot", id).Error("a deleted snapshot's quota not freed; it stays counted")
	}
	if err := s.attrStore().Delete(ctx, c.Project, id); err != nil {
		s.Log.WithError(err).WithField("snapshot", id).Warn("attrs of a deleted snapshot left behind")
	}
	s.Log.WithFields(logrus.Fields{"snapshot": id, "peer": m.Peer.Name, "project": c.Project}).Info("snapshot deleted")
	return nil
}

// snapshotsOfVolume counts the indexed snapshots of the caller's volume
// id (from the index's memory): Cinder keeps a volume that has some.
func (s *Service) snapshotsOfVolume(ctx context.Context, c Caller, id string) (int, error) {
	entries, err := s.Index.List(ctx, SnapshotKind, c.Project)
	n := 0
	for _, e := range entries {
		if e.Parent == id {
			n++
		}
	}
	return n, err
}
