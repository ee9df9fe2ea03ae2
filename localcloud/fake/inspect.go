package fake

import (
	"context"
	"maps"
	"slices"
	"strings"

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

// Inventory lists the IDs of what exists on a host, sorted (see
// Driver.Inventory for the localcloud.Inventorier view). Base image
// volumes (localcloud.BaseImageVolume: a cache of images on the host) are
// listed apart from the other volumes.
type Inventory struct {
	Domains     []string
	Volumes     []string
	BaseVolumes []string
	Networks    []string
}

// Contents returns the IDs of what exists on a host, so a test can check
// that the cloud cleaned up after itself.
func (d *Driver) Contents(hostName string) Inventory {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[hostName]
	if h == nil {
		return Inventory{}
	}
	inv := Inventory{
		Domains:  slices.Sorted(maps.Keys(h.domains)),
		Networks: slices.Sorted(maps.Keys(h.networks)),
	}
	for _, id := range slices.Sorted(maps.Keys(h.volumes)) {
		if strings.HasPrefix(id, localcloud.BaseImageVolume("")) {
			inv.BaseVolumes = append(inv.BaseVolumes, id)
		} else {
			inv.Volumes = append(inv.Volumes, id)
		}
	}
	return inv
}

var _ localcloud.Inventorier = (*Driver)(nil)

// Inventory lists the host's domains, volumes and networks, as
// localcloud.Inventorier.
func (d *Driver) Inventory(ctx context.Context, hostName string) (localcloud.HostInventory, error) {
	h, err := d.lock(ctx, OpInventory, hostName, "")
	if err != nil {
		return localcloud.HostInventory{}, err
	}
	defer d.mu.Unlock()
	var inv localcloud.HostInventory
	for _, id := range slices.Sorted(maps.Keys(h.domains)) {
		dom := h.domains[id]
		spec := dom.spec
		spec.PublicKey, spec.UserData = "", nil
		spec.Disks, spec.NICs, spec.Metadata = slices.Clone(spec.Disks), slices.Clone(spec.NICs), maps.Clone(spec.Metadata)
		inv.Domains = append(inv.Domains, localcloud.InventoryDomain{DomainSpec: spec, State: dom.state})
	}
	for _, id := range slices.Sorted(maps.Keys(h.volumes)) {
		v := h.volumes[id].spec
		v.SizeBytes, v.SizeGiB = v.Bytes(), 0
		if v.Format == "" {
			v.Format = localcloud.VolumeQCOW2
		}
		inv.Volumes = append(inv.Volumes, v)
	}
	inv.Networks = slices.Sorted(maps.Keys(h.networks))
	return inv, nil
}

// PortFilter returns the filter a host holds for a port.
func (d *Driver) PortFilter(hostName, portID string) (localcloud.PortFilter, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[hostName]
	if h == nil {
		return localcloud.PortFilter{}, false
	}
	f, ok := h.filters[portID]
	return f, ok
}
