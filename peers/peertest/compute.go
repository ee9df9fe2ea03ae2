package peertest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

func (s *suite) testInfo(t *testing.T) {
	info := s.c.Info()
	if !slices.Contains(registry.Kinds, info.Kind) {
		t.Fatalf("Info().Kind = %q, want one of %v", info.Kind, registry.Kinds)
	}
	if info.Driver == "" {
		t.Fatalf("Info().Driver is empty, want the driver's name (libvirt, fake, gophercloud...)")
	}
}

func (s *suite) testCapacity(t *testing.T) {
	c, err := s.c.Capacity(t.Context())
	if err != nil {
		t.Fatalf("Capacity: %v", err)
	}
	dims := []struct {
		name          string
		r             registry.Resource
		totalRequired bool
	}{
		{"VCPUs", c.VCPUs, true},
		{"RAMMiB", c.RAMMiB, true},
		{"DiskGiB", c.DiskGiB, true},
		// Some clouds cannot say how many instances they could hold.
		{"Instances", c.Instances, false},
		// Object storage, for clouds with peers.Objects that can say.
		{"ObjectBytes", c.ObjectBytes, false},
	}
	for _, d := range dims {
		t.Run(d.name, func(t *testing.T) {
			if d.totalRequired && d.r.Total <= 0 {
				t.Fatalf("Total = %d, want > 0 (whole capacity: %+v)", d.r.Total, c)
			}
			if d.r.Total < 0 || d.r.Used < 0 {
				t.Fatalf("Total %d, Used %d: neither may be negative", d.r.Total, d.r.Used)
			}
			if limit := float64(d.r.Total) * s.fx.MaxOvercommit; d.r.Total > 0 && float64(d.r.Used) > limit {
				t.Fatalf("Used %d exceeds Total %d times the fixture's MaxOvercommit %.1f", d.r.Used, d.r.Total, s.fx.MaxOvercommit)
			}
		})
	}
}

// testContextCanceled checks that calls honour a context that is already
// done: they fail, and the error says why.
func (s *suite) testContextCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := []struct {
		name string
		call func() error
	}{
		{"Capacity", func() error { _, err := s.c.Capacity(ctx); return err }},
		{"ListFlavors", func() error { _, err := s.c.ListFlavors(ctx); return err }},
		{"GetServer", func() error { _, err := s.c.GetServer(ctx, "00000000-0000-4000-8000-000000000000"); return err }},
		{"ListServers", func() error { _, err := s.c.ListServers(ctx, peers.ListOptions{}); return err }},
		{"ListImages", func() error { _, err := s.c.ListImages(ctx, peers.ListOptions{}); return err }},
		{"ListNetworks", func() error { _, err := s.c.ListNetworks(ctx, peers.ListOptions{}); return err }},
		{"ListVolumes", func() error { _, err := s.c.ListVolumes(ctx, peers.ListOptions{}); return err }},
		{"ListKeypairs", func() error { _, err := s.c.ListKeypairs(ctx, peers.ListOptions{}); return err }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name+" with a cancelled context", tc.call(), context.Canceled)
		})
	}
}

func (s *suite) testFlavors(t *testing.T) {
	ctx := t.Context()
	flavors, err := s.c.ListFlavors(ctx)
	if err != nil {
		t.Fatalf("ListFlavors: %v", err)
	}
	i := slices.IndexFunc(flavors, func(f peers.Flavor) bool { return f.ID == s.fx.FlavorID })
	if i < 0 {
		t.Fatalf("ListFlavors = %v, want it to contain the fixture's flavor %q", ids(flavors, func(f peers.Flavor) string { return f.ID }), s.fx.FlavorID)
	}
	listed := flavors[i]
	got, err := s.c.GetFlavor(ctx, s.fx.FlavorID)
	if err != nil {
		t.Fatalf("GetFlavor(%q): %v", s.fx.FlavorID, err)
	}
	if got.ID != listed.ID || got.Name != listed.Name || got.VCPUs != listed.VCPUs || got.RAMMiB != listed.RAMMiB || got.DiskGiB != listed.DiskGiB {
		t.Fatalf("GetFlavor = %+v, want what ListFlavors said: %+v", got, listed)
	}
	if got.VCPUs <= 0 || got.RAMMiB <= 0 || got.Name == "" {
		t.Fatalf("GetFlavor = %+v, want a name, vCPUs > 0 and RAM > 0", got)
	}
	_, err = s.c.GetFlavor(ctx, "peertest-no-such-flavor-"+s.run)
	wantErr(t, "GetFlavor of an unknown ID", err, peers.ErrNotFound)
}

