package network_test

import (
	"context"
	"net/http"
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
// project's, naming the server by its broker ID; other projects never see
// it.
func TestServerPorts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	pw := e.Member(t, "bob", "team-b", identity.RoleMember)
	bob := client(t, e, "bob", pw, "team-b")
	var east *peers.Member
	for _, m := range e.Pool.Members() {
		if m.Peer.Name == "east" {
			east = m
		}
	}
	flavors, err := east.Cloud.ListFlavors(ctx)
	if err != nil || len(flavors) == 0 {
		t.Fatalf("flavors: %v %v", flavors, err)
	}
	adminProject := e.Boot.Project.ID
	srv, err := east.Cloud.CreateServer(ctx, peers.ServerSpec{Name: "vm", Project: adminProject, FlavorID: flavors[0].ID,
		ImageID: e.seeded.ImageID, Networks: []peers.NetworkAttachment{{NetworkID: e.seeded.NetworkID}}})
	if err != nil {
		t.Fatal(err)
	}
	serverID := uuid.NewString()
	if err := e.Index.Put(ctx, index.Entry{Kind: "server", ID: serverID, Project: adminProject, PeerID: east.Peer.ID,
		PeerResourceID: srv.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}

	pages, err := ports.List(admin, ports.ListOpts{DeviceID: serverID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps, _ := ports.ExtractPorts(pages)
	if len(ps) != 1 || ps[0].DeviceOwner != "compute:nova" || ps[0].NetworkID != e.seeded.NetworkID || ps[0].FixedIPs[0].SubnetID != e.seeded.SubnetID {
		t.Fatalf("the server's ports = %+v", ps)
	}
	if got, err := ports.Get(ctx, admin, ps[0].ID).Extract(); err != nil || got.DeviceID != serverID {
		t.Fatalf("show the server's port = %+v, %v", got, err)
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
	wantFault(t, "bob shows it", ports.Get(ctx, bob, ps[0].ID).Err, http.StatusNotFound, "PortNotFound")
	pages, err = ports.List(bob, ports.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := ports.ExtractPorts(pages); len(got) != 0 {
		t.Fatalf("bob sees ports %+v", got)
	}
}
