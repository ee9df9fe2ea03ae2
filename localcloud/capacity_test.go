package localcloud_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// twoHosts: host-a has more vCPUs, host-b more RAM; no overcommit unless a
// test sets it.
func twoHosts(t *testing.T) localcloud.Config {
	cfg := localcloud.DevDefaults(t.TempDir())
	cfg.Hosts = []localcloud.HostConfig{
		{Name: "host-a", URI: "fake://a", VCPUs: 4, RAMMiB: 4096, DiskGiB: 100},
		{Name: "host-b", URI: "fake://b", VCPUs: 2, RAMMiB: 8192, DiskGiB: 100},
	}
	cfg.Overcommit = localcloud.Overcommit{CPU: 1, RAM: 1, Disk: 1}
	cfg.Flavors = append(cfg.Flavors,
		peers.Flavor{ID: "cpu1", Name: "cpu1", VCPUs: 1, RAMMiB: 128, DiskGiB: 1},
		peers.Flavor{ID: "huge", Name: "huge", VCPUs: 2, RAMMiB: 16384, DiskGiB: 10},
	)
	return cfg
}

// seededServer boots a server of flavor from the seeded image and waits for
// the outcome the test expects.
func bootFlavor(t *testing.T, c *localcloud.Cloud, img, flavor, az string) (peers.Server, error) {
	t.Helper()
	return c.CreateServer(t.Context(), peers.ServerSpec{
		Name: "s-" + flavor, Project: "p", FlavorID: flavor, ImageID: img, AvailabilityZone: az,
	})
}

func seed(t *testing.T, c *localcloud.Cloud) localcloud.Seeded {
	t.Helper()
	s, err := c.Seed(t.Context())
	if err != nil {
		t.Fatalf("Seed: %v", err)
	}
	return s
}

func TestHostSelection(t *testing.T) {
	tests := []struct {
		name     string
		cpuRatio float64
		flavors  []string // booted in order
		az       string
		want     []string // host of each, or "capacity"/"invalid" for a refusal
	}{
		// host-b has most free RAM, until two m1.small leave it 4096, then
		// ties go to host-a (earlier in the config), which then has most.
		{"SpreadsByFreeRAM", 1, []string{"2", "2", "2"}, "", []string{"host-b", "host-b", "host-a"}},
		{"FitsNowhere", 1, []string{"huge"}, "", []string{"capacity"}},
		// 6 physical vCPUs: host-b (more RAM) takes two, host-a four, and
		// the 7th one-vCPU server does not fit...
		{"NoCPUOvercommit", 1, []string{"cpu1", "cpu1", "cpu1", "cpu1", "cpu1", "cpu1", "cpu1"}, "",
			[]string{"host-b", "host-b", "host-a", "host-a", "host-a", "host-a", "capacity"}},
		// ...but with a ratio of 2, host-a alone takes 8.
		{"CPUOvercommit", 2, []string{"cpu1", "cpu1", "cpu1", "cpu1", "cpu1", "cpu1", "cpu1", "cpu1", "cpu1"}, "nova:host-a",
			[]string{"host-a", "host-a", "host-a", "host-a", "host-a", "host-a", "host-a", "host-a", "capacity"}},
		{"ForcedHost", 1, []string{"1"}, "nova:host-a", []string{"host-a"}},
		{"UnknownForcedHost", 1, []string{"1"}, "nova:host-z", []string{"invalid"}},
		{"UnknownZone", 1, []string{"1"}, "elsewhere", []string{"invalid"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := twoHosts(t)
			cfg.Overcommit.CPU = tc.cpuRatio
			c, _ := newCloud(t, cfg)
			img := seed(t, c).ImageID
			for i, fl := range tc.flavors {
				srv, err := bootFlavor(t, c, img, fl, tc.az)
				switch want := tc.want[i]; want {
				case "capacity", "invalid":
					sentinel := map[string]error{"capacity": peers.ErrCapacity, "invalid": peers.ErrInvalid}[want]
					if !errors.Is(err, sentinel) {
						t.Fatalf("server %d (flavor %s): got %+v, %v; want %v", i, fl, srv, err, sentinel)
					}
					if want == "capacity" && !strings.Contains(err.Error(), "host-a has") {
						t.Fatalf("capacity error %q does not say what each host has left", err)
					}
				default:
					if err != nil || srv.Host != want {
						t.Fatalf("server %d (flavor %s): host %q, error %v; want host %s", i, fl, srv.Host, err, want)
					}
				}
			}
		})
	}
}

