package network_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/quotas"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestNetworkQuotas: a cloud admin sets a project's network quotas through
// Neutron's API; concurrent creates over real HTTP never pass them (409
// OverQuota naming the resource), a delete frees its share once, details
// show the usage, a member can read but not change them, and bad input is
// refused naming the attribute.
func TestNetworkQuotas(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	pw := e.Member(t, "nora", "quota-net", identity.RoleMember)
	member := client(t, e, "nora", pw, "quota-net")
	project, err := e.Dir.FindProject(ctx, identity.DefaultDomainID, "quota-net")
	if err != nil {
		t.Fatal(err)
	}

	if q, err := quotas.Get(ctx, member, project.ID).Extract(); err != nil || q.Network != 100 || q.Port != 500 || q.SecurityGroup != 10 {
		t.Fatalf("defaults = %+v, %v", q, err)
	}
	_, err = quotas.Update(ctx, member, project.ID, quotas.UpdateOpts{Network: ptr(50)}).Extract()
	wantFault(t, "member PUT", err, http.StatusForbidden, "PolicyNotAuthorized")
	for _, tc := range []struct {
		name string
		body map[string]any
	}{
		{name: "below -1", body: map[string]any{"network": -2}},
		{name: "not a number", body: map[string]any{"port": "many"}},
		{name: "a resource this cloud lacks", body: map[string]any{"rbac_policy": 5}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := admin.Put(ctx, admin.ServiceURL("quotas", project.ID), map[string]any{"quota": tc.body}, nil, &gophercloud.RequestOpts{OkCodes: []int{200}})
			wantFault(t, "PUT "+fmt.Sprint(tc.body), err, http.StatusBadRequest, "HTTPBadRequest")
		})
	}
	// Routers are counted as Neutron's router quota.
	if _, err := quotas.Update(ctx, admin, project.ID, quotas.UpdateOpts{Router: ptr(1)}).Extract(); err != nil {
		t.Fatal(err)
	}
	if _, err := routers.Create(ctx, member, routers.CreateOpts{Name: "r1"}).Extract(); err != nil {
		t.Fatalf("the first router under a quota of 1: %v", err)
	}
	_, err = routers.Create(ctx, member, routers.CreateOpts{Name: "r2"}).Extract()
	wantFault(t, "a second router under a quota of 1", err, http.StatusConflict, "OverQuota")
	q, err := quotas.Update(ctx, admin, project.ID, quotas.UpdateOpts{Network: ptr(3), SecurityGroup: ptr(2)}).Extract()
	if err != nil || q.Network != 3 || q.SecurityGroup != 2 || q.Port != 500 {
		t.Fatalf("admin PUT = %+v, %v", q, err)
	}

	// Ten networks at once against a limit of 3.
	var wg sync.WaitGroup
	results := make(chan error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := networks.Create(ctx, member, networks.CreateOpts{Name: fmt.Sprintf("n%d", i)}).Extract()
			results <- err
		}()
	}
	wg.Wait()
	close(results)
	made := 0
	for err := range results {
		switch {
		case err == nil:
			made++
		case gophercloud.ResponseCodeIs(err, http.StatusConflict) && neutronType(err) == "OverQuota":
		default:
			t.Fatalf("create: %v", err)
		}
	}
	all, err := networks.List(member, networks.ListOpts{ProjectID: project.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nets, _ := networks.ExtractNetworks(all)
	if made != 3 || len(nets) != 3 {
		t.Fatalf("%d creates passed, %d networks exist; want 3 and 3", made, len(nets))
	}
	d, err := quotas.GetDetail(ctx, member, project.ID).Extract()
	if err != nil || d.Network.Used != 3 || d.Network.Limit != 3 || d.Network.Reserved != 0 {
		t.Fatalf("details = %+v, %v", d.Network, err)
	}

	// Two deletes of one network free it once.
	var dwg sync.WaitGroup
	for range 2 {
		dwg.Add(1)
		go func() { defer dwg.Done(); _ = networks.Delete(ctx, member, nets[0].ID).ExtractErr() }()
	}
	dwg.Wait()
	if d, err := quotas.GetDetail(ctx, member, project.ID).Extract(); err != nil || d.Network.Used != 2 {
		t.Fatalf("after the delete = %+v, %v; want 2 used", d.Network, err)
	}

	// Security groups: the default group (made on the project's first
	// look at its groups) counts, as in Neutron.
	if _, err := groups.List(member, groups.ListOpts{}).AllPages(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := groups.Create(ctx, member, groups.CreateOpts{Name: "web"}).Extract(); err != nil {
		t.Fatal(err)
	}
	_, err = groups.Create(ctx, member, groups.CreateOpts{Name: "db"}).Extract()
	wantFault(t, "a third security group over a quota of 2", err, http.StatusConflict, "OverQuota")

	// DELETE: the defaults again.
	if err := quotas.Delete(ctx, admin, project.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if q, err := quotas.Get(ctx, member, project.ID).Extract(); err != nil || q.Network != 100 {
		t.Fatalf("after DELETE = %+v, %v", q, err)
	}
}
