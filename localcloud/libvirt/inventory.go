package libvirt

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/cloudmux/cloudmux/localcloud"
)

var _ localcloud.Inventorier = (*Driver)(nil)

// Inventory lists what the driver made on host (everything named with the
// prefix): domains with the spec read back from their cloudmux
// <metadata>, pool volumes with capacity, format and backing volume, and
// networks.
func (d *Driver) Inventory(ctx context.Context, host string) (localcloud.HostInventory, error) {
	h, err := d.host(host)
	if err != nil {
		return localcloud.HostInventory{}, err
	}
	to := d.cfg.CallTimeout
	var inv localcloud.HostInventory
	doms, err := call(ctx, h, to, "list domains", func(a API) ([]golibvirt.Domain, error) {
		doms, _, err := a.ConnectListAllDomains(1, golibvirt.ConnectListDomainsActive|golibvirt.ConnectListDomainsInactive)
		return doms, err
	})
	if err != nil {
		return inv, err
	}
	legacyRunning := false
	for _, dom := range doms {
		if !strings.HasPrefix(dom.Name, d.cfg.Prefix) {
			continue
		}
		x, err := call(ctx, h, to, "XML of domain "+dom.Name, func(a API) (string, error) {
			return a.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
		})
		if err != nil {
			return inv, err
		}
		spec, err := specFromXML(x, d.cfg.Prefix)
		if err != nil {
			return inv, fmt.Errorf("libvirt: domain %s: %w", dom.Name, err)
		}
		if spec.ID == "" { // ours by name, but without metadata
			continue
		}
		st, err := d.DomainState(ctx, host, spec.ID)
		if err != nil {
			return inv, err
		}
		pd, _ := parseDomainXML(x)
		if eps, ok := endpointsOf(pd); ok {
			// The switch (new after a restart) reopens the NICs' ports
			// where they were: running guests carry on.
			if _, err := d.addPorts(host, spec, eps); err != nil {
				// Its guest is cut off (its switch address taken by
				// another process meanwhile): the rest of the host is
				// still recovered, and a restart of the guest does not
				// help, so say so loudly.
				d.log.WithError(err).WithField("server", spec.ID).Error("reopening the switch ports of a domain failed: its guest has no network until the broker restarts with its addresses free")
			}
		} else {
			if err := d.adoptDomain(ctx, h, spec, pd); err != nil {
				return inv, err
			}
			if st != localcloud.DomainShutoff {
				legacyRunning = true
			}
		}
		inv.Domains = append(inv.Domains, localcloud.InventoryDomain{DomainSpec: spec, State: st})
	}
	d.removeLegacy(ctx, h, legacyRunning)
	if err := d.refreshPool(ctx, h); err != nil {
		return inv, err
	}
	p, err := d.pool(ctx, h)
	if err != nil {
		return inv, err
	}
	vols, err := call(ctx, h, to, "list volumes", func(a API) ([]golibvirt.StorageVol, error) {
		vols, _, err := a.StoragePoolListAllVolumes(p, 1, 0)
		return vols, err
	})
	if err != nil {
		return inv, err
	}
	for _, v := range vols {
		id, ok := strings.CutPrefix(v.Name, d.cfg.Prefix)
		if !ok || strings.HasSuffix(id, "-config.iso") || strings.HasSuffix(id, "-console.log") {
			continue
		}
		x, err := call(ctx, h, to, "XML of volume "+v.Name, func(a API) (string, error) { return a.StorageVolGetXMLDesc(v, 0) })
		if err != nil {
			return inv, err
		}
		inv.Volumes = append(inv.Volumes, d.volumeFromXML(id, x))
	}
	inv.Networks = d.networksOn(host)
	return inv, nil
}

