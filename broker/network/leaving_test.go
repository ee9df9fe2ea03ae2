package network_test

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/peers"
)

// TestDeleteWaitsForLeavingServers: the compute API forgets a server as
// soon as its peer starts tearing it down, but the peer frees the
// server's port only once the domain is gone. A subnet or network delete
// in between (`openstack server delete --wait` then `subnet delete`, as
// Nova's 404 promises the ports gone) waits for the teardown instead of
// answering 409; a live server's port is still a conflict at once.
func TestDeleteWaitsForLeavingServers(t *testing.T) {
	ctx := context.Background()
	held := make(chan struct{})
	var release func()
	var heldDomain atomic.Pointer[string]
	e := newEnvWith(t, []brokertest.Peer{{Name: "east", Fake: func(d *fake.Driver) {
		d.InjectFault(func(op fake.Op, _, id string) error {
			if h := heldDomain.Load(); op == fake.OpUndefine && h != nil && id == *h {
				<-held
			}
			return nil
		})
	}}, {Name: "west"}}, 0)
	release = func() {
		select {
		case <-held:
		default:
			close(held)
		}
	}
	t.Cleanup(release)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	east := member(t, e, "east")
	project := e.Boot.Project.ID

	net, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "n"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	sub, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.9.0.0/24", IPVersion: 4}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	peerNet := peerIDOf(t, east, net.ID)
	live := bootMarked(t, e, east, project, peerNet)
	wantFault(t, "delete a subnet a live server is on", subnets.Delete(ctx, admin, sub.ID).ExtractErr(), http.StatusConflict, "SubnetInUse")

	// The server is deleted as the compute API deletes it: the peer
	// starts, the index forgets at once; the peer's teardown is held.
	heldDomain.Store(&live.peerID)
	if err := east.Cloud.DeleteServer(ctx, live.peerID); err != nil {
		t.Fatal(err)
	}
	if err := e.Index.Delete(ctx, index.Entry{Kind: "server", ID: live.id, Project: project}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- subnets.Delete(ctx, admin, sub.ID).ExtractErr() }()
	select {
	case err := <-done:
		t.Fatalf("the subnet delete answered %v while the server's teardown was held; want it to wait", err)
	case <-time.After(500 * time.Millisecond):
	}
	release()
	if err := <-done; err != nil {
		t.Fatalf("the subnet delete once the server is gone: %v", err)
	}
	if err := networks.Delete(ctx, admin, net.ID).ExtractErr(); err != nil {
		t.Fatalf("the network delete: %v", err)
	}
}

type bootedServer struct{ id, peerID string }

// bootMarked makes a server on peer network peerNet of m, marked and
// indexed as the compute API does.
func bootMarked(t *testing.T, e *testEnv, m *peers.Member, project, peerNet string) bootedServer {
	t.Helper()
	ctx := context.Background()
	flavors, err := m.Cloud.ListFlavors(ctx)
	if err != nil || len(flavors) == 0 {
		t.Fatalf("flavors: %v %v", flavors, err)
	}
	id := uuid.NewString()
	srv, err := m.Cloud.CreateServer(ctx, peers.ServerSpec{Name: "vm", Project: project, FlavorID: flavors[0].ID,
		ImageID: e.seeded.ImageID, Networks: []peers.NetworkAttachment{{NetworkID: peerNet}},
		Metadata: map[string]string{peers.MetaID: id, peers.MetaProject: project, peers.MetaBrokerID: "test-broker"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Index.Put(ctx, index.Entry{Kind: "server", ID: id, Project: project, PeerID: m.Peer.ID,
		PeerResourceID: srv.ID, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return bootedServer{id: id, peerID: srv.ID}
}

// peerIDOf is m's ID of the network with broker ID id.
func peerIDOf(t *testing.T, m *peers.Member, id string) string {
	t.Helper()
	nets, err := m.Cloud.ListNetworks(context.Background(), peers.ListOptions{Metadata: map[string]string{peers.MetaID: id}})
	if err != nil || len(nets) != 1 {
		t.Fatalf("east's network for %s: %+v, %v", id, nets, err)
	}
	return nets[0].ID
}
