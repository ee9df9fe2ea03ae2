package localcloud

import (
	"context"
	"io"
	"net/netip"
)

// Driver is the hypervisor side of the local cloud: what must happen on a
// host for the control plane's decisions to become real. It knows nothing
// of projects, quotas, statuses or IP allocation; Cloud decides all that and
// tells the driver exactly what to build.
//
// Every method names the host it acts on (a HostConfig.Name) and honours ctx.
// Errors wrap the peers sentinels at the boundary: a missing domain, volume
// or network is peers.ErrNotFound, an unreachable host peers.ErrUnavailable.
// Removing something already gone returns an error wrapping
// peers.ErrNotFound, which Cloud treats as done, so cleanup after a crash is
// safe to repeat.
type Driver interface {
	// Name is the driver's name, reported as peers.Info.Driver ("libvirt",
	// "fake").
	Name() string
	// HostResources reports the host's physical vCPUs, memory and storage
	// pool size. Cloud asks once per host, only for what the HostConfig
	// leaves at zero.
	HostResources(ctx context.Context, host string) (HostResources, error)

	DomainDriver
	StorageDriver
	NetworkDriver
}

// DomainDriver manages virtual machines. A domain's ID is the server's ID.
type DomainDriver interface {
	// DefineDomain creates a persistent, stopped domain from spec. Its root
	// disk and NIC networks already exist.
	DefineDomain(ctx context.Context, host string, spec DomainSpec) error
	// StartDomain powers a stopped domain on. It may return before the
	// guest runs; DomainState says when it does.
	StartDomain(ctx context.Context, host, id string) error
	// ShutdownDomain asks the guest to power off (ACPI). It returns at once;
	// the guest may take its time or ignore the request, so Cloud polls
	// DomainState and falls back to DestroyDomain.
	ShutdownDomain(ctx context.Context, host, id string) error
	// RebootDomain restarts a running domain: through the guest when hard
	// is false, by resetting the virtual hardware when true.
	RebootDomain(ctx context.Context, host, id string, hard bool) error
	// PauseDomain freezes a running domain's vCPUs; it stays in memory
	// (DomainPaused). UnpauseDomain lets a paused one run again.
	PauseDomain(ctx context.Context, host, id string) error
	UnpauseDomain(ctx context.Context, host, id string) error
	// SaveDomain writes a running (or paused) domain's memory to the host's
	// disk and stops it (libvirt's managed save): the domain is shut off
	// and holds no CPU or memory, and the next StartDomain restores the
	// guest where it was instead of booting it. UndefineDomain drops the
	// saved memory.
	SaveDomain(ctx context.Context, host, id string) error
	// SetDomainSize changes a shut-off domain's vCPUs and memory in its
	// definition (an offline resize); the next StartDomain boots with them.
	// A running domain is ErrConflict.
	SetDomainSize(ctx context.Context, host, id string, vcpus, ramMiB int) error
	// DestroyDomain powers a domain off at once, like pulling the plug. A
	// domain already off is not an error.
	DestroyDomain(ctx context.Context, host, id string) error
	// UndefineDomain removes a stopped domain's definition. Its disks stay:
	// they are pool volumes Cloud deletes on its own. What the driver made
	// for the domain by itself (a config drive, a console log) goes with it.
	UndefineDomain(ctx context.Context, host, id string) error
	// DomainState reports whether the domain runs, is off, or is between
	// the two.
	DomainState(ctx context.Context, host, id string) (DomainState, error)
	// AttachDisk adds a pool volume to a domain as disk.Device, to its
	// definition and, when it runs, to the live guest too.
	AttachDisk(ctx context.Context, host, domainID string, disk Disk) error
	// DetachDisk removes a pool volume from a domain, persistently and live.
	DetachDisk(ctx context.Context, host, domainID, volumeID string) error
	// ConsoleOutput returns what the domain wrote to its serial console.
	ConsoleOutput(ctx context.Context, host, id string) (string, error)
}

// StorageDriver manages volumes in a host's storage pool: server root disks
// and block-storage volumes alike.
type StorageDriver interface {
	// CreateVolume allocates a volume: empty, of vol.SizeGiB (or exactly
	// vol.SizeBytes), or a copy-on-write overlay on vol.BackingID.
	CreateVolume(ctx context.Context, host string, vol PoolVolume) error
	// UploadVolume writes data (size bytes, or until EOF when size is -1)
	// at the start of the volume: an image becoming a root disk.
	UploadVolume(ctx context.Context, host, id string, data io.Reader, size int64) error
	// ResizeVolume grows a volume to newSizeGiB. When domainID is not
	// empty the volume is attached to that domain, and a running guest sees
	// the new size at once (a live block resize). Shrinking is ErrInvalid.
	ResizeVolume(ctx context.Context, host, id string, newSizeGiB int, domainID string) error
	// DeleteVolume removes a volume no domain uses and no overlay is based on.
	DeleteVolume(ctx context.Context, host, id string) error
}