// makeKeypair imports a fresh keypair and deletes it at cleanup.
func (s *suite) makeKeypair(t *testing.T) peers.Keypair {
	t.Helper()
	spec := peers.KeypairSpec{Name: s.name("key"), Project: s.fx.Project, PublicKey: sshPublicKey()}
	kp, err := s.c.CreateKeypair(t.Context(), spec)
	if err != nil {
		t.Fatalf("CreateKeypair(%q): %v", spec.Name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		if err := s.c.DeleteKeypair(ctx, kp.Name); err != nil && !errors.Is(err, peers.ErrNotFound) {
			t.Errorf("cleanup: DeleteKeypair(%q): %v", kp.Name, err)
		}
	})
	return kp
}

// cleanupServer deletes the server at cleanup and waits until it is gone,
// so cleanups registered before it (its network) find it gone.
func (s *suite) cleanupServer(t *testing.T, id string) {
	t.Cleanup(func() {
		ctx, cancel := s.cleanupCtx()
		defer cancel()
		if err := s.c.DeleteServer(ctx, id); err != nil {
			if !errors.Is(err, peers.ErrNotFound) {
				t.Errorf("cleanup: DeleteServer(%s): %v", id, err)
			}
			return
		}
		if err := s.pollGone("cleanup: server "+id, s.serverStatus(id)); err != nil {
			t.Error(err)
		}
	})
}

func (s *suite) serverStatus(id string) func(ctx context.Context) (string, error) {
	return func(ctx context.Context) (string, error) {
		srv, err := s.c.GetServer(ctx, id)
		return string(srv.Status), err
	}
}

// waitServer polls until the server reaches want; ERROR ends the wait.
func (s *suite) waitServer(t *testing.T, id string, want peers.ServerStatus) peers.Server {
	t.Helper()
	var srv peers.Server
	s.mustPoll(t, fmt.Sprintf("server %s to become %s", id, want), func(ctx context.Context) (bool, string, error) {
		var err error
		srv, err = s.c.GetServer(ctx, id)
		if err != nil {
			return false, "", err
		}
		if srv.Status == peers.ServerError && want != peers.ServerError {
			return false, string(srv.Status), fmt.Errorf("server went to ERROR (fault: %q)", srv.Fault)
		}
		return srv.Status == want, string(srv.Status), nil
	})
	return srv
}

// bootServer creates a server on network net and waits for ACTIVE.
func (s *suite) bootServer(t *testing.T, netID string) peers.Server {
	t.Helper()
	spec := peers.ServerSpec{
		Name: s.name("server"), Project: s.fx.Project, FlavorID: s.fx.FlavorID, ImageID: s.fx.ImageID,
		Networks: []peers.NetworkAttachment{{NetworkID: netID}}, Metadata: s.meta(),
	}
	srv, err := s.c.CreateServer(t.Context(), spec)
	if err != nil {
		t.Fatalf("CreateServer(%s): %v", spec.Name, err)
	}
	s.cleanupServer(t, srv.ID)
	return s.waitServer(t, srv.ID, peers.ServerActive)
}

