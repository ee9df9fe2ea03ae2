package compute_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// TestOpenStackCLIServerFloatingIP is the first-server walkthrough's
// last steps with the real openstack CLI at compute API 2.latest: a
// project network joined by a router to the peer's external network, a
// server on it, and `server add floating ip` (the CLI finds the
// server's port and associates the floating IP with it through Neutron);
// the server's addresses show it as floating, another project cannot
// take it, and `server remove floating ip` gives it back.
func TestOpenStackCLIServerFloatingIP(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	se := newServersEnv(t)
	img := se.Seeded["local-a"].ImageID
	// The peer's admin makes its external network (a test range, no
	// uplink); the broker finds it at discovery.
	for _, m := range se.Pool.Members() {
		if m.Peer.Name != "local-a" {
			continue
		}
		c := m.Cloud.(*localcloud.Cloud)
		n, err := c.CreateNetwork(se.Ctx, peers.NetworkSpec{Name: "public", Project: "cloud-admin", External: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateSubnet(se.Ctx, peers.SubnetSpec{NetworkID: n.ID, Project: "cloud-admin", CIDR: "198.51.100.0/24", IPVersion: 4}); err != nil {
			t.Fatal(err)
		}
	}
	// Discovery finds it (the broker's discovery loop, run here as serve
	// runs it); the steps wait for it to show.
	go func() { _ = se.Networks.Run(se.Ctx) }()
	epw := se.Member(t, "erin", "epsilon", identity.RoleMember)
	admin := func(args ...string) (string, int) {
		return se.osc(t, "admin", brokertest.AdminPassword, "admin", append([]string{"--os-compute-api-version", "2.latest"}, args...)...)
	}
	erin := func(args ...string) (string, int) {
		return se.osc(t, "erin", epw, "epsilon", append([]string{"--os-compute-api-version", "2.latest"}, args...)...)
	}
	const fip = "198.51.100.77"
	steps := []cliStep{
		{"the external network shows", func() (string, int) {
			for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(time.Second) {
				out, code := admin("network", "show", "public", "-f", "json")
				if code == 0 || time.Now().After(deadline) {
					return out, code
				}
			}
		}, 0, []string{`"router:external": true`}, nil},
		{"network", func() (string, int) {
			return admin("network", "create", "--availability-zone-hint", "local-a", "fip-net")
		}, 0, nil, nil},
		{"subnet", func() (string, int) {
			return admin("subnet", "create", "--network", "fip-net", "--subnet-range", "10.44.0.0/24", "fip-sub")
		}, 0, nil, nil},
		{"router", func() (string, int) {
			return admin("router", "create", "--availability-zone-hint", "local-a", "fip-router")
		}, 0, nil, nil},
		{"gateway", func() (string, int) { return admin("router", "set", "--external-gateway", "public", "fip-router") }, 0, nil, nil},
		{"interface", func() (string, int) { return admin("router", "add", "subnet", "fip-router", "fip-sub") }, 0, nil, nil},
		{"server", func() (string, int) {
			return admin("server", "create", "--flavor", "m1.tiny", "--image", img, "--network", "fip-net", "--wait", "fip-vm", "-f", "value", "-c", "status")
		}, 0, []string{"ACTIVE"}, nil},
		{"floating ip", func() (string, int) {
			return admin("floating", "ip", "create", "--floating-ip-address", fip, "public", "-f", "value", "-c", "floating_ip_address")
		}, 0, []string{fip}, nil},
		{"another project cannot take it", func() (string, int) { return erin("server", "add", "floating", "ip", "fip-vm", fip) }, 1, nil, nil},
		{"server add floating ip", func() (string, int) { return admin("server", "add", "floating", "ip", "fip-vm", fip) }, 0, nil, nil},
		{"shown as floating", func() (string, int) {
			return admin("server", "show", "fip-vm", "-f", "json", "-c", "addresses")
		}, 0, []string{fip, "10.44.0."}, nil},
		{"the floating ip names the server's port", func() (string, int) {
			return admin("floating", "ip", "show", fip, "-f", "value", "-c", "fixed_ip_address")
		}, 0, []string{"10.44.0."}, nil},
		{"server remove floating ip", func() (string, int) { return admin("server", "remove", "floating", "ip", "fip-vm", fip) }, 0, nil, nil},
		{"gone from the server", func() (string, int) {
			out, code := admin("server", "show", "fip-vm", "-f", "json", "-c", "addresses")
			if code == 0 && strings.Contains(out, fip) {
				t.Fatalf("the server still shows %s: %s", fip, out)
			}
			return out, code
		}, 0, nil, nil},
		{"cleanup", func() (string, int) { return admin("server", "delete", "--wait", "fip-vm") }, 0, nil, nil},
		{"floating ip delete", func() (string, int) { return admin("floating", "ip", "delete", fip) }, 0, nil, nil},
	}
	runCLI(t, steps)
}