// NetworkDriver manages isolated layer-2 networks on a host. Addressing is
// Cloud's business: a network here is a segment with no route out and no
// connection to the host's own networks (on the libvirt driver, a network
// of its user-space switch: no kernel state on the host).
type NetworkDriver interface {
	// CreateNetwork creates and starts an isolated network.
	CreateNetwork(ctx context.Context, host string, net IsolatedNetwork) error
	// DeleteNetwork stops and removes it.
	DeleteNetwork(ctx context.Context, host, id string) error
}

// HostResources is what a host has (physical, before overcommit) or what
// servers and volumes take of it.
type HostResources struct {
	VCPUs   int64 `json:"vcpus"`
	RAMMiB  int64 `json:"ram_mib"`
	DiskGiB int64 `json:"disk_gib"`
}

func (r HostResources) add(o HostResources) HostResources {
	return HostResources{r.VCPUs + o.VCPUs, r.RAMMiB + o.RAMMiB, r.DiskGiB + o.DiskGiB}
}

func (r HostResources) sub(o HostResources) HostResources {
	return HostResources{r.VCPUs - o.VCPUs, r.RAMMiB - o.RAMMiB, r.DiskGiB - o.DiskGiB}
}

// fits reports whether r fits within limit in every dimension.
func (r HostResources) fits(limit HostResources) bool {
	return r.VCPUs <= limit.VCPUs && r.RAMMiB <= limit.RAMMiB && r.DiskGiB <= limit.DiskGiB
}

// DomainState is a domain's power state as the driver sees it.
type DomainState string

// Domain states. Transitioning covers booting, shutting down and
// rebooting: the driver has acted and the guest has not settled yet.
// Paused is a domain frozen by PauseDomain.
const (
	DomainRunning       DomainState = "running"
	DomainShutoff       DomainState = "shutoff"
	DomainPaused        DomainState = "paused"
	DomainTransitioning DomainState = "transitioning"
	DomainCrashed       DomainState = "crashed"
)

