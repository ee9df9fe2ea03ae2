package network_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/peers"
)

// TestResolve checks the contract the compute API relies on: what an ID
// resolves to for each project.
func TestResolve(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	pw := e.Member(t, "bob", "team-b", identity.RoleMember)
	bob := client(t, e, "bob", pw, "team-b")
	net, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "n", AvailabilityZoneHints: []string{"west"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	port, err := ports.Create(ctx, admin, ports.CreateOpts{NetworkID: net.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	bobNet, err := networks.Create(ctx, bob, networks.CreateOpts{Name: "b"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	adminProject, bobProject := net.ProjectID, bobNet.ProjectID

	cases := []struct {
		name, project, kind, id string
		wantPeer                string // "" when not found
		native                  bool
	}{
		{"own network", adminProject, network.KindNetwork, net.ID, "west", false},
		{"own port", adminProject, network.KindPort, port.ID, "west", false},
		{"shared native network", bobProject, network.KindNetwork, e.seeded.NetworkID, "east", true},
		{"shared native subnet", bobProject, network.KindSubnet, e.seeded.SubnetID, "east", true},
		{"another project's network", bobProject, network.KindNetwork, net.ID, "", false},
		{"another project's port", bobProject, network.KindPort, port.ID, "", false},
		{"a name", adminProject, network.KindNetwork, "n", "", false},
		{"the shared network by its peer's ID", bobProject, network.KindNetwork, e.peerSeeded.NetworkID, "", false},
		{"the shared subnet by its peer's ID", bobProject, network.KindSubnet, e.peerSeeded.SubnetID, "", false},
		{"the shared network's ID as a subnet", bobProject, network.KindSubnet, e.seeded.NetworkID, "", false},
		{"own port by its peer's ID", adminProject, network.KindPort, portPeerID(t, e, port.ID), "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ref, err := e.svc.Resolve(ctx, tc.project, tc.kind, tc.id)
			if tc.wantPeer == "" {
				if !errors.Is(err, peers.ErrNotFound) || !errors.Is(err, network.ErrNotFound) {
					t.Fatalf("Resolve = %+v, %v; want not found", ref, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ref.Member.Peer.Name != tc.wantPeer || ref.Native != tc.native || ref.ID != tc.id || ref.PeerResourceID == "" {
				t.Fatalf("Resolve = %+v", ref)
			}
			if _, err := ref.Member.Cloud.GetNetwork(ctx, ref.PeerResourceID); tc.kind == network.KindNetwork && err != nil {
				t.Fatalf("the peer does not know %s: %v", ref.PeerResourceID, err)
			}
		})
	}
	if _, err := e.svc.Resolve(ctx, adminProject, "volume", net.ID); !errors.Is(err, network.ErrInvalid) {
		t.Fatalf("Resolve of another kind = %v", err)
	}
}

func TestPlacementAndRoles(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	for _, tc := range []struct {
		name  string
		hints []string
		want  []string
	}{
		{"one hint pins", []string{"east"}, []string{"east"}},
		{"several hints allow any", []string{"east", "west"}, []string{"east", "west"}},
		{"no hint places anywhere", nil, []string{"east", "west"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := networks.Create(ctx, admin, networks.CreateOpts{AvailabilityZoneHints: tc.hints}).Extract()
			if err != nil {
				t.Fatal(err)
			}
			zones := raw(t, admin, "networks/"+n.ID)["network"].(map[string]any)["availability_zones"].([]any)
			if len(zones) != 1 || !slices.Contains(tc.want, zones[0].(string)) {
				t.Fatalf("zones = %v, want one of %v", zones, tc.want)
			}
		})
	}
	t.Run("readers read, members write", func(t *testing.T) {
		pw := e.Member(t, "rita", "admin", identity.RoleReader)
		rita := client(t, e, "rita", pw, "admin")
		pages, err := networks.List(rita, networks.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatalf("reader list: %v", err)
		}
		if ns, _ := networks.ExtractNetworks(pages); len(ns) < 4 {
			t.Fatalf("reader sees %d networks", len(ns))
		}
		err = networks.Create(ctx, rita, networks.CreateOpts{Name: "x"}).Err
		wantFault(t, "reader create", err, http.StatusForbidden, "PolicyNotAuthorized")
		if body := string(err.(gophercloud.ErrUnexpectedResponseCode).Body); !strings.Contains(body, "rule:create_network") {
			t.Fatalf("refusal %s does not name the rule", body)
		}
	})
}

// portPeerID is the peer's own ID of an indexed port.
func portPeerID(t *testing.T, e *testEnv, id string) string {
	t.Helper()
	entry, err := e.Index.Get(context.Background(), network.KindPort, id, "")
	if err != nil {
		t.Fatal(err)
	}
	return entry.PeerResourceID
}
