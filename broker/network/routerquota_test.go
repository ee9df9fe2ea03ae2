package network_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/subnets"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestRouterInterfacePortQuota: the port a router's interface by subnet
// takes counts against the project's port quota, as Neutron counts it:
// refused (409 OverQuota naming port) when the quota is full, shown as
// used in the quota details, freed when the interface is removed, and
// again by a router deleted once its interfaces are gone. An interface
// by the project's own port counts that one port only.
func TestRouterInterfacePortQuota(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	pw := e.Member(t, "rita", "quota-rp", identity.RoleMember)
	member := client(t, e, "rita", pw, "quota-rp")
	project, err := e.Dir.FindProject(ctx, identity.DefaultDomainID, "quota-rp")
	if err != nil {
		t.Fatal(err)
	}
	usedPorts := func(what string, want int) {
		t.Helper()
		d, err := quotas.GetDetail(ctx, member, project.ID).Extract()
		if err != nil || d.Port.Used != want || d.Port.Reserved != 0 {
			t.Fatalf("%s: port quota details = %+v, %v; want %d used, none reserved", what, d.Port, err, want)
		}
	}
	if _, err := quotas.Update(ctx, admin, project.ID, quotas.UpdateOpts{Port: ptr(1)}).Extract(); err != nil {
		t.Fatal(err)
	}
	n, err := networks.Create(ctx, member, networks.CreateOpts{Name: "n", AvailabilityZoneHints: []string{"east"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	var subs []*subnets.Subnet
	for _, cidr := range []string{"10.41.0.0/24", "10.42.0.0/24"} {
		n2 := n
		if cidr != "10.41.0.0/24" {
			if n2, err = networks.Create(ctx, member, networks.CreateOpts{Name: "n2", AvailabilityZoneHints: []string{"east"}}).Extract(); err != nil {
				t.Fatal(err)
			}
		}
		sn, err := subnets.Create(ctx, member, subnets.CreateOpts{NetworkID: n2.ID, CIDR: cidr, IPVersion: 4}).Extract()
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sn)
	}
	r, err := routers.Create(ctx, member, routers.CreateOpts{Name: "r", AvailabilityZoneHints: []string{"east"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ports.Create(ctx, member, ports.CreateOpts{NetworkID: n.ID, Name: "p"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	usedPorts("one port", 1)

	// The quota is full: an interface by subnet needs another port.
	_, err = routers.AddInterface(ctx, member, r.ID, routers.AddInterfaceOpts{SubnetID: subs[1].ID}).Extract()
	wantFault(t, "an interface by subnet over a port quota of 1", err, http.StatusConflict, "OverQuota")
	if out, err := ports.List(member, ports.ListOpts{DeviceID: r.ID}).AllPages(ctx); err != nil {
		t.Fatal(err)
	} else if got, _ := ports.ExtractPorts(out); len(got) != 0 {
		t.Fatalf("the refused interface left ports on the router: %+v", got)
	}
	// By the project's own port: still one port.
	if _, err := routers.AddInterface(ctx, member, r.ID, routers.AddInterfaceOpts{PortID: p.ID}).Extract(); err != nil {
		t.Fatalf("an interface by the project's port under a full quota: %v", err)
	}
	usedPorts("an interface by port", 1)

	if _, err := quotas.Update(ctx, admin, project.ID, quotas.UpdateOpts{Port: ptr(2)}).Extract(); err != nil {
		t.Fatal(err)
	}
	in, err := routers.AddInterface(ctx, member, r.ID, routers.AddInterfaceOpts{SubnetID: subs[1].ID}).Extract()
	if err != nil {
		t.Fatalf("an interface by subnet under a port quota of 2: %v", err)
	}
	usedPorts("an interface by subnet", 2)
	wantFault(t, "a port over the quota the interface filled", ports.Create(ctx, member, ports.CreateOpts{NetworkID: n.ID}).Err, http.StatusConflict, "OverQuota")

	// Removing the interface frees its port, once; removing the one by
	// port deletes that port (as Neutron does) and frees it.
	if _, err := routers.RemoveInterface(ctx, member, r.ID, routers.RemoveInterfaceOpts{PortID: in.PortID}).Extract(); err != nil {
		t.Fatal(err)
	}
	usedPorts("the interface by subnet removed", 1)
	if _, err := routers.RemoveInterface(ctx, member, r.ID, routers.RemoveInterfaceOpts{PortID: p.ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	usedPorts("the interface by port removed", 0)

	// A router deleted after its interfaces went leaves nothing counted.
	if _, err := routers.AddInterface(ctx, member, r.ID, routers.AddInterfaceOpts{SubnetID: subs[0].ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	usedPorts("a new interface", 1)
	wantFault(t, "deleting a router with an interface", routers.Delete(ctx, member, r.ID).ExtractErr(), http.StatusConflict, "RouterInUse")
	if _, err := routers.RemoveInterface(ctx, member, r.ID, routers.RemoveInterfaceOpts{SubnetID: subs[0].ID}).Extract(); err != nil {
		t.Fatal(err)
	}
	if err := routers.Delete(ctx, member, r.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	usedPorts("the router deleted", 0)
}
