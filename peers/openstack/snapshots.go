package openstack

import (
	"context"
	"errors"
	"fmt"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"

	"github.com/cloudmux/cloudmux/peers"
)

var _ peers.Snapshots = (*Cloud)(nil)

// CreateSnapshot takes a Cinder snapshot (force for an in-use volume).
// Cinder answers 400 for a volume in the wrong state: the contract's
// ErrConflict, as for deletes.
func (c *Cloud) CreateSnapshot(ctx context.Context, spec peers.SnapshotSpec) (peers.Snapshot, error) {
	if err := c.needVolume(); err != nil {
		return peers.Snapshot{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	sn, err := snapshots.Create(ctx, c.volume, snapshots.CreateOpts{
		VolumeID: spec.VolumeID, Force: spec.Force, Name: spec.Name, Description: spec.Description, Metadata: c.outMeta(spec.Metadata),
	}).Extract()
	if err != nil {
		err = c.translate(fmt.Sprintf("cinder: snapshot volume %s", spec.VolumeID), err)
		if errors.Is(err, peers.ErrInvalid) {
			return peers.Snapshot{}, fmt.Errorf("%w (%w)", peers.ErrConflict, err)
		}
		return peers.Snapshot{}, err
	}
	return c.toSnapshot(*sn), nil
}

// GetSnapshot shows a snapshot.
func (c *Cloud) GetSnapshot(ctx context.Context, id string) (peers.Snapshot, error) {
	if err := c.needVolume(); err != nil {
		return peers.Snapshot{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	sn, err := snapshots.Get(ctx, c.volume, id).Extract()
	if err != nil {
		return peers.Snapshot{}, c.translate("cinder: show snapshot "+id, err)
	}
	return c.toSnapshot(*sn), nil
}

// ListSnapshots lists the project's snapshots; Cinder filters snapshots
// by no metadata, so this does. Another project's need an admin token.
func (c *Cloud) ListSnapshots(ctx context.Context, opts peers.ListOptions) ([]peers.Snapshot, error) {
	if err := c.needVolume(); err != nil {
		return nil, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	lo := snapshots.ListOpts{}
	if opts.Project != "" && opts.Project != c.project {
		if !c.admin {
			return nil, ctx.Err()
		}
		lo.AllTenants, lo.TenantID = true, opts.Project
	}
	pages, err := snapshots.List(c.volume, lo).AllPages(ctx)
	if err != nil {
		return nil, c.translate("cinder: list snapshots", err)
	}
	all, err := snapshots.ExtractSnapshots(pages)
	if err != nil {
		return nil, c.translate("cinder: list snapshots", err)
	}
	var out []peers.Snapshot
	for _, s := range all {
		sn := c.toSnapshot(s)
		if opts.Matches(sn.Project, sn.Metadata) {
			out = append(out, sn)
		}
	}
	return out, nil
}

// DeleteSnapshot deletes a snapshot; Cinder's 400 (a snapshot in the
// wrong state, or with volumes depending on it) is ErrConflict.
func (c *Cloud) DeleteSnapshot(ctx context.Context, id string) error {
	if err := c.needVolume(); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	err := c.translate("cinder: delete snapshot "+id, snapshots.Delete(ctx, c.volume, id).ExtractErr())
	if errors.Is(err, peers.ErrInvalid) {
		return fmt.Errorf("%w (%w)", peers.ErrConflict, err)
	}
	return err
}

func (c *Cloud) toSnapshot(s snapshots.Snapshot) peers.Snapshot {
	out := peers.Snapshot{ID: s.ID, Name: s.Name, Description: s.Description, Project: s.ProjectID, VolumeID: s.VolumeID,
		SizeGiB: s.Size, Status: peers.SnapshotStatus(s.Status), Metadata: c.inMeta(s.Metadata), CreatedAt: s.CreatedAt}
	if out.Project == "" {
		out.Project = c.project // the project attribute is admin-only
	}
	return out
}
