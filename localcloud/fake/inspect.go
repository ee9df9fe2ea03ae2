package fake

import (
	"maps"
	"slices"

	"github.com/cloudmux/cloudmux/localcloud"
)

// Domain returns a domain's definition and state, for tests to check what
// the cloud asked for.
func (d *Driver) Domain(hostName, id string) (localcloud.DomainSpec, localcloud.DomainState, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[hostName]
	if h == nil || h.domains[id] == nil {
		return localcloud.DomainSpec{}, "", false
	}
	dom := h.domains[id]
	spec := dom.spec
	spec.Disks = slices.Clone(spec.Disks)
	spec.NICs = slices.Clone(spec.NICs)
	spec.Metadata = maps.Clone(spec.Metadata)
	return spec, dom.state, true
}

// VolumeInfo is what the fake knows of a pool volume.
type VolumeInfo struct {
	localcloud.PoolVolume
	Written    int64  // bytes UploadVolume wrote
	SHA256     string // of those bytes, hex
	AttachedTo string // domain ID, or ""
}

// Volume returns a pool volume's record.
func (d *Driver) Volume(hostName, id string) (VolumeInfo, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[hostName]
	if h == nil || h.volumes[id] == nil {
		return VolumeInfo{}, false
	}
	v := h.volumes[id]
	return VolumeInfo{PoolVolume: v.spec, Written: v.written, SHA256: v.sha256, AttachedTo: v.attachedTo}, true
}

// Inventory lists the IDs of what exists on a host, sorted.
type Inventory struct {
	Domains  []string
	Volumes  []string
	Networks []string
}

// Inventory returns what exists on a host, so a test can check that the
// cloud cleaned up after itself.
func (d *Driver) Inventory(hostName string) Inventory {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[hostName]
	if h == nil {
		return Inventory{}
	}
	return Inventory{
		Domains:  slices.Sorted(maps.Keys(h.domains)),
		Volumes:  slices.Sorted(maps.Keys(h.volumes)),
		Networks: slices.Sorted(maps.Keys(h.networks)),
	}
}
