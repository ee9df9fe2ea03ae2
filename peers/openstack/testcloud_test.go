package openstack_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/peers/openstack"
	"github.com/cloudmux/cloudmux/peers/peertest"
)

// The real OpenStack these tests run against is the shared testcloud
// (../shared/tools/openstack-testcloud), brought up by
// scripts/openstack-testcloud.sh, which exports CLOUDMUX_OPENSTACK_CLOUDS
// (a clouds.yaml) and CLOUDMUX_OPENSTACK_CLOUD (the tenant entry in it).
// Any other OpenStack API works too (another cloudmux broker, for
// federation): point CLOUDMUX_OPENSTACK_CLOUDS at its clouds.yaml and name
// a flavor and an active image of it in CLOUDMUX_OPENSTACK_FLAVOR and
// CLOUDMUX_OPENSTACK_IMAGE.
const (
	envClouds = "CLOUDMUX_OPENSTACK_CLOUDS"
	envCloud  = "CLOUDMUX_OPENSTACK_CLOUD"
	adminName = "testcloud-admin"
)

// The testcloud's seeded content (up.sh): flavor m1.nano, image "test".
var (
	testFlavor = envOr("CLOUDMUX_OPENSTACK_FLAVOR", "42")
	testImage  = envOr("CLOUDMUX_OPENSTACK_IMAGE", "test")
)

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// cloudsYAML returns the testcloud's clouds.yaml, or skips when there is
// no testcloud.
func cloudsYAML(t testing.TB) []byte {
	t.Helper()
	path := os.Getenv(envClouds)
	if path == "" {
		t.Skipf("no real OpenStack to test against: %s is unset; run `eval \"$(scripts/openstack-testcloud.sh)\"` "+
			"(it needs ../shared beside the repository, as in CI)", envClouds)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%s=%s: %v", envClouds, path, err)
	}
	return data
}

// connect connects to one clouds.yaml entry ("" is CLOUDMUX_OPENSTACK_CLOUD).
func connect(t testing.TB, entry string) *openstack.Cloud {
	t.Helper()
	data := cloudsYAML(t)
	if entry == "" {
		entry = cloudEntry()
	}
	cfg := entryConfig(t, data, entry)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := openstack.New(ctx, cfg)
	if err != nil {
		t.Fatalf("connecting to %q: %v", entry, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// entryConfig reads one entry of the clouds.yaml, skipping when it has no
// such entry (the file names another cloud, for a federation run).
func entryConfig(t testing.TB, data []byte, entry string) openstack.Config {
	t.Helper()
	all, err := openstack.ImportCloudsYAML(data, openstack.ImportOptions{})
	if err != nil {
		t.Fatalf("%s: %v", os.Getenv(envClouds), err)
	}
	for _, imp := range all {
		if imp.Peer.Name == entry {
			return openstack.Config{Name: entry, Endpoint: imp.Peer.Endpoint, Credentials: imp.Credentials}
		}
	}
	t.Skipf("%s has no entry %q: this test needs the testcloud's (scripts/openstack-testcloud.sh)", os.Getenv(envClouds), entry)
	return openstack.Config{}
}

// seededImage finds the testcloud's public image by name.
func seededImage(t testing.TB, c *openstack.Cloud) peers.Image {
	t.Helper()
	imgs, err := c.ListImages(context.Background(), peers.ListOptions{})
	if err != nil {
		t.Fatalf("ListImages: %v", err)
	}
	for _, img := range imgs {
		if img.Name == testImage && img.Status == peers.ImageActive {
			return img
		}
	}
	t.Fatalf("the testcloud has no active image %q (up.sh seeds it)", testImage)
	return peers.Image{}
}

// testcloudGaps are what the testcloud cannot do: its Nova's fake virt
// driver, its Cinder backend
// (cinder.tests.fake_driver.FakeLoggingVolumeDriver), whose failures are
// visible in /var/log/cinder/cinder-volume.log, and its single compute
// host, which Nova will not resize onto itself by default.
var testcloudGaps = map[string]string{
	"Volumes/FromImage": "the testcloud's fake volume driver cannot copy an image to a volume " +
		"(qemu-img convert to a /dev/mapper device that does not exist): the volume goes to error",
	"Volumes/Extend": "the testcloud's fake volume driver cannot extend a volume " +
		"(FakeBrickLVM has no extend_volume): the volume goes to error_extending",
	"Servers/Resize": "the testcloud has one compute host and Nova's default allow_resize_to_same_host=False: " +
		"the scheduler answers NoValidHost (nova-conductor.log) and the server returns to ACTIVE",
	"Servers/SnapshotActive": "the testcloud's Nova runs the fake virt driver, whose snapshot uploads no bytes: " +
		"Nova's createImage is accepted and the image stays queued in Glance",
}

func fixture(t testing.TB, c *openstack.Cloud, entry string) peertest.Fixture {
	fx := peertest.Fixture{
		FlavorID: testFlavor, ImageID: seededImage(t, c).ID, Project: c.ProjectID(),
		PollTimeout: 3 * time.Minute, MaxPollInterval: time.Second,
	}
	if strings.HasPrefix(entry, "testcloud") {
		fx.Gaps = testcloudGaps
		fx.ExternalNetworkID = testExternalNetwork(t)
	}
	// The tenant entry is a member of a non-admin project: Nova's policy
	// refuses it os-resetState, as a public cloud would.
	fx.Tenant = entry != adminName
	return fx
}

// testExternalNetwork is the testcloud's external network for the
// Routers section: the testcloud has none of its own, and a tenant may
// not make one, so the admin entry makes it once (198.51.100.0/24,
// TEST-NET-2; it is a vxlan network like any, with no uplink) and every
// later run finds it by name.
func testExternalNetwork(t testing.TB) string {
	t.Helper()
	const name = "cloudmux-test-external"
	admin := connect(t, adminName).Peer()
	ctx := context.Background()
	nets, err := admin.ListNetworks(ctx, peers.ListOptions{})
	if err != nil {
		t.Fatalf("listing the testcloud's networks: %v", err)
	}
	for _, n := range nets {
		if n.Name == name && n.External && len(n.Subnets) > 0 {
			return n.ID
		}
	}
	n, err := admin.CreateNetwork(ctx, peers.NetworkSpec{Name: name, Project: "admin", External: true})
	if err != nil {
		t.Fatalf("creating the testcloud's external network: %v", err)
	}
	if _, err := admin.CreateSubnet(ctx, peers.SubnetSpec{Name: name, NetworkID: n.ID, CIDR: "198.51.100.0/24", IPVersion: 4}); err != nil {
		t.Fatalf("creating the testcloud's external subnet: %v", err)
	}
	return n.ID
}

// cloudEntry is the clouds.yaml entry the tenant tests use.
func cloudEntry() string { return envOr(envCloud, "testcloud") }

// TestConformance runs the peers conformance suite against the real
// OpenStack as a tenant (a member of a non-admin project), the way a
// remote public cloud is reached.
func TestConformance(t *testing.T) {
	c := connect(t, "")
	peertest.Exercise(t, c.Peer(), fixture(t, c, cloudEntry()))
}

// TestConformanceAdmin runs the suite again with an admin token, which
// sees every project in Glance and Neutron (the driver narrows that back to
// the project's view) and reads the hypervisors' capacity.
func TestConformanceAdmin(t *testing.T) {
	if testing.Short() {
		t.Skip("the tenant run covers the suite; -short skips the admin run")
	}
	c := connect(t, adminName)
	peertest.Exercise(t, c.Peer(), fixture(t, c, adminName))
}
