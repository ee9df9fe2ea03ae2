package ec2

import (
	"context"
	"sort"
	"strconv"

	"github.com/cloudmux/cloudmux/peers"
)

// Instance types are the pool's flavors, one per name (peers sharing a
// size share its name, as Nova's flavor list merges them), plus the EC2
// aliases of instanceTypes for the flavors they map to.

type instanceTypeItem struct {
	InstanceType      string        `xml:"instanceType"`
	CurrentGeneration bool          `xml:"currentGeneration"`
	VCPUs             int           `xml:"vCpuInfo>defaultVCpus"`
	MemoryMiB         int           `xml:"memoryInfo>sizeInMiB"`
	StorageSupported  bool          `xml:"instanceStorageSupported"`
	StorageGB         int           `xml:"instanceStorageInfo>totalSizeInGB,omitempty"`
	Hypervisor        string        `xml:"hypervisor"`
	Architectures     items[string] `xml:"processorInfo>supportedArchitectures"`
	RootDeviceTypes   items[string] `xml:"supportedRootDeviceTypes"`
}

func (a *API) describeInstanceTypes(ctx context.Context, c *call) (any, error) {
	// The servers service merges the peers' public flavors, one per name,
	// as Nova's list does; it is the one caller of the peers' flavor APIs.
	flavors, failed := a.Servers.PublicFlavors(ctx)
	byName := map[string]peers.Flavor{}
	for _, f := range flavors {
		byName[f.Name] = f
	}
	c.flagPartial(a.Log, "instance types", failed)
	view := func(name string, f peers.Flavor) instanceTypeItem {
		return instanceTypeItem{InstanceType: name, CurrentGeneration: true, VCPUs: f.VCPUs, MemoryMiB: f.RAMMiB,
			StorageSupported: f.DiskGiB > 0, StorageGB: f.DiskGiB, Hypervisor: "xen",
			Architectures: list([]string{"x86_64"}), RootDeviceTypes: list([]string{"instance-store"})}
	}
	var out []instanceTypeItem
	for name, f := range byName {
		out = append(out, view(name, f))
	}
	for alias, name := range instanceTypes {
		if f, ok := byName[name]; ok && alias != name {
			out = append(out, view(alias, f))
		}
	}
	wanted := c.params.list("InstanceType")
	filters := c.params.filters()
	kept := out[:0]
	for _, it := range out {
		if len(wanted) > 0 && !contains(wanted, it.InstanceType) {
			continue
		}
		if typeMatches(it, filters) {
			kept = append(kept, it)
		}
	}
	sort.Slice(kept, func(i, j int) bool { return kept[i].InstanceType < kept[j].InstanceType })
	return struct {
		Types items[instanceTypeItem] `xml:"instanceTypeSet"`
	}{list(kept)}, nil
}

func typeMatches(it instanceTypeItem, filters []filter) bool {
	for _, f := range filters {
		var v string
		switch f.Name {
		case "instance-type":
			v = it.InstanceType
		case "vcpu-info.default-vcpus":
			v = strconv.Itoa(it.VCPUs)
		case "memory-info.size-in-mib":
			v = strconv.Itoa(it.MemoryMiB)
		default:
			continue
		}
		if !matchAny(f.Values, v) {
			return false
		}
	}
	return true
}
