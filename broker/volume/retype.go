package volume

import (
	"context"
	"fmt"
)

// Retype gives a volume another type (Cinder's os-retype) where that
// needs no move: its peer carries the new type's labels and makes
// volumes of the new type's peer type as this one is. A retype that
// would move the volume to another peer or backend is refused, as
// Cinder refuses one needing migration under migration_policy never:
// the broker does not migrate volumes.
func (s *Service) Retype(ctx context.Context, c Caller, id, newType string) (Volume, error) {
	if newType == "" {
		return Volume{}, invalid("new_type", "Invalid input received: new_type is required")
	}
	_, m, v, err := s.locateVolume(ctx, c, id)
	if err != nil {
		return Volume{}, err
	}
	vt, err := s.GetType(ctx, c, newType)
	if err != nil {
		return Volume{}, err
	}
	for k, want := range vt.Labels() {
		if m.Peer.Labels[k] != want {
			return Volume{}, &Error{Field: "new_type", Err: ErrInvalid, Message: fmt.Sprintf(
				"Invalid volume type: Retype requires migration but is not allowed: type %s needs a peer labelled %s=%s, and volume %s lives in zone %s", vt.Name, k, want, id, m.Peer.Name)}
		}
	}
	if pt := vt.ExtraSpecs[SpecPeerType]; pt != "" && pt != v.VolumeType {
		return Volume{}, &Error{Field: "new_type", Err: ErrInvalid, Message: fmt.Sprintf(
			"Invalid volume type: Retype requires migration but is not allowed: type %s is the peer's %s, and volume %s is its %s", vt.Name, pt, id, v.VolumeType)}
	}
	name := vt.Name
	return updateShown(ctx, s, c, id, UpdateSpec{VolumeType: &name}, s.Get, func(v Volume) map[string]string { return v.Metadata })
}
