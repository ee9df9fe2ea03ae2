package deployres_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/deploytest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// slowAttach is a peer whose attaches have not finished while pending
// is set: the volume reads attaching and the server does not list it yet,
// as a real cloud shows them mid-attach.
type slowAttach struct {
	*localcloud.Cloud
	pending *atomic.Bool
}

func (s slowAttach) GetServer(ctx context.Context, id string) (peers.Server, error) {
	srv, err := s.Cloud.GetServer(ctx, id)
	if s.pending.Load() {
		srv.Volumes = slices.DeleteFunc(srv.Volumes, func(string) bool { return true })
	}
	return srv, err
}

func (s slowAttach) GetVolume(ctx context.Context, id string) (peers.Volume, error) {
	v, err := s.Cloud.GetVolume(ctx, id)
	if s.pending.Load() && v.Status == peers.VolumeInUse {
		v.Status, v.Attachments = peers.VolumeAttaching, nil
	}
	return v, err
}

// TestAttachmentOnItsWay: while the peer is still attaching, the
// attachment is not ready (the engine waits), not gone (the engine
// failed the deployment with "attachment of volume ... could not be
// found"); once attached it is ready.
func TestAttachmentOnItsWay(t *testing.T) {
	var pending atomic.Bool
	e := brokertest.New(t, []brokertest.Peer{{Name: "local", Wrap: func(c *localcloud.Cloud) peers.Cloud {
		if _, err := c.Seed(context.Background()); err != nil {
			t.Fatal(err)
		}
		return slowAttach{Cloud: c, pending: &pending}
	}}}, nil)
	svc := deploytest.New(e.Store, e.Pool, policy.Default{}, "test-broker", e.Log)
	ctx, c := e.Ctx, resource.Caller{Project: "p", User: "u"}
	img, err := svc.Adapter.Image(ctx, c, localcloud.SeedImageName)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := svc.Servers.Create(ctx, compute.Caller{Project: c.Project, User: c.User}, compute.CreateSpec{Name: "vm", FlavorRef: "m1.nano",
		ImageRef: img.ID, NetworksMode: compute.NetworksNone})
	if err != nil {
		t.Fatal(err)
	}
	vol, err := svc.Volumes.Create(ctx, volume.Caller{Project: c.Project, User: c.User}, volume.CreateSpec{Name: "data", SizeGiB: 1})
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		s, err := svc.Servers.Get(ctx, compute.Caller{Project: c.Project}, srv.ID)
		v, verr := svc.Volumes.Get(ctx, volume.Caller{Project: c.Project}, vol.ID)
		return err == nil && verr == nil && s.Status == peers.ServerActive && v.Status == peers.VolumeAvailable
	})
	pending.Store(true)
	if _, err := svc.Adapter.Attach(ctx, c, srv.ID, vol.ID); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool { // the local cloud's own attach is done; the peer shows it as still going
		v, err := e.Pool.Members()[0].Cloud.(slowAttach).Cloud.GetVolume(ctx, mustPeerVolume(t, svc, vol.ID))
		return err == nil && v.Status == peers.VolumeInUse
	})
	if st, err := svc.Adapter.Attached(ctx, c, srv.ID, vol.ID); err != nil || st.Ready {
		t.Fatalf("mid-attach: %+v, %v; want not ready and no error", st, err)
	}
	pending.Store(false)
	if st, err := svc.Adapter.Attached(ctx, c, srv.ID, vol.ID); err != nil || !st.Ready {
		t.Fatalf("attached: %+v, %v; want ready", st, err)
	}
}

// waitUntil polls cond (every 10 ms) until it holds.
func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatal("the test ended first")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// mustPeerVolume is the peer's own ID of a volume.
func mustPeerVolume(t *testing.T, svc *deploytest.Services, id string) string {
	t.Helper()
	e, err := svc.Index.Get(t.Context(), volume.Kind, id, "")
	if err != nil {
		t.Fatal(err)
	}
	return e.PeerResourceID
}
