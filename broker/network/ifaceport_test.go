package network_test

import (
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestRouterInterfacePortDeviceID: a port made a router interface shows
// the broker's router ID as device_id (it showed the peer's own), and a
// client listing the router's ports (openstack port list --router) finds
// it.
func TestRouterInterfacePortDeviceID(t *testing.T) {
	e := newEnv(t)
	ctx := e.Ctx
	ext := e.externalNet(t, "east")
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	n, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "n", AvailabilityZoneHints: []string{"east"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := subnets.Create(ctx, admin, subnets.CreateOpts{NetworkID: n.ID, CIDR: "10.40.0.0/24", IPVersion: 4}).Extract(); err != nil {
		t.Fatal(err)
	}
	r, err := routers.Create(ctx, admin, routers.CreateOpts{Name: "r", GatewayInfo: &routers.GatewayInfo{NetworkID: ext}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ports.Create(ctx, admin, ports.CreateOpts{NetworkID: n.ID, Name: "ifc"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := routers.AddInterface(ctx, admin, r.ID, routers.AddInterfaceOpts{PortID: p.ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	got, err := ports.Get(ctx, admin, p.ID).Extract()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("interface port: device_id %q device_owner %q (router %s)", got.DeviceID, got.DeviceOwner, r.ID)
	if got.DeviceID != r.ID {
		t.Errorf("the interface port's device_id is %q, not the router's broker ID %s", got.DeviceID, r.ID)
	}
	pages, err := ports.List(admin, ports.ListOpts{DeviceID: r.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	all, _ := ports.ExtractPorts(pages)
	t.Logf("ports with device_id=%s: %d", r.ID, len(all))
	if len(all) == 0 {
		t.Errorf("listing the router's ports by device_id finds none")
	}
}

// TestRouterPortsCLI: the port a router's interface by subnet takes is
// the router's project's, as Neutron makes it there: openstack port list
// --router and --device-owner network:router_interface find it under a
// broker ID with the router's ID as device_id, port show shows it, it is
// removed by that ID (router remove port) and leaves the list with its
// interface; another project lists none of it. The gateway's port, as
// in Neutron (checked against the testcloud's), is in no project: a cloud
// admin lists and shows it (project_id "", device_owner
// network:router_gateway) and cannot delete it (409 ServicePortInUse);
// a member lists none of its own router's.
func TestRouterPortsCLI(t *testing.T) {
	_, run, bob := routersCLIEnv(t)
	out, code := run(nil, "network", "create", "--availability-zone-hint", "east", "net-rp", "-f", "value", "-c", "id")
	if code != 0 {
		t.Fatalf("network create: %s", out)
	}
	for _, args := range [][]string{
		{"subnet", "create", "--network", "net-rp", "--subnet-range", "10.31.0.0/24", "sub-rp"},
		{"router", "create", "--availability-zone-hint", "east", "--external-gateway", "public", "r-rp"},
		{"router", "add", "subnet", "r-rp", "sub-rp"},
	} {
		if out, code := run(nil, args...); code != 0 {
			t.Fatalf("openstack %v: %s", args, out)
		}
	}
	routerID, _ := run(nil, "router", "show", "r-rp", "-f", "value", "-c", "id")
	routerID = strings.TrimSpace(routerID)
	portID, code := run(nil, "port", "list", "--router", "r-rp", "--device-owner", "network:router_interface", "-f", "value", "-c", "ID")
	portID = strings.TrimSpace(portID)
	if code != 0 || len(strings.Fields(portID)) != 1 {
		t.Fatalf("port list --router r-rp = %q (exit %d), want the one interface port", portID, code)
	}
	gwID, code := run(nil, "port", "list", "--router", "r-rp", "--device-owner", "network:router_gateway", "-f", "value", "-c", "ID")
	gwID = strings.TrimSpace(gwID)
	if code != 0 || len(strings.Fields(gwID)) != 1 {
		t.Fatalf("port list --router r-rp --device-owner network:router_gateway = %q (exit %d), want the gateway's port", gwID, code)
	}
	if out, code := run(bob, "router", "create", "--availability-zone-hint", "east", "--external-gateway", "public", "r-bob"); code != 0 {
		t.Fatalf("bob's router create: %s", out)
	}
	steps := []cliStep{
		{"both ports by router", nil, []string{"port", "list", "--router", "r-rp", "-f", "value", "-c", "ID"}, 0, []string{portID, gwID}},
		{"gateway port show", nil, []string{"port", "show", gwID, "-f", "json"}, 0, []string{`"device_id": "` + routerID + `"`, `"device_owner": "network:router_gateway"`, `"project_id": ""`, "198.51.100."}},
		{"gateway port delete", nil, []string{"port", "delete", gwID}, 1, []string{"cannot be deleted directly via the port API"}},
		{"bob lists no gateway port", bob, []string{"port", "list", "--device-owner", "network:router_gateway", "-f", "value", "-c", "ID"}, 0, nil},
		{"bob's router lists no port", bob, []string{"port", "list", "--router", "r-bob", "-f", "value", "-c", "ID"}, 0, nil},
		{"bob cannot show the gateway port", bob, []string{"port", "show", gwID}, 1, nil},
		{"by device owner", nil, []string{"port", "list", "--device-owner", "network:router_interface", "-f", "value", "-c", "ID", "-c", "Fixed IP Addresses"}, 0, []string{portID, "10.31.0.1"}},
		{"show", nil, []string{"port", "show", portID, "-f", "json"}, 0, []string{`"device_id": "` + routerID + `"`, `"device_owner": "network:router_interface"`, `"security_group_ids": []`}},
		{"bob lists none", bob, []string{"port", "list", "--device-owner", "network:router_interface", "-f", "value", "-c", "ID"}, 0, nil},
		{"bob cannot show it", bob, []string{"port", "show", portID}, 1, nil},
		{"removed by the port", nil, []string{"router", "remove", "port", "r-rp", portID}, 0, nil},
	}
	runCLISteps(t, run, steps)
	if out, _ := run(bob, "port", "list", "-f", "value", "-c", "ID"); strings.Contains(out, portID) {
		t.Fatalf("bob lists the admin's router port:\n%s", out)
	}
	if out, code := run(nil, "port", "list", "--router", "r-rp", "-f", "value", "-c", "ID"); code != 0 || strings.TrimSpace(out) != gwID {
		t.Fatalf("ports on the router after its interface's removal (exit %d):\n%s\nwant its gateway's alone", code, out)
	}
	if out, code := run(nil, "port", "show", gwID, "-f", "value", "-c", "device_owner"); code != 0 || strings.TrimSpace(out) != "network:router_gateway" {
		t.Fatalf("the gateway port after a refused delete (exit %d): %s", code, out)
	}
	if out, code := run(nil, "port", "show", portID); code == 0 {
		t.Fatalf("the removed interface's port still shows:\n%s", out)
	}
	if out, code := run(nil, "router", "delete", "r-rp"); code != 0 {
		t.Fatalf("router delete: %s", out)
	}
}
