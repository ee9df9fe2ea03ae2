package compute_test

import (
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestOpenStackCLIServerImage snapshots a server with the real openstack
// CLI (server image create, compute API 2.latest), reads the image back
// through Glance, boots it on the other peer (the stager copies it
// there) and checks the refusals; gophercloud's CreateImage reads the
// image ID from the Location header before 2.45 and from the body after.
func TestOpenStackCLIServerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	se := newServersEnv(t)
	img, netA, netB := se.Seeded["local-a"].ImageID, se.Nets["local-a"], se.Nets["local-b"]
	gc := se.admin(t)
	dpw := se.Member(t, "dave", "admin", identity.RoleMember)
	epw := se.Member(t, "erin", "epsilon", identity.RoleMember)
	latest := func(user, pw, project string) func(args ...string) (string, int) {
		return func(args ...string) (string, int) {
			return se.osc(t, user, pw, project, append([]string{"--os-compute-api-version", "2.latest"}, args...)...)
		}
	}
	admin, dave, erin := latest("admin", brokertest.AdminPassword, "admin"), latest("dave", dpw, "admin"), latest("erin", epw, "epsilon")
	var serverID, snapID string
	steps := []cliStep{
		{"server create", func() (string, int) {
			out, code := admin("server", "create", "--flavor", "m1.tiny", "--image", img, "--network", netA, "--availability-zone", "local-a",
				"--wait", "snap-vm", "-f", "value", "-c", "id")
			serverID = strings.TrimSpace(out)
			return out, code
		}, 0, nil, nil},
		{"server image create", func() (string, int) {
			out, code := admin("server", "image", "create", "--name", "snap-1", "--property", "purpose=backup", "--wait", "snap-vm", "-f", "value", "-c", "id")
			snapID = strings.TrimSpace(out)
			return out, code
		}, 0, nil, nil},
		{"image show", func() (string, int) {
			return admin("image", "show", "snap-1", "-f", "shell", "-c", "status", "-c", "visibility", "-c", "disk_format", "-c", "properties", "-c", "min_disk")
		}, 0, []string{`status="active"`, `visibility="private"`, `disk_format="qcow2"`, "'purpose': 'backup'", "'image_type': 'snapshot'",
			"'instance_uuid': '", "'base_image_ref': '" + img + "'", `min_disk="1"`}, nil},
		{"the server stays active", func() (string, int) { return admin("server", "show", "snap-vm", "-f", "value", "-c", "status") }, 0, []string{"ACTIVE"}, nil},
		{"server event list", func() (string, int) {
			return admin("server", "event", "list", "snap-vm", "-f", "value", "-c", "Action")
		}, 0, []string{"createImage"}, nil},
		{"boot the snapshot on the other peer", func() (string, int) {
			return admin("server", "create", "--flavor", "m1.tiny", "--image", "snap-1", "--network", netB, "--availability-zone", "local-b",
				"--wait", "from-snap", "-f", "value", "-c", "status", "-c", "OS-EXT-AZ:availability_zone")
		}, 0, []string{"ACTIVE", "local-b"}, nil},
		{"booted from the snapshot", func() (string, int) { return admin("server", "show", "from-snap", "-f", "value", "-c", "image") }, 0, []string{snapID}, nil},
		{"another project's server is not found", func() (string, int) {
			return erin("server", "image", "create", "--name", "theirs", serverID)
		}, 1, []string{"No Server found for " + serverID}, nil},
		{"a reserved property is refused", func() (string, int) {
			return admin("server", "image", "create", "--name", "bad", "--property", "instance_uuid=x", "snap-vm")
		}, 1, []string{"400", "instance_uuid"}, nil},
		{"server lock", func() (string, int) { return admin("server", "lock", "snap-vm") }, 0, nil, nil},
		{"a member may not snapshot a locked server", func() (string, int) {
			return dave("server", "image", "create", "--name", "locked", "snap-vm")
		}, 1, []string{"409", "is locked"}, nil},
		{"server unlock", func() (string, int) { return admin("server", "unlock", "snap-vm") }, 0, nil, nil},
		{"server delete", func() (string, int) { return admin("server", "delete", "--wait", "from-snap", "snap-vm") }, 0, nil, nil},
		{"image delete", func() (string, int) { return admin("image", "delete", "snap-1") }, 0, nil, nil},
	}
	runCLI(t, steps)

	t.Run("gophercloud", func(t *testing.T) {
		srv, err := servers.Create(t.Context(), gc, servers.CreateOpts{Name: "gc-snap", FlavorRef: "m1.tiny", ImageRef: img,
			Networks: []servers.Network{{UUID: netA}}}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = servers.Delete(t.Context(), gc, srv.ID).ExtractErr() })
		waitStatus(t, gc, srv.ID, "ACTIVE")
		for _, tc := range []struct{ name, version string }{{"Location header", "2.1"}, {"image_id body", "2.45"}} {
			t.Run(tc.name, func(t *testing.T) {
				c := *gc
				c.Microversion = tc.version
				id, err := servers.CreateImage(t.Context(), &c, srv.ID, servers.CreateImageOpts{Name: "gc-" + tc.version}).ExtractImageID()
				if err != nil || len(id) != 36 {
					t.Fatalf("CreateImage at %s = %q, %v; want the image's UUID", tc.version, id, err)
				}
				if out, code := admin("image", "show", id, "-f", "value", "-c", "name"); code != 0 || strings.TrimSpace(out) != "gc-"+tc.version {
					t.Fatalf("image show %s: exit %d:\n%s", id, code, out)
				}
				// The next snapshot waits for this one: one action at a time.
				waitImageActive(t, admin, id)
			})
		}
	})
}

// waitImageActive polls an image through the CLI until it is active.
func waitImageActive(t *testing.T, osc func(args ...string) (string, int), id string) {
	t.Helper()
	for i := 0; i < 100; i++ {
		out, code := osc("image", "show", id, "-f", "value", "-c", "status")
		if code == 0 && strings.TrimSpace(out) == "active" {
			return
		}
		if strings.TrimSpace(out) == "killed" {
			t.Fatalf("image %s was killed", id)
		}
	}
	t.Fatalf("image %s never became active", id)
}
