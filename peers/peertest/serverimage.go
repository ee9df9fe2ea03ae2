package peertest

import (
	"context"
	"errors"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

// snapshot is a server snapshot's walk (peers.ServerImager) on an ACTIVE
// server: Snapshot asks for it and checks what comes back at once,
// SnapshotActive waits for its bytes and boots a server from it (a gap
// of a cloud whose fake hypervisor makes no bytes). The server ends
// ACTIVE; the image goes at cleanup.
type snapshot struct {
	s *suite
	// walk is the server walk's test: the image outlives the subtest
	// that makes it, so its cleanup is the walk's.
	walk  *testing.T
	srvID string
	netID string
	meta  map[string]string
	img   peers.Image
}

func (s *suite) newSnapshot(walk *testing.T, srvID, netID string) *snapshot {
	return &snapshot{s: s, walk: walk, srvID: srvID, netID: netID, meta: s.meta("peertest_role", "snapshot")}
}

func imager(t *testing.T, c peers.Cloud) peers.ServerImager {
	si, ok := c.(peers.ServerImager)
	if !ok {
		t.Skip("the cloud does not implement peers.ServerImager")
	}
	return si
}

func (sn *snapshot) start(t *testing.T) {
	s := sn.s
	si := imager(t, s.c)
	_, err := si.ImageServer(t.Context(), "00000000-0000-4000-8000-00000000beef", peers.ImageSpec{Name: s.name("snap"), Project: s.fx.Project})
	wantErr(t, "ImageServer of an unknown server", err, peers.ErrNotFound)
	name := s.name("snap")
	img, err := si.ImageServer(t.Context(), sn.srvID, peers.ImageSpec{Name: name, Project: s.fx.Project, Visibility: "private", Properties: sn.meta})
	if err != nil {
		t.Fatalf("ImageServer(%s): %v", sn.srvID, err)
	}
	s.cleanupImage(sn.walk, img.ID)
	sn.img = img
	wantUUID(t, "ImageServer", img.ID)
	if img.Name != name || img.Project != s.fx.Project || (img.Status != peers.ImageQueued && img.Status != peers.ImageSaving && img.Status != peers.ImageActive) {
		t.Fatalf("ImageServer = %+v; want name %q, project %q, queued, saving or active", img, name, s.fx.Project)
	}
	wantMetadata(t, "ImageServer's properties", img.Properties, sn.meta)
	// The server takes no other action until the snapshot is taken.
	s.mustPoll(t, "server "+sn.srvID+" to end its snapshot task", func(ctx context.Context) (bool, string, error) {
		srv, err := s.c.GetServer(ctx, sn.srvID)
		return err == nil && srv.Task == "", string(srv.Status) + "/" + srv.Task, err
	})
	if srv, err := s.c.GetServer(t.Context(), sn.srvID); err != nil || srv.Status != peers.ServerActive {
		t.Fatalf("after its snapshot the server is %s, %v; want ACTIVE", srv.Status, err)
	}
}

func (sn *snapshot) active(t *testing.T) {
	s := sn.s
	if sn.img.ID == "" {
		t.Skip("no snapshot was started (Snapshot was skipped)")
	}
	img := s.waitImage(t, sn.img.ID, peers.ImageActive)
	if img.Size <= 0 || img.DiskFormat == "" || img.ContainerFormat == "" {
		t.Fatalf("snapshot image %+v: want bytes (size > 0) and its disk and container formats", img)
	}
	wantMetadata(t, "the active snapshot's properties", img.Properties, sn.meta)
	s.waitServer(t, sn.srvID, peers.ServerActive) // the snapshot leaves it running
	spec := peers.ServerSpec{
		Name: s.name("from-snap"), Project: s.fx.Project, FlavorID: s.fx.FlavorID, ImageID: img.ID,
		Networks: []peers.NetworkAttachment{{NetworkID: sn.netID}}, Metadata: s.meta(),
	}
	srv, err := s.c.CreateServer(t.Context(), spec)
	if err != nil {
		t.Fatalf("CreateServer from the snapshot %s: %v", img.ID, err)
	}
	// Deleted here, not at cleanup: the image's cleanup comes first there
	// (cleanups run last in, first out), and a server may hold its image.
	defer func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		if err := s.c.DeleteServer(ctx, srv.ID); err != nil && !errors.Is(err, peers.ErrNotFound) {
			t.Errorf("DeleteServer(%s): %v", srv.ID, err)
			return
		}
		if err := s.pollGone("server "+srv.ID, s.serverStatus(srv.ID)); err != nil {
			t.Error(err)
		}
	}()
	if got := s.waitServer(t, srv.ID, peers.ServerActive); got.ImageID != img.ID {
		t.Fatalf("server booted from the snapshot shows image %q, want %s", got.ImageID, img.ID)
	}
}
