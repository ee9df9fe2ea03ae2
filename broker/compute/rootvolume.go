package compute

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/peers"
)

// Volumes is the part of volume.Service servers use: the project's
// volumes to attach, and the root volume of a server booting from a new
// volume, which is a volume of the project like any other (listed,
// counted against its volume quota, deleted through Cinder or EC2).
type Volumes interface {
	Resolve(ctx context.Context, c volume.Caller, id string) (volume.Ref, error)
	CreateBoot(ctx context.Context, c volume.Caller, spec volume.BootSpec) (volume.Volume, error)
	Get(ctx context.Context, c volume.Caller, id string) (volume.Volume, error)
	Delete(ctx context.Context, c volume.Caller, id string) error
}

var _ Volumes = (*volume.Service)(nil)

func (c Caller) volume() volume.Caller {
	return volume.Caller{Project: c.Project, User: c.User, Admin: c.Admin}
}

// DefaultVolumeTimeout bounds the wait for a root volume made from an
// image to become available.
const DefaultVolumeTimeout = 10 * time.Minute

// volumePoll is how often a root volume's status is read while it is made.
const volumePoll = 50 * time.Millisecond

func (s *Servers) volumeTimeout() time.Duration {
	if s.VolumeTimeout > 0 {
		return s.VolumeTimeout
	}
	return DefaultVolumeTimeout
}

// rootVolume makes the root volume of a server booting from a new volume,
// through the volume service: from the image (its ID on m, peerImage) on
// m, and waits until it is available. undo deletes it again (the
// server's create failed), which gives its quota back.
func (s *Servers) rootVolume(ctx context.Context, c Caller, spec CreateSpec, m *peers.Member, peerImage string) (volume.Ref, func(), error) {
	if s.Volumes == nil {
		return volume.Ref{}, nil, &Error{Field: "block_device_mapping_v2", Message: "Volumes are not offered by this broker.", Err: ErrInvalid}
	}
	v, err := s.Volumes.CreateBoot(ctx, c.volume(), volume.BootSpec{Name: spec.Name + "-root", SizeGiB: spec.RootVolumeGiB, PeerID: m.Peer.ID, PeerImageID: peerImage})
	if errors.Is(err, volume.ErrOverQuota) {
		// Nova's answer when the boot volume is over the volume quota.
		return volume.Ref{}, nil, &Error{Field: "block_device_mapping_v2", Message: "Volume resource quota exceeded: " + err.Error(), Err: ErrQuotaExceeded}
	}
	if err != nil {
		return volume.Ref{}, nil, err
	}
	undo := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout())
		defer cancel()
		if err := s.Volumes.Delete(dctx, c.volume(), v.ID); err != nil && !errors.Is(err, volume.ErrNotFound) {
			s.Log.WithError(err).WithFields(logrus.Fields{"volume": v.ID, "peer": m.Peer.Name}).Warn("root volume of a failed boot left behind")
		}
	}
	if err := s.waitAvailable(ctx, c, m, v); err != nil {
		undo()
		return volume.Ref{}, nil, err
	}
	ref, err := s.Volumes.Resolve(ctx, c.volume(), v.ID)
	if err != nil {
		undo()
		return volume.Ref{}, nil, err
	}
	return ref, undo, nil
}

// waitAvailable polls a volume being made until it is available: the
// peers' contract has no events, and Nova waits the same way.
func (s *Servers) waitAvailable(ctx context.Context, c Caller, m *peers.Member, v volume.Volume) error {
	ctx, cancel := context.WithTimeout(ctx, s.volumeTimeout())
	defer cancel()
	tick := time.NewTicker(volumePoll)
	defer tick.Stop()
	for {
		switch v.Status {
		case peers.VolumeAvailable:
			return nil
		case peers.VolumeError:
			return fmt.Errorf("the root volume on %s failed to build: %w", m.Peer.Name, peers.ErrUnavailable)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("the root volume on %s is still %s: %w", m.Peer.Name, v.Status, ctx.Err())
		}
		var err error
		if v, err = s.Volumes.Get(ctx, c.volume(), v.ID); err != nil {
			return err
		}
	}
}
