package libvirt

import (
	"encoding/xml"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/cloudmux/cloudmux/localcloud"
)

// MetadataNS is the XML namespace of the <metadata> element cloudmux puts
// in every domain it defines, so a host's domains can be told apart from
// others' and the cloud's records rebuilt from them.
const MetadataNS = "https://github.com/cloudmux/cloudmux/xmlns/libvirt/server/1"

// configDriveDevice is the target of the config drive: last, so the
// volumes the cloud attaches (vdb, vdc, ...) keep their names.
const configDriveDevice = "vdz"

// domainXML is the subset of libvirt's domain XML cloudmux writes.
type domainXML struct {
	XMLName  xml.Name     `xml:"domain"`
	Type     string       `xml:"type,attr"`
	Name     string       `xml:"name"`
	UUID     string       `xml:"uuid"`
	Title    string       `xml:"title,omitempty"`
	Metadata *metadataXML `xml:"metadata"`
	Memory   unitValue    `xml:"memory"`
	VCPU     int          `xml:"vcpu"`
	OS       osXML        `xml:"os"`
	Features *featuresXML `xml:"features"`
	Clock    clockXML     `xml:"clock"`
	OnOff    string       `xml:"on_poweroff"`
	OnReboot string       `xml:"on_reboot"`
	OnCrash  string       `xml:"on_crash"`
	Devices  devicesXML   `xml:"devices"`
}

type unitValue struct {
	Unit  string `xml:"unit,attr"`
	Value int64  `xml:",chardata"`
}

type osXML struct {
	Type struct {
		Arch    string `xml:"arch,attr"`
		Machine string `xml:"machine,attr"`
		Value   string `xml:",chardata"`
	} `xml:"type"`
	Boot struct {
		Dev string `xml:"dev,attr"`
	} `xml:"boot"`
}

type featuresXML struct {
	ACPI struct{} `xml:"acpi"`
	APIC struct{} `xml:"apic"`
}

type clockXML struct {
	Offset string `xml:"offset,attr"`
}

type devicesXML struct {
	Disks      []diskXML      `xml:"disk"`
	Interfaces []interfaceXML `xml:"interface"`
	Serials    []serialXML    `xml:"serial"`
	Consoles   []consoleXML   `xml:"console"`
}

type diskXML struct {
	XMLName xml.Name `xml:"disk"`
	Type    string   `xml:"type,attr"`
	Device  string   `xml:"device,attr"`
	Driver  struct {
		Name  string `xml:"name,attr"`
		Type  string `xml:"type,attr"`
		Cache string `xml:"cache,attr,omitempty"`
	} `xml:"driver"`
	Source struct {
		Pool   string `xml:"pool,attr"`
		Volume string `xml:"volume,attr"`
	} `xml:"source"`
	Target struct {
		Dev string `xml:"dev,attr"`
		Bus string `xml:"bus,attr"`
	} `xml:"target"`
	ReadOnly *struct{} `xml:"readonly"`
	Serial   string    `xml:"serial,omitempty"`
}

type interfaceXML struct {
	Type string `xml:"type,attr"`
	MAC  struct {
		Address string `xml:"address,attr"`
	} `xml:"mac"`
	// Source is the switch port's UDP address the NIC sends its frames
	// to; Local the NIC's own, where QEMU receives them.
	Source struct {
		Address string `xml:"address,attr"`
		Port    uint16 `xml:"port,attr"`
		Local   struct {
			Address string `xml:"address,attr"`
			Port    uint16 `xml:"port,attr"`
		} `xml:"local"`
	} `xml:"source"`
	Model struct {
		Type string `xml:"type,attr"`
	} `xml:"model"`
}

type serialXML struct {
	Type   string `xml:"type,attr"`
	Source struct {
		Path   string `xml:"path,attr"`
		Append string `xml:"append,attr,omitempty"`
	} `xml:"source"`
	Target struct {
		Port int `xml:"port,attr"`
	} `xml:"target"`
}

type consoleXML struct {
	Type   string `xml:"type,attr"`
	Source struct {
		Path string `xml:"path,attr"`
	} `xml:"source"`
	Target struct {
		Type string `xml:"type,attr"`
		Port int    `xml:"port,attr"`
	} `xml:"target"`
}

// metadataXML is <metadata><cmx:server xmlns:cmx=MetadataNS>...; libvirt
// keeps foreign elements in <metadata> verbatim.
type metadataXML struct {
	Server serverMetaXML `xml:"cmx:server"`
}

type serverMetaXML struct {
	NS       string        `xml:"xmlns:cmx,attr"`
	ID       string        `xml:"cmx:id"`
	Name     string        `xml:"cmx:name"`
	KeyName  string        `xml:"cmx:key_name,omitempty"`
	Metadata []metaItemXML `xml:"cmx:meta"`
	Disks    []metaDiskXML `xml:"cmx:disk"`
	NICs     []metaNICXML  `xml:"cmx:nic"`
}

type metaItemXML struct {
	Key   string `xml:"key,attr"`
	Value string `xml:",chardata"`
}

