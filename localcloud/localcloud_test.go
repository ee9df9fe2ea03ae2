package localcloud_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/localcloud/localcloudtest"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/peers/peertest"
	"github.com/cloudmux/cloudmux/registry"
)

// testLogger logs into a buffer a failing test prints.
func testLogger(t *testing.T) logrus.FieldLogger { return localcloudtest.Logger(t) }

// oneHost is a config with one roomy host.
func oneHost(t *testing.T) localcloud.Config {
	cfg := localcloud.DevDefaults(t.TempDir())
	cfg.Hosts = []localcloud.HostConfig{{Name: "host-a", URI: "fake://a", VCPUs: 16, RAMMiB: 32768, DiskGiB: 500}}
	return cfg
}

// newCloud builds a Cloud over a fake with cfg's hosts; it is closed at
// cleanup.
func newCloud(t *testing.T, cfg localcloud.Config) (*localcloud.Cloud, *fake.Driver) {
	t.Helper()
	log := testLogger(t)
	drv := fake.New(cfg.Hosts...)
	c, err := localcloud.New(cfg, drv, log)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, drv
}

// waitFor polls cond until it holds or 15 seconds pass. cond says what it
// saw, for the failure message.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	delay := time.Millisecond
	for {
		ok, seen := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after 15s; last seen: %s", what, seen)
		}
		time.Sleep(delay)
		delay = min(delay*2, 50*time.Millisecond)
	}
}

func waitServer(t *testing.T, c *localcloud.Cloud, id string, want peers.ServerStatus) peers.Server {
	t.Helper()
	var srv peers.Server
	waitFor(t, fmt.Sprintf("server %s %s", id, want), func() (bool, string) {
		var err error
		srv, err = c.GetServer(context.Background(), id)
		return err == nil && srv.Status == want, fmt.Sprintf("%s %q %v", srv.Status, srv.Fault, err)
	})
	return srv
}

func waitServerGone(t *testing.T, c *localcloud.Cloud, id string) {
	t.Helper()
	waitFor(t, "server "+id+" gone", func() (bool, string) {
		srv, err := c.GetServer(context.Background(), id)
		return errors.Is(err, peers.ErrNotFound), fmt.Sprintf("%s %v", srv.Status, err)
	})
}