// testServers walks one server through its life. Each step is a subtest;
// the walk stops at the first step that fails, since later ones build on it.
func (s *suite) testServers(t *testing.T) {
	ctx := t.Context()
	net, sub := s.makeNetwork(t, "10.77.0.0/24")
	kp := s.makeKeypair(t)
	flavor, err := s.c.GetFlavor(ctx, s.fx.FlavorID)
	if err != nil {
		t.Fatalf("GetFlavor(%q): %v", s.fx.FlavorID, err)
	}
	meta := s.meta("peertest_role", "server")
	spec := peers.ServerSpec{
		Name: s.name("server"), Project: s.fx.Project, FlavorID: s.fx.FlavorID, ImageID: s.fx.ImageID,
		Networks: []peers.NetworkAttachment{{NetworkID: net.ID}}, KeyName: kp.Name,
		UserData: []byte("#cloud-config\n"), Metadata: meta,
	}
	created, err := s.c.CreateServer(ctx, spec)
	if err != nil {
		t.Fatalf("CreateServer: %v", err)
	}
	s.cleanupServer(t, created.ID)
	id := created.ID
	var srv peers.Server
	snap := s.newSnapshot(t, id, net.ID)

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"CreateReturnsBuild", func(t *testing.T) {
			wantUUID(t, "CreateServer", id)
			if created.Status != peers.ServerBuild {
				t.Fatalf("CreateServer returned status %q, want %q (the contract: long operations return at once, transitional)", created.Status, peers.ServerBuild)
			}
		}},
		{"BecomesActive", func(t *testing.T) { srv = s.waitServer(t, id, peers.ServerActive) }},
		{"Fields", func(t *testing.T) {
			if srv.ID != id || srv.Name != spec.Name || srv.Project != s.fx.Project || srv.FlavorID != s.fx.FlavorID ||
				srv.ImageID != s.fx.ImageID || srv.KeyName != kp.Name || srv.CreatedAt.IsZero() {
				t.Fatalf("GetServer = %+v\nwant ID %s, name %q, project %q, flavor %q, image %q, key %q and a creation time",
					srv, id, spec.Name, s.fx.Project, s.fx.FlavorID, s.fx.ImageID, kp.Name)
			}
		}},
		{"Metadata", func(t *testing.T) { wantMetadata(t, "GetServer", srv.Metadata, meta) }},
		{"Addresses", func(t *testing.T) {
			for _, a := range srv.Addresses {
				if inCIDR(a.Addr, sub.CIDR) && a.Version == 4 && (a.Network == net.Name || a.Network == net.ID) {
					return
				}
			}
			t.Fatalf("Addresses = %+v, want an IPv4 address in %s on network %q (%s)", srv.Addresses, sub.CIDR, net.Name, net.ID)
		}},
		{"Listed", func(t *testing.T) {
			s.checkListed(t, id, meta, func(ctx context.Context, o peers.ListOptions) ([]string, error) {
				l, err := s.c.ListServers(ctx, o)
				return ids(l, func(x peers.Server) string { return x.ID }), err
			})
		}},
		{"CapacityCountsIt", func(t *testing.T) {
			c, err := s.c.Capacity(t.Context())
			if err != nil {
				t.Fatalf("Capacity: %v", err)
			}
			if c.Instances.Used < 1 || c.VCPUs.Used < int64(flavor.VCPUs) || c.RAMMiB.Used < int64(flavor.RAMMiB) {
				t.Fatalf("Capacity with an ACTIVE server of flavor %s (%d vCPU, %d MiB) = %+v, want used to count it", flavor.ID, flavor.VCPUs, flavor.RAMMiB, c)
			}
		}},
		{"Console", func(t *testing.T) { s.checkConsole(t, id) }},
		{"Snapshot", func(t *testing.T) { s.gap(t); snap.start(t) }},
		{"SnapshotActive", func(t *testing.T) { s.gap(t); snap.active(t) }},
		{"ForbiddenActions", func(t *testing.T) {
			err := s.c.ServerAction(t.Context(), id, peers.ActionStart)
			wantErr(t, "start of an ACTIVE server", err, peers.ErrConflict)
			err = s.c.ServerAction(t.Context(), id, peers.ServerAction("peertest-explode"))
			wantErr(t, "an unknown action", err, peers.ErrInvalid, peers.ErrNotSupported)
		}},
		{"PowerCycle", func(t *testing.T) { s.powerCycle(t, id) }},
		{"PauseSuspend", func(t *testing.T) { s.gap(t); s.pauseSuspend(t, id) }},
		{"Resize", func(t *testing.T) { s.gap(t); s.resize(t, id, flavor) }},
		{"ResetState", func(t *testing.T) { s.gap(t); s.resetState(t, id) }},
		{"Delete", func(t *testing.T) {
			if err := s.c.DeleteServer(t.Context(), id); err != nil {
				t.Fatalf("DeleteServer: %v", err)
			}
			if err := s.pollGone("server "+id, s.serverStatus(id)); err != nil {
				t.Fatal(err)
			}
			l, err := s.c.ListServers(t.Context(), peers.ListOptions{Metadata: map[string]string{peers.MetaID: meta[peers.MetaID]}})
			if err != nil || len(l) != 0 {
				t.Fatalf("ListServers after the server is gone = %v, %v; want none", ids(l, func(x peers.Server) string { return x.ID }), err)
			}
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.run) {
			return
		}
	}
}

