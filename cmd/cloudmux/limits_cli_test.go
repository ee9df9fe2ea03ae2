package main

import (
	"strings"
	"testing"
)

// TestUnifiedLimitsEnforced: a limit set through Keystone's /v3/limits
// (openstack limit create) is the project's Neutron quota, shown by
// openstack quota show and enforced by the next create; a quota set by
// openstack quota set is a limit in openstack limit list. One truth,
// across the real serve.go wiring.
func TestUnifiedLimitsEnforced(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs the openstack CLI")
	}
	b := startDev(t)
	oscOK(t, b, nil, "project", "create", "lim")
	oscOK(t, b, nil, "user", "create", "--password", "lim-password-1", "--project", "lim", "lim-user")
	oscOK(t, b, nil, "role", "add", "--project", "lim", "--user", "lim-user", "member")
	user := map[string]string{"OS_USERNAME": "lim-user", "OS_PASSWORD": "lim-password-1", "OS_PROJECT_NAME": "lim"}

	oscFails(t, b, user, "403", "limit", "create", "--project", "lim", "--service", "neutron", "--resource-limit", "9", "network")
	oscOK(t, b, nil, "limit", "create", "--project", "lim", "--service", "neutron", "--resource-limit", "1", "network")
	if got := oscOK(t, b, nil, "quota", "show", "lim", "-f", "value", "-c", "networks"); got != "1" {
		t.Errorf("quota show networks = %q, want the limit 1", got)
	}
	oscOK(t, b, user, "network", "create", "lim-net-1")
	oscFails(t, b, user, "Quota exceeded for resources: ['network']", "network", "create", "lim-net-2")

	oscOK(t, b, nil, "quota", "set", "--routers", "4", "--instances", "3", "lim")
	got := oscOK(t, b, user, "limit", "list", "-f", "value", "-c", "Service ID", "-c", "Resource Name", "-c", "Resource Limit")
	for _, want := range []string{"neutron network 1", "neutron router 4", "nova servers 3"} {
		if !strings.Contains(got, want) {
			t.Errorf("limit list as the project's member lacks %q:\n%s", want, got)
		}
	}
	oscOK(t, b, user, "network", "delete", "lim-net-1")
}
