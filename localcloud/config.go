package localcloud

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Config describes a local cloud.
type Config struct {
	// Name names the cloud in logs.
	Name string `json:"name"`
	// DataDir holds the image store (DataDir/images) and the object store
	// (DataDir/objects). It is created if missing.
	DataDir string `json:"data_dir"`
	// Region is reported by Info; empty is fine.
	Region string `json:"region,omitempty"`
	// Hosts are the hypervisors servers are placed on.
	Hosts []HostConfig `json:"hosts"`
	// Overcommit multiplies each host's physical resources into what the
	// scheduler may hand out. Zero fields take the defaults (CPU 4, RAM 1,
	// disk 1): vCPUs idle a lot, memory and disk do not.
	Overcommit Overcommit `json:"overcommit"`
	// Flavors are the server sizes on offer.
	Flavors []peers.Flavor `json:"flavors"`
	// ImageDeleteDelay keeps a deleted image's bytes for this long (status
	// pending_delete) before they are removed, like Glance's delayed_delete.
	// Zero removes them at once.
	ImageDeleteDelay time.Duration `json:"image_delete_delay,omitempty"`
	// ObjectQuotaBytes caps the bytes of object storage: uploads past it
	// fail with ErrCapacity, and Capacity reports it as the total. Zero:
	// the filesystem under DataDir is the limit, and its size and use are
	// reported.
	ObjectQuotaBytes int64 `json:"object_quota_bytes,omitempty"`
}

// HostConfig is one hypervisor host.
type HostConfig struct {
	// Name identifies the host to the Driver and in Server.Host.
	Name string `json:"name"`
	// URI is how the driver reaches the host, e.g. qemu:///system or
	// qemu+tcp://10.0.0.2/system.
	URI string `json:"uri"`
	// VCPUs, RAMMiB and DiskGiB are the host's physical resources offered to
	// servers. Zero asks the driver (what the host reports); setting a value
	// below that reserves the rest for the host itself.
	VCPUs   int `json:"vcpus,omitempty"`
	RAMMiB  int `json:"ram_mib,omitempty"`
	DiskGiB int `json:"disk_gib,omitempty"`
}

// Overcommit holds allocation ratios, Nova's cpu/ram/disk_allocation_ratio.
type Overcommit struct {
	CPU  float64 `json:"cpu,omitempty"`
	RAM  float64 `json:"ram,omitempty"`
	Disk float64 `json:"disk,omitempty"`
}

// Default overcommit ratios, Nova's initial_*_allocation_ratio.
const (
	DefaultCPUOvercommit  = 4.0
	DefaultRAMOvercommit  = 1.0
	DefaultDiskOvercommit = 1.0
)

// withDefaults fills the zero ratios.
func (o Overcommit) withDefaults() Overcommit {
	if o.CPU == 0 {
		o.CPU = DefaultCPUOvercommit
	}
	if o.RAM == 0 {
		o.RAM = DefaultRAMOvercommit
	}
	if o.Disk == 0 {
		o.Disk = DefaultDiskOvercommit
	}
	return o
}

// Validate reports every problem of c at once, each a *registry.FieldError
// (so errors.Is(err, registry.ErrInvalid) holds and registry.FieldErrors
// lists them), joined with errors.Join.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &registry.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.Name == "" {
		bad("name", "is required")
	}
	if c.DataDir == "" {
		bad("data_dir", "is required: the image store lives there")
	}
	if len(c.Hosts) == 0 {
		bad("hosts", "at least one host is required")
	}
	hostNames := map[string]bool{}
	for i, h := range c.Hosts {
		f := fmt.Sprintf("hosts[%d]", i)
		switch {
		case h.Name == "":
			bad(f+".name", "is required")
		case hostNames[h.Name]:
			bad(f+".name", "%q is used by another host", h.Name)
		}
		hostNames[h.Name] = true
		if h.URI == "" {
			bad(f+".uri", "is required")
		}
		for _, r := range []struct {
			name string
			v    int
		}{{"vcpus", h.VCPUs}, {"ram_mib", h.RAMMiB}, {"disk_gib", h.DiskGiB}} {
			if r.v < 0 {
				bad(f+"."+r.name, "is %d; want > 0, or 0 to ask the driver", r.v)
			}
		}
	}
	for _, r := range []struct {
		name string
		v    float64
	}{{"cpu", c.Overcommit.CPU}, {"ram", c.Overcommit.RAM}, {"disk", c.Overcommit.Disk}} {
		if r.v < 0 || math.IsNaN(r.v) || math.IsInf(r.v, 0) {
			bad("overcommit."+r.name, "is %v; want a ratio > 0, or 0 for the default", r.v)
		}
	}
	if len(c.Flavors) == 0 {
		bad("flavors", "at least one flavor is required")
	}
	flavorIDs, flavorNames := map[string]bool{}, map[string]bool{}
	for i, fl := range c.Flavors {
		f := fmt.Sprintf("flavors[%d]", i)
		switch {
		case fl.ID == "":
			bad(f+".id", "is required")
		case flavorIDs[fl.ID]:
			bad(f+".id", "%q is used by another flavor", fl.ID)
		}
		flavorIDs[fl.ID] = true
		switch {
		case fl.Name == "":
			bad(f+".name", "is required")
		case flavorNames[fl.Name]:
			bad(f+".name", "%q is used by another flavor (Nova flavor names are unique)", fl.Name)
		}
		flavorNames[fl.Name] = true
		if fl.VCPUs <= 0 {
			bad(f+".vcpus", "is %d; want > 0", fl.VCPUs)
		}
		if fl.RAMMiB <= 0 {
			bad(f+".ram_mib", "is %d; want > 0", fl.RAMMiB)
		}
		if fl.DiskGiB < 0 || fl.EphemeralGiB < 0 {
			bad(f+".disk_gib", "disk %d and ephemeral %d GiB; neither may be negative", fl.DiskGiB, fl.EphemeralGiB)
		}
	}
	if c.ImageDeleteDelay < 0 {
		bad("image_delete_delay", "is %v; want >= 0", c.ImageDeleteDelay)
	}
	if c.ObjectQuotaBytes < 0 {
		bad("object_quota_bytes", "is %d; want > 0, or 0 for the filesystem's size", c.ObjectQuotaBytes)
	}
	return errors.Join(errs...)
}

// DevFlavors are the flavors a fresh devstack has, with devstack's IDs.
func DevFlavors() []peers.Flavor {
	return []peers.Flavor{
		{ID: "42", Name: "m1.nano", VCPUs: 1, RAMMiB: 128, DiskGiB: 1, IsPublic: true},
		{ID: "1", Name: "m1.tiny", VCPUs: 1, RAMMiB: 512, DiskGiB: 1, IsPublic: true},
		{ID: "2", Name: "m1.small", VCPUs: 1, RAMMiB: 2048, DiskGiB: 20, IsPublic: true},
		{ID: "3", Name: "m1.medium", VCPUs: 2, RAMMiB: 4096, DiskGiB: 40, IsPublic: true},
	}
}

// DevDefaults is a one-host cloud on the local libvirtd with devstack's
// flavors, for `serve -dev` and tests. The host's resources come from the
// driver. Seed adds the image and network devstack would have.
func DevDefaults(dataDir string) Config {
	return Config{
		Name:       "local",
		DataDir:    dataDir,
		Region:     "RegionOne",
		Hosts:      []HostConfig{{Name: "localhost", URI: "qemu:///system"}},
		Overcommit: Overcommit{}.withDefaults(),
		Flavors:    DevFlavors(),
	}
}
