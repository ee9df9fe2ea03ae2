package network_test

import (
	"os"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/oscli"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// externalOn makes an external network "public" (198.51.100.0/24, a test
// range with no uplink) on the peer named peer, as its admin would, and
// has the broker learn it; it returns the network's peer ID.
func (te *testEnv) externalOn(t *testing.T, peer string) string {
	t.Helper()
	for _, m := range te.Pool.Members() {
		if m.Peer.Name != peer {
			continue
		}
		c := m.Cloud.(*localcloud.Cloud)
		n, err := c.CreateNetwork(te.Ctx, peers.NetworkSpec{Name: "public", Project: "cloud-admin", External: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateSubnet(te.Ctx, peers.SubnetSpec{NetworkID: n.ID, Project: "cloud-admin", CIDR: "198.51.100.0/24", IPVersion: 4}); err != nil {
			t.Fatal(err)
		}
		te.svc.Discover(te.Ctx)
		return n.ID
	}
	t.Fatalf("no peer %s", peer)
	return ""
}

// externalNet is externalOn giving the broker's ID of the network (a
// peer's own, under NativeID).
func (te *testEnv) externalNet(t *testing.T, peer string) string {
	t.Helper()
	peerNetID := te.externalOn(t, peer)
	for _, m := range te.Pool.Members() {
		if m.Peer.Name == peer {
			return network.NativeID(m.Peer.ID, network.KindNetwork, peerNetID)
		}
	}
	return ""
}

// routersCLIEnv is the openstack CLI's environment for routers: east
// with an external network "public", and bob, a member of team-b (the
// env of his commands); it skips in -short.
func routersCLIEnv(t *testing.T) (*testEnv, func(env map[string]string, args ...string) (string, int), map[string]string) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	e := newEnv(t)
	e.externalOn(t, "east")
	bobPassword := e.Member(t, "bob", "team-b", identity.RoleMember)
	return e, osRunner(t, e), map[string]string{"OS_USERNAME": "bob", "OS_PASSWORD": bobPassword, "OS_PROJECT_NAME": "team-b"}
}

// TestRoutersCLI drives the real openstack CLI through a first server's
// walkthrough of routers and floating IPs: a router with a gateway on
// the external network, a subnet added, a floating IP put on a port,
// moved off, released; the refusals (a gateway on another peer's network,
// an interface a floating IP needs) in Neutron's words; another project
// seeing none of it.
func TestRoutersCLI(t *testing.T) {
	_, run, bob := routersCLIEnv(t)
	const fip = "198.51.100.50"
	steps := []cliStep{
		{"extensions", nil, []string{"extension", "list", "--network", "-f", "value", "-c", "Alias"}, 0, []string{"router", "ext-gw-mode", "extraroute"}},
		{"network", nil, []string{"network", "create", "--availability-zone-hint", "east", "net-r", "-f", "value", "-c", "status"}, 0, []string{"ACTIVE"}},
		{"subnet", nil, []string{"subnet", "create", "--network", "net-r", "--subnet-range", "10.30.0.0/24", "sub-r", "-f", "value", "-c", "gateway_ip"}, 0, []string{"10.30.0.1"}},
		{"router create", nil, []string{"router", "create", "--availability-zone-hint", "east", "r1", "-f", "value", "-c", "status"}, 0, []string{"ACTIVE"}},
		{"router on west", nil, []string{"router", "create", "--availability-zone-hint", "west", "r-west", "-f", "value", "-c", "availability_zones"}, 0, []string{"west"}},
		{"gateway on another peer", nil, []string{"router", "set", "--external-gateway", "public", "r-west"}, 1, []string{"each peer routes only its own networks"}},
		{"gateway", nil, []string{"router", "set", "--external-gateway", "public", "r1"}, 0, nil},
		{"add subnet", nil, []string{"router", "add", "subnet", "r1", "sub-r"}, 0, nil},
		{"router show", nil, []string{"router", "show", "r1", "-f", "json", "-c", "external_gateway_info"}, 0, []string{`"enable_snat": true`, "198.51.100."}},
		{"route", nil, []string{"router", "set", "--route", "destination=192.0.2.0/24,gateway=10.30.0.9", "r1"}, 0, nil},
		{"route shown", nil, []string{"router", "show", "r1", "-f", "json", "-c", "routes"}, 0, []string{"192.0.2.0/24", "10.30.0.9"}},
		{"route unset", nil, []string{"router", "unset", "--route", "destination=192.0.2.0/24,gateway=10.30.0.9", "r1"}, 0, nil},
		{"port", nil, []string{"port", "create", "--network", "net-r", "p1", "-f", "value", "-c", "name"}, 0, []string{"p1"}},
		{"floating ip create", nil, []string{"floating", "ip", "create", "--floating-ip-address", fip, "public", "-f", "value", "-c", "floating_ip_address"}, 0, []string{fip}},
		{"floating ip set", nil, []string{"floating", "ip", "set", "--port", "p1", fip}, 0, nil},
		{"floating ip show", nil, []string{"floating", "ip", "show", fip, "-f", "value", "-c", "fixed_ip_address", "-c", "status"}, 0, []string{"10.30.0.", "ACTIVE"}},
		{"floating ip list", nil, []string{"floating", "ip", "list", "-f", "value", "-c", "Floating IP Address", "-c", "Fixed IP Address"}, 0, []string{fip + " 10.30.0."}},
		{"interface a floating IP needs", nil, []string{"router", "remove", "subnet", "r1", "sub-r"}, 1, []string{"floating IP"}},
		{"quota", nil, []string{"quota", "list", "--network", "--detail", "-f", "value"}, 0, []string{"routers 2 0 10", "floating_ips 1 0 50"}},
		{"bob sees no router", bob, []string{"router", "list", "-f", "value", "-c", "Name"}, 0, nil},
		{"bob cannot take admin's floating IP", bob, []string{"floating", "ip", "delete", fip}, 1, nil},
		{"floating ip unset", nil, []string{"floating", "ip", "unset", "--port", fip}, 0, nil},
		{"floating ip delete", nil, []string{"floating", "ip", "delete", fip}, 0, nil},
		{"remove subnet", nil, []string{"router", "remove", "subnet", "r1", "sub-r"}, 0, nil},
		{"unset gateway", nil, []string{"router", "unset", "--external-gateway", "r1"}, 0, nil},
		{"router delete", nil, []string{"router", "delete", "r1", "r-west"}, 0, nil},
	}
	runCLISteps(t, run, steps)
	if out, _ := run(bob, "router", "list", "-f", "value"); strings.TrimSpace(out) != "" {
		t.Fatalf("bob sees routers:\n%s", out)
	}
	if out, _ := run(nil, "router", "list", "-f", "value"); strings.TrimSpace(out) != "" {
		t.Fatalf("routers left after the deletes:\n%s", out)
	}
}

// osRunner runs the openstack CLI (bin) against e as admin, env
// overriding the OS_ variables, in a clean environment; it returns the
// output and the exit code.
func osRunner(t *testing.T, e *testEnv) func(env map[string]string, args ...string) (string, int) {
	bin := oscli.Path(t)
	home := t.TempDir()
	return func(env map[string]string, args ...string) (string, int) {
		vars := map[string]string{
			"OS_AUTH_URL": e.Server.URL + "/v3", "OS_IDENTITY_API_VERSION": "3", "OS_USERNAME": "admin",
			"OS_PASSWORD": brokertest.AdminPassword, "OS_PROJECT_NAME": "admin", "OS_USER_DOMAIN_NAME": "Default",
			"OS_PROJECT_DOMAIN_NAME": "Default", "OS_REGION_NAME": identity.Region, "OS_INTERFACE": "public",
		}
		for k, v := range env {
			vars[k] = v
		}
		environ := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home}
		for k, v := range vars {
			environ = append(environ, k+"="+v)
		}
		return oscli.Run(t, bin, environ, args...)
	}
}

// cliStep is one openstack CLI command (as env's user, admin when nil),
// the exit code it must end with and what its output must hold.
type cliStep struct {
	name     string
	env      map[string]string
	args     []string
	wantCode int
	want     []string
}

// runCLISteps runs steps in order through run, each as a subtest.
func runCLISteps(t *testing.T, run func(env map[string]string, args ...string) (string, int), steps []cliStep) {
	t.Helper()
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out, code := run(st.env, st.args...)
			if code != st.wantCode {
				t.Fatalf("openstack %v: exit %d, want %d\n%s", st.args, code, st.wantCode, out)
			}
			for _, w := range st.want {
				if !strings.Contains(out, w) {
					t.Errorf("openstack %v: output lacks %q:\n%s", st.args, w, out)
				}
			}
		})
	}
}
