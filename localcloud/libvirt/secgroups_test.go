package libvirt_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// TestSecurityGroupsEnforced is issue 14's packet check: two real TCG
// guests on one network the test creates; the server guest listens on
// TCP 8080 in a group admitting nothing but its own members, the client
// guest (another group) probes it every second and prints what it got on
// its console. Its probes fail, succeed once a rule admits the client's
// group on 8080 (the running guest's port filter is
// changed in the switch), and fail again once the rule is gone (the
// tracked connection is cut). The filtering is the user-space switch's:
// the host's firewall, links and forwarding are the same after the test
// as before.
func TestSecurityGroupsEnforced(t *testing.T) {
	ctx, c, img := guestTest(t, "boots two real guests", 8*time.Minute)
	netw, err := c.CreateNetwork(ctx, peers.NetworkSpec{Name: "sgnet", Project: "p"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.DeleteNetwork(context.Background(), netw.ID); err != nil {
			t.Errorf("cleanup: DeleteNetwork: %v", err)
		}
	})
	if _, err := c.CreateSubnet(ctx, peers.SubnetSpec{NetworkID: netw.ID, Project: "p", CIDR: "10.93.0.0/24", IPVersion: 4}); err != nil {
		t.Fatal(err)
	}
	port := func(n int) *int { return &n }
	srvGroup := peers.SecurityGroup{ID: "sg-server-" + randHex(4), Project: "p", Name: "server", Rules: []peers.SecurityRule{
		{Direction: "egress", EtherType: "IPv4"},
	}}
	cliGroup := peers.SecurityGroup{ID: "sg-client-" + randHex(4), Project: "p", Name: "client", Rules: []peers.SecurityRule{
		{Direction: "egress", EtherType: "IPv4"},
	}}
	srvGroup.Rules = append(srvGroup.Rules, peers.SecurityRule{Direction: "ingress", EtherType: "IPv4", RemoteGroupID: srvGroup.ID})
	for _, g := range []peers.SecurityGroup{srvGroup, cliGroup} {
		if err := c.PutSecurityGroup(ctx, g); err != nil {
			t.Fatalf("PutSecurityGroup(%s): %v", g.Name, err)
		}
		t.Cleanup(func() {
			if err := c.DeleteSecurityGroup(context.Background(), g.ID); err != nil {
				t.Errorf("cleanup: DeleteSecurityGroup(%s): %v", g.Name, err)
			}
		})
	}

	boot := func(name, group, script string) peers.Server {
		t.Helper()
		return bootGuest(t, ctx, c, peers.ServerSpec{
			Name: name, Project: "p", FlavorID: "1", ImageID: img.ID,
			Networks: []peers.NetworkAttachment{{NetworkID: netw.ID}}, SecurityGroups: []string{group},
			UserData: []byte("#!/bin/sh\n" + script),
		})
	}
	// The listener answers "pong" to each connection (busybox nc).
	server := boot("sg-server", srvGroup.ID, "(while true; do echo pong | nc -l -p 8080; done) >/dev/null 2>&1 &\necho sg-listening\n")
	serverIP := server.Addresses[0].Addr
	client := boot("sg-client", cliGroup.ID, fmt.Sprintf(`(n=0; while true; do n=$((n+1)); `+
		`if echo ping | nc -w 2 %s 8080 2>/dev/null | grep -q pong; then echo "sg-probe $n ok"; else echo "sg-probe $n fail"; fi; `+
		`sleep 1; done) &
`, serverIP))
	console := func(id string) []string { return consoleLines(t, ctx, c, id) }
	waitFor(t, ctx, "the server guest listening", func() (string, bool, error) {
		lines := console(server.ID)
		return lastLines(strings.Join(lines, "\n"), 5), contains(lines, "sg-listening"), nil
	})
	// probes returns the results of the client's probes numbered after
	// the last one seen before (a change made at that point applies to
	// every later probe but the one in flight).
	lastProbe := 0
	probesAfter := func(after int) (oks, fails int, last int) {
		last = after
		for _, l := range console(client.ID) {
			var n int
			var res string
			if _, err := fmt.Sscanf(strings.TrimSpace(l), "sg-probe %d %s", &n, &res); err != nil || n <= after+1 {
				continue
			}
			if res == "ok" {
				oks++
			} else {
				fails++
			}
			last = max(last, n)
		}
		return oks, fails, last
	}
	expect := func(what string, wantOK bool) {
		t.Helper()
		from := lastProbe
		waitFor(t, ctx, what, func() (string, bool, error) {
			oks, fails, last := probesAfter(from)
			lastProbe = last
			seen := fmt.Sprintf("%d ok, %d failed after probe %d", oks, fails, from)
			if wantOK {
				return seen, oks >= 2, nil
			}
			if oks > 0 && fails >= 3 {
				// Allowed before: only failures after the last success count.
				from = last
			}
			return seen, fails >= 3 && oks == 0, nil
		})
		t.Logf("%s: probes up to %d", what, lastProbe)
	}
	expect("the client blocked: its group is not admitted", false)

	admit := srvGroup
	admit.Rules = append(append([]peers.SecurityRule{}, srvGroup.Rules...),
		peers.SecurityRule{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: port(8080), PortRangeMax: port(8080), RemoteGroupID: cliGroup.ID})
	if err := c.PutSecurityGroup(ctx, admit); err != nil {
		t.Fatalf("PutSecurityGroup(admit the client): %v", err)
	}
	expect("the client admitted by the added rule", true)

	if err := c.PutSecurityGroup(ctx, srvGroup); err != nil {
		t.Fatalf("PutSecurityGroup(rule removed): %v", err)
	}
	expect("the client blocked again once the rule is gone", false)
}

func contains(lines []string, s string) bool {
	for _, l := range lines {
		if strings.TrimSpace(l) == s {
			return true
		}
	}
	return false
}