// adoptDomain redefines a domain an earlier version defined with its
// NICs on libvirt networks (filtered by nwfilters): the same domain, its
// NICs on switch ports. A running one keeps its old NICs until its next
// power cycle (libvirt changes the persistent definition only), so it is
// cut off meanwhile: the log says so.
func (d *Driver) adoptDomain(ctx context.Context, h *hostConn, spec localcloud.DomainSpec, pd parsedDomain) error {
	o := domainOptions{Arch: d.cfg.Arch, Machine: d.cfg.Machine, DiskFormats: map[string]string{}}
	for _, disk := range pd.Devices.Disks {
		if disk.Target.Dev == configDriveDevice {
			o.ConfigDrive = true
			continue
		}
		o.DiskFormats[strings.TrimPrefix(disk.Source.Volume, d.cfg.Prefix)] = disk.Driver.Type
	}
	if err := d.defineOnSwitch(ctx, h, spec, o, "redefine"); err != nil {
		return fmt.Errorf("libvirt: domain %s of an earlier version: moving its NICs to the switch: %w", spec.ID, err)
	}
	d.log.WithField("server", spec.ID).Warn("domain of an earlier version redefined with its NICs on the user-space switch; " +
		"a running guest keeps its old libvirt-network NICs, cut off, until it is stopped and started")
	return nil
}

// specFromXML rebuilds a DomainSpec from a domain's XML and its cloudmux
// metadata.
func specFromXML(x, prefix string) (localcloud.DomainSpec, error) {
	pd, err := parseDomainXML(x)
	if err != nil {
		return localcloud.DomainSpec{}, err
	}
	m := pd.Metadata.Server
	if m == nil {
		return localcloud.DomainSpec{}, nil
	}
	spec := localcloud.DomainSpec{ID: m.ID, Name: m.Name, KeyName: m.KeyName, VCPUs: pd.VCPU, RAMMiB: int(memMiB(pd.Memory))}
	if len(m.Metadata) > 0 {
		spec.Metadata = map[string]string{}
		for _, kv := range m.Metadata {
			spec.Metadata[kv.Key] = kv.Value
		}
	}
	// Disks as they are now (attached volumes included), not as defined.
	for _, disk := range pd.Devices.Disks {
		if disk.ReadOnly != nil || disk.Target.Dev == configDriveDevice {
			continue
		}
		id := strings.TrimPrefix(disk.Source.Volume, prefix)
		spec.Disks = append(spec.Disks, localcloud.Disk{VolumeID: id, Device: disk.Target.Dev})
	}
	for _, n := range m.NICs {
		spec.NICs = append(spec.NICs, localcloud.NIC{PortID: n.Port, NetworkID: n.Network, MAC: n.MAC, IPs: n.IPs, Gateway: n.Gateway, Filtered: n.Filtered})
	}
	return spec, nil
}

func memMiB(u unitValue) int64 {
	switch strings.ToLower(u.Unit) {
	case "b", "bytes":
		return u.Value >> 20
	case "mib", "m":
		return u.Value
	case "gib", "g":
		return u.Value << 10
	default: // KiB, libvirt's own
		return u.Value >> 10
	}
}

// volumeFromXML reads a pool volume's capacity, format and backing volume.
func (d *Driver) volumeFromXML(id, x string) localcloud.PoolVolume {
	var v struct {
		Capacity unitValue `xml:"capacity"`
		Target   struct {
			Format struct {
				Type string `xml:"type,attr"`
			} `xml:"format"`
		} `xml:"target"`
		BackingStore struct {
			Path   string `xml:"path"`
			Format struct {
				Type string `xml:"type,attr"`
			} `xml:"format"`
		} `xml:"backingStore"`
	}
	_ = xml.Unmarshal([]byte(x), &v)
	pv := localcloud.PoolVolume{ID: id, SizeBytes: v.Capacity.Value, Format: v.Target.Format.Type}
	if p := v.BackingStore.Path; p != "" {
		base := p[strings.LastIndex(p, "/")+1:]
		pv.BackingID = strings.TrimPrefix(base, d.cfg.Prefix)
		pv.BackingFormat = v.BackingStore.Format.Type
	}
	return pv
}
