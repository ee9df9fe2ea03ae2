package compute_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestServerRebuild: a rebuild through gophercloud shows REBUILD, then
// ACTIVE with the new image, which lives on another peer and is staged
// onto the server's; name and metadata change, adminPass is answered,
// and the action is recorded as Nova names it. Requests Nova refuses are
// refused with its codes.
func TestServerRebuild(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t, brokertest.Peer{Name: "local-a", Transition: time.Second}, brokertest.Peer{Name: "local-b"})
	c := se.admin(t)
	imgA, imgB := se.Seeded["local-a"].ImageID, se.Seeded["local-b"].ImageID
	s := create(t, c, servers.CreateOpts{Name: "rb", FlavorRef: "1", ImageRef: imgA, AvailabilityZone: "local-a", Metadata: map[string]string{"old": "1"}})
	waitStatus(t, c, s.ID, "ACTIVE")

	refusals := []struct {
		name string
		mv   string
		body map[string]any
		want int
	}{
		{"no image", "2.1", map[string]any{"rebuild": map[string]any{"name": "x"}}, http.StatusBadRequest},
		{"unknown image", "2.1", map[string]any{"rebuild": map[string]any{"imageRef": "4b3f7bd4-0000-4000-8000-000000000000"}}, http.StatusBadRequest},
		{"key_name before 2.54", "2.53", map[string]any{"rebuild": map[string]any{"imageRef": imgA, "key_name": nil}}, http.StatusBadRequest},
		{"user_data before 2.57", "2.56", map[string]any{"rebuild": map[string]any{"imageRef": imgA, "user_data": nil}}, http.StatusBadRequest},
		{"personality from 2.57", "2.57", map[string]any{"rebuild": map[string]any{"imageRef": imgA, "personality": []any{}}}, http.StatusBadRequest},
		{"an unknown key", "2.57", map[string]any{"rebuild": map[string]any{"imageRef": imgA, "key_name": "no-such-key"}}, http.StatusBadRequest},
		{"an unknown field", "2.1", map[string]any{"rebuild": map[string]any{"imageRef": imgA, "flavorRef": "2"}}, http.StatusBadRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if code, msg := post(t, at(c, tc.mv), "servers/"+s.ID+"/action", tc.body); code != tc.want {
				t.Fatalf("%d %q; want %d", code, msg, tc.want)
			}
		})
	}

	r := servers.Rebuild(ctx, c, s.ID, servers.RebuildOpts{ImageRef: imgB, Name: "rb2", Metadata: map[string]string{"new": "2"}})
	got, err := r.Extract()
	if err != nil {
		t.Fatalf("Rebuild: %v", err)
	}
	if got.AdminPass == "" || got.Name != "rb2" || got.Image["id"] != imgB {
		t.Fatalf("Rebuild answered name %q, image %v, adminPass %q; want rb2, %s and a password", got.Name, got.Image, got.AdminPass, imgB)
	}
	mid := waitStatus(t, c, s.ID, "REBUILD")
	if mid.TaskState != "rebuilding" {
		t.Fatalf("REBUILD with task_state %q; want rebuilding", mid.TaskState)
	}
	done := waitStatus(t, c, s.ID, "ACTIVE")
	if done.Image["id"] != imgB || done.Name != "rb2" || done.Metadata["new"] != "2" || len(done.Metadata) != 1 {
		t.Fatalf("rebuilt server: image %v, name %q, metadata %v; want %s, rb2, {new: 2}", done.Image, done.Name, done.Metadata, imgB)
	}
	if done.AvailabilityZone != "local-a" {
		t.Fatalf("rebuilt server in zone %q; want it where it was, local-a", done.AvailabilityZone)
	}
	pages, err := instanceactions.List(c, s.ID, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	acts, err := instanceactions.ExtractInstanceActions(pages)
	if err != nil || len(acts) == 0 || acts[0].Action != "rebuild" {
		t.Fatalf("instance actions %+v, %v; want rebuild first", acts, err)
	}

	t.Run("a stopped server stays stopped", func(t *testing.T) {
		if err := servers.Stop(ctx, c, s.ID).ExtractErr(); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, c, s.ID, "SHUTOFF")
		if _, err := servers.Rebuild(ctx, c, s.ID, servers.RebuildOpts{ImageRef: imgA}).Extract(); err != nil {
			t.Fatal(err)
		}
		waitStatus(t, c, s.ID, "REBUILD")
		if got := waitStatus(t, c, s.ID, "SHUTOFF"); got.Image["id"] != imgA {
			t.Fatalf("image %v after the rebuild; want %s", got.Image, imgA)
		}
	})
	t.Run("while rebuilding", func(t *testing.T) {
		if _, err := servers.Rebuild(ctx, c, s.ID, servers.RebuildOpts{ImageRef: imgA}).Extract(); err != nil {
			t.Fatal(err)
		}
		if _, err := servers.Rebuild(ctx, c, s.ID, servers.RebuildOpts{ImageRef: imgA}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
			t.Fatalf("a second rebuild at once: %v; want 409", err)
		}
		waitStatus(t, c, s.ID, "SHUTOFF")
	})
	t.Run("another project", func(t *testing.T) {
		pw := se.Member(t, "olga", "omega", identity.RoleMember)
		o := se.compute(t, "olga", pw, "omega")
		if _, err := servers.Rebuild(ctx, o, s.ID, servers.RebuildOpts{ImageRef: imgA}).Extract(); !is404(err) {
			t.Fatalf("another project rebuilds: %v; want 404", err)
		}
	})
}