// powerCycle runs power actions in order on an ACTIVE server, each waiting
// for the status it leads to, or expecting a conflict.
func (s *suite) powerCycle(t *testing.T, id string) {
	steps := []struct {
		action peers.ServerAction
		want   peers.ServerStatus // "" expects ErrConflict
	}{
		{peers.ActionStop, peers.ServerShutoff},
		{peers.ActionStop, ""},
		{peers.ActionReboot, ""}, // Nova allows a soft reboot only of an ACTIVE server
		{peers.ActionStart, peers.ServerActive},
		{peers.ActionReboot, peers.ServerActive},
		{peers.ActionHardReboot, peers.ServerActive},
	}
	for i, st := range steps {
		name := fmt.Sprintf("%d-%s", i, st.action)
		ok := t.Run(name, func(t *testing.T) {
			err := s.c.ServerAction(t.Context(), id, st.action)
			if st.want == "" {
				wantErr(t, fmt.Sprintf("%s of a SHUTOFF server", st.action), err, peers.ErrConflict)
				return
			}
			if err != nil {
				t.Fatalf("ServerAction(%s): %v", st.action, err)
			}
			s.waitServer(t, id, st.want)
		})
		if !ok {
			return
		}
	}
}

// pauseSuspend pauses, suspends and brings back an ACTIVE server, each
// step waiting for the status it leads to or expecting a conflict, as
// Nova's state checks give; the server ends ACTIVE.
func (s *suite) pauseSuspend(t *testing.T, id string) {
	steps := []struct {
		action peers.ServerAction
		want   peers.ServerStatus // "" expects ErrConflict
		from   string
	}{
		{peers.ActionUnpause, "", "ACTIVE"},
		{peers.ActionPause, peers.ServerPaused, ""},
		{peers.ActionPause, "", "PAUSED"},
		{peers.ActionStop, "", "PAUSED"},
		{peers.ActionUnpause, peers.ServerActive, ""},
		{peers.ActionSuspend, peers.ServerSuspended, ""},
		{peers.ActionStart, "", "SUSPENDED"},
		{peers.ActionPause, "", "SUSPENDED"},
		{peers.ActionResume, peers.ServerActive, ""},
		{peers.ActionResume, "", "ACTIVE"},
	}
	for i, st := range steps {
		ok := t.Run(fmt.Sprintf("%d-%s", i, st.action), func(t *testing.T) {
			err := s.c.ServerAction(t.Context(), id, st.action)
			if st.want == "" {
				wantErr(t, fmt.Sprintf("%s of a %s server", st.action, st.from), err, peers.ErrConflict)
				return
			}
			if err != nil {
				t.Fatalf("ServerAction(%s): %v", st.action, err)
			}
			s.waitServer(t, id, st.want)
		})
		if !ok {
			return
		}
	}
}

// resizeTarget picks the flavor a server of flavor from is resized to:
// the fixture's, else the smallest other flavor whose root disk is not
// smaller.
func (s *suite) resizeTarget(t *testing.T, from peers.Flavor) peers.Flavor {
	fs, err := s.c.ListFlavors(t.Context())
	if err != nil {
		t.Fatalf("ListFlavors: %v", err)
	}
	var best *peers.Flavor
	for i, f := range fs {
		if s.fx.ResizeFlavorID != "" && f.ID == s.fx.ResizeFlavorID {
			return f
		}
		if f.ID == from.ID || f.DiskGiB < from.DiskGiB || (best != nil && f.RAMMiB >= best.RAMMiB) {
			continue
		}
		best = &fs[i]
	}
	if best == nil {
		t.Fatalf("no flavor to resize flavor %s to (set Fixture.ResizeFlavorID)", from.ID)
	}
	return *best
}

