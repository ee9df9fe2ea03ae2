package volume_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/oscli"
	"github.com/cloudmux/cloudmux/policy"
)

// osc runs the real openstack CLI against the env as the admin.
func osc(t *testing.T, e *brokertest.Env, args ...string) (string, int) {
	t.Helper()
	return oscli.Run(t, oscli.Path(t), []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"OS_AUTH_URL=" + e.Server.URL + "/v3", "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=admin", "OS_PASSWORD=" + brokertest.AdminPassword,
		"OS_PROJECT_NAME=admin", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default", "OS_REGION_NAME=" + identity.Region, "OS_INTERFACE=public"}, args...)
}

// newCLIEnv serves Keystone, Cinder (with os-quota-sets) and Glance over
// one roomy peer: the CLI's volume create asks for the image service
// whatever it is given.
func newCLIEnv(t *testing.T) *quotaEnv {
	t.Helper()
	qe := &quotaEnv{}
	qe.Env = brokertest.New(t, []brokertest.Peer{{Name: "big", DiskGiB: 500}}, func(e *brokertest.Env, r chi.Router) {
		qe.ledger = quota.NewLedger(e.Store, "test-broker", e.Log)
		idx := index.New(e.Store)
		images := &image.Service{Pool: e.Pool, Index: idx, Placer: policy.Default{}, Store: e.Store, Log: e.Log, BrokerID: "test-broker"}
		svc := &volume.Service{Pool: e.Pool, Index: idx, Placer: policy.Default{}, Images: images, Store: e.Store, Log: e.Log,
			BrokerID: "test-broker", Quota: qe.ledger}
		cinder := &volume.Cinder{Volumes: svc, QuotaAdmin: qe.ledger.Limits.(*quota.Limits), Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/volume", cinder.Routes)
		svc.Types = volume.NewTypesMemory(e.Store, e.Log)
		e.Start(t, svc.Types)
		glance := &image.Glance{Images: images, Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/image", glance.Routes)
		e.Keystone.Catalog = identity.StaticCatalog([]identity.ServiceEntry{identity.DefaultServices[0],
			{Type: "volumev3", Name: "cinderv3", Path: "/volume/v3"}, {Type: "image", Name: "glance", Path: "/image"}})
	})
	return qe
}

// TestOpenStackCLIVolumes drives the real openstack CLI through a
// volume's update, metadata and bootable flag, snapshots (create, list,
// show, set, delete), volumes from a snapshot and clones, and volume
// types (create, list, set and unset properties, private with access, a
// volume of a type, retyped).
func TestOpenStackCLIVolumes(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	qe := newCLIEnv(t)
	run := func(args ...string) func() (string, int) {
		return func() (string, int) { return osc(t, qe.Env, args...) }
	}
	// until repeats a step until its output holds want: snapshots and
	// copies are made in the background, as in Cinder.
	until := func(want string, args ...string) func() (string, int) {
		return func() (string, int) {
			deadline := time.Now().Add(time.Minute)
			for {
				out, code := osc(t, qe.Env, args...)
				if code == 0 && strings.Contains(out, want) || time.Now().After(deadline) {
					return out, code
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	steps := []struct {
		name     string
		run      func() (string, int)
		wantCode int
		want     []string
	}{
		{"volume type create", run("volume", "type", "create", "--description", "on the local backend", "--property", "cloudmux:peer_volume_type=local", "fast"), 0, nil},
		{"volume type list", run("volume", "type", "list", "-f", "value", "-c", "Name"), 0, []string{"fast", "__DEFAULT__"}},
		{"volume type set", run("volume", "type", "set", "--property", "cloudmux:label:region=any", "--description", "local disks", "fast"), 0, nil},
		{"volume type show", run("volume", "type", "show", "fast", "-f", "shell", "-c", "properties", "-c", "description"), 0,
			[]string{`'cloudmux:peer_volume_type': 'local'`, `'cloudmux:label:region': 'any'`, `description="local disks"`}},
		{"a spec the broker ignores", run("volume", "type", "set", "--property", "volume_backend_name=lvm", "fast"), 1, []string{"this broker acts on"}},
		{"unset the label", run("volume", "type", "unset", "--property", "cloudmux:label:region", "fast"), 0, nil},
		{"private type", run("volume", "type", "create", "--private", "--project", "admin", "mine"), 0, nil},
		{"its access", run("volume", "type", "show", "mine", "-f", "value", "-c", "access_project_ids"), 0, []string{qe.project(t, "admin")}},
		{"volume of the type", run("volume", "create", "--type", "fast", "--size", "1", "typed", "-f", "value", "-c", "type"), 0, []string{"fast"}},
		{"retype", run("volume", "set", "--type", "__DEFAULT__", "--retype-policy", "never", "typed"), 0, nil},
		{"retyped", run("volume", "show", "typed", "-f", "value", "-c", "type"), 0, []string{"__DEFAULT__"}},
		{"volume create", run("volume", "create", "--size", "1", "cli-vol", "-f", "value", "-c", "size"), 0, []string{"1"}},
		{"volume available", until("available", "volume", "show", "cli-vol", "-f", "value", "-c", "status"), 0, []string{"available"}},
		{"volume set", run("volume", "set", "--name", "cli-data", "--description", "the data", "--property", "app=db", "--bootable", "cli-vol"), 0, nil},
		{"volume show", run("volume", "show", "cli-data", "-f", "shell", "-c", "bootable", "-c", "properties", "-c", "description"), 0,
			[]string{`bootable="true"`, `'app': 'db'`, `description="the data"`}},
		{"volume unset", run("volume", "unset", "--property", "app", "cli-data"), 0, nil},
		{"property gone", run("volume", "show", "cli-data", "-f", "value", "-c", "properties"), 0, nil},
		{"snapshot create", run("volume", "snapshot", "create", "--volume", "cli-data", "--property", "kind=nightly", "cli-snap", "-f", "value", "-c", "size"), 0, []string{"1"}},
		{"snapshot available", until("available", "volume", "snapshot", "show", "cli-snap", "-f", "value", "-c", "status"), 0, []string{"available"}},
		{"snapshot list", run("volume", "snapshot", "list", "-f", "value", "-c", "Name", "-c", "Status"), 0, []string{"cli-snap available"}},
		{"snapshot set", run("volume", "snapshot", "set", "--name", "cli-snap2", "--description", "kept", "--property", "owner=ops", "cli-snap"), 0, nil},
		{"snapshot show", run("volume", "snapshot", "show", "cli-snap2", "-f", "shell", "-c", "properties", "-c", "description"), 0,
			[]string{`'kind': 'nightly'`, `'owner': 'ops'`, `description="kept"`}},
		{"volume from the snapshot", run("volume", "create", "--snapshot", "cli-snap2", "from-snap", "-f", "value", "-c", "size"), 0, []string{"1"}},
		{"it is available", until("available", "volume", "show", "from-snap", "-f", "value", "-c", "status"), 0, []string{"available"}},
		{"and names its snapshot", run("volume", "show", "from-snap", "-f", "value", "-c", "snapshot_id", "-c", "bootable"), 0, []string{"true"}},
		{"clone", run("volume", "create", "--source", "cli-data", "--size", "2", "clone", "-f", "value", "-c", "size"), 0, []string{"2"}},
		{"clone available", until("available", "volume", "show", "clone", "-f", "value", "-c", "status"), 0, []string{"available"}},
		{"a volume with a snapshot stays", run("volume", "delete", "cli-data"), 1, []string{"still has 1 dependent snapshots"}},
		{"snapshot delete", run("volume", "snapshot", "delete", "cli-snap2"), 0, nil},
		{"snapshot gone", until("\n", "volume", "snapshot", "list", "-f", "value", "-c", "Name"), 0, nil},
		{"volume delete", until("", "volume", "delete", "cli-data"), 0, nil},
	}
	for _, st := range steps {
		out, code := st.run()
		if code != st.wantCode {
			t.Fatalf("%s: exit %d, want %d:\n%s", st.name, code, st.wantCode, out)
		}
		for _, w := range st.want {
			if !strings.Contains(out, w) {
				t.Fatalf("%s: output lacks %q:\n%s", st.name, w, out)
			}
		}
	}
}
