package network_test

import (
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