type metaDiskXML struct {
	Volume string `xml:"volume,attr"`
	Device string `xml:"device,attr"`
}

type metaNICXML struct {
	Port    string   `xml:"port,attr"`
	Network string   `xml:"network,attr"`
	MAC     string   `xml:"mac,attr"`
	Gateway string   `xml:"gateway,attr,omitempty"`
	IPs     []string `xml:"cmx:ip"`
	// Filtered: the port's traffic is filtered by its security groups.
	Filtered bool `xml:"filtered,attr,omitempty"`
	// Switch and NIC are the UDP endpoints of the NIC's switch port
	// (vswitch.Port), so a restarted broker's switch reopens them.
	Switch string `xml:"switch,attr,omitempty"`
	NIC    string `xml:"nic,attr,omitempty"`
}

// names turns the cloud's IDs into libvirt object names: everything
// cloudmux makes on a host carries the prefix, so it can be listed (and
// cleaned up) apart from what others made.
type names struct {
	prefix string
	pool   string
	path   string // the pool's directory on every host
}

func (n names) domain(id string) string     { return n.prefix + id }
func (n names) volume(id string) string     { return n.prefix + id }
func (n names) filter(portID string) string { return n.prefix + "port-" + portID } // nwfilters of earlier versions
func (n names) consoleLog(domainID string) string {
	return n.volume(domainID + "-console.log")
}

// domainOptions are the per-host choices DomainXML does not take from the
// spec.
type domainOptions struct {
	Arch, Machine string
	// DiskFormats gives each disk's volume format (qcow2, raw), as the pool
	// reports it.
	DiskFormats map[string]string
	// ConfigDrive attaches the config drive volume when true.
	ConfigDrive bool
}

// buildDomainXML renders spec as a TCG (type='qemu') domain: virtio disks
// from the pool, virtio NICs on their switch ports (type='udp', ports[i]
// for spec.NICs[i]), the serial console logged to a file in the pool
// directory, and cloudmux metadata.
func buildDomainXML(n names, spec localcloud.DomainSpec, ports []nicEndpoints, o domainOptions) (string, error) {
	d := domainXML{
		Type: "qemu", Name: n.domain(spec.ID), UUID: spec.ID, Title: oneLine(spec.Name),
		Memory: unitValue{Unit: "MiB", Value: int64(spec.RAMMiB)}, VCPU: spec.VCPUs,
		Features: &featuresXML{}, Clock: clockXML{Offset: "utc"},
		OnOff: "destroy", OnReboot: "restart", OnCrash: "destroy",
	}
	d.OS.Type.Arch, d.OS.Type.Machine, d.OS.Type.Value = o.Arch, o.Machine, "hvm"
	d.OS.Boot.Dev = "hd"
	meta := serverMetaXML{NS: MetadataNS, ID: spec.ID, Name: spec.Name, KeyName: spec.KeyName}
	for _, k := range slices.Sorted(maps.Keys(spec.Metadata)) {
		meta.Metadata = append(meta.Metadata, metaItemXML{Key: k, Value: spec.Metadata[k]})
	}
	for _, disk := range spec.Disks {
		meta.Disks = append(meta.Disks, metaDiskXML{Volume: disk.VolumeID, Device: disk.Device})
		d.Devices.Disks = append(d.Devices.Disks, buildDiskXML(n, disk, o.DiskFormats[disk.VolumeID], false))
	}
	if o.ConfigDrive {
		d.Devices.Disks = append(d.Devices.Disks,
			buildDiskXML(n, localcloud.Disk{VolumeID: spec.ID + "-config.iso", Device: configDriveDevice}, localcloud.VolumeRaw, true))
	}
	if len(ports) != len(spec.NICs) {
		return "", fmt.Errorf("domain %s: %d NICs, %d switch ports", spec.ID, len(spec.NICs), len(ports))
	}
	for k, nic := range spec.NICs {
		pt := ports[k]
		meta.NICs = append(meta.NICs, metaNICXML{Port: nic.PortID, Network: nic.NetworkID, MAC: nic.MAC, Gateway: nic.Gateway, IPs: nic.IPs,
			Filtered: nic.Filtered, Switch: pt.Switch.String(), NIC: pt.NIC.String()})
		var i interfaceXML
		i.Type, i.MAC.Address, i.Model.Type = "udp", nic.MAC, "virtio"
		i.Source.Address, i.Source.Port = pt.Switch.Addr().String(), pt.Switch.Port()
		i.Source.Local.Address, i.Source.Local.Port = pt.NIC.Addr().String(), pt.NIC.Port()
		d.Devices.Interfaces = append(d.Devices.Interfaces, i)
	}
	d.Metadata = &metadataXML{Server: meta}
	var s serialXML
	s.Type, s.Source.Path, s.Source.Append = "file", n.path+"/"+n.consoleLog(spec.ID), "on"
	d.Devices.Serials = []serialXML{s}
	var c consoleXML
	c.Type, c.Source.Path, c.Target.Type = "file", s.Source.Path, "serial"
	d.Devices.Consoles = []consoleXML{c}
	out, err := xml.MarshalIndent(d, "", "  ")
	if err != nil {
		return "", fmt.Errorf("domain %s XML: %w", spec.ID, err)
	}
	return string(out), nil
}

