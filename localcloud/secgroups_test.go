package localcloud_test

import (
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// TestSecurityGroupFilters checks what the groups compile to on the host:
// a server's NIC filter accepts what its groups' rules allow, a remote
// group becomes its members' addresses, a rule change and a new member
// reach the filter of a running server, and the filter goes with the
// server.
func TestSecurityGroupFilters(t *testing.T) {
	cfg := oneHost(t)
	c, drv := newCloud(t, cfg)
	ctx := t.Context()
	seeded, err := c.Seed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	n := func(v int) *int { return &v }
	web := peers.SecurityGroup{ID: "g-web", Project: "p", Name: "web", Rules: []peers.SecurityRule{
		{Direction: "egress", EtherType: "IPv4"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: n(8080), PortRangeMax: n(8080), RemoteGroupID: "g-client"},
	}}
	client := peers.SecurityGroup{ID: "g-client", Project: "p", Name: "client", Rules: []peers.SecurityRule{{Direction: "egress", EtherType: "IPv4"}}}
	for _, g := range []peers.SecurityGroup{web, client} {
		if err := c.PutSecurityGroup(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := c.CreateServer(ctx, peers.ServerSpec{Name: "web", Project: "p", FlavorID: "1", ImageID: seeded.ImageID,
		Networks: []peers.NetworkAttachment{{NetworkID: seeded.NetworkID}}, SecurityGroups: []string{web.ID}})
	if err != nil {
		t.Fatal(err)
	}
	srv = waitServer(t, c, srv.ID, peers.ServerActive)
	ports, err := c.ListPorts(ctx, peers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ports = slices.DeleteFunc(ports, func(p peers.Port) bool { return p.DeviceID != srv.ID })
	if len(ports) != 1 {
		t.Fatalf("server ports %+v, want one", ports)
	}
	portID := ports[0].ID
	dom, _, _ := drv.Domain("host-a", srv.ID)
	if len(dom.NICs) != 1 || !dom.NICs[0].Filtered {
		t.Fatalf("domain NICs %+v, want one, filtered", dom.NICs)
	}
	egress := localcloud.FilterRule{ICMPType: -1, ICMPCode: -1}
	web8080 := func(from string) localcloud.FilterRule {
		return localcloud.FilterRule{In: true, Protocol: "tcp", PortMin: 8080, PortMax: 8080, ICMPType: -1, ICMPCode: -1, Remote: netip.MustParsePrefix(from)}
	}
	wantFilter := func(what string, want ...localcloud.FilterRule) {
		t.Helper()
		f, ok := drv.PortFilter("host-a", portID)
		if !ok {
			t.Fatalf("%s: no filter for port %s", what, portID)
		}
		if !sameRules(f.Accept, want) {
			t.Fatalf("%s: filter accepts %+v\nwant %+v", what, f.Accept, want)
		}
	}
	wantFilter("no client yet", egress)

	cp, err := c.CreatePort(ctx, peers.PortSpec{Project: "p", NetworkID: seeded.NetworkID, SecurityGroups: []string{client.ID}})
	if err != nil {
		t.Fatal(err)
	}
	clientIP := cp.FixedIPs[0].IPAddress
	wantFilter("a client port", egress, web8080(clientIP+"/32"))

	web.Rules = append(web.Rules, peers.SecurityRule{Direction: "ingress", EtherType: "IPv4", Protocol: "icmp", PortRangeMin: n(8), RemoteIPPrefix: "192.0.2.0/24"})
	if err := c.PutSecurityGroup(ctx, web); err != nil {
		t.Fatal(err)
	}
	ping := localcloud.FilterRule{In: true, Protocol: "icmp", ICMPType: 8, ICMPCode: -1, Remote: netip.MustParsePrefix("192.0.2.0/24")}
	wantFilter("a rule added", egress, web8080(clientIP+"/32"), ping)

	if err := c.SetPortSecurityGroups(ctx, cp.ID, []string{}); err != nil {
		t.Fatal(err)
	}
	wantFilter("the client left its group", egress, ping)

	bad := web
	bad.Rules = append(slices.Clone(web.Rules), peers.SecurityRule{Direction: "ingress", EtherType: "IPv4", Protocol: "gre"})
	if err := c.PutSecurityGroup(ctx, bad); err == nil {
		t.Fatal("a GRE rule the host cannot filter was taken")
	}
	wantFilter("a refused rule", egress, ping)

	if err := c.DeleteServer(ctx, srv.ID); err != nil {
		t.Fatal(err)
	}
	waitServerGone(t, c, srv.ID)
	waitFor(t, "the filter gone with the server", func() (bool, string) {
		f, ok := drv.PortFilter("host-a", portID)
		return !ok, fmt.Sprintf("%+v", f)
	})
	if err := c.DeletePort(ctx, cp.ID); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{web.ID, client.ID} {
		if err := c.DeleteSecurityGroup(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
}

func sameRules(a, b []localcloud.FilterRule) bool {
	key := func(r localcloud.FilterRule) string { return fmt.Sprintf("%+v", r) }
	x, y := make([]string, 0, len(a)), make([]string, 0, len(b))
	for _, r := range a {
		x = append(x, key(r))
	}
	for _, r := range b {
		y = append(y, key(r))
	}
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}
