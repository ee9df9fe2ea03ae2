package openstack_test

import (
	"context"
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/peers"
)

// TestAdminListsNamedProject: on the real testcloud, an admin token's
// Neutron lists (networks, subnets, ports, routers, floating IPs) honour
// ListOptions.Project as the local cloud does: naming the tenant's
// project lists the tenant's resources, while a list naming none stays
// the admin project's view (the tenant's absent). The driver dropped
// them: it narrowed every admin list to its own project.
func TestAdminListsNamedProject(t *testing.T) {
	tenant := connect(t, "")
	admin := connect(t, adminName)
	if tenant.ProjectID() == admin.ProjectID() {
		t.Skipf("the tenant entry is in the admin's project %s: nothing to tell apart", admin.ProjectID())
	}
	ext := testExternalNetwork(t)
	ctx := context.Background()
	tc := tenant.Peer()
	net, err := tc.CreateNetwork(ctx, peers.NetworkSpec{Name: "cmx-otherproject"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tc.DeleteNetwork(context.Background(), net.ID) })
	sub, err := tc.CreateSubnet(ctx, peers.SubnetSpec{Name: "cmx-otherproject", NetworkID: net.ID, CIDR: "10.88.7.0/24", IPVersion: 4})
	if err != nil {
		t.Fatal(err)
	}
	port, err := tc.CreatePort(ctx, peers.PortSpec{Name: "cmx-otherproject", NetworkID: net.ID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tc.DeletePort(context.Background(), port.ID) })
	rt := tc.(peers.Routers)
	r, err := rt.CreateRouter(ctx, peers.RouterSpec{Name: "cmx-otherproject"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.DeleteRouter(context.Background(), r.ID) })
	fip, err := rt.CreateFloatingIP(ctx, peers.FloatingIPSpec{NetworkID: ext})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rt.DeleteFloatingIP(context.Background(), fip.ID) })

	ac := admin.Peer()
	art := ac.(peers.Routers)
	kinds := []struct {
		name string
		id   string
		list func(o peers.ListOptions) ([]string, error)
	}{
		{"networks", net.ID, func(o peers.ListOptions) ([]string, error) {
			l, err := ac.ListNetworks(ctx, o)
			return idsOf(l, func(n peers.Network) string { return n.ID }), err
		}},
		{"subnets", sub.ID, func(o peers.ListOptions) ([]string, error) {
			l, err := ac.ListSubnets(ctx, o)
			return idsOf(l, func(s peers.Subnet) string { return s.ID }), err
		}},
		{"ports", port.ID, func(o peers.ListOptions) ([]string, error) {
			l, err := ac.ListPorts(ctx, o)
			return idsOf(l, func(p peers.Port) string { return p.ID }), err
		}},
		{"routers", r.ID, func(o peers.ListOptions) ([]string, error) {
			l, err := art.ListRouters(ctx, o)
			return idsOf(l, func(r peers.Router) string { return r.ID }), err
		}},
		{"floating IPs", fip.ID, func(o peers.ListOptions) ([]string, error) {
			l, err := art.ListFloatingIPs(ctx, o)
			return idsOf(l, func(f peers.FloatingIP) string { return f.ID }), err
		}},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			named, err := k.list(peers.ListOptions{Project: tenant.ProjectID()})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Contains(named, k.id) {
				t.Errorf("the admin's list naming the tenant's project %s has %d %s, not the tenant's %s", tenant.ProjectID(), len(named), k.name, k.id)
			}
			own, err := k.list(peers.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if slices.Contains(own, k.id) {
				t.Errorf("the admin's own view lists the tenant's %s %s", k.name, k.id)
			}
		})
	}
}

func idsOf[T any](items []T, id func(T) string) []string {
	out := make([]string, 0, len(items))
	for _, it := range items {
		out = append(out, id(it))
	}
	return out
}
