package compute_test

import (
	"os"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/oscli"
)

// osc runs the CLI as an openrc for user on project would, and returns
// its combined output and exit code.
func (se *serversEnv) osc(t *testing.T, user, password, project string, args ...string) (string, int) {
	t.Helper()
	return oscli.Run(t, oscli.Path(t), []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"OS_AUTH_URL=" + se.Server.URL + "/v3", "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=" + user, "OS_PASSWORD=" + password,
		"OS_PROJECT_NAME=" + project, "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default",
		"OS_REGION_NAME=" + identity.Region, "OS_INTERFACE=public"}, args...)
}

// TestOpenStackCLIServers drives the real openstack CLI (compute API 2.1,
// Glance and Neutron for its lookups) through servers' lives.
func TestOpenStackCLIServers(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	se := newServersEnv(t)
	root := se.bootableVolume(t, se.Pool.Members()[0])
	img, net := se.Seeded["local-a"].ImageID, se.Nets["local-a"]
	pw := se.Member(t, "carol", "gamma", identity.RoleMember)
	gc, err := openstack.NewComputeV2(se.Provider(t, "admin", brokertest.AdminPassword, "admin"), gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := openstack.NewBlockStorageV3(se.Provider(t, "admin", brokertest.AdminPassword, "admin"), gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	var serverID, volumeID string
	admin := func(args ...string) (string, int) {
		return se.osc(t, "admin", brokertest.AdminPassword, "admin", args...)
	}
	// waitFor lets the CLI act and the test wait (the CLI's own --wait
	// polls every 5 s).
	waitFor := func(status string) func() {
		return func() { waitStatus(t, gc, serverID, status) }
	}
	steps := []cliStep{
		{"keypair create", func() (string, int) { return admin("keypair", "create", "cli-key") }, 0, []string{"BEGIN RSA PRIVATE KEY"}, nil},
		{"server create", func() (string, int) {
			return admin("server", "create", "--flavor", "m1.tiny", "--image", img, "--network", net, "--key-name", "cli-key",
				"--property", "app=web", "--availability-zone", "local-a", "--wait", "cli-vm", "-f", "shell")
		}, 0, []string{`status="ACTIVE"`, `key_name="cli-key"`, `image="cirros-0.6-x86_64-disk (` + img + `)"`, `adminpass="`, `addresses="{'private': ['10.0.0.`}, nil},
		{"server list", func() (string, int) {
			return admin("server", "list", "-f", "value", "-c", "Name", "-c", "Status", "-c", "Image")
		}, 0,
			[]string{"cli-vm ACTIVE cirros-0.6-x86_64-disk"}, func() {
				out, _ := admin("server", "show", "cli-vm", "-f", "value", "-c", "id")
				serverID = strings.TrimSpace(out)
			}},
		{"server show", func() (string, int) { return admin("server", "show", "cli-vm", "-f", "shell") }, 0,
			[]string{`os_ext_az_availability_zone="local-a"`, `flavor="m1.tiny (1)"`, `properties="{'app': 'web'}"`, `os_ext_sts_vm_state="active"`}, nil},
		{"boot from volume", func() (string, int) {
			return admin("server", "create", "--flavor", "m1.tiny", "--volume", root, "--wait", "cli-bfv", "-f", "shell")
		}, 0, []string{`status="ACTIVE"`, `N/A (booted from volume)`, `volumes_attached="[{'id': '` + root}, nil},
		{"boot from a new volume", func() (string, int) {
			return admin("server", "create", "--flavor", "m1.tiny", "--image", img, "--boot-from-volume", "1", "--network", net, "--wait", "cli-root", "-f", "shell")
		}, 0, []string{`status="ACTIVE"`, `N/A (booted from volume)`, `os_ext_az_availability_zone="local-a"`}, nil},
		{"volume create", func() (string, int) {
			out, code := admin("volume", "create", "--size", "1", "--availability-zone", "local-a", "cli-data", "-f", "value", "-c", "id")
			volumeID = strings.TrimSpace(out)
			return out, code
		}, 0, nil, func() { waitVolume(t, bs, volumeID, "available") }},
		{"volume attach", func() (string, int) { return admin("server", "add", "volume", "cli-vm", "cli-data") }, 0, nil, nil},
		{"attached", func() (string, int) {
			return admin("server", "show", "cli-vm", "-f", "value", "-c", "volumes_attached")
		}, 0, []string{"'id': "}, nil},
		{"volume detach", func() (string, int) { return admin("server", "remove", "volume", "cli-vm", "cli-data") }, 0, nil, func() { waitVolume(t, bs, volumeID, "available") }},
		{"server rename", func() (string, int) {
			return admin("server", "set", "--name", "cli-web", "--property", "tier=front", "cli-vm")
		}, 0, nil, nil},
		{"renamed", func() (string, int) { return admin("server", "show", "cli-web", "-f", "value", "-c", "properties") }, 0, []string{"'app': 'web'", "'tier': 'front'"}, nil},
		{"server stop", func() (string, int) { return admin("server", "stop", "cli-web") }, 0, nil, waitFor("SHUTOFF")},
		{"stopped", func() (string, int) {
			return admin("server", "show", "cli-web", "-f", "value", "-c", "status", "-c", "OS-EXT-STS:power_state")
		}, 0, []string{"4", "SHUTOFF"}, nil},
		{"server start", func() (string, int) { return admin("server", "start", "cli-web") }, 0, nil, waitFor("ACTIVE")},
		{"server reboot", func() (string, int) { return admin("server", "reboot", "--hard", "cli-web") }, 0, nil, waitFor("ACTIVE")},
		{"console log", func() (string, int) { return admin("console", "log", "show", "--lines", "5", "cli-web") }, 0, nil, nil},
		// (limits show --absolute also asks Cinder's /limits, which the
		// volume API does not serve yet; gophercloud covers Nova's.)
		{"another project sees nothing", printsNothing(t, func() (string, int) { return se.osc(t, "carol", pw, "gamma", "server", "list", "-f", "value") }), 0, nil, nil},
		{"nor by ID", func() (string, int) { return se.osc(t, "carol", pw, "gamma", "server", "show", serverID) }, 1, []string{"No server with a name or ID"}, nil},
		{"unknown flavor", func() (string, int) {
			return admin("server", "create", "--flavor", "m9.huge", "--volume", root, "--nic", "none", "nope")
		}, 1, []string{"No flavor with a name or ID"}, nil},
		{"server delete", func() (string, int) { return admin("server", "delete", "--wait", "cli-web", "cli-bfv", "cli-root") }, 0, nil, nil},
		{"deleted", printsNothing(t, func() (string, int) { return admin("server", "list", "-f", "value") }), 0, nil, nil},
	}
	runCLI(t, steps)
	// The test's context, not the environment's: the CLI's steps (a Python
	// start each) may outlast the environment's two minutes on a busy host.
	if _, err := servers.Get(t.Context(), gc, serverID).Extract(); !is404(err) {
		t.Fatalf("after the CLI's delete: %v; want 404", err)
	}
}