// resize resizes an ACTIVE server, reverts, resizes again and confirms;
// the server ends ACTIVE with the new flavor.
func (s *suite) resize(t *testing.T, id string, from peers.Flavor) {
	rs, ok := s.c.(peers.ServerResizer)
	if !ok {
		t.Skip("the cloud does not implement peers.ServerResizer")
	}
	to := s.resizeTarget(t, from)
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"ConfirmWithoutResize", func(t *testing.T) {
			wantErr(t, "confirm_resize of an ACTIVE server", s.c.ServerAction(t.Context(), id, peers.ActionConfirmResize), peers.ErrConflict)
		}},
		{"SameFlavor", func(t *testing.T) {
			wantErr(t, "a resize to the server's own flavor", rs.ResizeServer(t.Context(), id, from.ID), peers.ErrInvalid, peers.ErrConflict)
		}},
		{"UnknownFlavor", func(t *testing.T) {
			wantErr(t, "a resize to an unknown flavor", rs.ResizeServer(t.Context(), id, "peertest-no-such-flavor"), peers.ErrNotFound, peers.ErrInvalid)
		}},
		{"Resize", func(t *testing.T) {
			if err := rs.ResizeServer(t.Context(), id, to.ID); err != nil {
				t.Fatalf("ResizeServer(%s): %v", to.ID, err)
			}
			if srv := s.waitServer(t, id, peers.ServerVerifyResize); srv.FlavorID != to.ID {
				t.Fatalf("VERIFY_RESIZE with flavor %s, want %s", srv.FlavorID, to.ID)
			}
		}},
		{"Revert", func(t *testing.T) {
			if err := s.c.ServerAction(t.Context(), id, peers.ActionRevertResize); err != nil {
				t.Fatalf("revert_resize: %v", err)
			}
			if srv := s.waitServer(t, id, peers.ServerActive); srv.FlavorID != from.ID {
				t.Fatalf("reverted to flavor %s, want %s", srv.FlavorID, from.ID)
			}
		}},
		{"ResizeAgain", func(t *testing.T) {
			if err := rs.ResizeServer(t.Context(), id, to.ID); err != nil {
				t.Fatalf("ResizeServer(%s): %v", to.ID, err)
			}
			s.waitServer(t, id, peers.ServerVerifyResize)
		}},
		{"Confirm", func(t *testing.T) {
			if err := s.c.ServerAction(t.Context(), id, peers.ActionConfirmResize); err != nil {
				t.Fatalf("confirm_resize: %v", err)
			}
			if srv := s.waitServer(t, id, peers.ServerActive); srv.FlavorID != to.ID {
				t.Fatalf("confirmed with flavor %s, want %s", srv.FlavorID, to.ID)
			}
		}},
	}
	for _, st := range steps {
		if !t.Run(st.name, st.run) {
			return
		}
	}
}

// resetState forces an ACTIVE server's status to ERROR and back, as an
// admin's os-resetState does; the change shows at once.
func (s *suite) resetState(t *testing.T, id string) {
	rs, ok := s.c.(peers.ServerStateResetter)
	if !ok {
		t.Skip("the cloud does not implement peers.ServerStateResetter")
	}
	wantErr(t, "a reset to SHUTOFF", rs.ResetServerState(t.Context(), id, peers.ServerShutoff), peers.ErrInvalid)
	if s.fx.Tenant {
		wantErr(t, "a tenant's reset to ERROR", rs.ResetServerState(t.Context(), id, peers.ServerError), peers.ErrUnauthorized)
		if srv, err := s.c.GetServer(t.Context(), id); err != nil || srv.Status != peers.ServerActive {
			t.Fatalf("after a refused reset: %s, %v (want ACTIVE)", srv.Status, err)
		}
		return
	}
	for _, st := range []peers.ServerStatus{peers.ServerError, peers.ServerActive} {
		if err := rs.ResetServerState(t.Context(), id, st); err != nil {
			t.Fatalf("ResetServerState(%s): %v", st, err)
		}
		srv, err := s.c.GetServer(t.Context(), id)
		if err != nil || srv.Status != st {
			t.Fatalf("after ResetServerState(%s): %s, %v", st, srv.Status, err)
		}
	}
}

