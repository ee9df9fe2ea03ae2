package openstack

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"

	"github.com/cloudmux/cloudmux/peers"
)

// CreateVolume creates a volume (from an image when ImageID is set) in the
// scoped project; cloudmux's keys go in Cinder metadata.
func (c *Cloud) CreateVolume(ctx context.Context, spec peers.VolumeSpec) (peers.Volume, error) {
	if err := c.needVolume(); err != nil {
		return peers.Volume{}, err
	}
	if spec.SizeGiB <= 0 {
		return peers.Volume{}, fmt.Errorf("cinder: create volume %q: size %d GiB: %w", spec.Name, spec.SizeGiB, peers.ErrInvalid)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	v, err := volumes.Create(ctx, c.volume, volumes.CreateOpts{
		Size: spec.SizeGiB, Name: spec.Name, Description: spec.Description, VolumeType: spec.VolumeType,
		AvailabilityZone: spec.AvailabilityZone, ImageID: spec.ImageID, Metadata: c.outMeta(spec.Metadata),
		SnapshotID: spec.SnapshotID, SourceVolID: spec.SourceVolumeID,
	}, nil).Extract()
	if err != nil {
		return peers.Volume{}, c.translate(fmt.Sprintf("cinder: create volume %q", spec.Name), err)
	}
	return c.toVolume(*v), nil
}

// GetVolume shows a volume.
func (c *Cloud) GetVolume(ctx context.Context, id string) (peers.Volume, error) {
	if err := c.needVolume(); err != nil {
		return peers.Volume{}, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	v, err := volumes.Get(ctx, c.volume, id).Extract()
	if err != nil {
		return peers.Volume{}, c.translate("cinder: show volume "+id, err)
	}
	return c.toVolume(*v), nil
}

// ListVolumes lists the project's volumes, filtered by metadata in Cinder
// and again here. Another project's needs an admin token (all_tenants).
func (c *Cloud) ListVolumes(ctx context.Context, opts peers.ListOptions) ([]peers.Volume, error) {
	if err := c.needVolume(); err != nil {
		return nil, err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	lo := volumes.ListOpts{Metadata: c.outMeta(opts.Metadata)}
	if opts.Project != "" && opts.Project != c.project {
		if !c.admin {
			return nil, ctx.Err()
		}
		lo.AllTenants, lo.TenantID = true, opts.Project
	}
	pages, err := volumes.List(c.volume, lo).AllPages(ctx)
	if err != nil {
		return nil, c.translate("cinder: list volumes", err)
	}
	all, err := volumes.ExtractVolumes(pages)
	if err != nil {
		return nil, c.translate("cinder: list volumes", err)
	}
	var out []peers.Volume
	for _, v := range all {
		vol := c.toVolume(v)
		if opts.Matches(vol.Project, vol.Metadata) {
			out = append(out, vol)
		}
	}
	return out, nil
}

// DeleteVolume deletes a volume. Cinder refuses an attached one with 400
// (the only input is the ID, so the refusal is about its state): that is
// the contract's ErrConflict.
func (c *Cloud) DeleteVolume(ctx context.Context, id string) error {
	if err := c.needVolume(); err != nil {
		return err
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	err := c.translate("cinder: delete volume "+id, volumes.Delete(ctx, c.volume, id, nil).ExtractErr())
	if errors.Is(err, peers.ErrInvalid) {
		return fmt.Errorf("%w (%w)", peers.ErrConflict, err)
	}
	return err
}

// AttachVolume attaches through Nova (os-volume_attachments), which drives
// Cinder's attachment itself.
func (c *Cloud) AttachVolume(ctx context.Context, serverID, volumeID string) (peers.VolumeAttachment, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	a, err := volumeattach.Create(ctx, c.compute, serverID, volumeattach.CreateOpts{VolumeID: volumeID}).Extract()
	if err != nil {
		return peers.VolumeAttachment{}, c.translate(fmt.Sprintf("nova: attach volume %s to server %s", volumeID, serverID), err)
	}
	return peers.VolumeAttachment{ID: a.ID, ServerID: a.ServerID, VolumeID: a.VolumeID, Device: a.Device}, nil
}

// DetachVolume detaches through Nova.
func (c *Cloud) DetachVolume(ctx context.Context, serverID, volumeID string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	err := volumeattach.Delete(ctx, c.compute, serverID, volumeID).ExtractErr()
	return c.translate(fmt.Sprintf("nova: detach volume %s from server %s", volumeID, serverID), err)
}

// ExtendVolume grows a volume (os-extend). The contract's refusals are
// checked first, since Cinder answers all of them with 400: a size not
// larger is ErrInvalid, a status other than available or in-use
// ErrConflict, and an in-use volume on a Cinder older than 3.42 (no live
// extend) ErrNotSupported.
func (c *Cloud) ExtendVolume(ctx context.Context, id string, newSizeGiB int) (peers.Volume, error) {
	v, err := c.GetVolume(ctx, id)
	if err != nil {
		return peers.Volume{}, err
	}
	switch {
	case newSizeGiB <= v.SizeGiB:
		return peers.Volume{}, fmt.Errorf("cinder: extend volume %s from %d to %d GiB: not larger: %w", id, v.SizeGiB, newSizeGiB, peers.ErrInvalid)
	case v.Status != peers.VolumeAvailable && v.Status != peers.VolumeInUse:
		return peers.Volume{}, fmt.Errorf("cinder: extend volume %s: it is %s: %w", id, v.Status, peers.ErrConflict)
	case v.Status == peers.VolumeInUse && c.volumeMinor < 42:
		return peers.Volume{}, fmt.Errorf("cinder: extend in-use volume %s needs microversion 3.42, the cloud offers 3.%d: %w", id, c.volumeMinor, peers.ErrNotSupported)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	err = volumes.ExtendSize(ctx, c.volume, id, volumes.ExtendSizeOpts{NewSize: newSizeGiB}).ExtractErr()
	if err != nil {
		err = c.translate(fmt.Sprintf("cinder: extend volume %s to %d GiB", id, newSizeGiB), err)
		if errors.Is(err, peers.ErrInvalid) && strings.Contains(strings.ToLower(err.Error()), "status") {
			return peers.Volume{}, fmt.Errorf("%w (%w)", peers.ErrConflict, err) // raced a status change
		}
		return peers.Volume{}, err
	}
	v.Status = peers.VolumeExtending
	return v, nil
}

func (c *Cloud) toVolume(v volumes.Volume) peers.Volume {
	out := peers.Volume{
		ID: v.ID, Name: v.Name, Description: v.Description, Project: v.TenantID, SizeGiB: v.Size,
		Status: peers.VolumeStatus(v.Status), VolumeType: v.VolumeType, AvailabilityZone: v.AvailabilityZone,
		Bootable: v.Bootable == "true", SourceImageID: v.VolumeImageMetadata["image_id"],
		Metadata: c.inMeta(v.Metadata), CreatedAt: v.CreatedAt, SnapshotID: v.SnapshotID, SourceVolumeID: v.SourceVolID,
	}
	if out.Project == "" {
		// os-vol-tenant-attr is admin-only; a project token lists only
		// its own volumes.
		out.Project = c.project
	}
	for _, a := range v.Attachments {
		out.Attachments = append(out.Attachments, peers.VolumeAttachment{ID: a.AttachmentID, ServerID: a.ServerID, VolumeID: v.ID, Device: a.Device})
	}
	return out
}
