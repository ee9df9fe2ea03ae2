package deployres

import (
	"context"
	"errors"

	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// Volumes is the part of volume.Service the adapter uses.
type Volumes interface {
	Create(ctx context.Context, c volume.Caller, spec volume.CreateSpec) (volume.Volume, error)
	Get(ctx context.Context, c volume.Caller, id string) (volume.Volume, error)
	Extend(ctx context.Context, c volume.Caller, id string, newSizeGiB int, opts volume.ExtendOptions) error
	Delete(ctx context.Context, c volume.Caller, id string) error
	Marked(ctx context.Context, c volume.Caller, marks map[string]string) ([]string, error)
	List(ctx context.Context, c volume.Caller) (volume.Page, error)
}

var _ Volumes = (*volume.Service)(nil)

func volumeCaller(c resource.Caller) volume.Caller {
	return volume.Caller{Project: c.Project, User: c.User}
}

// CreateVolume implements deploy.Resources: a volume of the caller's
// project on the plan's peer, from an image the caller may use (broker
// ID or name), sized for the image when no size is given. The volume
// service places it (a volume from an image where the image lives) and
// counts it against volumes and gigabytes.
func (a *Adapter) CreateVolume(ctx context.Context, c resource.Caller, spec resource.VolumeSpec) (resource.Created, error) {
	vs := volume.CreateSpec{Name: spec.Name, Description: spec.Description, SizeGiB: spec.SizeGiB, VolumeType: spec.VolumeType,
		Metadata: spec.Metadata, AvailabilityZone: spec.Placement.Peer, Marks: spec.Marks}
	if len(vs.Metadata) == 0 {
		vs.Metadata = nil
	}
	if spec.Image != "" {
		img, err := a.image(ctx, c, spec.Image, spec.Placement.Peer)
		if err != nil {
			return resource.Created{}, err
		}
		vs.ImageRef = img.ID
		if vs.SizeGiB == 0 {
			vs.SizeGiB = max(img.MinDiskGiB, int((img.Size+(1<<30)-1)>>30), 1)
		}
	}
	v, err := a.Volumes.Create(ctx, volumeCaller(c), vs)
	if err != nil {
		return resource.Created{}, wrap(err)
	}
	return resource.Created{ID: v.ID}, nil
}

// GrowVolume implements deploy.Resources (attached or not).
func (a *Adapter) GrowVolume(ctx context.Context, c resource.Caller, id string, sizeGiB int) error {
	return wrap(a.Volumes.Extend(ctx, volumeCaller(c), id, sizeGiB, volume.ExtendOptions{InUse: true}))
}

// volume reads a volume: ready once available or in use, an error once
// in error.
func (a *Adapter) volume(ctx context.Context, c resource.Caller, id string) (resource.State, error) {
	v, err := a.Volumes.Get(ctx, volumeCaller(c), id)
	if err != nil {
		return resource.State{}, err
	}
	if v.Status == peers.VolumeError {
		return resource.State{}, errors.New("volume " + v.ID + " went to error")
	}
	return resource.State{Ready: v.Status == peers.VolumeAvailable || v.Status == peers.VolumeInUse,
		Attrs: map[string]any{"name": v.Name, "size": int64(v.SizeGiB), "status": string(v.Status)}}, nil
}

// volumeID resolves a volume reference as Cinder would for the caller: a
// broker ID of the project's, else the name of exactly one of its volumes.
func (a *Adapter) volumeID(ctx context.Context, c resource.Caller, ref string) (string, error) {
	if ref == "" {
		return "", nil
	}
	_, err := a.Volumes.Get(ctx, volumeCaller(c), ref)
	if err == nil || !errors.Is(err, peers.ErrNotFound) {
		return ref, wrap(err)
	}
	page, err := a.Volumes.List(ctx, volumeCaller(c))
	if err != nil {
		return "", wrap(err)
	}
	var named []string
	for _, v := range page.Volumes {
		if v.Name == ref {
			named = append(named, v.ID)
		}
	}
	switch len(named) {
	case 0:
		return "", notFound("volume", ref)
	case 1:
		return named[0], nil
	}
	return "", &failure{err: errors.New("more than one volume is named " + ref + ": name it by ID"), kind: resource.ErrNotFound, also: resource.ErrAmbiguous}
}
