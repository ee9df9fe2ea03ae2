package network_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/rules"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/ports"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

func TestSecurityGroups(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")

	listGroups := func() []groups.SecGroup {
		t.Helper()
		pages, err := groups.List(admin, groups.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gs, err := groups.ExtractGroups(pages)
		if err != nil {
			t.Fatal(err)
		}
		return gs
	}
	gs := listGroups()
	if len(gs) != 1 || gs[0].Name != "default" || len(gs[0].Rules) != 4 {
		t.Fatalf("first list = %+v; want the default group with Neutron's 4 rules", gs)
	}
	def := gs[0]
	if def.ID != network.DefaultSecurityGroupID(def.ProjectID) {
		t.Fatalf("default group ID %s is not the project's derived one", def.ID)
	}
	ingressFromSelf := 0
	for _, r := range def.Rules {
		if r.Direction == "ingress" && r.RemoteGroupID == def.ID {
			ingressFromSelf++
		}
	}
	if ingressFromSelf != 2 {
		t.Fatalf("default rules = %+v; want ingress from the group itself for IPv4 and IPv6", def.Rules)
	}
	if again := listGroups(); len(again) != 1 || again[0].ID != def.ID {
		t.Fatalf("second list = %+v; the default group must be made once", again)
	}

	stateless := false
	if _, err := groups.Create(ctx, admin, groups.CreateOpts{Name: "loose", Stateful: &stateless}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) ||
		!strings.Contains(err.Error(), "stateless security groups are not supported") {
		t.Fatalf("a stateless group: %v; want 400 (it would not be enforced as such)", err)
	}
	web, err := groups.Create(ctx, admin, groups.CreateOpts{Name: "web", Description: "http in"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if len(web.Rules) != 2 || web.Rules[0].Direction != "egress" {
		t.Fatalf("new group = %+v; want the two default egress rules", web)
	}
	ssh, err := rules.Create(ctx, admin, rules.CreateOpts{SecGroupID: web.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4,
		Protocol: rules.ProtocolTCP, PortRangeMin: 22, PortRangeMax: 22, RemoteIPPrefix: "0.0.0.0/0"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if ssh.SecGroupID != web.ID || ssh.Protocol != "tcp" || ssh.PortRangeMin != 22 || ssh.RemoteIPPrefix != "0.0.0.0/0" {
		t.Fatalf("rule = %+v", ssh)
	}
	if got, err := rules.Get(ctx, admin, ssh.ID).Extract(); err != nil || got.ID != ssh.ID {
		t.Fatalf("rule get = %+v, %v", got, err)
	}

	refusals := []struct {
		name string
		opts rules.CreateOpts
		code int
		typ  string
	}{
		{"duplicate", rules.CreateOpts{SecGroupID: web.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4, Protocol: rules.ProtocolTCP, PortRangeMin: 22, PortRangeMax: 22, RemoteIPPrefix: "0.0.0.0/0"}, http.StatusConflict, "SecurityGroupRuleExists"},
		{"bad protocol", rules.CreateOpts{SecGroupID: web.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4, Protocol: "carrier-pigeon"}, http.StatusBadRequest, "SecurityGroupRuleInvalidProtocol"},
		{"bad port range", rules.CreateOpts{SecGroupID: web.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4, Protocol: rules.ProtocolTCP, PortRangeMin: 90, PortRangeMax: 80}, http.StatusBadRequest, "SecurityGroupInvalidPortRange"},
		{"prefix of the other family", rules.CreateOpts{SecGroupID: web.ID, Direction: rules.DirIngress, EtherType: rules.EtherType4, RemoteIPPrefix: "::/0"}, http.StatusBadRequest, "SecurityGroupRuleParameterConflict"},
		{"unknown group", rules.CreateOpts{SecGroupID: "f00dfeed-0000-4000-8000-000000000000", Direction: rules.DirIngress, EtherType: rules.EtherType4}, http.StatusNotFound, "SecurityGroupNotFound"},
		{"bad direction", rules.CreateOpts{SecGroupID: web.ID, Direction: "sideways", EtherType: rules.EtherType4}, http.StatusBadRequest, "HTTPBadRequest"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			wantFault(t, "rule create", rules.Create(ctx, admin, tc.opts).Err, tc.code, tc.typ)
		})
	}

	t.Run("another project sees none of it", func(t *testing.T) {
		pw := e.Member(t, "eve", "other", identity.RoleMember)
		eve := client(t, e, "eve", pw, "other")
		pages, err := groups.List(eve, groups.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		gs, _ := groups.ExtractGroups(pages)
		if len(gs) != 1 || gs[0].Name != "default" || gs[0].ID == def.ID {
			t.Fatalf("eve's groups = %+v; want only her own default", gs)
		}
		wantFault(t, "eve reads web", groups.Get(ctx, eve, web.ID).Err, http.StatusNotFound, "SecurityGroupNotFound")
		wantFault(t, "eve deletes a rule of web", rules.Delete(ctx, eve, ssh.ID).ExtractErr(), http.StatusNotFound, "SecurityGroupRuleNotFound")
	})

	wantFault(t, "delete the default group", groups.Delete(ctx, admin, def.ID).ExtractErr(), http.StatusConflict, "SecurityGroupCannotRemoveDefault")
	name := "www"
	if got, err := groups.Update(ctx, admin, web.ID, groups.UpdateOpts{Name: name}).Extract(); err != nil || got.Name != "www" {
		t.Fatalf("rename = %+v, %v", got, err)
	}
	if err := rules.Delete(ctx, admin, ssh.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	wantFault(t, "get a deleted rule", rules.Get(ctx, admin, ssh.ID).Err, http.StatusNotFound, "SecurityGroupRuleNotFound")
	if err := groups.Delete(ctx, admin, web.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if gs := listGroups(); len(gs) != 1 {
		t.Fatalf("after delete: %+v", gs)
	}
}

// A group a port uses cannot be deleted (Neutron's 409 SecurityGroupInUse):
// the port would name a group that no longer exists.
func TestSecurityGroupInUse(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	eve := client(t, e, "eve", e.Member(t, "eve", "other", identity.RoleMember), "other")
	web, err := groups.Create(ctx, admin, groups.CreateOpts{Name: "web"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	net, err := networks.Create(ctx, admin, networks.CreateOpts{Name: "n"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ports.Create(ctx, admin, ports.CreateOpts{NetworkID: net.ID, SecurityGroups: &[]string{web.ID}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	wantFault(t, "delete a group a port uses", groups.Delete(ctx, admin, web.ID).ExtractErr(), http.StatusConflict, "SecurityGroupInUse")
	if _, err := groups.Get(ctx, admin, web.ID).Extract(); err != nil {
		t.Fatalf("the refused delete removed the group: %v", err)
	}
	wantFault(t, "another project's port naming the group", ports.Create(ctx, eve, ports.CreateOpts{NetworkID: e.seeded.NetworkID, SecurityGroups: &[]string{web.ID}}).Err,
		http.StatusNotFound, "SecurityGroupNotFound")
	if _, err := ports.Update(ctx, admin, p.ID, ports.UpdateOpts{SecurityGroups: &[]string{}}).Extract(); err != nil {
		t.Fatal(err)
	}
	if err := groups.Delete(ctx, admin, web.ID).ExtractErr(); err != nil {
		t.Fatalf("delete once no port uses it: %v", err)
	}
}
