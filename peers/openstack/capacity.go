package openstack

import (
	"context"
	"fmt"
	"net/http"
	"sort"

	"github.com/gophercloud/gophercloud/v2"
	cinderlimits "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/hypervisors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/objectstorage/v1/accounts"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// unlimited stands for a quota of -1 when nothing else bounds a dimension:
// large enough that placement never rules the peer out on it, small
// enough that sums over peers do not overflow.
const unlimited = int64(1) << 40

// Capacity is what the project may still place on the cloud. Two sources
// bound each dimension:
//
//   - the project's quota and usage (Nova limits: cores, RAM, instances;
//     Cinder limits: gigabytes), which is what binds a tenant of a public
//     cloud;
//   - with an admin token, the hypervisors' totals and usage (Nova's
//     os-hypervisors/statistics, asked at microversion 2.87 at most: 2.88
//     removed it), which binds a private cloud the broker runs.
//
// For each dimension the source with less free room is reported, whole
// (its total and its used), so Free() is the true headroom. Hypervisor
// totals are physical: the cloud's allocation ratios may let Used exceed
// them. A quota of -1 (unlimited) with no hypervisor view is reported as a
// very large total. Disk is the Cinder quota for a project token (Nova has
// no disk quota), the hypervisors' local disk for an admin one.
func (c *Cloud) Capacity(ctx context.Context) (registry.Capacity, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	var capa registry.Capacity
	lim, err := limits.Get(ctx, c.compute, nil).Extract()
	switch {
	case err == nil:
		a := lim.Absolute
		capa = registry.Capacity{
			VCPUs:     quota(a.MaxTotalCores, a.TotalCoresUsed),
			RAMMiB:    quota(a.MaxTotalRAMSize, a.TotalRAMUsed),
			Instances: quota(a.MaxTotalInstances, a.TotalInstancesUsed),
			DiskGiB:   registry.Resource{Total: unlimited},
		}
	case gophercloud.ResponseCodeIs(err, http.StatusNotFound):
		// A Nova-compatible API without /limits: count the project's
		// servers, with no bound.
		if capa, err = c.usageFromServers(ctx); err != nil {
			return registry.Capacity{}, err
		}
	default:
		return registry.Capacity{}, c.translate("nova: limits", err)
	}
	if c.volume != nil {
		vl, err := cinderlimits.Get(ctx, c.volume).Extract()
		switch {
		case err == nil:
			capa.DiskGiB = quota(vl.Absolute.MaxTotalVolumeGigabytes, vl.Absolute.TotalGigabytesUsed)
		case ctx.Err() != nil:
			return registry.Capacity{}, c.translate("cinder: limits", err)
		default:
			c.log.WithError(err).Debug("openstack: cinder limits unreadable; disk unbounded by quota")
		}
	}
	if c.admin {
		st, err := c.hypervisorStats(ctx)
		switch {
		case err == nil:
			capa.VCPUs = tighter(capa.VCPUs, registry.Resource{Total: int64(st.VCPUs), Used: int64(st.VCPUsUsed)})
			capa.RAMMiB = tighter(capa.RAMMiB, registry.Resource{Total: int64(st.MemoryMB), Used: int64(st.MemoryMBUsed)})
			capa.DiskGiB = tighter(capa.DiskGiB, registry.Resource{Total: int64(st.LocalGB), Used: int64(st.LocalGBUsed)})
		case ctx.Err() != nil:
			return registry.Capacity{}, c.translate("nova: hypervisor statistics", err)
		default:
			c.log.WithError(err).Debug("openstack: hypervisor statistics unreadable; quota only")
		}
	}
	if c.object != nil {
		ob, err := c.objectBytes(ctx)
		switch {
		case err == nil:
			capa.ObjectBytes = ob
		case ctx.Err() != nil:
			return registry.Capacity{}, err
		default:
			c.log.WithError(err).Warn("openstack: swift account unreadable; object bytes unknown")
		}
	}
	return capa, nil
}

// objectBytes is the Swift account's usage (X-Account-Bytes-Used) and,
// when an account quota is set (X-Account-Meta-Quota-Bytes, the
// account_quotas middleware's), its total. Without a quota the total is
// unknown, which registry.Capacity says with zero. Swift updates the
// account's counters asynchronously, so Used trails recent writes (by
// seconds).
func (c *Cloud) objectBytes(ctx context.Context) (registry.Resource, error) {
	r := accounts.Get(ctx, c.object, nil)
	if r.Err != nil {
		return registry.Resource{}, c.translate("swift: head account", r.Err)
	}
	used, err := headerInt(r.Header, "X-Account-Bytes-Used")
	if err != nil {
		return registry.Resource{}, fmt.Errorf("swift: head account: %w: %w", peers.ErrUnavailable, err)
	}
	res := registry.Resource{Used: used}
	if q := r.Header.Get("X-Account-Meta-Quota-Bytes"); q != "" {
		if res.Total, err = headerInt(r.Header, "X-Account-Meta-Quota-Bytes"); err != nil {
			return registry.Resource{}, fmt.Errorf("swift: head account: %w: %w", peers.ErrUnavailable, err)
		}
	}
	return res, nil
}

// usageFromServers sums the project's servers' flavors (embedded since
// 2.47, looked up before), against unbounded totals.
func (c *Cloud) usageFromServers(ctx context.Context) (registry.Capacity, error) {
	pages, err := servers.List(c.compute, servers.ListOpts{}).AllPages(ctx)
	if err != nil {
		return registry.Capacity{}, c.translate("nova: list servers for usage", err)
	}
	all, err := servers.ExtractServers(pages)
	if err != nil {
		return registry.Capacity{}, c.translate("nova: list servers for usage", err)
	}
	var known map[string]peers.Flavor
	capa := registry.Capacity{VCPUs: registry.Resource{Total: unlimited}, RAMMiB: registry.Resource{Total: unlimited},
		DiskGiB: registry.Resource{Total: unlimited}, Instances: registry.Resource{Total: unlimited}}
	for _, s := range all {
		if serverStatus(s.Status) == peers.ServerDeleted {
			continue
		}
		vcpus, ram, disk := num(s.Flavor["vcpus"]), num(s.Flavor["ram"]), num(s.Flavor["disk"])
		if id, ok := s.Flavor["id"].(string); ok && vcpus == 0 {
			if known == nil {
				known = map[string]peers.Flavor{}
				fs, err := c.ListFlavors(ctx)
				if err != nil {
					return registry.Capacity{}, err
				}
				for _, f := range fs {
					known[f.ID] = f
				}
			}
			f := known[id]
			vcpus, ram, disk = int64(f.VCPUs), int64(f.RAMMiB), int64(f.DiskGiB)
		}
		capa.Instances.Used++
		capa.VCPUs.Used += vcpus
		capa.RAMMiB.Used += ram
		capa.DiskGiB.Used += disk
	}
	return capa, nil
}

// num reads a JSON number gophercloud decoded as float64 or json.Number.
func num(v any) int64 {
	switch n := v.(type) {
	case float64:
		return int64(n)
	case interface{ Int64() (int64, error) }:
		i, _ := n.Int64()
		return i
	}
	return 0
}

func quota(limit, used int) registry.Resource {
	if limit < 0 {
		return registry.Resource{Total: unlimited, Used: int64(used)}
	}
	return registry.Resource{Total: int64(limit), Used: int64(used)}
}

// tighter returns whichever of a and b has less free room (b only when it
// says anything).
func tighter(a, b registry.Resource) registry.Resource {
	if b.Total <= 0 {
		return a
	}
	if b.Free() < a.Free() {
		return b
	}
	return a
}

func (c *Cloud) hypervisorStats(ctx context.Context) (*hypervisors.Statistics, error) {
	sc := *c.compute
	if c.computeMinor > 87 {
		sc.Microversion = "2.87"
	}
	return hypervisors.GetStatistics(ctx, &sc).Extract()
}

// AvailabilityZones lists the compute zones that are available, sorted.
// (peers.Cloud has no such method yet; the broker may ask for it through
// an interface of its own.)
func (c *Cloud) AvailabilityZones(ctx context.Context) ([]string, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	pages, err := availabilityzones.List(c.compute).AllPages(ctx)
	if err != nil {
		return nil, c.translate("nova: availability zones", err)
	}
	zones, err := availabilityzones.ExtractAvailabilityZones(pages)
	if err != nil {
		return nil, c.translate("nova: availability zones", err)
	}
	var out []string
	for _, z := range zones {
		if z.ZoneState.Available {
			out = append(out, z.ZoneName)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Probe is a cheap liveness check: the token (renewed if it expired) and
// one small read from Nova.
func (c *Cloud) Probe(ctx context.Context) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	_, err := c.compute.Get(ctx, c.compute.ServiceURL(""), nil, &gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return c.translate(fmt.Sprintf("openstack peer %q: probe", c.cfg.Name), err)
	}
	return nil
}