// buildDiskXML is one virtio disk backed by a pool volume. The serial is
// the volume ID (the guest sees /dev/disk/by-id/virtio-<first 20>), as Nova
// does.
func buildDiskXML(n names, disk localcloud.Disk, format string, readOnly bool) diskXML {
	var x diskXML
	x.Type, x.Device = "volume", "disk"
	x.Driver.Name, x.Driver.Type = "qemu", format
	if x.Driver.Type == "" {
		x.Driver.Type = localcloud.VolumeQCOW2
	}
	x.Source.Pool, x.Source.Volume = n.pool, n.volume(disk.VolumeID)
	x.Target.Dev, x.Target.Bus = disk.Device, "virtio"
	if readOnly {
		x.ReadOnly = &struct{}{}
	} else {
		x.Serial = truncate(disk.VolumeID, 20)
	}
	return x
}

func diskDeviceXML(n names, disk localcloud.Disk, format string) (string, error) {
	out, err := xml.MarshalIndent(buildDiskXML(n, disk, format, false), "", "  ")
	return string(out), err
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
}

// poolXML is the dir pool cloudmux keeps its volumes in.
func poolXML(name, path string) string {
	var b strings.Builder
	b.WriteString("<pool type='dir'>\n  <name>")
	_ = xml.EscapeText(&b, []byte(name))
	b.WriteString("</name>\n  <target>\n    <path>")
	_ = xml.EscapeText(&b, []byte(path))
	b.WriteString("</path>\n    <permissions><mode>0711</mode></permissions>\n  </target>\n</pool>\n")
	return b.String()
}

type volumeXML struct {
	XMLName    xml.Name  `xml:"volume"`
	Name       string    `xml:"name"`
	Capacity   unitValue `xml:"capacity"`
	Allocation unitValue `xml:"allocation"`
	Target     struct {
		Format struct {
			Type string `xml:"type,attr"`
		} `xml:"format"`
	} `xml:"target"`
	BackingStore *struct {
		Path   string `xml:"path"`
		Format struct {
			Type string `xml:"type,attr"`
		} `xml:"format"`
	} `xml:"backingStore"`
}

// buildVolumeXML describes a sparse pool volume; backingPath, when set,
// makes it a qcow2 overlay on that file.
func buildVolumeXML(name string, bytes int64, format, backingPath, backingFormat string) (string, error) {
	v := volumeXML{Name: name, Capacity: unitValue{"bytes", bytes}, Allocation: unitValue{"bytes", 0}}
	v.Target.Format.Type = format
	if backingPath != "" {
		v.BackingStore = &struct {
			Path   string `xml:"path"`
			Format struct {
				Type string `xml:"type,attr"`
			} `xml:"format"`
		}{Path: backingPath}
		v.BackingStore.Format.Type = backingFormat
	}
	out, err := xml.MarshalIndent(v, "", "  ")
	return string(out), err
}

// volumeFormat reads a volume's format from its XML.
func volumeFormat(volXML string) string {
	var v struct {
		Target struct {
			Format struct {
				Type string `xml:"type,attr"`
			} `xml:"format"`
		} `xml:"target"`
	}
	if xml.Unmarshal([]byte(volXML), &v) != nil {
		return ""
	}
	return v.Target.Format.Type
}

// parsedDomain is what cloudmux reads back from a domain's XML.
type parsedDomain struct {
	Name     string `xml:"name"`
	UUID     string `xml:"uuid"`
	Metadata struct {
		Server *struct {
			ID       string        `xml:"id"`
			Name     string        `xml:"name"`
			KeyName  string        `xml:"key_name"`
			Metadata []metaItemXML `xml:"meta"`
			Disks    []metaDiskXML `xml:"disk"`
			NICs     []struct {
				Port     string   `xml:"port,attr"`
				Network  string   `xml:"network,attr"`
				MAC      string   `xml:"mac,attr"`
				Gateway  string   `xml:"gateway,attr"`
				IPs      []string `xml:"ip"`
				Filtered bool     `xml:"filtered,attr"`
				Switch   string   `xml:"switch,attr"`
				NIC      string   `xml:"nic,attr"`
			} `xml:"nic"`
		} `xml:"https://github.com/cloudmux/cloudmux/xmlns/libvirt/server/1 server"`
	} `xml:"metadata"`
	Memory  unitValue `xml:"memory"`
	VCPU    int       `xml:"vcpu"`
	Devices struct {
		Disks []diskXML `xml:"disk"`
	} `xml:"devices"`
}

func parseDomainXML(s string) (parsedDomain, error) {
	var d parsedDomain
	err := xml.Unmarshal([]byte(s), &d)
	return d, err
}

// nicEndpoints are a NIC's switch port: the switch's UDP address and the
// NIC's.
type nicEndpoints struct {
	Switch, NIC netip.AddrPort
}
