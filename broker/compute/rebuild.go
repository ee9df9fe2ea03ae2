package compute

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/cloudmux/cloudmux/broker/faults"
	"github.com/cloudmux/cloudmux/peers"
)

// RebuildSpec is a rebuild's request (Nova's rebuild action).
type RebuildSpec struct {
	// ImageRef is the broker image to boot (ID or href).
	ImageRef string
	// Update carries the name, metadata (which replaces the server's:
	// set ReplaceMetadata), description and hostname, checked as an
	// update's.
	Update
	// KeyName, when set, is the keypair the guest gets ("" none: Nova
	// 2.54's null); nil keeps the server's.
	KeyName *string
	// UserData, when set, is the guest's new user data, base64 ("" none:
	// 2.57's null); nil keeps the server's.
	UserData *string
	// PreserveEphemeral keeps the ephemeral disk (peers.RebuildSpec).
	PreserveEphemeral bool
}

// Rebuild reprovisions a server from an image, on the peer it runs on
// (peers.ServerRebuilder), as Nova's rebuild does: the image is resolved
// with Glance's visibility rules and checked against the server's flavor,
// and copied to the server's peer first when that peer lacks it (the
// stager, as a create does); the keypair is the caller's, imported
// there. The server goes REBUILD, then back to its power state with the
// new image. Name, metadata, description and hostname change in the
// broker's attributes once the peer took the rebuild. Nothing changes in
// the quota: the flavor stays. It returns the server as it is then, with
// the admin password Nova returns (as a create's, never set in the
// guest).
func (s *Servers) Rebuild(ctx context.Context, c Caller, id string, spec RebuildSpec) (Server, error) {
	if err := spec.Update.check(); err != nil {
		return Server{}, err
	}
	var userData []byte
	if spec.UserData != nil && *spec.UserData != "" {
		body := serverBody{UserData: spec.UserData}
		var cs CreateSpec
		if err := body.userData(&cs); err != nil {
			return Server{}, err
		}
		userData = cs.UserData
	}
	e, m, err := s.unlocked(ctx, c, id)
	if err != nil {
		return Server{}, err
	}
	rb, ok := m.Cloud.(peers.ServerRebuilder)
	if !ok {
		return Server{}, &Error{Message: fmt.Sprintf("The cloud holding server %s cannot rebuild servers.", id), Err: faults.WithCause(ErrConflict, peers.ErrNotSupported)}
	}
	pctx, cancel := context.WithTimeout(ctx, s.timeout())
	srv, err := s.peerServer(pctx, e, m)
	cancel()
	if err != nil {
		return Server{}, err
	}
	if srv.Metadata[metaBootVolume] != "" || srv.ImageID == "" {
		// Nova before 2.93 refuses a volume-backed server a new image; the
		// broker does not know the volume's image, so it refuses any.
		return Server{}, invalid("imageRef", "Server %s is booted from a volume; rebuilding it is not offered", id)
	}
	f, ok := s.flavors.get(ctx, m, srv.FlavorID)
	if !ok {
		return Server{}, &Error{Message: fmt.Sprintf("The flavor of server %s is gone from its cloud; its image's fit cannot be checked.", id), Err: ErrConflict}
	}
	p := plan{flavor: f}
	if err := s.resolveImage(ctx, c, lastSegment(spec.ImageRef), &p, true); err != nil {
		return Server{}, err
	}
	if why := s.imageReason(p, m); why != "" {
		return Server{}, invalid("imageRef", "Image %s cannot be used by server %s: %s", p.image.ID, id, why)
	}
	a, err := s.attrStore().View(ctx, c.Project, id)
	if err != nil {
		return Server{}, err
	}
	if spec.UserData == nil && a.UserData != "" {
		if userData, err = base64.StdEncoding.DecodeString(a.UserData); err != nil {
			return Server{}, fmt.Errorf("server %s: its kept user data: %w", id, err)
		}
	}
	ps := peers.RebuildSpec{UserData: userData, Metadata: maps.Clone(srv.Metadata), KeyName: srv.KeyName, PreserveEphemeral: spec.PreserveEphemeral}
	if ps.Metadata == nil {
		ps.Metadata = map[string]string{}
	}
	if spec.KeyName != nil {
		ps.KeyName = ""
		delete(ps.Metadata, metaKeyName)
		if *spec.KeyName != "" {
			kp, err := s.Keypairs.Get(ctx, c.User, *spec.KeyName)
			switch {
			case errors.Is(err, peers.ErrNotFound):
				return Server{}, invalid("key_name", "Invalid key_name provided: keypair %s not found", *spec.KeyName)
			case err != nil:
				return Server{}, err
			}
			kctx, cancel := context.WithTimeout(ctx, s.timeout())
			ps.KeyName, err = importKeypair(kctx, m.Cloud, c, kp)
			cancel()
			if err != nil {
				return Server{}, err
			}
			ps.Metadata[metaKeyName] = kp.Name
		}
	}
	if spec.Metadata != nil { // the peer's copy follows, for an index rebuilt from the peers
		for k := range ps.Metadata {
			if !strings.HasPrefix(k, reservedMetaPre) {
				delete(ps.Metadata, k)
			}
		}
		maps.Copy(ps.Metadata, spec.Metadata)
	}
	ps.Metadata[metaImage] = p.image.ID
	if spec.Hostname != nil {
		ps.Hostname = *spec.Hostname
	}
	// The copy, if one is needed, takes as long as it takes.
	if ps.ImageID, err = s.bootImage(ctx, p, m); err != nil {
		return Server{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, s.timeout())
	err = rb.RebuildServer(rctx, e.PeerResourceID, ps)
	cancel()
	switch {
	case errors.Is(err, peers.ErrConflict):
		return Server{}, &Error{Message: fmt.Sprintf("Cannot 'rebuild' instance %s while it is in its current state.", id), Err: faults.WithCause(ErrConflict, err)}
	case errors.Is(err, peers.ErrNotSupported):
		return Server{}, &Error{Message: fmt.Sprintf("The cloud holding server %s cannot rebuild it as asked (a hostname needs its compute API 2.90).", id), Err: faults.WithCause(ErrConflict, err)}
	case errors.Is(err, peers.ErrInvalid), errors.Is(err, peers.ErrNotFound):
		return Server{}, &Error{Field: "imageRef", Message: fmt.Sprintf("Cannot rebuild server %s from image %s.", id, p.image.ID), Err: faults.WithCause(ErrInvalid, err)}
	case errors.Is(err, peers.ErrCapacity):
		return Server{}, &Error{Message: fmt.Sprintf("No valid host was found. The host of server %s has no room for image %s's disk.", id, p.image.ID), Err: faults.WithCause(ErrNoValidHost, err)}
	case err != nil:
		return Server{}, err
	}
	if err := s.setAttrs(ctx, c, id, func(a *attrs) error {
		spec.Update.apply(a)
		if spec.Metadata != nil {
			a.Metadata, a.MetadataSet = maps.Clone(spec.Metadata), true
		}
		if spec.UserData != nil {
			a.UserData = encodeUserData(userData)
		}
		a.Image = p.image.ID
		return nil
	}); err != nil {
		s.Log.WithError(err).WithField("server", id).Error("a rebuilt server's name, metadata or description not recorded")
	}
	s.recordAction(ctx, c, id, "rebuild", eventHost{m, srv.Host}, nil)
	out, err := s.Get(ctx, c, id)
	if err != nil {
		return Server{}, err
	}
	out.AdminPass = adminPass()
	return out, nil
}
