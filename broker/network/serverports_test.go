package network_test

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/peers"
)

// TestServerPorts: a port the peer made for a server of the project (as
// the compute API boots one on a network) is listed and shown as the
// project's, under a broker ID (never the peer's), naming the server by
// its broker ID; other projects never see it; it is forgotten with its
// server.
func TestServerPorts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	pw := e.Member(t, "bob", "team-b", identity.RoleMember)
	bob := client(t, e, "bob", pw, "team-b")
	east := member(t, e, "east")
	adminProject := e.Boot.Project.ID
	serverID, peerServer := bootOnPeer(t, e, east, adminProject)

	pages, err := ports.List(admin, ports.ListOpts{DeviceID: serverID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := ports.ExtractPorts(pages)
	if len(ps) != 1 || ps[0].DeviceOwner != "compute:nova" || ps[0].NetworkID != e.seeded.NetworkID || ps[0].FixedIPs[0].SubnetID != e.seeded.SubnetID {
		t.Fatalf("the server's ports = %+v", ps)
	}
	peerPort := peerPortOf(t, east, peerServer)
	if ps[0].ID == peerPort {
		t.Fatalf("the server's port is shown under the peer's ID %s", peerPort)
	}
	if got, err := ports.Get(ctx, admin, ps[0].ID).Extract(); err != nil || got.DeviceID != serverID {
		t.Fatalf("show the server's port = %+v, %v", got, err)
	}
	wantFault(t, "the server's port by the peer's ID", ports.Get(ctx, admin, peerPort).Err, http.StatusNotFound, "PortNotFound")
	wantFault(t, "rename it by the peer's ID", ports.Update(ctx, admin, peerPort, ports.UpdateOpts{Name: ptr("x")}).Err, http.StatusNotFound, "PortNotFound")
	if got, err := ports.Update(ctx, admin, ps[0].ID, ports.UpdateOpts{Name: ptr("nic0")}).Extract(); err != nil || got.Name != "nic0" {
		t.Fatalf("rename the server's port = %+v, %v", got, err)
	}
	wantFault(t, "delete a bound port", ports.Delete(ctx, admin, ps[0].ID).ExtractErr(), http.StatusConflict, "PortInUse")
	t.Run("a group the server's port names is in use", func(t *testing.T) {
		web, err := groups.Create(ctx, admin, groups.CreateOpts{Name: "web"}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ports.Update(ctx, admin, ps[0].ID, ports.UpdateOpts{SecurityGroups: &[]string{web.ID}}).Extract(); err != nil {
			t.Fatal(err)
		}
		wantFault(t, "delete the group", groups.Delete(ctx, admin, web.ID).ExtractErr(), http.StatusConflict, "SecurityGroupInUse")
		if _, err := ports.Update(ctx, admin, ps[0].ID, ports.UpdateOpts{SecurityGroups: &[]string{}}).Extract(); err != nil {
			t.Fatal(err)
		}
		if err := groups.Delete(ctx, admin, web.ID).ExtractErr(); err != nil {
			t.Fatalf("delete once the port lets it go: %v", err)
		}
	})
	for _, id := range []string{ps[0].ID, peerPort} {
		wantFault(t, "bob shows it", ports.Get(ctx, bob, id).Err, http.StatusNotFound, "PortNotFound")
		wantFault(t, "bob renames it", ports.Update(ctx, bob, id, ports.UpdateOpts{Name: ptr("b")}).Err, http.StatusNotFound, "PortNotFound")
		wantFault(t, "bob deletes it", ports.Delete(ctx, bob, id).ExtractErr(), http.StatusNotFound, "PortNotFound")
	}
	pages, err = ports.List(bob, ports.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ports.ExtractPorts(pages); len(got) != 0 {
		t.Fatalf("bob sees ports %+v", got)
	}

	// The compute API deletes the server, then forgets its ports.
	if err := east.Cloud.DeleteServer(ctx, peerServer); err != nil {
		t.Fatal(err)
	}
	if err := e.Index.Delete(ctx, index.Entry{Kind: "server", ID: serverID, Project: adminProject}); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.ForgetServerPorts(ctx, adminProject, serverID); err != nil {
		t.Fatal(err)
	}
	wantFault(t, "the deleted server's port", ports.Get(ctx, admin, ps[0].ID).Err, http.StatusNotFound, "PortNotFound")
	if left, err := e.Index.List(ctx, "server_port", ""); err != nil || len(left) != 0 {
		t.Fatalf("server port entries left: %+v, %v", left, err)
	}
}

// TestDiscoveryDropsGoneServerPorts: the entry of a port a peer made for a
// server deleted behind the broker's back goes at the next discovery.
func TestDiscoveryDropsGoneServerPorts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	east := member(t, e, "east")
	serverID, peerServer := bootOnPeer(t, e, east, e.Boot.Project.ID)
	pages, err := ports.List(admin, ports.ListOpts{DeviceID: serverID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := ports.ExtractPorts(pages); len(ps) != 1 {
		t.Fatalf("the server's ports = %+v", ps)
	}
	e.svc.Discover(ctx)
	if kept, err := e.Index.List(ctx, "server_port", ""); err != nil || len(kept) != 1 || kept[0].Parent != serverID {
		t.Fatalf("a live server's port entry = %+v, %v", kept, err)
	}
	if err := east.Cloud.DeleteServer(ctx, peerServer); err != nil {
		t.Fatal(err)
	}
	waitPeerPortsGone(t, east, peerServer)
	// One full list without the port is not enough (a listing may miss
	// one); a second in a row is.
	e.svc.Discover(ctx)
	if kept, err := e.Index.List(ctx, "server_port", ""); err != nil || len(kept) != 1 {
		t.Fatalf("after one miss: %+v, %v; want the entry kept", kept, err)
	}
	e.svc.Discover(ctx)
	if left, err := e.Index.List(ctx, "server_port", ""); err != nil || len(left) != 0 {
		t.Fatalf("server port entries left: %+v, %v", left, err)
	}
}

// waitPeerPortsGone waits until the peer has no port of its server.
func waitPeerPortsGone(t *testing.T, m *peers.Member, server string) {
	t.Helper()
	for {
		ps, err := m.Cloud.ListPorts(t.Context(), peers.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(ps, func(p peers.Port) bool { return p.DeviceID == server }) {
			return
		}
		select {
		case <-t.Context().Done():
			t.Fatal("the test ended first")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func member(t *testing.T, e *testEnv, name string) *peers.Member {
	t.Helper()
	for _, m := range e.Pool.Members() {
		if m.Peer.Name == name {
			return m
		}
	}
	t.Fatalf("no peer %s", name)
	return nil
}

// bootOnPeer makes a server on m's seeded network directly on the peer
// and indexes it for project, as the compute API does; it returns the
// server's broker ID and m's ID of it.
func bootOnPeer(t *testing.T, e *testEnv, m *peers.Member, project string) (string, string) {
	t.Helper()
	ctx := context.Background()
	flavors, err := m.Cloud.ListFlavors(ctx)
	if err != nil || len(flavors) == 0 {
		t.Fatalf("flavors: %v %v", flavors, err)
	}
	srv, err := m.Cloud.CreateServer(ctx, peers.ServerSpec{Name: "vm", Project: project, FlavorID: flavors[0].ID,
		ImageID: e.seeded.ImageID, Networks: []peers.NetworkAttachment{{NetworkID: e.peerSeeded.NetworkID}}})
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	if err := e.Index.Put(ctx, index.Entry{Kind: "server", ID: id, Project: project, PeerID: m.Peer.ID,
		PeerResourceID: srv.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return id, srv.ID
}

// peerPortOf is the peer's ID of the one port bound to its server.
func peerPortOf(t *testing.T, m *peers.Member, peerServer string) string {
	t.Helper()
	all, err := m.Cloud.ListPorts(context.Background(), peers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range all {
		if p.DeviceID == peerServer {
			out = append(out, p.ID)
		}
	}
	if len(out) != 1 {
		t.Fatalf("the server has ports %v", out)
	}
	return out[0]
}
