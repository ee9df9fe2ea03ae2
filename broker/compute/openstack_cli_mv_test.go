package compute_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/peers"
)

// TestOpenStackCLILatest drives the real openstack CLI at
// --os-compute-api-version 2.latest (the broker's newest): servers with
// --nic none and auto, a batch (--min/--max), tags, a description and a hostname, the tag
// filters, the embedded flavor, flavor descriptions and extra specs, and
// keypairs.
func TestOpenStackCLILatest(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	se := newServersEnv(t)
	img := se.Seeded["local-a"].ImageID
	osc := func(args ...string) (string, int) {
		return se.osc(t, "admin", brokertest.AdminPassword, "admin", append([]string{"--os-compute-api-version", "2.latest"}, args...)...)
	}
	pub, _, err := peers.GenerateSSHKeypair()
	if err != nil {
		t.Fatal(err)
	}
	pubFile := filepath.Join(t.TempDir(), "key.pub")
	if err := os.WriteFile(pubFile, []byte(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"version", []string{"versions", "show", "--service", "compute", "-f", "value", "-c", "Max Microversion"}, 0, []string{compute.MaxVersion}},
		{"create --nic none", []string{"server", "create", "--flavor", "m1.tiny", "--image", img, "--nic", "none", "--tag", "web", "--tag", "blue", "--availability-zone", "local-a",
			"--description", "front end", "--hostname", "front-1", "--wait", "cli-none", "-f", "shell"}, 0,
			[]string{`status="ACTIVE"`, `description="front end"`, `tags="`, `web`, `blue`}},
		{"create --nic auto", []string{"server", "create", "--flavor", "m1.tiny", "--image", img, "--nic", "auto", "--wait", "cli-auto", "-f", "shell"}, 0,
			[]string{`status="ACTIVE"`, `addresses="{'private'`}},
		{"create --min 2 --max 2", []string{"server", "create", "--flavor", "m1.tiny", "--image", img, "--nic", "none", "--min", "2", "--max", "2", "cli-many"}, 0, nil},
		{"list the batch", []string{"server", "list", "--name", "cli-many", "-f", "value", "-c", "Name"}, 0, []string{"cli-many-1", "cli-many-2"}},
		{"list --tags", []string{"server", "list", "--tags", "web", "-f", "value", "-c", "Name"}, 0, []string{"cli-none"}},
		{"list --not-tags", []string{"server", "list", "--not-tags", "web", "-f", "value", "-c", "Name"}, 0, []string{"cli-auto"}},
		{"set tag and description", []string{"server", "set", "--tag", "green", "--description", "back end", "cli-none"}, 0, nil},
		{"unset tag", []string{"server", "unset", "--tag", "blue", "cli-none"}, 0, nil},
		{"show", []string{"server", "show", "cli-none", "-f", "shell"}, 0,
			[]string{`description="back end"`, "green", `original_name`, `m1.tiny`, `hostname="front-1"`, `locked="False"`}},
		{"volume create", []string{"volume", "create", "--size", "1", "--availability-zone", "local-a", "cli-dot"}, 0, nil},
		{"add volume --enable-delete-on-termination", []string{"server", "add", "volume", "--enable-delete-on-termination", "cli-none", "cli-dot"}, 0, nil},
		{"flavor set description", []string{"flavor", "set", "--description", "tiny one", "m1.tiny"}, 0, nil},
		{"flavor show", []string{"flavor", "show", "m1.tiny", "-f", "shell"}, 0, []string{`description="tiny one"`, `properties=`}},
		{"flavor list", []string{"flavor", "list", "--long", "-f", "value", "-c", "Name", "-c", "Properties"}, 0, []string{"m1.tiny"}},
		// From 2.92 the CLI makes the pair itself and imports the public key.
		{"keypair create", []string{"keypair", "create", "cli-gen"}, 0, []string{"PRIVATE KEY"}},
		{"keypair import", []string{"keypair", "create", "--public-key", pubFile, "cli-key", "-f", "shell"}, 0, []string{`type="ssh"`}},
		{"keypair list", []string{"keypair", "list", "-f", "value", "-c", "Name", "-c", "Type"}, 0, []string{"cli-key ssh"}},
		{"keypair delete", []string{"keypair", "delete", "cli-key", "cli-gen"}, 0, nil},
		{"delete", []string{"server", "delete", "--wait", "cli-none", "cli-auto", "cli-many-1", "cli-many-2"}, 0, nil},
	}
	bs, err := openstack.NewBlockStorageV3(se.Provider(t, "admin", brokertest.AdminPassword, "admin"), gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	var dotVolume string
	for _, st := range steps {
		out, code := osc(st.args...)
		if code != st.wantCode {
			t.Fatalf("%s: exit %d, want %d:\n%s", st.name, code, st.wantCode, out)
		}
		for _, w := range st.want {
			if !strings.Contains(out, w) {
				t.Fatalf("%s: output lacks %q:\n%s", st.name, w, out)
			}
		}
		if st.name == "volume create" {
			dotVolume = volumeID(t, bs, "cli-dot")
			waitVolume(t, bs, dotVolume, "available")
		}
		if st.name == "add volume --enable-delete-on-termination" {
			waitVolume(t, bs, dotVolume, "in-use")
		}
		if st.name == "list --tags" && (strings.Contains(out, "cli-auto") || strings.Contains(out, "cli-many")) || st.name == "list --not-tags" && strings.Contains(out, "cli-none") {
			t.Fatalf("%s: wrong servers:\n%s", st.name, out)
		}
	}
	// The volume attached with --enable-delete-on-termination went with
	// the server.
	waitVolumeGone(t, bs, dotVolume)
}

// volumeID finds a volume of the admin project by name.
func volumeID(t *testing.T, bs *gophercloud.ServiceClient, name string) string {
	t.Helper()
	pages, err := volumes.List(bs, volumes.ListOpts{Name: name}).AllPages(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	vs, err := volumes.ExtractVolumes(pages)
	if err != nil || len(vs) != 1 {
		t.Fatalf("volumes named %s = %v, %v", name, vs, err)
	}
	return vs[0].ID
}
