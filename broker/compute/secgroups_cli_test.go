package compute_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/secgroups"

	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/peers"
)

// TestSecurityGroupsCLI drives the real openstack CLI through security
// groups on servers: a server booted in a group has its peer port in
// that group (the local cloud filters by it), server add/remove security
// group change the peer port, the views and os-security-groups list what
// the server is in, and a group in use cannot go.
func TestSecurityGroupsCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	se := newServersEnv(t, brokertest.Peer{Name: "local-a"})
	img, net := se.Seeded["local-a"].ImageID, se.Nets["local-a"]
	gc := se.admin(t)
	m := se.Pool.Members()[0]
	project := se.Boot.Project.ID
	admin := func(args ...string) (string, int) {
		return se.osc(t, "admin", brokertest.AdminPassword, "admin", args...)
	}
	var serverID, webID string
	// peerGroups are the groups the peer's port of the server is in,
	// by broker group ID (what the peer was handed).
	peerGroups := func(want ...string) func() {
		return func() {
			t.Helper()
			idx, err := se.Index.Get(context.Background(), "server", serverID, project)
			if err != nil {
				t.Fatal(err)
			}
			ports, err := m.Cloud.ListPorts(context.Background(), peers.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			ports = slices.DeleteFunc(ports, func(p peers.Port) bool { return p.DeviceID != idx.PeerResourceID })
			if len(ports) != 1 {
				t.Fatalf("the server's peer ports: %+v, want one", ports)
			}
			got, w := slices.Clone(ports[0].SecurityGroups), slices.Clone(want)
			for i, g := range w {
				if g == "web" {
					w[i] = webID
				} else if g == "default" {
					w[i] = network.DefaultSecurityGroupID(project)
				}
			}
			slices.Sort(got)
			slices.Sort(w)
			if !slices.Equal(got, w) {
				t.Fatalf("the server's peer port is in groups %v, want %v", got, w)
			}
		}
	}
	steps := []cliStep{
		{"security group create", func() (string, int) {
			out, code := admin("security", "group", "create", "web", "-f", "value", "-c", "id")
			webID = strings.TrimSpace(out)
			return out, code
		}, 0, nil, nil},
		{"rule create", func() (string, int) {
			return admin("security", "group", "rule", "create", "--protocol", "tcp", "--dst-port", "80", "web", "-f", "value", "-c", "port_range_min")
		}, 0, []string{"80"}, nil},
		{"server create --security-group", func() (string, int) {
			out, code := admin("server", "create", "--flavor", "m1.tiny", "--image", img, "--network", net, "--security-group", "web", "--wait", "sg-vm", "-f", "value", "-c", "id")
			serverID = strings.TrimSpace(out)
			return out, code
		}, 0, nil, peerGroups("web")},
		{"shown in web", func() (string, int) { return admin("server", "show", "sg-vm", "-f", "value", "-c", "security_groups") }, 0, []string{"web"}, nil},
		{"port shows web", func() (string, int) {
			return admin("port", "list", "--server", "sg-vm", "-f", "value", "-c", "Security Groups", "--long")
		}, 0, []string{webID}, nil},
		{"a group in use stays", func() (string, int) { return admin("security", "group", "delete", "web") }, 1, []string{"in use"}, nil},
		{"server add security group", func() (string, int) { return admin("server", "add", "security", "group", "sg-vm", "default") }, 0, nil, peerGroups("web", "default")},
		{"shown in both", func() (string, int) { return admin("server", "show", "sg-vm", "-f", "value", "-c", "security_groups") }, 0, []string{"web", "default"}, nil},
		{"added twice", func() (string, int) { return admin("server", "add", "security", "group", "sg-vm", "default") }, 1, []string{"already associated"}, nil},
		{"an unknown group", func() (string, int) { return admin("server", "add", "security", "group", "sg-vm", "nope") }, 1, []string{"404"}, nil},
		{"server remove security group", func() (string, int) { return admin("server", "remove", "security", "group", "sg-vm", "web") }, 0, nil, peerGroups("default")},
		{"shown in default only", func() (string, int) { return admin("server", "show", "sg-vm", "-f", "value", "-c", "security_groups") }, 0, []string{"default"}, nil},
		{"boot in an unknown group", func() (string, int) {
			return admin("server", "create", "--flavor", "m1.tiny", "--image", img, "--network", net, "--security-group", "nope", "sg-bad")
		}, 1, []string{"nope"}, nil},
		{"server delete", func() (string, int) { return admin("server", "delete", "--wait", "sg-vm") }, 0, nil, nil},
		{"security group delete", func() (string, int) { return admin("security", "group", "delete", "web") }, 0, nil, nil},
	}
	runCLI(t, steps[:5])
	// Nova's per-server listing, through gophercloud.
	pages, err := secgroups.ListByServer(gc, serverID).AllPages(context.Background())
	if err != nil {
		t.Fatalf("os-security-groups: %v", err)
	}
	groups, err := secgroups.ExtractSecurityGroups(pages)
	if err != nil || len(groups) != 1 || groups[0].Name != "web" || len(groups[0].Rules) != 1 || groups[0].Rules[0].FromPort != 80 {
		t.Fatalf("os-security-groups = %+v, %v; want web with its tcp 80 rule", groups, err)
	}
	runCLI(t, steps[5:])
}
