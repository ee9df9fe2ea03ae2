package localcloud

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// host is a hypervisor's resources and what is allocated on it.
type host struct {
	cfg       HostConfig
	physical  HostResources // config values, the driver's where config says 0
	known     bool          // physical is filled in
	used      HostResources // flavors of servers placed here, volumes in its pool
	instances int64
}

// total is what the scheduler may hand out: physical times the ratios.
func (h *host) total(o Overcommit) HostResources {
	return HostResources{
		VCPUs:   int64(math.Floor(float64(h.physical.VCPUs) * o.CPU)),
		RAMMiB:  int64(math.Floor(float64(h.physical.RAMMiB) * o.RAM)),
		DiskGiB: int64(math.Floor(float64(h.physical.DiskGiB) * o.Disk)),
	}
}

func (h *host) free(o Overcommit) HostResources { return h.total(o).sub(h.used) }

// knowHosts fills in each host's physical resources the first time they are
// needed, asking the driver for what the config leaves at zero. It runs
// without c.mu: a driver call may take a while and must not stall the cloud.
func (c *Cloud) knowHosts(ctx context.Context) error {
	c.mu.Lock()
	var need []*host
	for _, h := range c.hosts {
		if !h.known {
			need = append(need, h)
		}
	}
	c.mu.Unlock()
	for _, h := range need {
		res := HostResources{VCPUs: int64(h.cfg.VCPUs), RAMMiB: int64(h.cfg.RAMMiB), DiskGiB: int64(h.cfg.DiskGiB)}
		if res.VCPUs == 0 || res.RAMMiB == 0 || res.DiskGiB == 0 {
			reported, err := c.driver.HostResources(ctx, h.cfg.Name)
			if err != nil {
				return fmt.Errorf("host %s: reading its resources: %w", h.cfg.Name, err)
			}
			res.VCPUs = cmpOr(res.VCPUs, reported.VCPUs)
			res.RAMMiB = cmpOr(res.RAMMiB, reported.RAMMiB)
			res.DiskGiB = cmpOr(res.DiskGiB, reported.DiskGiB)
		}
		c.mu.Lock()
		h.physical, h.known = res, true
		c.mu.Unlock()
		c.log.WithFields(logrus.Fields{"host": h.cfg.Name, "vcpus": res.VCPUs, "ram_mib": res.RAMMiB, "disk_gib": res.DiskGiB}).Info("host resources known")
	}
	return nil
}

func cmpOr(v, fallback int64) int64 {
	if v != 0 {
		return v
	}
	return fallback
}

// Capacity reports totals after overcommit (what the scheduler may hand
// out, so Free is what is left to place) and what servers and volumes use.
// Instances.Total is how many servers of the smallest flavor would fit.
// ObjectBytes is the object store's (objectStore.capacity).
func (c *Cloud) Capacity(ctx context.Context) (registry.Capacity, error) {
	if err := ctx.Err(); err != nil {
		return registry.Capacity{}, err
	}
	if err := c.knowHosts(ctx); err != nil {
		return registry.Capacity{}, err
	}
	if err := c.begin(ctx); err != nil {
		return registry.Capacity{}, err
	}
	defer c.mu.Unlock()
	smallest := c.smallestFlavor()
	var out registry.Capacity
	for _, h := range c.hosts {
		t := h.total(c.cfg.Overcommit)
		out.VCPUs.Total += t.VCPUs
		out.RAMMiB.Total += t.RAMMiB
		out.DiskGiB.Total += t.DiskGiB
		out.VCPUs.Used += h.used.VCPUs
		out.RAMMiB.Used += h.used.RAMMiB
		out.DiskGiB.Used += h.used.DiskGiB
		out.Instances.Used += h.instances
		slots := min(t.VCPUs/smallest.VCPUs, t.RAMMiB/smallest.RAMMiB)
		if smallest.DiskGiB > 0 {
			slots = min(slots, t.DiskGiB/smallest.DiskGiB)
		}
		out.Instances.Total += slots
	}
	objects, err := c.objects.capacity()
	if err != nil {
		return registry.Capacity{}, err
	}
	out.ObjectBytes = objects
	return out, nil
}

