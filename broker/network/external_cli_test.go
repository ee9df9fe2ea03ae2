package network_test

import (
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
)

// TestExternalNetworkCLI: a cloud admin makes an external network through
// the broker's Neutron (`network create --external`) on a chosen peer;
// every project sees it and takes floating IPs and router gateways from
// it, but may not put ports on it or make external networks itself.
func TestExternalNetworkCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	e := newEnv(t)
	bobPassword := e.Member(t, "bob", "team-b", identity.RoleMember)
	run := osRunner(t, e)
	bob := map[string]string{"OS_USERNAME": "bob", "OS_PASSWORD": bobPassword, "OS_PROJECT_NAME": "team-b"}
	steps := []cliStep{
		{"a member may not", bob, []string{"network", "create", "--external", "mine"}, 1, []string{"403"}},
		{"admin creates", nil, []string{"network", "create", "--external", "--availability-zone-hint", "east", "ext-east", "-f", "json"}, 0,
			[]string{`"router:external": true`, `"shared": false`}},
		{"its subnet", nil, []string{"subnet", "create", "--network", "ext-east", "--subnet-range", "203.0.113.0/24", "--no-dhcp", "ext-east-sub"}, 0, nil},
		{"bob lists it as external", bob, []string{"network", "list", "--external", "-f", "value", "-c", "Name"}, 0, []string{"ext-east"}},
		{"bob may not put a port on it", bob, []string{"port", "create", "--network", "ext-east", "bobs-port"}, 1, nil},
		{"bob's router takes a gateway on it", bob, []string{"router", "create", "--availability-zone-hint", "east", "bobs-router"}, 0, nil},
		{"gateway", bob, []string{"router", "set", "--external-gateway", "ext-east", "bobs-router"}, 0, nil},
		{"gateway shown", bob, []string{"router", "show", "bobs-router", "-f", "json", "-c", "external_gateway_info"}, 0, []string{"203.0.113."}},
		{"bob's floating IP from it", bob, []string{"floating", "ip", "create", "ext-east", "-f", "value", "-c", "floating_ip_address"}, 0, []string{"203.0.113."}},
		{"bob may not delete it", bob, []string{"network", "delete", "ext-east"}, 1, nil},
	}
	runCLISteps(t, run, steps)
}
