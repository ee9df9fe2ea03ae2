package network_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/floatingips"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/layer3/routers"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestAdminOnlyFieldsGophercloud holds members to Neutron's default
// policy through gophercloud: choosing a router's gateway addresses
// (external_fixed_ips), setting its SNAT (enable_snat, even to true) and
// choosing a floating IP's address are admin_only, on create and update;
// the admin role on a project of one's own is no cloud admin's. A cloud
// admin may, and gets what was asked. The service itself refuses a caller
// without a cloud admin's token (an internal one), whatever front end.
func TestAdminOnlyFieldsGophercloud(t *testing.T) {
	e := newEnv(t)
	ctx := e.Ctx
	ext := e.externalNet(t, "east")
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	bob := client(t, e, "bob", e.Member(t, "bob", "team-b", identity.RoleMember), "team-b")
	carol := client(t, e, "carol", e.Member(t, "carol", "team-c", identity.RoleAdmin), "team-c")

	bobRouter, err := routers.Create(ctx, bob, routers.CreateOpts{Name: "bob-r", GatewayInfo: &routers.GatewayInfo{NetworkID: ext}}).Extract()
	if err != nil {
		t.Fatalf("a member's router with a gateway of the peer's choice: %v", err)
	}
	if g := bobRouter.GatewayInfo; g.EnableSNAT == nil || !*g.EnableSNAT || len(g.ExternalFixedIPs) != 1 {
		t.Fatalf("member's router gateway = %+v, want SNAT and one address", g)
	}

	noSNAT := &routers.GatewayInfo{NetworkID: ext, EnableSNAT: ptr(false)}
	withSNAT := &routers.GatewayInfo{NetworkID: ext, EnableSNAT: ptr(true)}
	fixed := &routers.GatewayInfo{NetworkID: ext, ExternalFixedIPs: []routers.ExternalFixedIP{{IPAddress: "198.51.100.77"}}}
	refused := []struct {
		name string
		call func() error
		rule string
	}{
		{"create with SNAT off", func() error {
			_, err := routers.Create(ctx, bob, routers.CreateOpts{Name: "x", GatewayInfo: noSNAT}).Extract()
			return err
		}, "create_router:external_gateway_info:enable_snat"},
		{"create with SNAT on, said", func() error {
			_, err := routers.Create(ctx, bob, routers.CreateOpts{Name: "x", GatewayInfo: withSNAT}).Extract()
			return err
		}, "create_router:external_gateway_info:enable_snat"},
		{"create with a gateway address", func() error {
			_, err := routers.Create(ctx, bob, routers.CreateOpts{Name: "x", GatewayInfo: fixed}).Extract()
			return err
		}, "create_router:external_gateway_info:external_fixed_ips"},
		{"update SNAT off", func() error {
			_, err := routers.Update(ctx, bob, bobRouter.ID, routers.UpdateOpts{GatewayInfo: noSNAT}).Extract()
			return err
		}, "update_router:external_gateway_info:enable_snat"},
		{"update the gateway address", func() error {
			_, err := routers.Update(ctx, bob, bobRouter.ID, routers.UpdateOpts{GatewayInfo: fixed}).Extract()
			return err
		}, "update_router:external_gateway_info:external_fixed_ips"},
		{"floating IP with an address", func() error {
			_, err := floatingips.Create(ctx, bob, floatingips.CreateOpts{FloatingNetworkID: ext, FloatingIP: "198.51.100.78"}).Extract()
			return err
		}, "create_floatingip:floating_ip_address"},
		{"a project's admin is no cloud admin", func() error {
			_, err := floatingips.Create(ctx, carol, floatingips.CreateOpts{FloatingNetworkID: ext, FloatingIP: "198.51.100.78"}).Extract()
			return err
		}, "create_floatingip:floating_ip_address"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			wantFault(t, tc.name, err, http.StatusForbidden, "PolicyNotAuthorized")
			var ue gophercloud.ErrUnexpectedResponseCode
			if errors.As(err, &ue) && !strings.Contains(string(ue.Body), "rule:"+tc.rule) {
				t.Errorf("%s: body %s does not name the rule %s", tc.name, ue.Body, tc.rule)
			}
		})
	}
	if got, err := routers.Get(ctx, bob, bobRouter.ID).Extract(); err != nil || !*got.GatewayInfo.EnableSNAT || got.GatewayInfo.ExternalFixedIPs[0].IPAddress != bobRouter.GatewayInfo.ExternalFixedIPs[0].IPAddress {
		t.Fatalf("the member's router after the refusals = %+v, %v; want it unchanged", got, err)
	}
	if _, err := e.svc.CreateFloatingIP(context.Background(), "team-b", network.FloatingIPCreate{NetworkID: ext, Address: "198.51.100.79"}); !errors.Is(err, network.ErrForbidden) {
		t.Fatalf("the service's floating IP with an address for a caller without a token = %v, want ErrForbidden", err)
	}

	r, err := routers.Create(ctx, admin, routers.CreateOpts{Name: "admin-r", GatewayInfo: &routers.GatewayInfo{NetworkID: ext, EnableSNAT: ptr(false),
		ExternalFixedIPs: []routers.ExternalFixedIP{{IPAddress: "198.51.100.77"}}}}).Extract()
	if err != nil {
		t.Fatalf("a cloud admin's router with SNAT off and a chosen address: %v", err)
	}
	if g := r.GatewayInfo; g.EnableSNAT == nil || *g.EnableSNAT || len(g.ExternalFixedIPs) != 1 || g.ExternalFixedIPs[0].IPAddress != "198.51.100.77" {
		t.Fatalf("admin's router gateway = %+v, want SNAT off on 198.51.100.77", g)
	}
	r, err = routers.Update(ctx, admin, r.ID, routers.UpdateOpts{GatewayInfo: &routers.GatewayInfo{NetworkID: ext, EnableSNAT: ptr(true)}}).Extract()
	if err != nil || !*r.GatewayInfo.EnableSNAT {
		t.Fatalf("a cloud admin's SNAT on = %+v, %v", r, err)
	}
	f, err := floatingips.Create(ctx, admin, floatingips.CreateOpts{FloatingNetworkID: ext, FloatingIP: "198.51.100.78"}).Extract()
	if err != nil || f.FloatingIP != "198.51.100.78" {
		t.Fatalf("a cloud admin's floating IP 198.51.100.78 = %+v, %v", f, err)
	}
	for _, del := range []error{floatingips.Delete(ctx, admin, f.ID).ExtractErr(), routers.Delete(ctx, admin, r.ID).ExtractErr(), routers.Delete(ctx, bob, bobRouter.ID).ExtractErr()} {
		if del != nil {
			t.Fatal(del)
		}
	}
}