// smallestFlavor is the least of every dimension over the flavors (Validate
// guarantees vCPUs and RAM > 0).
func (c *Cloud) smallestFlavor() HostResources {
	s := HostResources{VCPUs: math.MaxInt64, RAMMiB: math.MaxInt64, DiskGiB: math.MaxInt64}
	for _, f := range c.flavors {
		s.VCPUs = min(s.VCPUs, int64(f.VCPUs))
		s.RAMMiB = min(s.RAMMiB, int64(f.RAMMiB))
		s.DiskGiB = min(s.DiskGiB, int64(f.DiskGiB+f.EphemeralGiB))
	}
	return s
}

// flavorNeeds is what a server of f takes from its host. A server booted
// from a volume takes no local disk: its root lives in the volume, which
// is accounted on its own.
func flavorNeeds(f peers.Flavor, bootFromVolume bool) HostResources {
	r := HostResources{VCPUs: int64(f.VCPUs), RAMMiB: int64(f.RAMMiB), DiskGiB: int64(f.EphemeralGiB)}
	if !bootFromVolume {
		r.DiskGiB += int64(f.DiskGiB)
	}
	return r
}

// placement says how to choose among hosts with room.
type placement int

const (
	// spreadByRAM prefers the host with most free RAM, then vCPUs (Nova's
	// default weighers): servers spread out, so one host's loss hurts less.
	spreadByRAM placement = iota
	// mostFreeDisk prefers the host with most free disk, for volumes.
	mostFreeDisk
)

// pickHost returns the host need fits on best, or ErrCapacity naming what
// each host has left. forced limits the choice to one host. Callers hold
// c.mu and have run knowHosts.
func (c *Cloud) pickHost(need HostResources, forced string, how placement) (*host, error) {
	var best *host
	var bestFree HostResources
	var report []string
	for _, h := range c.hosts {
		if forced != "" && h.cfg.Name != forced {
			continue
		}
		free := h.free(c.cfg.Overcommit)
		if !h.known || !need.fits(free) {
			report = append(report, fmt.Sprintf("%s has %d vCPU, %d MiB, %d GiB free", h.cfg.Name, max(free.VCPUs, 0), max(free.RAMMiB, 0), max(free.DiskGiB, 0)))
			continue
		}
		if best == nil || better(free, bestFree, how) {
			best, bestFree = h, free
		}
	}
	if forced != "" && best == nil && len(report) == 0 {
		return nil, errf(peers.ErrInvalid, "no host named %q", forced)
	}
	if best == nil {
		return nil, errf(peers.ErrCapacity, "no host has room for %d vCPU, %d MiB RAM, %d GiB disk (overcommit cpu %.1f, ram %.1f, disk %.1f): %s",
			need.VCPUs, need.RAMMiB, need.DiskGiB, c.cfg.Overcommit.CPU, c.cfg.Overcommit.RAM, c.cfg.Overcommit.Disk, strings.Join(report, "; "))
	}
	return best, nil
}

// better reports whether free a beats free b; ties keep the earlier host,
// so placement is deterministic.
func better(a, b HostResources, how placement) bool {
	if how == mostFreeDisk {
		return a.DiskGiB > b.DiskGiB
	}
	if a.RAMMiB != b.RAMMiB {
		return a.RAMMiB > b.RAMMiB
	}
	return a.VCPUs > b.VCPUs
}

// hostNamed returns the host called name; callers hold c.mu.
func (c *Cloud) hostNamed(name string) *host {
	for _, h := range c.hosts {
		if h.cfg.Name == name {
			return h
		}
	}
	return nil
}
