package image

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// MakeFunc makes an image on a peer from the spec the service prepared
// (a server snapshot: the compute service's call of the peer's
// peers.ServerImager). The peer may give the image an ID of its own.
type MakeFunc func(ctx context.Context, spec peers.ImageSpec) (peers.Image, error)

// CreateOn registers an image that another service makes on peer m, as
// Nova's createImage makes a server's snapshot where the server runs:
// spec is checked and marked as Create does (DiskFormat and
// ContainerFormat may be left to the peer), make is called with the
// peer's spec, and the image it returns is indexed under its broker ID
// (spec.ID or a new one; its ID on the peer may differ), so it is
// listed, shown, updated, deleted and staged to other peers like any
// image the broker created. If the index write fails the peer's image is
// removed again.
func (s *Service) CreateOn(ctx context.Context, c Caller, m *peers.Member, spec CreateSpec, make MakeFunc) (Image, error) {
	// The peer picks the formats of what it makes; Validate wants some.
	check := spec
	if check.DiskFormat == "" {
		check.DiskFormat = "qcow2"
	}
	if check.ContainerFormat == "" {
		check.ContainerFormat = "bare"
	}
	ps, err := s.prepare(ctx, c, check)
	if err != nil {
		return Image{}, err
	}
	ps.DiskFormat, ps.ContainerFormat = spec.DiskFormat, spec.ContainerFormat
	img, err := make(ctx, ps)
	if err != nil {
		return Image{}, err
	}
	e := index.Entry{Kind: Kind, ID: ps.ID, Project: ps.Project, PeerID: m.Peer.ID, PeerResourceID: img.ID, Name: img.Name, CreatedAt: img.CreatedAt}
	if err := s.Index.Put(ctx, e); err != nil {
		if derr := m.Cloud.DeleteImage(context.WithoutCancel(ctx), img.ID); derr != nil {
			s.Log.WithError(derr).WithFields(logrus.Fields{"image": ps.ID, "peer": m.Peer.Name}).Warn("image left on its peer after a failed index write")
		}
		if errors.Is(err, registry.ErrConflict) {
			return Image{}, fmt.Errorf("image ID %s already exists: %w", ps.ID, ErrConflict)
		}
		return Image{}, fmt.Errorf("indexing image %s: %w", ps.ID, err)
	}
	s.Log.WithFields(logrus.Fields{"image": ps.ID, "peer": m.Peer.Name, "project": ps.Project}).Info("image created on its peer")
	return s.present(located{img: img, member: m, entry: &e}, false), nil
}

// prepare checks a create's spec for c and returns the peer's spec: its
// broker ID (spec.ID, free, or a new one), owner and properties with the
// broker's marks.
func (s *Service) prepare(ctx context.Context, c Caller, spec CreateSpec) (peers.ImageSpec, error) {
	if err := spec.Validate(); err != nil {
		return peers.ImageSpec{}, err
	}
	if spec.Visibility == "public" && !c.Admin {
		return peers.ImageSpec{}, fmt.Errorf("only a cloud admin may publicize an image (visibility public): %w", ErrForbidden)
	}
	owner := c.Project
	if spec.Owner != "" && spec.Owner != c.Project {
		if !c.Admin {
			return peers.ImageSpec{}, fmt.Errorf("owner: you may only create images owned by your project: %w", ErrForbidden)
		}
		owner = spec.Owner
	}
	id := spec.ID
	if id == "" {
		id = uuid.NewString()
	} else {
		id = strings.ToLower(id)
		switch _, err := s.locate(ctx, id); {
		case err == nil:
			return peers.ImageSpec{}, fmt.Errorf("image ID %s already exists: %w", id, ErrConflict)
		case !errors.Is(err, ErrNotFound):
			return peers.ImageSpec{}, err
		}
	}
	props := maps.Clone(spec.Properties)
	if props == nil {
		props = map[string]string{}
	}
	for k, v := range spec.Marks {
		if strings.HasPrefix(k, "cloudmux_") {
			props[k] = v
		}
	}
	props[peers.MetaID], props[peers.MetaProject], props[peers.MetaBrokerID] = id, owner, s.BrokerID
	if spec.Hidden {
		props[hiddenProperty] = "true"
	}
	ps := peers.ImageSpec{ID: id, Name: spec.Name, Project: owner, DiskFormat: spec.DiskFormat, ContainerFormat: spec.ContainerFormat,
		MinRAMMiB: spec.MinRAMMiB, MinDiskGiB: spec.MinDiskGiB, Visibility: spec.Visibility, Protected: spec.Protected,
		Tags: slices.Clone(spec.Tags), Properties: props}
	return ps, nil
}