// TestAdminOnlyFieldsCLI is TestAdminOnlyFieldsGophercloud through the
// openstack CLI: a member's --fixed-ip, --disable-snat and
// --floating-ip-address are Neutron's 403 naming the rule, a cloud
// admin's are honoured.
func TestAdminOnlyFieldsCLI(t *testing.T) {
	_, run, bob := routersCLIEnv(t)
	steps := []cliStep{
		{"member's router", bob, []string{"router", "create", "--external-gateway", "public", "r-bob", "-f", "value", "-c", "status"}, 0, []string{"ACTIVE"}},
		{"member's fixed IP on create", bob, []string{"router", "create", "--external-gateway", "public", "--fixed-ip", "ip-address=198.51.100.60", "r-x"}, 1,
			[]string{"403", "rule:create_router:external_gateway_info:external_fixed_ips"}},
		{"member's SNAT off on create", bob, []string{"router", "create", "--external-gateway", "public", "--disable-snat", "r-x"}, 1,
			[]string{"403", "rule:create_router:external_gateway_info:enable_snat"}},
		{"member's SNAT off", bob, []string{"router", "set", "--external-gateway", "public", "--disable-snat", "r-bob"}, 1,
			[]string{"403", "rule:update_router:external_gateway_info:enable_snat"}},
		{"member's fixed IP", bob, []string{"router", "set", "--external-gateway", "public", "--fixed-ip", "ip-address=198.51.100.60", "r-bob"}, 1,
			[]string{"403", "rule:update_router:external_gateway_info:external_fixed_ips"}},
		{"member's floating IP address", bob, []string{"floating", "ip", "create", "--floating-ip-address", "198.51.100.61", "public"}, 1,
			[]string{"403", "rule:create_floatingip:floating_ip_address"}},
		{"member's routers", bob, []string{"router", "list", "-f", "value", "-c", "Name"}, 0, []string{"r-bob"}},
		{"member's floating IP of the peer's choice", bob, []string{"floating", "ip", "create", "public", "-f", "value", "-c", "floating_ip_address"}, 0, []string{"198.51.100."}},
		{"admin's router", nil, []string{"router", "create", "--external-gateway", "public", "--disable-snat", "--fixed-ip", "ip-address=198.51.100.60", "r-admin"}, 0, nil},
		{"admin's router shown", nil, []string{"router", "show", "r-admin", "-f", "json", "-c", "external_gateway_info"}, 0, []string{`"enable_snat": false`, "198.51.100.60"}},
		{"admin's SNAT on", nil, []string{"router", "set", "--external-gateway", "public", "--enable-snat", "r-admin"}, 0, nil},
		{"admin's SNAT shown", nil, []string{"router", "show", "r-admin", "-f", "json", "-c", "external_gateway_info"}, 0, []string{`"enable_snat": true`}},
		{"admin's floating IP address", nil, []string{"floating", "ip", "create", "--floating-ip-address", "198.51.100.61", "public", "-f", "value", "-c", "floating_ip_address"}, 0, []string{"198.51.100.61"}},
		{"admin's floating IP delete", nil, []string{"floating", "ip", "delete", "198.51.100.61"}, 0, nil},
		{"admin's router delete", nil, []string{"router", "delete", "r-admin"}, 0, nil},
	}
	runCLISteps(t, run, steps)
}
