package network_test

import (
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
)

// TestOpenStackCLI drives the real openstack CLI through the network flows
// a user runs: networks, subnets, ports, security groups, and a second
// project that sees only the shared network.
func TestOpenStackCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	e := newEnv(t)
	bobPassword := e.Member(t, "bob", "team-b", identity.RoleMember)
	run := osRunner(t, e)
	bob := map[string]string{"OS_USERNAME": "bob", "OS_PASSWORD": bobPassword, "OS_PROJECT_NAME": "team-b"}
	steps := []cliStep{
		{"network create", nil, []string{"network", "create", "net-cli", "-f", "value", "-c", "status"}, 0, []string{"ACTIVE"}},
		{"pinned network", nil, []string{"network", "create", "--availability-zone-hint", "west", "net-west", "-f", "value", "-c", "availability_zones"}, 0, []string{"west"}},
		{"subnet create", nil, []string{"subnet", "create", "--network", "net-cli", "--subnet-range", "10.9.0.0/24", "sub-cli", "-f", "value", "-c", "gateway_ip"}, 0, []string{"10.9.0.1"}},
		{"bad subnet range", nil, []string{"subnet", "create", "--network", "net-cli", "--subnet-range", "10.9.0.0/33", "bad"}, 1, []string{"Invalid input for cidr"}},
		{"overlapping range", nil, []string{"subnet", "create", "--network", "net-cli", "--subnet-range", "10.9.0.128/25", "overlap"}, 1, []string{"overlaps with another subnet"}},
		{"network list", nil, []string{"network", "list", "-f", "value", "-c", "Name"}, 0, []string{"net-cli", "net-west", "private"}},
		{"network show", nil, []string{"network", "show", "net-cli", "-f", "value", "-c", "name"}, 0, []string{"net-cli"}},
		{"subnet list", nil, []string{"subnet", "list", "-f", "value", "-c", "Subnet"}, 0, []string{"10.9.0.0/24", "10.0.0.0/24"}},
		{"port create", nil, []string{"port", "create", "--network", "net-cli", "port-cli", "-f", "value", "-c", "fixed_ips"}, 0, []string{"10.9.0.2"}},
		{"port list", nil, []string{"port", "list", "-f", "value", "-c", "Name"}, 0, []string{"port-cli"}},
		{"port show", nil, []string{"port", "show", "port-cli", "-f", "value", "-c", "mac_address"}, 0, []string{"fa:16:3e:"}},
		{"port set", nil, []string{"port", "set", "--name", "port-cli2", "port-cli"}, 0, nil},
		{"subnet show", nil, []string{"subnet", "show", "sub-cli", "-f", "value", "-c", "allocation_pools"}, 0, []string{"'start': '10.9.0.2'", "'end': '10.9.0.254'"}},
		{"network list --long", nil, []string{"network", "list", "--long", "-f", "value", "-c", "Name", "-c", "Availability Zones"}, 0, []string{"net-west ['west']"}},
		{"quota list", nil, []string{"quota", "list", "--network", "--detail", "-f", "value"}, 0, []string{"networks 2 0 100", "ports 1 0 500", "security_groups 1 0 10", "security_group_rules 4 0 100"}},
		{"network in use", nil, []string{"network", "delete", "net-cli"}, 1, []string{"ports still in use"}},
		{"network set", nil, []string{"network", "set", "--name", "net-renamed", "net-cli"}, 0, nil},
		{"renamed", nil, []string{"network", "show", "net-renamed", "-f", "value", "-c", "name"}, 0, []string{"net-renamed"}},
		{"security group list", nil, []string{"security", "group", "list", "-f", "value", "-c", "Name"}, 0, []string{"default"}},
		{"security group show", nil, []string{"security", "group", "show", "default", "-f", "value", "-c", "name"}, 0, []string{"default"}},
		{"security group create", nil, []string{"security", "group", "create", "web", "-f", "value", "-c", "name"}, 0, []string{"web"}},
		{"rule create", nil, []string{"security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "22", "web", "-f", "value", "-c", "port_range_max"}, 0, []string{"22"}},
		{"rule list", nil, []string{"security", "group", "rule", "list", "web", "-f", "value", "-c", "IP Protocol"}, 0, []string{"tcp"}},
		{"shared network create", nil, []string{"network", "create", "--share", "net-shared", "-f", "value", "-c", "shared"}, 0, []string{"True"}},
		{"shared network list", nil, []string{"network", "list", "--share", "-f", "value", "-c", "Name"}, 0, []string{"net-shared", "private"}},
		{"router list", nil, []string{"router", "list", "-f", "value"}, 0, nil},
		{"floating ip list", nil, []string{"floating", "ip", "list", "-f", "value"}, 0, nil},
		{"network zones are peers", nil, []string{"availability", "zone", "list", "--network", "-f", "value"}, 0, []string{"east available", "west available"}},
		{"extension list", nil, []string{"extension", "list", "--network", "-f", "value", "-c", "Alias"}, 0, []string{"security-group", "network_availability_zone"}},
		{"bob sees only the shared network", bob, []string{"network", "list", "-f", "value", "-c", "Name"}, 0, []string{"private"}},
		{"bob cannot see admin's network", bob, []string{"network", "show", "net-renamed"}, 1, []string{"No Network found"}},
		{"bob cannot delete admin's network", bob, []string{"network", "delete", "net-renamed"}, 1, nil},
		{"bob's port on the shared network", bob, []string{"port", "create", "--network", "private", "bobs-port", "-f", "value", "-c", "name"}, 0, []string{"bobs-port"}},
		{"port delete", nil, []string{"port", "delete", "port-cli2"}, 0, nil},
		{"security group delete", nil, []string{"security", "group", "delete", "web"}, 0, nil},
		{"subnet delete", nil, []string{"subnet", "delete", "sub-cli"}, 0, nil},
		{"network delete", nil, []string{"network", "delete", "net-renamed", "net-west", "net-shared"}, 0, nil},
		{"gone", nil, []string{"network", "list", "-f", "value", "-c", "Name"}, 0, []string{"private"}},
	}
	runCLISteps(t, run, steps)
	if out, _ := run(bob, "network", "list", "-f", "value", "-c", "Name"); strings.Contains(out, "net-") {
		t.Fatalf("bob sees admin's networks:\n%s", out)
	}
	if out, _ := run(nil, "network", "list", "-f", "value", "-c", "Name"); strings.Contains(out, "net-") {
		t.Fatalf("networks left after the deletes:\n%s", out)
	}
}
