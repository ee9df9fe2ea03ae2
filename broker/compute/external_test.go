package compute_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// TestServerOnExternalNetworkForbidden: a project sees a provider's
// external network but may not put a server's NIC on it (Nova's
// ExternalNetworkAttachForbidden, 403); the peer is left with no server.
func TestServerOnExternalNetworkForbidden(t *testing.T) {
	ctx := context.Background()
	var provider *localcloud.Cloud
	se := newServersEnv(t, brokertest.Peer{Name: "edge", Wrap: func(c *localcloud.Cloud) peers.Cloud {
		provider = c
		return brokertest.ExternalNetworks{Cloud: c}
	}})
	pub, err := provider.CreateNetwork(ctx, peers.NetworkSpec{Name: "public", Project: "provider"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.CreateSubnet(ctx, peers.SubnetSpec{Name: "public-v4", Project: "provider", NetworkID: pub.ID, CIDR: "203.0.113.0/24", IPVersion: 4}); err != nil {
		t.Fatal(err)
	}
	c := se.compute(t, "bob", se.Member(t, "bob", "team-b", identity.RoleMember), "team-b")
	for _, tc := range []struct {
		name string
		id   string
		code int
	}{
		{"by its broker ID", network.NativeID(se.Pool.Members()[0].Peer.ID, network.KindNetwork, pub.ID), http.StatusForbidden},
		{"by the peer's ID", pub.ID, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := servers.Create(ctx, c, servers.CreateOpts{Name: "on-public", FlavorRef: "1", ImageRef: se.Seeded["edge"].ImageID,
				Networks: []servers.Network{{UUID: tc.id}}}, nil).Extract()
			if !gophercloud.ResponseCodeIs(err, tc.code) {
				t.Fatalf("server on another's external network = %v, want %d", err, tc.code)
			}
		})
	}
	if left, err := provider.ListServers(ctx, peers.ListOptions{}); err != nil || len(left) != 0 {
		t.Fatalf("servers on the peer: %v, %v", left, err)
	}
	// The seeded shared network still takes the project's servers.
	create(t, c, servers.CreateOpts{Name: "on-shared", FlavorRef: "1", ImageRef: se.Seeded["edge"].ImageID,
		Networks: []servers.Network{{UUID: se.Nets["edge"]}}})
}