// DomainSpec is everything a driver needs to define a server's domain.
type DomainSpec struct {
	ID      string `json:"id"` // the server's UUID, also the domain's UUID
	Name    string `json:"name"`
	VCPUs   int    `json:"vcpus"`
	RAMMiB  int    `json:"ram_mib"`
	Disks   []Disk `json:"disks"` // Disks[0] is the boot disk
	NICs    []NIC  `json:"nics"`
	KeyName string `json:"key_name,omitempty"`
	// PublicKey and UserData go into a config drive for cloud-init (with
	// the server's metadata and NICs), where the driver builds one: an
	// ISO 9660 volume labelled config-2, attached read-only.
	PublicKey string `json:"public_key,omitempty"`
	UserData  []byte `json:"user_data,omitempty"`
	// Metadata is stored with the domain (libvirt <metadata>) so the cloud's
	// state can be rebuilt from the hosts: project, flavor, image, the
	// server's metadata.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// MetaHostname is the DomainSpec.Metadata key of the guest's host name,
// when one was asked for (the config drive derives one from the name
// otherwise).
const MetaHostname = "localcloud.hostname"

// Disk is a pool volume attached to a domain.
type Disk struct {
	VolumeID string `json:"volume_id"`
	Device   string `json:"device"` // vda, vdb, ...
}

// NIC is one network interface of a domain: a port of the cloud's.
type NIC struct {
	PortID    string `json:"port_id"`
	NetworkID string `json:"network_id"`
	MAC       string `json:"mac"`
	// IPs are the port's fixed IPs in CIDR form (10.0.0.5/24), for a config
	// drive's network data; the isolated network runs no DHCP of its own.
	IPs     []string `json:"ips,omitempty"`
	Gateway string   `json:"gateway,omitempty"`
	// Filtered NICs have their traffic filtered by the port's filter
	// (FilterDriver.SetPortFilter, set before the domain is defined); a
	// driver that has not got it (one just started) drops the NIC's IP
	// traffic until it does.
	Filtered bool `json:"filtered,omitempty"`
}

// FilterDriver is the optional ability of a driver to filter a NIC's
// traffic: what the cloud's security groups compile to (secgroups.go).
// A cloud whose driver lacks it refuses security groups.
type FilterDriver interface {
	// SetPortFilter defines, or replaces, the filter of port f.PortID on
	// host: the NIC naming it (NIC.Filtered) follows at once, in a running
	// guest too.
	SetPortFilter(ctx context.Context, host string, f PortFilter) error
	// DeletePortFilter removes a port's filter: its NIC's traffic is no
	// longer filtered. One already gone wraps peers.ErrNotFound.
	DeletePortFilter(ctx context.Context, host, portID string) error
}

// PortFilter is what a port's NIC accepts; everything else is dropped.
// Connections are tracked: the answers to an accepted packet are accepted
// too. IPv6 neighbour discovery and ARP always pass, as Neutron lets them.
type PortFilter struct {
	PortID string       `json:"port_id"`
	Accept []FilterRule `json:"accept"`
}

// FilterRule accepts one kind of traffic.
type FilterRule struct {
	// In is traffic to the guest, else from it.
	In   bool `json:"in"`
	IPv6 bool `json:"ipv6"`
	// Protocol is "" for any, else tcp, udp, udplite, sctp, icmp, icmpv6,
	// esp, ah or igmp (what the cloud can filter by; others are refused).
	Protocol string `json:"protocol,omitempty"`
	// PortMin and PortMax bound the destination port (tcp, udp, udplite,
	// sctp), 0 meaning unbounded; for icmp(v6) ICMPType and ICMPCode
	// (-1 any) apply instead.
	PortMin  int `json:"port_min,omitempty"`
	PortMax  int `json:"port_max,omitempty"`
	ICMPType int `json:"icmp_type"`
	ICMPCode int `json:"icmp_code"`
	// Remote is the other end's prefix; the zero prefix is any.
	Remote netip.Prefix `json:"remote"`
}

// PoolVolume is a volume in a host's storage pool.
type PoolVolume struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	SizeGiB int    `json:"size_gib"`
	// SizeBytes, when positive, is the exact capacity and overrides
	// SizeGiB: a base image holding exactly an image's bytes.
	SizeBytes int64 `json:"size_bytes,omitempty"`
	// Format is the volume's format on disk, VolumeQCOW2 (the default) or
	// VolumeRaw. A base image takes its image's disk_format.
	Format string `json:"format,omitempty"`
	// BackingID, when set, makes the volume a qcow2 overlay on that pool
	// volume (a base image, of BackingFormat): writes go to the overlay,
	// reads of untouched blocks to the base. A server's root disk is one.
	BackingID     string `json:"backing_id,omitempty"`
	BackingFormat string `json:"backing_format,omitempty"`
}

// Pool volume formats.
const (
	VolumeQCOW2 = "qcow2"
	VolumeRaw   = "raw"
)

// Bytes is the volume's capacity in bytes.
func (v PoolVolume) Bytes() int64 {
	if v.SizeBytes > 0 {
		return v.SizeBytes
	}
	return int64(v.SizeGiB) << 30
}

// BaseImageVolume is the pool volume that holds image imageID's bytes on a
// host, uploaded once and shared by the root disks of the servers booted
// from it there.
func BaseImageVolume(imageID string) string { return "image-" + imageID }

// IsolatedNetwork is a network's layer 2 on a host.
type IsolatedNetwork struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	MTU  int    `json:"mtu,omitempty"`
}

// Inventorier is the optional ability of a driver to list what it made on
// a host, with the metadata Cloud stored there (DomainSpec.Metadata), so
// the cloud's records can be rebuilt from the hosts after a crash.
type Inventorier interface {
	Inventory(ctx context.Context, host string) (HostInventory, error)
}

// HostInventory is what a driver made on one host.
type HostInventory struct {
	Domains []InventoryDomain `json:"domains"`
	// Volumes are the pool volumes Cloud asked for (root disks, block
	// storage volumes, base images), with their capacity in SizeBytes,
	// their Format and BackingID; what the driver makes for itself (config
	// drives, console logs) is left out.
	Volumes  []PoolVolume `json:"volumes"`
	Networks []string     `json:"networks"` // network IDs
}

// InventoryDomain is a domain as defined: the spec (without PublicKey and
// UserData, which only the config drive keeps) and its power state.
type InventoryDomain struct {
	DomainSpec
	State DomainState `json:"state"`
}
