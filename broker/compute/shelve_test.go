package compute_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestServerShelve: a shelve through gophercloud shows SHELVED, then
// SHELVED_OFFLOADED with the host's vCPUs and memory freed and the quota
// still counting the server (as Nova counts it); an unshelve in another
// zone is refused as Nova refuses a zone that is not available, in its
// own it boots the server again with its addresses.
func TestServerShelve(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t, brokertest.Peer{Name: "local-a", Transition: time.Second}, brokertest.Peer{Name: "local-b"})
	c := se.admin(t)
	pw := se.Member(t, "dave", "admin", identity.RoleMember)
	d := se.compute(t, "dave", pw, "admin")
	s := create(t, c, servers.CreateOpts{Name: "sh", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID, AvailabilityZone: "local-a",
		Networks: []servers.Network{{UUID: se.Nets["local-a"]}}})
	active := waitStatus(t, c, s.ID, "ACTIVE")
	usedBefore, _, err := se.Ledger.Usage(ctx, quota.Scope{Project: active.TenantID})
	if err != nil {
		t.Fatal(err)
	}
	if err := servers.ShelveOffload(ctx, c, s.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("shelveOffload of an ACTIVE server: %v; want 409", err)
	}
	if err := servers.Shelve(ctx, c, s.ID).ExtractErr(); err != nil {
		t.Fatalf("Shelve: %v", err)
	}
	if got := waitStatus(t, c, s.ID, "SHELVED"); got.VmState != "shelved" {
		t.Fatalf("SHELVED with vm_state %q; want shelved", got.VmState)
	}
	if got := waitStatus(t, c, s.ID, "SHELVED_OFFLOADED"); got.VmState != "shelved_offloaded" {
		t.Fatalf("SHELVED_OFFLOADED with vm_state %q", got.VmState)
	}
	capa, err := se.Pool.Members()[0].Cloud.Capacity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if capa.VCPUs.Used != 0 || capa.RAMMiB.Used != 0 {
		t.Fatalf("capacity with the server offloaded: %+v; want its vCPUs and memory freed", capa)
	}
	usedAfter, _, err := se.Ledger.Usage(ctx, quota.Scope{Project: active.TenantID})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []quota.Resource{quota.Instances, quota.Cores, quota.RAM} {
		if usedAfter[k] != usedBefore[k] {
			t.Fatalf("quota use of %s: %d shelved, %d before; Nova keeps counting a shelved-offloaded server", k, usedAfter[k], usedBefore[k])
		}
	}
	refusals := []struct {
		name string
		c    *gophercloud.ServiceClient
		mv   string
		body any
		want int
	}{
		{"a member offloads", d, "2.1", map[string]any{"shelveOffload": nil}, http.StatusForbidden},
		{"a zone before 2.77", c, "2.76", map[string]any{"unshelve": map[string]any{"availability_zone": "local-a"}}, http.StatusBadRequest},
		{"another zone", c, "2.77", map[string]any{"unshelve": map[string]any{"availability_zone": "local-b"}}, http.StatusBadRequest},
		{"a host", c, "2.91", map[string]any{"unshelve": map[string]any{"host": "localhost"}}, http.StatusBadRequest},
		{"a start", c, "2.1", map[string]any{"os-start": nil}, http.StatusConflict},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if code, msg := post(t, at(tc.c, tc.mv), "servers/"+s.ID+"/action", tc.body); code != tc.want {
				t.Fatalf("%d %q; want %d", code, msg, tc.want)
			}
		})
	}
	if err := servers.Unshelve(ctx, at(c, "2.77"), s.ID, servers.UnshelveOpts{AvailabilityZone: "local-a"}).ExtractErr(); err != nil {
		t.Fatalf("unshelve in its own zone: %v", err)
	}
	got := waitStatus(t, c, s.ID, "ACTIVE")
	if len(got.Addresses) == 0 || got.AvailabilityZone != "local-a" {
		t.Fatalf("unshelved server: zone %q, addresses %v; want local-a and its address", got.AvailabilityZone, got.Addresses)
	}
}

// TestOpenStackCLIShelve drives `openstack server shelve` and `server
// unshelve` at --os-compute-api-version 2.latest, and the event list
// they leave.
func TestOpenStackCLIShelve(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	se := newServersEnv(t)
	img, net := se.Seeded["local-a"].ImageID, se.Nets["local-a"]
	gc := se.admin(t)
	var serverID string
	osc := func(args ...string) (string, int) {
		return se.osc(t, "admin", brokertest.AdminPassword, "admin", append([]string{"--os-compute-api-version", "2.latest"}, args...)...)
	}
	steps := []cliStep{
		{"server create", func() (string, int) {
			out, code := osc("server", "create", "--flavor", "m1.tiny", "--image", img, "--network", net, "--availability-zone", "local-a", "--wait", "cli-sh", "-f", "value", "-c", "id")
			serverID = strings.TrimSpace(out)
			return out, code
		}, 0, nil, nil},
		{"server shelve", func() (string, int) { return osc("server", "shelve", "cli-sh") }, 0, nil, func() { waitStatus(t, gc, serverID, "SHELVED_OFFLOADED") }},
		{"shelved", func() (string, int) {
			return osc("server", "show", serverID, "-f", "value", "-c", "status", "-c", "OS-EXT-STS:vm_state")
		}, 0, []string{"SHELVED_OFFLOADED", "shelved_offloaded"}, nil},
		{"unshelve elsewhere", func() (string, int) { return osc("server", "unshelve", "--availability-zone", "local-b", serverID) }, 1,
			[]string{"400", "availability zone is not available"}, nil},
		{"server unshelve", func() (string, int) { return osc("server", "unshelve", serverID) }, 0, nil, func() { waitStatus(t, gc, serverID, "ACTIVE") }},
		{"server event list", func() (string, int) { return osc("server", "event", "list", serverID, "-f", "value", "-c", "Action") }, 0,
			[]string{"shelve", "unshelve"}, nil},
		{"server delete", func() (string, int) { return osc("server", "delete", "--wait", serverID) }, 0, nil, nil},
	}
	runCLI(t, steps)
}