// checkConsole reads the console of an ACTIVE server, when the cloud can.
func (s *suite) checkConsole(t *testing.T, id string) {
	cr, ok := s.c.(peers.ConsoleReader)
	if !ok {
		t.Skip("the cloud does not implement peers.ConsoleReader")
	}
	if _, err := cr.ConsoleOutput(t.Context(), id, 0); err != nil {
		t.Fatalf("ConsoleOutput(%s, all lines): %v", id, err)
	}
	out, err := cr.ConsoleOutput(t.Context(), id, 2)
	if err != nil {
		t.Fatalf("ConsoleOutput(%s, 2 lines): %v", id, err)
	}
	if n := len(strings.Split(strings.TrimRight(out, "\n"), "\n")); out != "" && n > 2 {
		t.Fatalf("ConsoleOutput(%s, 2 lines) returned %d lines: %q", id, n, out)
	}
	_, err = cr.ConsoleOutput(t.Context(), "00000000-0000-4000-8000-000000000000", 0)
	wantErr(t, "ConsoleOutput of an unknown server", err, peers.ErrNotFound)
}

// testServerCreateRefusals asks for servers that cannot exist. Nova answers
// most of these with 400, so ErrInvalid passes as well as ErrNotFound.
func (s *suite) testServerCreateRefusals(t *testing.T) {
	net, _ := s.makeNetwork(t, "10.78.0.0/24")
	unknown := "00000000-0000-4000-8000-00000000dead"
	base := func() peers.ServerSpec {
		return peers.ServerSpec{
			Name: s.name("refused"), Project: s.fx.Project, FlavorID: s.fx.FlavorID, ImageID: s.fx.ImageID,
			Networks: []peers.NetworkAttachment{{NetworkID: net.ID}}, Metadata: s.meta(),
		}
	}
	cases := []struct {
		name   string
		mutate func(*peers.ServerSpec)
	}{
		{"UnknownFlavor", func(sp *peers.ServerSpec) { sp.FlavorID = "peertest-no-such-flavor" }},
		{"UnknownImage", func(sp *peers.ServerSpec) { sp.ImageID = unknown }},
		{"UnknownNetwork", func(sp *peers.ServerSpec) { sp.Networks = []peers.NetworkAttachment{{NetworkID: unknown}} }},
		{"UnknownKeypair", func(sp *peers.ServerSpec) { sp.KeyName = "peertest-no-such-key-" + s.run }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec := base()
			tc.mutate(&spec)
			srv, err := s.c.CreateServer(t.Context(), spec)
			if err == nil {
				s.cleanupServer(t, srv.ID)
			}
			wantErr(t, "CreateServer with "+tc.name, err, peers.ErrNotFound, peers.ErrInvalid)
		})
	}
	t.Run("NoImageNorVolume", func(t *testing.T) {
		spec := base()
		spec.ImageID = ""
		srv, err := s.c.CreateServer(t.Context(), spec)
		if err == nil {
			s.cleanupServer(t, srv.ID)
		}
		wantErr(t, "CreateServer with neither an image nor a boot volume", err, peers.ErrInvalid)
	})
}

func (s *suite) testUnknownServer(t *testing.T) {
	unknown := "00000000-0000-4000-8000-00000000beef"
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"GetServer", func(ctx context.Context) error { _, err := s.c.GetServer(ctx, unknown); return err }},
		{"DeleteServer", func(ctx context.Context) error { return s.c.DeleteServer(ctx, unknown) }},
		{"ServerAction", func(ctx context.Context) error { return s.c.ServerAction(ctx, unknown, peers.ActionStop) }},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			wantErr(t, tc.name+" of an unknown server", tc.call(t.Context()), peers.ErrNotFound)
		})
	}
}
