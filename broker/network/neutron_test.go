package network_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// services is the test catalog: the broker's defaults plus this API.
var services = append(slices.Clone(identity.DefaultServices), identity.ServiceEntry{Type: "network", Name: "neutron", Path: "/network"})

// testEnv is a broker with Neutron over two local-cloud peers, "east" and
// "west"; east is seeded like devstack (a shared network "private").
type testEnv struct {
	*brokertest.Env
	svc    *network.Service
	limits *quota.Limits
	// seeded names east's seeded network and subnet by their broker IDs,
	// peerSeeded by east's own IDs (which no API takes).
	seeded, peerSeeded localcloud.Seeded
}

func newEnv(t *testing.T) *testEnv {
	return newEnvWith(t, []brokertest.Peer{{Name: "east"}, {Name: "west"}}, 0)
}

// newEnvWith builds the environment over ps (one must be "east") with a
// per-peer fan-out deadline (0: the default).
func newEnvWith(t *testing.T, ps []brokertest.Peer, peerTimeout time.Duration) *testEnv {
	t.Helper()
	te := &testEnv{}
	te.Env = brokertest.New(t, ps, func(e *brokertest.Env, r chi.Router) {
		attrs, groups := network.NewAttrsMemory(e.Store, e.Log), network.NewGroupsMemory(e.Store, e.Log)
		e.Start(t, attrs, groups)
		te.limits = &quota.Limits{Store: e.Store}
		te.svc = &network.Service{Pool: e.Pool, Index: e.Index, Store: e.Store, AttrsMemory: attrs, GroupsMemory: groups, Placer: policy.Default{}, Log: e.Log,
			BrokerID: "test-broker", PeerTimeout: peerTimeout,
			Quota: &quota.Ledger{Store: e.Store, Limits: te.limits, Holder: "test-broker", Log: e.Log}}
		n := &network.Neutron{Service: te.svc, QuotaAdmin: te.limits, Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/network", n.Routes)
		e.Keystone.Catalog = identity.StaticCatalog(services)
	})
	for _, m := range te.Pool.Members() {
		if m.Peer.Name == "east" {
			seeded, err := m.Cloud.(*localcloud.Cloud).Seed(te.Ctx)
			if err != nil {
				t.Fatal(err)
			}
			te.peerSeeded, te.seeded = seeded, seeded
			te.seeded.NetworkID = network.NativeID(m.Peer.ID, network.KindNetwork, seeded.NetworkID)
			te.seeded.SubnetID = network.NativeID(m.Peer.ID, network.KindSubnet, seeded.SubnetID)
		}
	}
	if te.seeded.NetworkID == "" {
		t.Fatal("east was not seeded")
	}
	return te
}

func client(t *testing.T, e *testEnv, user, password, project string) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewNetworkV2(e.Provider(t, user, password, project), gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func ptr[T any](v T) *T { return &v }

// neutronType is the NeutronError type of a failed call.
func neutronType(err error) string {
	var ue gophercloud.ErrUnexpectedResponseCode
	if !errors.As(err, &ue) {
		return ""
	}
	var body struct {
		NeutronError struct{ Type string } `json:"NeutronError"`
	}
	_ = json.Unmarshal(ue.Body, &body)
	return body.NeutronError.Type
}

// wantFault checks a failed call's status and Neutron error type.
func wantFault(t *testing.T, what string, err error, code int, typ string) {
	t.Helper()
	if !gophercloud.ResponseCodeIs(err, code) || (typ != "" && neutronType(err) != typ) {
		t.Fatalf("%s = %v (type %q), want %d %s", what, err, neutronType(err), code, typ)
	}
}

// raw fetches one resource as JSON.
func raw(t *testing.T, c *gophercloud.ServiceClient, path string) map[string]any {
	t.Helper()
	var out map[string]any
	if _, err := c.Get(context.Background(), c.ServiceURL(path), &out, nil); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestNetworksSubnetsPorts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")

	net, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "net1", Description: "first", AvailabilityZoneHints: []string{"west"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if net.Name != "net1" || net.Description != "first" || !net.AdminStateUp || net.Status != "ACTIVE" || net.ProjectID == "" || net.TenantID != net.ProjectID {
		t.Fatalf("created network = %+v", net)
	}
	body := raw(t, admin, "networks/"+net.ID)["network"].(map[string]any)
	if zones := body["availability_zones"].([]any); len(zones) != 1 || zones[0] != "west" {
		t.Fatalf("availability_zones = %v, want [west] (pinned by hint)", zones)
	}
	for _, k := range []string{"mtu", "router:external", "revision_number", "created_at", "updated_at", "tags", "shared", "availability_zone_hints"} {
		if _, ok := body[k]; !ok {
			t.Errorf("network lacks %q: %v", k, body)
		}
	}
	entry, err := e.Index.Get(ctx, network.KindNetwork, net.ID, net.ProjectID)
	if err != nil || entry.PeerResourceID == net.ID {
		t.Fatalf("index entry = %+v, %v; want the peer's own ID recorded", entry, err)
	}
	m, _ := e.Pool.Get(entry.PeerID)
	onPeer, err := m.Cloud.GetNetwork(ctx, entry.PeerResourceID)
	if err != nil || onPeer.Metadata[peers.MetaID] != net.ID || onPeer.Metadata[peers.MetaProject] != net.ProjectID || onPeer.Metadata[peers.MetaBrokerID] != "test-broker" {
		t.Fatalf("peer network = %+v, %v; want cloudmux metadata", onPeer, err)
	}

	noGW := ""
	sub, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.9.0.0/24", IPVersion: 4, Name: "sub1", DNSNameservers: []string{"10.9.0.53"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if sub.GatewayIP != "10.9.0.1" || sub.NetworkID != net.ID || len(sub.AllocationPools) != 1 || sub.AllocationPools[0].Start != "10.9.0.2" || sub.AllocationPools[0].End != "10.9.0.254" || !sub.EnableDHCP {
		t.Fatalf("subnet = %+v", sub)
	}
	sub2, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.8.0.0/28", IPVersion: 4, GatewayIP: &noGW, EnableDHCP: new(bool)}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if sub2.GatewayIP != "" || sub2.EnableDHCP {
		t.Fatalf("subnet without gateway = %+v", sub2)
	}
	if got := raw(t, admin, "subnets/"+sub2.ID)["subnet"].(map[string]any)["gateway_ip"]; got != nil {
		t.Fatalf("gateway_ip = %v, want null", got)
	}
	if got, err := networks.Get(ctx, admin, net.ID).Extract(); err != nil || !slices.Contains(got.Subnets, sub.ID) || !slices.Contains(got.Subnets, sub2.ID) {
		t.Fatalf("network subnets = %+v, %v", got, err)
	}

	port, err := ports.Create(ctx, admin, ports.CreateOpts{NetworkID: net.ID, Name: "p1", FixedIPs: []ports.IP{{SubnetID: sub.ID, IPAddress: "10.9.0.10"}}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if port.NetworkID != net.ID || len(port.FixedIPs) != 1 || port.FixedIPs[0].SubnetID != sub.ID || port.FixedIPs[0].IPAddress != "10.9.0.10" || !strings.HasPrefix(port.MACAddress, "fa:16:3e:") {
		t.Fatalf("port = %+v", port)
	}
	if len(port.SecurityGroups) != 1 || port.SecurityGroups[0] != network.DefaultSecurityGroupID(net.ProjectID) {
		t.Fatalf("port security groups = %v, want the default group", port.SecurityGroups)
	}
	auto, err := ports.Create(ctx, admin, ports.CreateOpts{NetworkID: net.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := netip.ParseAddr(auto.FixedIPs[0].IPAddress); !netip.MustParsePrefix("10.9.0.0/24").Contains(a) && !netip.MustParsePrefix("10.8.0.0/28").Contains(a) {
		t.Fatalf("auto port address %v is in no subnet", auto.FixedIPs)
	}

	t.Run("update", func(t *testing.T) {
		name, down := "renamed", false
		got, err := networks.Update(ctx, admin, net.ID, networks.UpdateOpts{Name: &name, AdminStateUp: &down}).Extract()
		if err != nil || got.Name != "renamed" || got.AdminStateUp || got.RevisionNumber < 2 {
			t.Fatalf("update = %+v, %v", got, err)
		}
		pages, err := networks.List(admin, networks.ListOpts{Name: "renamed"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if found, _ := networks.ExtractNetworks(pages); len(found) != 1 || found[0].ID != net.ID {
			t.Fatalf("list by new name = %+v", found)
		}
		pname := "p1-renamed"
		if p, err := ports.Update(ctx, admin, port.ID, ports.UpdateOpts{Name: &pname}).Extract(); err != nil || p.Name != pname {
			t.Fatalf("port update = %+v, %v", p, err)
		}
	})

	t.Run("port filters", func(t *testing.T) {
		pages, err := ports.List(admin, ports.ListOpts{NetworkID: net.ID}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := ports.ExtractPorts(pages); len(got) != 2 {
			t.Fatalf("ports on net1 = %d, want 2", len(got))
		}
		pages, err = ports.List(admin, ports.ListOpts{FixedIPs: []ports.FixedIPOpts{{IPAddress: "10.9.0.10", SubnetID: sub.ID}}}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := ports.ExtractPorts(pages); len(got) != 1 || got[0].ID != port.ID {
			t.Fatalf("ports with 10.9.0.10 = %+v", got)
		}
		pages, err = ports.List(admin, ports.ListOpts{Tags: "blue"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := ports.ExtractPorts(pages); len(got) != 0 {
			t.Fatalf("ports tagged blue = %+v", got)
		}
		pages, err = ports.List(admin, ports.ListOpts{Name: "nope"}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := ports.ExtractPorts(pages); len(got) != 0 {
			t.Fatalf("ports named nope = %+v", got)
		}
	})

	t.Run("in use", func(t *testing.T) {
		err := networks.Delete(ctx, admin, net.ID).ExtractErr()
		wantFault(t, "delete a network with ports", err, http.StatusConflict, "NetworkInUse")
		if !strings.Contains(string(err.(gophercloud.ErrUnexpectedResponseCode).Body), "There are one or more ports still in use on the network") {
			t.Fatalf("NetworkInUse message = %s", err.(gophercloud.ErrUnexpectedResponseCode).Body)
		}
		wantFault(t, "delete a subnet with addresses", subnets.Delete(ctx, admin, sub.ID).ExtractErr(), http.StatusConflict, "SubnetInUse")
		wantFault(t, "take a taken address", ports.Create(ctx, admin, ports.CreateOpts{NetworkID: net.ID, FixedIPs: []ports.IP{{SubnetID: sub.ID, IPAddress: "10.9.0.10"}}}).Err, http.StatusConflict, "IpAddressAlreadyAllocated")
	})

	for _, id := range []string{port.ID, auto.ID} {
		if err := ports.Delete(ctx, admin, id).ExtractErr(); err != nil {
			t.Fatal(err)
		}
	}
	wantFault(t, "get a deleted port", ports.Get(ctx, admin, port.ID).Err, http.StatusNotFound, "PortNotFound")
	if err := networks.Delete(ctx, admin, net.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	wantFault(t, "get a deleted network", networks.Get(ctx, admin, net.ID).Err, http.StatusNotFound, "NetworkNotFound")
	wantFault(t, "get a subnet of a deleted network", subnets.Get(ctx, admin, sub.ID).Err, http.StatusNotFound, "SubnetNotFound")
	if left, _ := e.Index.List(ctx, network.KindSubnet, ""); len(left) != 0 {
		t.Fatalf("index keeps %d subnets of a deleted network", len(left))
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	net, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "n"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.1.0.0/16", IPVersion: 4}).Extract(); err != nil {
		t.Fatal(err)
	}
	gw := "192.0.2.300"
	cases := []struct {
		name  string
		opts  subnets.CreateOpts
		code  int
		typ   string
		field string
	}{
		{"not a cidr", subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.0.0.0/33", IPVersion: 4}, 400, "HTTPBadRequest", "cidr"},
		{"host bits", subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.2.0.5/24", IPVersion: 4}, 400, "HTTPBadRequest", "10.2.0.0/24"},
		{"overlap", subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.1.2.0/24", IPVersion: 4}, 400, "InvalidInput", "overlaps with another subnet"},
		{"version mismatch", subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.3.0.0/24", IPVersion: 6}, 400, "InvalidInput", "ip_version"},
		{"bad gateway", subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.4.0.0/24", IPVersion: 4, GatewayIP: &gw}, 400, "HTTPBadRequest", "gateway_ip"},
		{"pool outside", subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.5.0.0/24", IPVersion: 4, AllocationPools: []subnets.AllocationPool{{Start: "10.6.0.2", End: "10.6.0.9"}}}, 400, "InvalidAllocationPool", "10.6.0.2"},
		{"custom pool", subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.7.0.0/24", IPVersion: 4, AllocationPools: []subnets.AllocationPool{{Start: "10.7.0.100", End: "10.7.0.200"}}}, 400, "InvalidAllocationPool", "not supported"},
		{"unknown network", subnets.CreateOpts{NetworkID: "8e5d4b8c-0000-4000-8000-000000000000", CIDR: "10.8.0.0/24", IPVersion: 4}, 404, "NetworkNotFound", "8e5d4b8c"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := subnets.Create(ctx, admin, tc.opts).Extract()
			wantFault(t, "subnet create", err, tc.code, tc.typ)
			if b := string(err.(gophercloud.ErrUnexpectedResponseCode).Body); !strings.Contains(b, tc.field) {
				t.Fatalf("error %s does not name %q", b, tc.field)
			}
		})
	}
	t.Run("default pools are accepted", func(t *testing.T) {
		_, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: net.ID, CIDR: "10.9.0.0/24", IPVersion: 4,
			AllocationPools: []subnets.AllocationPool{{Start: "10.9.0.2", End: "10.9.0.254"}}}).Extract()
		if err != nil {
			t.Fatal(err)
		}
	})
	t.Run("port on an unknown network", func(t *testing.T) {
		wantFault(t, "port create", ports.Create(ctx, admin, ports.CreateOpts{NetworkID: "8e5d4b8c-0000-4000-8000-000000000000"}).Err, 404, "NetworkNotFound")
	})
	for _, tc := range []struct {
		name, collection string
		body             map[string]any
		field            string
	}{
		{"port network_id not a UUID", "ports", map[string]any{"port": map[string]any{"network_id": "nope"}}, "network_id"},
		{"subnet network_id not a UUID", "subnets", map[string]any{"subnet": map[string]any{"network_id": "nope", "cidr": "10.10.0.0/24", "ip_version": 4}}, "network_id"},
		{"port security group not a UUID", "ports", map[string]any{"port": map[string]any{"network_id": net.ID, "security_groups": []string{"default"}}}, "security_groups"},
		{"network name too long", "networks", map[string]any{"network": map[string]any{"name": strings.Repeat("n", 256)}}, "name"},
		{"network description too long", "networks", map[string]any{"network": map[string]any{"description": strings.Repeat("d", 256)}}, "description"},
		{"negative mtu", "networks", map[string]any{"network": map[string]any{"mtu": -1}}, "mtu"},
		{"rule group not a UUID", "security-group-rules", map[string]any{"security_group_rule": map[string]any{"security_group_id": "x", "direction": "ingress"}}, "security_group_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admin.Post(ctx, admin.ServiceURL(tc.collection), tc.body, nil, nil)
			wantFault(t, tc.name, err, 400, "HTTPBadRequest")
			if b := string(err.(gophercloud.ErrUnexpectedResponseCode).Body); !strings.Contains(b, "Invalid input for "+tc.field) {
				t.Fatalf("error %s does not name %q", b, tc.field)
			}
		})
	}
	for _, tc := range []struct {
		name, body string
		code       int
		typ        string
	}{
		{"oversized body", `{"network": {"name": "x", "description": "` + strings.Repeat("d", 1<<20) + `"}}`, 413, "HTTPRequestEntityTooLarge"},
		{"data after the object", `{"network": {"name": "x"}} {"network": {}}`, 400, "HTTPBadRequest"},
		{"not JSON", `{"network": `, 400, "HTTPBadRequest"},
		{"resource missing", `{"netwerk": {}}`, 400, "HTTPBadRequest"},
		{"resource not an object", `{"network": []}`, 400, "HTTPBadRequest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admin.Request(ctx, http.MethodPost, admin.ServiceURL("networks"), &gophercloud.RequestOpts{
				RawBody: strings.NewReader(tc.body), MoreHeaders: map[string]string{"Content-Type": "application/json"}})
			wantFault(t, tc.name, err, tc.code, tc.typ)
		})
	}
	t.Run("rename too long", func(t *testing.T) {
		_, err := networks.Update(ctx, admin, net.ID, networks.UpdateOpts{Name: ptr(strings.Repeat("n", 256))}).Extract()
		wantFault(t, "network update", err, 400, "HTTPBadRequest")
	})
	t.Run("port claims a device", func(t *testing.T) {
		wantFault(t, "port create", ports.Create(ctx, admin, ports.CreateOpts{NetworkID: net.ID, DeviceID: "x"}).Err, 400, "InvalidInput")
	})
	t.Run("unknown zone hint", func(t *testing.T) {
		wantFault(t, "network create", networks.Create(ctx, admin, networks.CreateOpts{AvailabilityZoneHints: []string{"mars"}}).Err, 404, "AvailabilityZoneNotFound")
	})
	t.Run("unknown attribute", func(t *testing.T) {
		var out map[string]any
		_, err := admin.Post(ctx, admin.ServiceURL("networks"), map[string]any{"network": map[string]any{"name": "x", "colour": "blue"}}, &out, nil)
		wantFault(t, "network create", err, 400, "HTTPBadRequest")
	})
	t.Run("bad limit", func(t *testing.T) {
		_, err := admin.Get(ctx, admin.ServiceURL("networks")+"?limit=x", nil, nil)
		wantFault(t, "list", err, 400, "HTTPBadRequest")
	})
}

func TestProjectIsolation(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	pw := e.Member(t, "bob", "team-b", identity.RoleMember)
	bob := client(t, e, "bob", pw, "team-b")

	mine, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "admins-net"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	mySub, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: mine.ID, CIDR: "10.20.0.0/24", IPVersion: 4}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	myPort, err := ports.Create(ctx, admin, ports.CreateOpts{NetworkID: mine.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}

	list := func(c *gophercloud.ServiceClient) []string {
		pages, err := networks.List(c, networks.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ns, _ := networks.ExtractNetworks(pages)
		var ids []string
		for _, n := range ns {
			ids = append(ids, n.ID)
		}
		return ids
	}
	if ids := list(bob); slices.Contains(ids, mine.ID) || !slices.Contains(ids, e.seeded.NetworkID) {
		t.Fatalf("bob sees %v; want the shared network %s and not admin's %s", ids, e.seeded.NetworkID, mine.ID)
	}
	if ids := list(admin); !slices.Contains(ids, mine.ID) || !slices.Contains(ids, e.seeded.NetworkID) {
		t.Fatalf("admin sees %v", ids)
	}

	wantFault(t, "bob shows admin's network", networks.Get(ctx, bob, mine.ID).Err, 404, "NetworkNotFound")
	wantFault(t, "bob deletes admin's network", networks.Delete(ctx, bob, mine.ID).ExtractErr(), 404, "NetworkNotFound")
	wantFault(t, "bob shows admin's subnet", subnets.Get(ctx, bob, mySub.ID).Err, 404, "SubnetNotFound")
	wantFault(t, "bob shows admin's port", ports.Get(ctx, bob, myPort.ID).Err, 404, "PortNotFound")
	wantFault(t, "bob deletes admin's port", ports.Delete(ctx, bob, myPort.ID).ExtractErr(), 404, "PortNotFound")
	wantFault(t, "bob adds a subnet to admin's network", subnets.Create(ctx, bob, subnets.CreateOpts{NetworkID: mine.ID, CIDR: "10.21.0.0/24", IPVersion: 4}).Err, 404, "NetworkNotFound")
	wantFault(t, "bob adds a port to admin's network", ports.Create(ctx, bob, ports.CreateOpts{NetworkID: mine.ID}).Err, 404, "NetworkNotFound")

	// The shared network: everyone sees it and its subnet, by broker IDs
	// (never east's own, which are as unknown as any), and may put ports
	// on it; nobody but its peer changes it.
	shared, err := networks.Get(ctx, bob, e.seeded.NetworkID).Extract()
	if err != nil || !shared.Shared || shared.Name != localcloud.SeedNetworkName || !slices.Contains(shared.Subnets, e.seeded.SubnetID) {
		t.Fatalf("shared network as bob = %+v, %v", shared, err)
	}
	if sn, err := subnets.Get(ctx, bob, e.seeded.SubnetID).Extract(); err != nil || sn.CIDR != localcloud.SeedSubnetCIDR {
		t.Fatalf("shared subnet as bob = %+v, %v", sn, err)
	}
	bobPort, err := ports.Create(ctx, bob, ports.CreateOpts{NetworkID: e.seeded.NetworkID, Name: "bobs"}).Extract()
	if err != nil || bobPort.FixedIPs[0].SubnetID != e.seeded.SubnetID {
		t.Fatalf("bob's port on the shared network = %+v, %v", bobPort, err)
	}
	pages, err := ports.List(admin, ports.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := ports.ExtractPorts(pages); len(ps) != 1 || ps[0].ID != myPort.ID {
		t.Fatalf("admin's ports = %+v; bob's port on the shared network must not show", ps)
	}
	wantFault(t, "the shared network by east's ID", networks.Get(ctx, bob, e.peerSeeded.NetworkID).Err, 404, "NetworkNotFound")
	wantFault(t, "the shared subnet by east's ID", subnets.Get(ctx, bob, e.peerSeeded.SubnetID).Err, 404, "SubnetNotFound")
	wantFault(t, "a port on the shared network by east's ID", ports.Create(ctx, bob, ports.CreateOpts{NetworkID: e.peerSeeded.NetworkID}).Err, 404, "NetworkNotFound")
	wantFault(t, "a port on the shared subnet by east's ID", ports.Create(ctx, bob, ports.CreateOpts{NetworkID: e.seeded.NetworkID,
		FixedIPs: []ports.IP{{SubnetID: e.peerSeeded.SubnetID}}}).Err, 400, "InvalidInput")
	wantFault(t, "bob renames the shared network", networks.Update(ctx, bob, e.seeded.NetworkID, networks.UpdateOpts{Name: ptr("mine")}).Err, 403, "PolicyNotAuthorized")
	wantFault(t, "admin deletes the shared subnet", subnets.Delete(ctx, admin, e.seeded.SubnetID).ExtractErr(), 403, "PolicyNotAuthorized")
	wantFault(t, "bob deletes the shared network", networks.Delete(ctx, bob, e.seeded.NetworkID).ExtractErr(), 403, "PolicyNotAuthorized")
	wantFault(t, "bob adds a subnet to the shared network", subnets.Create(ctx, bob, subnets.CreateOpts{NetworkID: e.seeded.NetworkID, CIDR: "10.30.0.0/24", IPVersion: 4}).Err, 403, "PolicyNotAuthorized")
	wantFault(t, "bob creates a shared network", networks.Create(ctx, bob, networks.CreateOpts{Shared: ptr(true)}).Err, 403, "PolicyNotAuthorized")

	t.Run("a broker-made shared network", func(t *testing.T) {
		sh, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "common", Shared: ptr(true)}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: sh.ID, CIDR: "10.40.0.0/24", IPVersion: 4}).Extract(); err != nil {
			t.Fatal(err)
		}
		got, err := networks.Get(ctx, bob, sh.ID).Extract()
		if err != nil || got.ID != sh.ID || len(got.Subnets) != 1 {
			t.Fatalf("bob sees admin's shared network as %+v, %v", got, err)
		}
		if _, err := subnets.Get(ctx, bob, got.Subnets[0]).Extract(); err != nil {
			t.Fatalf("bob reads its subnet: %v", err)
		}
		if ids := list(bob); !slices.Contains(ids, sh.ID) {
			t.Fatalf("bob's list %v lacks the shared network %s", ids, sh.ID)
		}
		wantFault(t, "bob deletes it", networks.Delete(ctx, bob, sh.ID).ExtractErr(), 403, "PolicyNotAuthorized")
	})
}

func TestPagingAndFields(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	var made []string
	for _, name := range []string{"a", "b", "c"} {
		n, err := networks.Create(ctx, admin, networks.CreateOpts{Name: name}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		made = append(made, n.ID)
	}
	pageCount := 0
	var seen []string
	pager := networks.List(admin, networks.ListOpts{Limit: 1})
	if err := pager.EachPage(ctx, func(_ context.Context, page pagination.Page) (bool, error) {
		ns, err := networks.ExtractNetworks(page)
		if err != nil {
			return false, err
		}
		pageCount++
		for _, n := range ns {
			seen = append(seen, n.ID)
		}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if pageCount != 4 || len(seen) != 4 { // three made plus the seeded one
		t.Fatalf("%d pages with %d networks, want 4 and 4", pageCount, len(seen))
	}
	if !slices.IsSorted(seen) {
		t.Fatalf("pages are not in ID order: %v", seen)
	}
	for _, id := range made {
		if !slices.Contains(seen, id) {
			t.Fatalf("paging missed %s", id)
		}
	}

	cases := []struct {
		name  string
		query string
		want  int
	}{
		{"by name", "?name=b", 1},
		{"shared", "?shared=true", 1},
		{"not shared", "?shared=false", 3},
		{"external", "?router:external=false", 4},
		{"status", "?status=ACTIVE", 4},
		{"two names", "?name=a&name=c", 2},
		{"by id", "?id=" + made[0], 1},
		{"names are exact", "?name=B", 0},
		{"booleans in any case", "?shared=True", 1},
		{"booleans as numbers", "?shared=0", 3},
		{"marker outside the filter", "?sort_key=name&sort_dir=asc&name=c&marker=" + made[0], 1},
		{"marker after the match", "?sort_key=name&sort_dir=asc&name=a&marker=" + made[2], 0},
		{"limit 0 is none", "?limit=0", 4},
		{"limit past any int is none", "?limit=99999999999999999999", 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out struct{ Networks []map[string]any }
			if _, err := admin.Get(ctx, admin.ServiceURL("networks")+tc.query, &out, nil); err != nil {
				t.Fatal(err)
			}
			if len(out.Networks) != tc.want {
				t.Fatalf("%s: %d networks, want %d", tc.query, len(out.Networks), tc.want)
			}
		})
	}
	t.Run("sorting", func(t *testing.T) {
		for _, tc := range []struct {
			name, query string
			code        int
			first       string
		}{
			{"name desc", "?sort_key=name&sort_dir=desc", 200, localcloud.SeedNetworkName},
			{"name asc", "?sort_key=name&sort_dir=asc", 200, "a"},
			{"a key without a direction is ascending", "?sort_key=name", 200, "a"},
			{"unknown key", "?sort_key=colour", 400, ""},
			{"list-valued key", "?sort_key=subnets", 400, ""},
			{"bad direction", "?sort_key=name&sort_dir=up", 400, ""},
			{"more directions than keys", "?sort_key=name&sort_dir=asc&sort_dir=desc", 400, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				var out struct{ Networks []map[string]any }
				_, err := admin.Get(ctx, admin.ServiceURL("networks")+tc.query, &out, &gophercloud.RequestOpts{OkCodes: []int{tc.code}})
				if err != nil {
					t.Fatal(err)
				}
				if tc.code == 200 && (len(out.Networks) != 4 || out.Networks[0]["name"] != tc.first) {
					t.Fatalf("%s: %v, want %q first", tc.query, out.Networks, tc.first)
				}
			})
		}
	})
	t.Run("fields", func(t *testing.T) {
		var out struct{ Networks []map[string]any }
		if _, err := admin.Get(ctx, admin.ServiceURL("networks")+"?fields=id&fields=name", &out, nil); err != nil {
			t.Fatal(err)
		}
		for _, n := range out.Networks {
			if len(n) != 2 || n["id"] == nil || n["name"] == nil {
				t.Fatalf("fields=id,name gave %v", n)
			}
		}
	})
	t.Run("project filter", func(t *testing.T) {
		var out struct{ Networks []map[string]any }
		if _, err := admin.Get(ctx, admin.ServiceURL("networks")+"?project_id=someone-else", &out, nil); err != nil {
			t.Fatal(err)
		}
		if len(out.Networks) != 0 {
			t.Fatalf("project_id filter kept %d networks", len(out.Networks))
		}
	})
}

func TestDiscoveryAndEmptyLists(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	for _, path := range []string{"/network", "/network/"} {
		resp, err := http.Get(e.Server.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Versions []struct{ ID, Status string }
		}
		err = json.NewDecoder(resp.Body).Decode(&doc)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || len(doc.Versions) != 1 || doc.Versions[0].ID != "v2.0" {
			t.Fatalf("GET %s = %d %+v %v", path, resp.StatusCode, doc, err)
		}
	}
	if res := raw(t, admin, ""); len(res["resources"].([]any)) == 0 {
		t.Fatalf("GET /network/v2.0/ = %v", res)
	}
	if ext := raw(t, admin, "extensions/security-group"); ext["extension"].(map[string]any)["alias"] != "security-group" {
		t.Fatalf("extension show = %v", ext)
	}
	for _, c := range []string{"floatingips", "routers"} {
		if got := raw(t, admin, c)[c].([]any); len(got) != 0 {
			t.Fatalf("%s = %v, want []", c, got)
		}
	}
	_, err := admin.Post(ctx, admin.ServiceURL("floatingips"), map[string]any{"floatingip": map[string]any{}}, nil, nil)
	wantFault(t, "a floating IP on no network", err, http.StatusBadRequest, "HTTPBadRequest")
	_, err = admin.Get(ctx, admin.ServiceURL("no-such-thing"), nil, nil)
	wantFault(t, "unknown resource", err, http.StatusNotFound, "HTTPNotFound")
}