// TestOpenStackCLIRebuild drives `openstack server rebuild` at
// --os-compute-api-version 2.latest with every option the broker takes:
// the new image, name, properties, description, key and user data.
func TestOpenStackCLIRebuild(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	se := newServersEnv(t, brokertest.Peer{Name: "local-a"})
	img, net := se.Seeded["local-a"].ImageID, se.Nets["local-a"]
	gc := se.admin(t)
	dir := t.TempDir()
	userData := filepath.Join(dir, "user-data")
	if err := os.WriteFile(userData, []byte("#cloud-config\nhostname: rebuilt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var serverID string
	osc := func(args ...string) (string, int) {
		return se.osc(t, "admin", brokertest.AdminPassword, "admin", append([]string{"--os-compute-api-version", "2.latest"}, args...)...)
	}
	steps := []cliStep{
		{"keypair create", func() (string, int) { return osc("keypair", "create", "rb-key") }, 0, nil, nil},
		{"server create", func() (string, int) {
			out, code := osc("server", "create", "--flavor", "m1.tiny", "--image", img, "--network", net, "--wait", "cli-rb", "-f", "value", "-c", "id")
			serverID = strings.TrimSpace(out)
			return out, code
		}, 0, nil, nil},
		{"server rebuild", func() (string, int) {
			return osc("server", "rebuild", "--image", img, "--name", "cli-rb2", "--property", "role=web", "--description", "rebuilt",
				"--key-name", "rb-key", "--user-data", userData, "--wait", "cli-rb", "-f", "shell")
		}, 0, []string{`adminpass="`, `description="rebuilt"`}, nil},
		{"rebuilt", func() (string, int) {
			return osc("server", "show", serverID, "-f", "shell", "-c", "name", "-c", "status", "-c", "key_name", "-c", "description", "-c", "properties")
		}, 0, []string{`name="cli-rb2"`, `status="ACTIVE"`, `key_name="rb-key"`, `description="rebuilt"`, "{'role': 'web'}"}, nil},
		{"server event list", func() (string, int) { return osc("server", "event", "list", serverID, "-f", "value", "-c", "Action") }, 0, []string{"rebuild"}, nil},
		{"rebuild --no-key-name", func() (string, int) {
			return osc("server", "rebuild", "--image", img, "--no-key-name", "--no-user-data", "--wait", serverID)
		}, 0, nil, func() { waitStatus(t, gc, serverID, "ACTIVE") }},
		{"keyless", func() (string, int) { return osc("server", "show", serverID, "-f", "value", "-c", "key_name") }, 0, []string{"None"}, nil},
		{"server delete", func() (string, int) { return osc("server", "delete", "--wait", serverID) }, 0, nil, nil},
	}
	runCLI(t, steps)
}
