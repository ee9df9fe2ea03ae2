package libvirt

import (
	"context"
	"errors"
	"fmt"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// AttachDisk adds a virtio disk, to the definition and, when the domain
// runs, to the guest (hotplug).
func (d *Driver) AttachDisk(ctx context.Context, host, domainID string, disk localcloud.Disk) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	_, v, err := d.volume(ctx, h, disk.VolumeID)
	if err != nil {
		return err
	}
	vx, err := call(ctx, h, d.cfg.CallTimeout, "volume XML", func(a API) (string, error) { return a.StorageVolGetXMLDesc(v, 0) })
	if err != nil {
		return err
	}
	x, err := diskDeviceXML(d.n, disk, volumeFormat(vx))
	if err != nil {
		return err
	}
	flags, err := d.deviceFlags(ctx, host, domainID)
	if err != nil {
		return err
	}
	err = d.domainOp(ctx, host, domainID, "attach "+disk.VolumeID+" to", func(a API, dom golibvirt.Domain) error {
		return a.DomainAttachDeviceFlags(dom, x, flags)
	})
	if h.test && errors.Is(err, peers.ErrNotSupported) {
		return d.redefine(ctx, h, domainID, func(dx string) (string, error) {
			i := strings.LastIndex(dx, "</devices>")
			if i < 0 {
				return "", fmt.Errorf("libvirt: domain %s XML has no </devices>", domainID)
			}
			return dx[:i] + x + "\n" + dx[i:], nil
		})
	}
	return err
}

// redefine edits the domain's persistent XML with edit and defines it
// again: how the test:// driver, which cannot hotplug, gets disks attached
// and detached.
func (d *Driver) redefine(ctx context.Context, h *hostConn, domainID string, edit func(string) (string, error)) error {
	dom, err := d.domain(ctx, h, domainID)
	if err != nil {
		return err
	}
	dx, err := call(ctx, h, d.cfg.CallTimeout, "XML of domain "+domainID, func(a API) (string, error) {
		return a.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
	})
	if err != nil {
		return err
	}
	nx, err := edit(dx)
	if err != nil {
		return err
	}
	_, err = call(ctx, h, d.cfg.CallTimeout, "redefine domain "+domainID, func(a API) (golibvirt.Domain, error) {
		return a.DomainDefineXMLFlags(nx, 0)
	})
	return err
}

// removeDiskXML cuts the <disk> element whose source is volume out of a
// domain's XML.
func removeDiskXML(dx, volume string) (string, error) {
	for _, q := range []string{"'", "\""} {
		at := strings.Index(dx, "volume="+q+volume+q)
		if at < 0 {
			continue
		}
		start := strings.LastIndex(dx[:at], "<disk ")
		end := strings.Index(dx[at:], "</disk>")
		if start < 0 || end < 0 {
			break
		}
		end += at + len("</disk>")
		for end < len(dx) && (dx[end] == '\n' || dx[end] == ' ') {
			end++
		}
		return dx[:start] + dx[end:], nil
	}
	return "", fmt.Errorf("libvirt: no disk of volume %s in the domain XML: %w", volume, peers.ErrNotFound)
}

func (d *Driver) deviceFlags(ctx context.Context, host, domainID string) (uint32, error) {
	run, err := d.running(ctx, host, domainID)
	if err != nil {
		return 0, err
	}
	flags := uint32(golibvirt.DomainDeviceModifyConfig)
	if run {
		flags |= uint32(golibvirt.DomainDeviceModifyLive)
	}
	return flags, nil
}

// attachedDisk finds the disk of volume volumeID in the domain's
// (persistent) definition.
func (d *Driver) attachedDisk(ctx context.Context, h *hostConn, domainID, volumeID string) (diskXML, error) {
	dom, err := d.domain(ctx, h, domainID)
	if err != nil {
		return diskXML{}, err
	}
	x, err := call(ctx, h, d.cfg.CallTimeout, "XML of domain "+domainID, func(a API) (string, error) {
		return a.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
	})
	if err != nil {
		return diskXML{}, err
	}
	pd, err := parseDomainXML(x)
	if err != nil {
		return diskXML{}, fmt.Errorf("libvirt: domain %s XML: %w", domainID, err)
	}
	for _, disk := range pd.Devices.Disks {
		if disk.Source.Volume == d.n.volume(volumeID) {
			return disk, nil
		}
	}
	return diskXML{}, fmt.Errorf("libvirt: volume %s is not attached to domain %s: %w", volumeID, domainID, peers.ErrNotFound)
}

// DetachDisk removes a volume's disk from the definition and the guest.
// Unplugging from a running guest needs the guest's cooperation (ACPI
// hotplug); libvirt returns once it has asked.
func (d *Driver) DetachDisk(ctx context.Context, host, domainID, volumeID string) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	disk, err := d.attachedDisk(ctx, h, domainID, volumeID)
	if err != nil {
		return err
	}
	x, err := diskDeviceXML(d.n, localcloud.Disk{VolumeID: volumeID, Device: disk.Target.Dev}, disk.Driver.Type)
	if err != nil {
		return err
	}
	flags, err := d.deviceFlags(ctx, host, domainID)
	if err != nil {
		return err
	}
	err = d.domainOp(ctx, host, domainID, "detach "+volumeID+" from", func(a API, dom golibvirt.Domain) error {
		return a.DomainDetachDeviceFlags(dom, x, flags)
	})
	if h.test && errors.Is(err, peers.ErrNotSupported) {
		return d.redefine(ctx, h, domainID, func(dx string) (string, error) { return removeDiskXML(dx, d.n.volume(volumeID)) })
	}
	return err
}
