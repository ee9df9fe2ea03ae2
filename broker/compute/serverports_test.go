package compute_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/attachinterfaces"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/peers"
)

// TestServerPortsQuotaAndIDs: the ports a peer makes for a server booted
// on networks count against the project's port quota (refused with
// Nova's 403 before anything boots when over), are shown by broker IDs
// only (Nova's os-interface, Neutron's ports), are the project's alone,
// and are forgotten and freed when the server is deleted.
func TestServerPortsQuotaAndIDs(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	project := se.Boot.Project.ID
	bobPW := se.Member(t, "bob", "team-b", identity.RoleMember)
	bob := se.compute(t, "bob", bobPW, "team-b")
	neutron := func(user, pw, project string) *gophercloud.ServiceClient {
		n, err := openstack.NewNetworkV2(se.Provider(t, user, pw, project), gophercloud.EndpointOpts{Region: identity.Region})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	adminNet, bobNet := neutron("admin", brokertest.AdminPassword, "admin"), neutron("bob", bobPW, "team-b")
	if _, err := se.Ledger.Limits.(*quota.Limits).Set(ctx, project, quota.Amounts{quota.Ports: 1}); err != nil {
		t.Fatal(err)
	}
	used := func(r quota.Resource) int {
		u, _, err := se.Ledger.Usage(ctx, quota.Scope{Project: project})
		if err != nil {
			t.Fatal(err)
		}
		return u[r]
	}
	img, net := se.Seeded["local-a"].ImageID, se.Nets["local-a"]
	a := create(t, c, servers.CreateOpts{Name: "a", FlavorRef: "1", ImageRef: img, Networks: []servers.Network{{UUID: net}}})
	waitStatus(t, c, a.ID, "ACTIVE")
	if n := used(quota.Ports); n != 1 {
		t.Fatalf("ports used = %d; want 1", n)
	}

	t.Run("over the port quota", func(t *testing.T) {
		for _, networks := range []any{[]servers.Network{{UUID: net}}, "auto"} {
			_, err := servers.Create(ctx, c, servers.CreateOpts{Name: "b", FlavorRef: "1", ImageRef: img, Networks: networks}, nil).Extract()
			var ue gophercloud.ErrUnexpectedResponseCode
			if !gophercloud.ResponseCodeIs(err, http.StatusForbidden) || !asUnexpected(err, &ue) || !strings.Contains(string(ue.Body), "Quota exceeded for ports") {
				t.Fatalf("a server over the port quota (networks %v) = %v; want Nova's 403 naming ports", networks, err)
			}
		}
		if n := used(quota.Instances); n != 1 {
			t.Fatalf("instances used = %d; want 1 (the refused servers were never booted)", n)
		}
		// No NIC takes no port.
		none := create(t, c, servers.CreateOpts{Name: "none", FlavorRef: "1", ImageRef: img, Networks: "none"})
		waitStatus(t, c, none.ID, "ACTIVE")
		if err := servers.Delete(ctx, c, none.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	})

	pages, err := attachinterfaces.List(c, a.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nics, err := attachinterfaces.ExtractInterfaces(pages)
	if err != nil || len(nics) != 1 || nics[0].NetID != net {
		t.Fatalf("interfaces = %+v, %v", nics, err)
	}
	portID := nics[0].PortID
	peerPort := peerPortOf(t, se, a.ID)
	if portID == peerPort {
		t.Fatalf("os-interface shows the peer's port ID %s", portID)
	}
	if p, err := ports.Get(ctx, adminNet, portID).Extract(); err != nil || p.DeviceID != a.ID || p.NetworkID != net {
		t.Fatalf("the server's port through Neutron = %+v, %v", p, err)
	}
	if _, err := attachinterfaces.Get(ctx, c, a.ID, portID).Extract(); err != nil {
		t.Fatalf("os-interface show by broker ID: %v", err)
	}
	_, bobList := attachinterfaces.List(bob, a.ID).AllPages(ctx)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"Neutron show by the peer's ID", ports.Get(ctx, adminNet, peerPort).Err},
		{"os-interface show by the peer's ID", attachinterfaces.Get(ctx, c, a.ID, peerPort).Err},
		{"bob's Neutron show", ports.Get(ctx, bobNet, portID).Err},
		{"bob's Neutron delete", ports.Delete(ctx, bobNet, portID).ExtractErr()},
		{"bob's os-interface list", bobList},
		{"bob's os-interface show", attachinterfaces.Get(ctx, bob, a.ID, portID).Err},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !is404(tc.err) {
				t.Fatalf("%v; want 404", tc.err)
			}
		})
	}
	t.Run("a NIC on the port by the peer's ID", func(t *testing.T) {
		if code, msg := post(t, c, "servers", map[string]any{"server": map[string]any{"name": "p", "flavorRef": "1", "imageRef": img,
			"networks": []map[string]string{{"port": peerPort}}}}); code != http.StatusBadRequest || !strings.Contains(msg, "could not be found") {
			t.Fatalf("boot on the peer's port ID = %d %s; want 400 not found", code, msg)
		}
	})

	if err := servers.Delete(ctx, c, a.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if n := used(quota.Ports); n != 0 {
		t.Fatalf("ports used after the delete = %d; want 0", n)
	}
	if left, err := se.Index.List(ctx, "server_port", ""); err != nil || len(left) != 0 {
		t.Fatalf("server port entries left: %+v, %v", left, err)
	}
	if err := ports.Get(ctx, adminNet, portID).Err; !is404(err) {
		t.Fatalf("the deleted server's port = %v; want 404", err)
	}
	// The port is free again: "auto" takes it (the shared network).
	b := create(t, c, servers.CreateOpts{Name: "b", FlavorRef: "1", ImageRef: img, Networks: "auto"})
	waitStatus(t, c, b.ID, "ACTIVE")
	if n := used(quota.Ports); n != 1 {
		t.Fatalf("ports used by an auto server = %d; want 1", n)
	}
}

func asUnexpected(err error, ue *gophercloud.ErrUnexpectedResponseCode) bool {
	u, ok := err.(gophercloud.ErrUnexpectedResponseCode)
	*ue = u
	return ok
}

// peerPortOf is the peer's own ID of the one port bound to a server.
func peerPortOf(t *testing.T, se *serversEnv, serverID string) string {
	t.Helper()
	ctx := context.Background()
	e, err := se.Index.Get(ctx, "server", serverID, "")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := se.Pool.Get(e.PeerID)
	all, err := m.Cloud.ListPorts(ctx, peers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, p := range all {
		if p.DeviceID == e.PeerResourceID {
			out = append(out, p.ID)
		}
	}
	if len(out) != 1 {
		t.Fatalf("server %s has peer ports %v", serverID, out)
	}
	return out[0]
}
