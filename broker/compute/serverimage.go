package compute

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/peers"
)

// ImageCreator is the part of image.Service that registers an image
// another service makes on a peer: a server's snapshot.
type ImageCreator interface {
	CreateOn(ctx context.Context, c image.Caller, m *peers.Member, spec image.CreateSpec, make image.MakeFunc) (image.Image, error)
}

var _ ImageCreator = (*image.Service)(nil)

// Properties Nova writes on a server's snapshot.
const (
	propImageType    = "image_type" // "snapshot"
	propInstanceUUID = "instance_uuid"
	propBaseImageRef = "base_image_ref"
	propUserID       = "user_id"
)

// CreateImage snapshots a server of the caller's project into a broker
// image (Nova's createImage): the snapshot is made on the server's peer
// (peers.ServerImager) and registered through the image service, so it
// has a broker ID, is the project's private image, and boots anywhere
// the stager can copy it to. It carries metadata as properties and
// Nova's image_type=snapshot, instance_uuid, base_image_ref and user_id,
// and min_disk is the flavor's root disk. The image is returned at once,
// queued or saving; the server keeps its status. A locked server refuses
// non-admins (409), one booted from a volume is refused (snapshot the
// volume instead), one whose state or a running action forbids it is 409.
func (s *Servers) CreateImage(ctx context.Context, c Caller, id, name string, metadata map[string]string) (image.Image, error) {
	if name == "" || len(name) > 255 || strings.TrimSpace(name) != name {
		return image.Image{}, invalid("name", "Invalid input for field/attribute name: 1 to 255 characters, without leading or trailing spaces")
	}
	if len(metadata) > maxMetadataItems {
		return image.Image{}, invalid("metadata", "Quota exceeded for image metadata: at most %d items", maxMetadataItems)
	}
	for k := range metadata {
		switch k {
		case propImageType, propInstanceUUID, propBaseImageRef, propUserID:
			return image.Image{}, invalid("metadata", "Invalid input for field/attribute metadata: %s is set by the snapshot itself", k)
		}
	}
	creator, ok := s.Images.(ImageCreator)
	if !ok {
		return image.Image{}, fmt.Errorf("the broker's image service registers no snapshots: %w", peers.ErrNotSupported)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	e, m, err := s.lookup(ctx, c, id)
	if err != nil {
		return image.Image{}, err
	}
	if err := s.checkLock(ctx, c, id); err != nil {
		return image.Image{}, err
	}
	imager, ok := m.Cloud.(peers.ServerImager)
	if !ok {
		return image.Image{}, &Error{Message: fmt.Sprintf("The cloud holding server %s cannot snapshot servers.", id), Err: faults.WithCause(ErrConflict, peers.ErrNotSupported)}
	}
	srv, err := s.peerServer(ctx, e, m)
	if err != nil {
		return image.Image{}, err
	}
	if srv.Metadata[metaBootVolume] != "" {
		return image.Image{}, &Error{Message: fmt.Sprintf("Server %s boots from a volume: snapshot the volume instead (openstack volume snapshot create).", id), Err: ErrConflict}
	}
	props := maps.Clone(metadata)
	if props == nil {
		props = map[string]string{}
	}
	props[propImageType], props[propInstanceUUID], props[propUserID] = "snapshot", id, c.User
	if base := cmpOr(srv.Metadata[metaImage], srv.ImageID); base != "" {
		props[propBaseImageRef] = base
	}
	spec := image.CreateSpec{Name: name, Visibility: "private", Properties: props}
	if f, ok := s.flavors.get(ctx, m, srv.FlavorID); ok {
		spec.MinDiskGiB = f.DiskGiB
	}
	img, err := creator.CreateOn(ctx, c.image(), m, spec, func(ctx context.Context, ps peers.ImageSpec) (peers.Image, error) {
		return imager.ImageServer(ctx, e.PeerResourceID, ps)
	})
	switch {
	case errors.Is(err, image.ErrInvalid), errors.Is(err, image.ErrForbidden):
		return image.Image{}, &Error{Field: "metadata", Message: "Invalid image metadata: " + faults.Detail(err), Err: faults.WithCause(ErrInvalid, err)}
	case errors.Is(err, peers.ErrConflict):
		return image.Image{}, &Error{Message: fmt.Sprintf("Cannot 'createImage' instance %s while it is in its current state.", id), Err: faults.WithCause(ErrConflict, err)}
	case errors.Is(err, peers.ErrNotSupported):
		return image.Image{}, &Error{Message: fmt.Sprintf("The cloud holding server %s cannot snapshot it (a server booted from a volume, or a cloud without snapshots).", id), Err: faults.WithCause(ErrConflict, err)}
	case errors.Is(err, peers.ErrNotFound):
		return image.Image{}, notFound(id)
	case err != nil:
		return image.Image{}, err
	}
	s.recordAction(ctx, c, id, "createImage", eventHost{m, srv.Host}, nil)
	return img, nil
}
