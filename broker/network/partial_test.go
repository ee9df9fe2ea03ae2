package network_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// stuckNetworks is a cloud whose network calls never answer (a hung
// driver that ignores its context): the broker must answer for it.
type stuckNetworks struct {
	peers.Cloud
	never chan struct{}
}

func (s stuckNetworks) ListNetworks(ctx context.Context, _ peers.ListOptions) ([]peers.Network, error) {
	<-s.never
	return nil, ctx.Err()
}

func (s stuckNetworks) GetNetwork(ctx context.Context, _ string) (peers.Network, error) {
	<-s.never
	return peers.Network{}, ctx.Err()
}

func TestSlowPeerGivesPartialLists(t *testing.T) {
	ctx := context.Background()
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	e := newEnvWith(t, []brokertest.Peer{{Name: "east"}, {Name: "slow", Wrap: func(c *localcloud.Cloud) peers.Cloud {
		return stuckNetworks{Cloud: c, never: never}
	}}}, 200*time.Millisecond)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")

	res := networks.List(admin, networks.ListOpts{})
	pages, err := res.AllPages(ctx)
	if err != nil {
		t.Fatalf("a stuck peer failed the whole list: %v", err)
	}
	ns, _ := networks.ExtractNetworks(pages)
	if len(ns) != 1 || ns[0].ID != e.seeded.NetworkID {
		t.Fatalf("list = %+v; want east's shared network", ns)
	}
	resp, err := admin.Get(ctx, admin.ServiceURL("networks"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get(osapi.PartialHeader); !strings.Contains(got, "slow") {
		t.Fatalf("%s = %q, want the stuck peer named", osapi.PartialHeader, got)
	}
	// East's network is still shown; an unknown ID cannot be ruled out
	// while a peer does not answer, so it is 503, not a false 404.
	if _, err := networks.Get(ctx, admin, e.seeded.NetworkID).Extract(); err != nil {
		t.Fatalf("show on the healthy peer: %v", err)
	}
	wantFault(t, "show an unknown ID", networks.Get(ctx, admin, "0b7e9a8e-0000-4000-8000-000000000000").Err, http.StatusServiceUnavailable, "ServiceUnavailable")
	wantFault(t, "show a name", networks.Get(ctx, admin, "private").Err, http.StatusNotFound, "NetworkNotFound")
}
