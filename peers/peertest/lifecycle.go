package peertest

import (
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

// testLifecycle walks a server of its own through the optional lifecycle
// abilities (ServerRebuilder, ServerShelver); a cloud lacking one skips its steps
// saying so. Each step builds on the one before.
func (s *suite) testLifecycle(t *testing.T) {
	net, _ := s.makeNetwork(t, "10.90.0.0/24")
	kp := s.makeKeypair(t)
	id := s.bootServer(t, net.ID).ID
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Rebuild", func(t *testing.T) { s.gap(t); s.rebuild(t, id, kp.Name) }},
		{"Shelve", func(t *testing.T) { s.gap(t); s.shelve(t, id) }},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.run) {
			return
		}
	}
}

// rebuild rebuilds an ACTIVE server with a key, user data and new
// metadata, then a SHUTOFF one (which stays SHUTOFF), and checks the
// refusals.
func (s *suite) rebuild(t *testing.T, id, keyName string) {
	rb, ok := s.c.(peers.ServerRebuilder)
	if !ok {
		t.Skip("the cloud does not implement peers.ServerRebuilder")
	}
	meta := s.meta("peertest_role", "rebuilt")
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"UnknownImage", func(t *testing.T) {
			err := rb.RebuildServer(t.Context(), id, peers.RebuildSpec{ImageID: "8c4f1a5e-0000-4000-8000-00000000dead", Metadata: meta})
			wantErr(t, "a rebuild from an unknown image", err, peers.ErrNotFound, peers.ErrInvalid)
		}},
		{"Active", func(t *testing.T) {
			spec := peers.RebuildSpec{ImageID: s.fx.ImageID, KeyName: keyName, UserData: []byte("#cloud-config\n"), Metadata: meta}
			if err := rb.RebuildServer(t.Context(), id, spec); err != nil {
				t.Fatalf("RebuildServer: %v", err)
			}
			srv := s.waitServer(t, id, peers.ServerActive)
			if srv.ImageID != s.fx.ImageID || srv.KeyName != keyName || srv.FlavorID != s.fx.FlavorID {
				t.Fatalf("rebuilt server: image %q, key %q, flavor %q; want %q, %q, %q", srv.ImageID, srv.KeyName, srv.FlavorID, s.fx.ImageID, keyName, s.fx.FlavorID)
			}
			wantMetadata(t, "rebuilt server", srv.Metadata, meta)
			if len(srv.Addresses) == 0 {
				t.Fatalf("rebuilt server has no addresses; a rebuild keeps the ports")
			}
		}},
		{"Shutoff", func(t *testing.T) {
			if err := s.c.ServerAction(t.Context(), id, peers.ActionStop); err != nil {
				t.Fatalf("stop: %v", err)
			}
			s.waitServer(t, id, peers.ServerShutoff)
			if err := rb.RebuildServer(t.Context(), id, peers.RebuildSpec{ImageID: s.fx.ImageID, Metadata: meta}); err != nil {
				t.Fatalf("RebuildServer of a SHUTOFF server: %v", err)
			}
			// REBUILD at once, then SHUTOFF again, as Nova leaves a stopped server.
			if srv := s.waitServer(t, id, peers.ServerShutoff); srv.KeyName != "" {
				t.Fatalf("rebuilt without a key: key %q; want none", srv.KeyName)
			}
			if err := s.c.ServerAction(t.Context(), id, peers.ActionStart); err != nil {
				t.Fatalf("start: %v", err)
			}
			s.waitServer(t, id, peers.ServerActive)
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.run) {
			return
		}
	}
}

// shelve shelves an ACTIVE server until it is offloaded, checks what a
// shelved server refuses, and unshelves it.
func (s *suite) shelve(t *testing.T, id string) {
	sh, ok := s.c.(peers.ServerShelver)
	if !ok {
		t.Skip("the cloud does not implement peers.ServerShelver")
	}
	before, err := s.c.GetServer(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"OffloadActive", func(t *testing.T) {
			if s.fx.Tenant { // Nova's default policy keeps shelveOffload to admins
				wantErr(t, "an offload by a tenant", sh.OffloadServer(t.Context(), id), peers.ErrUnauthorized)
				return
			}
			wantErr(t, "an offload of an ACTIVE server", sh.OffloadServer(t.Context(), id), peers.ErrConflict)
		}},
		{"UnshelveActive", func(t *testing.T) {
			wantErr(t, "an unshelve of an ACTIVE server", sh.UnshelveServer(t.Context(), id), peers.ErrConflict)
		}},
		{"Shelve", func(t *testing.T) {
			if err := sh.ShelveServer(t.Context(), id); err != nil {
				t.Fatalf("ShelveServer: %v", err)
			}
			// SHELVED first, then offloaded (the clouds' default).
			s.waitServer(t, id, peers.ServerShelvedOffloaded)
		}},
		{"ShelvedRefusals", func(t *testing.T) {
			wantErr(t, "a start of a shelved server", s.c.ServerAction(t.Context(), id, peers.ActionStart), peers.ErrConflict)
			wantErr(t, "a second shelve", sh.ShelveServer(t.Context(), id), peers.ErrConflict)
		}},
		{"Unshelve", func(t *testing.T) {
			if err := sh.UnshelveServer(t.Context(), id); err != nil {
				t.Fatalf("UnshelveServer: %v", err)
			}
			srv := s.waitServer(t, id, peers.ServerActive)
			if srv.ImageID != before.ImageID || srv.FlavorID != before.FlavorID || len(srv.Addresses) != len(before.Addresses) ||
				len(srv.Addresses) > 0 && srv.Addresses[0].Addr != before.Addresses[0].Addr {
				t.Fatalf("unshelved server = %+v\nwant the image, flavor and addresses it had: %+v", srv, before)
			}
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.run) {
			return
		}
	}
}