func TestCapacityFollowsServers(t *testing.T) {
	c, _ := newCloud(t, twoHosts(t))
	img := seed(t, c).ImageID
	capa, err := c.Capacity(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// 6 vCPUs, 12 GiB, 200 GiB; the smallest flavor (cpu1: 1 vCPU, 128
	// MiB, 1 GiB) fits 4+2 times by vCPU.
	if capa.VCPUs.Total != 6 || capa.RAMMiB.Total != 12288 || capa.DiskGiB.Total != 200 || capa.Instances.Total != 6 || capa.VCPUs.Used != 0 {
		t.Fatalf("empty cloud capacity = %+v", capa)
	}
	srv, err := bootFlavor(t, c, img, "3", "") // m1.medium: 2 vCPU, 4096 MiB, 40 GiB
	if err != nil {
		t.Fatal(err)
	}
	used := func() [4]int64 {
		capa, err := c.Capacity(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return [4]int64{capa.VCPUs.Used, capa.RAMMiB.Used, capa.DiskGiB.Used, capa.Instances.Used}
	}
	// Counted from the moment the server is accepted, not once it is ACTIVE.
	if got := used(); got != [4]int64{2, 4096, 40, 1} {
		t.Fatalf("used with one m1.medium building = %v, want [2 4096 40 1]", got)
	}
	waitServer(t, c, srv.ID, peers.ServerActive)
	vol, err := c.CreateVolume(t.Context(), peers.VolumeSpec{Name: "v", Project: "p", SizeGiB: 5})
	if err != nil {
		t.Fatal(err)
	}
	if got := used(); got != [4]int64{2, 4096, 45, 1} {
		t.Fatalf("used with a 5 GiB volume too = %v, want [2 4096 45 1]", got)
	}
	if err := c.DeleteServer(t.Context(), srv.ID); err != nil {
		t.Fatal(err)
	}
	waitServerGone(t, c, srv.ID)
	waitFor(t, "volume available", func() (bool, string) {
		v, err := c.GetVolume(context.Background(), vol.ID)
		return v.Status == peers.VolumeAvailable, string(v.Status) + " " + errString(err)
	})
	if err := c.DeleteVolume(t.Context(), vol.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "volume gone", func() (bool, string) {
		_, err := c.GetVolume(context.Background(), vol.ID)
		return errors.Is(err, peers.ErrNotFound), errString(err)
	})
	if got := used(); got != [4]int64{} {
		t.Fatalf("used after deleting everything = %v, want zeros", got)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}

func TestImageRequirementsAtBoot(t *testing.T) {
	tests := []struct {
		name    string
		minRAM  int
		minDisk int
		upload  bool
		flavor  string
		want    error
		wantMsg string
	}{
		{"Fits", 512, 1, true, "1", nil, ""},
		{"MinRAMTooBig", 1024, 0, true, "1", peers.ErrInvalid, "min_ram 1024"},
		{"MinDiskTooBig", 0, 10, true, "1", peers.ErrInvalid, "min_disk 10"},
		{"LargerFlavorFits", 1024, 10, true, "2", nil, ""},
		{"NotActive", 0, 0, false, "1", peers.ErrInvalid, "is queued"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newCloud(t, oneHost(t))
			img, err := c.CreateImage(t.Context(), peers.ImageSpec{Name: "i", Project: "p", DiskFormat: "raw", ContainerFormat: "bare", MinRAMMiB: tc.minRAM, MinDiskGiB: tc.minDisk})
			if err != nil {
				t.Fatal(err)
			}
			if tc.upload {
				if err := c.UploadImage(t.Context(), img.ID, bytes.NewReader(localcloud.PlaceholderDisk()), -1); err != nil {
					t.Fatal(err)
				}
			}
			srv, err := bootFlavor(t, c, img.ID, tc.flavor, "")
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CreateServer: %v", err)
				}
				waitServer(t, c, srv.ID, peers.ServerActive)
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
				t.Fatalf("CreateServer = %v; want %v saying %q", err, tc.want, tc.wantMsg)
			}
			if capa, _ := c.Capacity(t.Context()); capa.Instances.Used != 0 {
				t.Fatalf("a refused server holds capacity: %+v", capa)
			}
		})
	}
}