func TestConformance(t *testing.T) {
	cfg := oneHost(t)
	c, drv := newCloud(t, cfg)
	seeded, err := c.Seed(t.Context())
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	peertest.Exercise(t, c, peertest.Fixture{
		FlavorID: "1", ImageID: seeded.ImageID, Project: "peertest",
		PollTimeout: 30 * time.Second, MaxPollInterval: 20 * time.Millisecond,
	})
	if t.Failed() {
		return
	}
	// Everything the suite made is gone, on the host as in the cloud.
	inv := drv.Contents("host-a")
	if len(inv.Domains) != 0 || len(inv.Volumes) != 0 || !slices.Equal(inv.Networks, []string{seeded.NetworkID}) ||
		!slices.Equal(inv.BaseVolumes, []string{localcloud.BaseImageVolume(seeded.ImageID)}) {
		t.Fatalf("host after the suite: %+v; want no domains or volumes, only the seeded network %s and the seeded image's base volume", inv, seeded.NetworkID)
	}
	capa, err := c.Capacity(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if capa.VCPUs.Used != 0 || capa.RAMMiB.Used != 0 || capa.DiskGiB.Used != 0 || capa.Instances.Used != 0 {
		t.Fatalf("capacity after the suite: %+v; want nothing used", capa)
	}
}

func TestConfigValidate(t *testing.T) {
	good := localcloud.DevDefaults("/var/lib/cloudmux")
	tests := []struct {
		name   string
		mutate func(*localcloud.Config)
		want   []string // fields, in order
	}{
		{"DevDefaultsAreValid", func(*localcloud.Config) {}, nil},
		{"Empty", func(c *localcloud.Config) { *c = localcloud.Config{} }, []string{"name", "data_dir", "hosts", "flavors"}},
		{"SeveralProblemsAtOnce", func(c *localcloud.Config) {
			c.Hosts = []localcloud.HostConfig{
				{Name: "a", URI: "qemu:///system", VCPUs: -1},
				{Name: "a", URI: ""},
			}
			c.Overcommit.CPU = -2
			c.Flavors = append(c.Flavors, peers.Flavor{ID: "1", Name: "m1.tiny", VCPUs: 0, RAMMiB: 0})
			c.ImageDeleteDelay = -time.Second
			c.ObjectQuotaBytes = -1
		}, []string{
			"hosts[0].vcpus", "hosts[1].name", "hosts[1].uri", "overcommit.cpu",
			"flavors[4].id", "flavors[4].name", "flavors[4].vcpus", "flavors[4].ram_mib", "image_delete_delay",
			"object_quota_bytes",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			cfg.Hosts = slices.Clone(good.Hosts)
			cfg.Flavors = slices.Clone(good.Flavors)
			tc.mutate(&cfg)
			err := cfg.Validate()
			var got []string
			for _, fe := range registry.FieldErrors(err) {
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Validate fields = %v, want %v\nerror: %v", got, tc.want, err)
			}
			if tc.want != nil && !errors.Is(err, registry.ErrInvalid) {
				t.Fatalf("Validate error %v does not match registry.ErrInvalid", err)
			}
			if tc.want != nil {
				if _, err := localcloud.New(cfg, fake.New(), nil); err == nil || len(registry.FieldErrors(err)) != len(tc.want) {
					t.Fatalf("New with this config = %v, want the same %d problems", err, len(tc.want))
				}
			}
		})
	}
}

func TestInfo(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	if got := c.Info(); got.Kind != registry.KindLocal || got.Driver != "fake" || got.Region != "RegionOne" {
		t.Fatalf("Info = %+v, want local, fake, RegionOne", got)
	}
}

func TestClosedCloudIsUnavailable(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListServers(t.Context(), peers.ListOptions{}); !errors.Is(err, peers.ErrUnavailable) {
		t.Fatalf("ListServers after Close = %v, want ErrUnavailable", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close = %v, want nil", err)
	}
}

func TestSeed(t *testing.T) {
	c, _ := newCloud(t, oneHost(t))
	first, err := c.Seed(t.Context())
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	again, err := c.Seed(t.Context())
	if err != nil || again != first {
		t.Fatalf("second Seed = %+v, %v; want the same %+v (idempotent)", again, err, first)
	}
	img, err := c.GetImage(t.Context(), first.ImageID)
	if err != nil {
		t.Fatal(err)
	}
	disk := localcloud.PlaceholderDisk()
	if img.Name != localcloud.SeedImageName || img.Status != peers.ImageActive || img.Visibility != "public" ||
		img.Size != int64(len(disk)) || img.Properties[localcloud.PlaceholderProperty] != "true" || img.DiskFormat != "raw" {
		t.Fatalf("seeded image = %+v\nwant an active public raw %q of %d bytes marked %s=true", img, localcloud.SeedImageName, len(disk), localcloud.PlaceholderProperty)
	}
	if disk[510] != 0x55 || disk[511] != 0xaa || len(disk)%512 != 0 || !bytes.Equal(disk, localcloud.PlaceholderDisk()) {
		t.Fatalf("placeholder disk: want whole sectors, a boot signature and the same bytes every time")
	}
	net, err := c.GetNetwork(t.Context(), first.NetworkID)
	if err != nil || net.Name != "private" || !net.Shared || !slices.Equal(net.Subnets, []string{first.SubnetID}) {
		t.Fatalf("seeded network = %+v, %v; want shared \"private\" with subnet %s", net, err, first.SubnetID)
	}
	sn, err := c.GetSubnet(t.Context(), first.SubnetID)
	if err != nil || sn.CIDR != "10.0.0.0/24" || sn.GatewayIP != "10.0.0.1" {
		t.Fatalf("seeded subnet = %+v, %v; want 10.0.0.0/24 with gateway 10.0.0.1", sn, err)
	}
}
