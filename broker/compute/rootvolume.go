package compute

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/peers"
)

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

// rootVolume makes the root volume of a server booting from a new volume:
// from the image (its ID on m, peerImage) on m, indexed under a broker ID
// as the volume API would, and waits until it is available. undo removes
// it again (the server's create failed).
func (s *Servers) rootVolume(ctx context.Context, c Caller, spec CreateSpec, m *peers.Member, peerImage string) (index.Entry, func(), error) {
	id := uuid.NewString()
	cctx, cancel := context.WithTimeout(ctx, s.timeout())
	v, err := m.Cloud.CreateVolume(cctx, peers.VolumeSpec{Name: spec.Name + "-root", Project: c.Project, SizeGiB: spec.RootVolumeGiB, ImageID: peerImage,
		Metadata: map[string]string{peers.MetaID: id, peers.MetaProject: c.Project, peers.MetaBrokerID: s.BrokerID}})
	cancel()
	if err != nil {
		return index.Entry{}, nil, fmt.Errorf("root volume on %s: %w", m.Peer.Name, err)
	}
	e := index.Entry{Kind: kindVolume, ID: id, Project: c.Project, PeerID: m.Peer.ID, PeerResourceID: v.ID, Name: v.Name, CreatedAt: v.CreatedAt}
	undo := func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout())
		defer cancel()
		err := errors.Join(m.Cloud.DeleteVolume(dctx, v.ID), s.Index.Delete(dctx, e))
		if err != nil && !errors.Is(err, peers.ErrNotFound) {
			s.Log.WithError(err).WithFields(logrus.Fields{"volume": id, "peer": m.Peer.Name}).Warn("root volume of a failed boot left behind")
		}
	}
	if err := s.Index.Put(ctx, e); err != nil {
		_ = m.Cloud.DeleteVolume(context.WithoutCancel(ctx), v.ID)
		return index.Entry{}, nil, err
	}
	if err := s.waitAvailable(ctx, m, v); err != nil {
		undo()
		return index.Entry{}, nil, err
	}
	return e, undo, nil
}

// waitAvailable polls a volume being made until it is available: the
// peers' contract has no events, and Nova waits the same way.
func (s *Servers) waitAvailable(ctx context.Context, m *peers.Member, v peers.Volume) error {
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
		if v, err = m.Cloud.GetVolume(ctx, v.ID); err != nil {
			return err
		}
	}
}
