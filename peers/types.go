package peers

import (
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// Capacity is the registry's capacity record: a cloud reports it, the
// registry stores it, placement reads it.
type Capacity = registry.Capacity

// Metadata keys cloudmux writes on every resource it creates, so the broker
// can find and adopt its resources after a crash and rebuild its index by
// scanning a peer.
const (
	MetaBrokerID = "cloudmux_broker_id"
	MetaProject  = "cloudmux_project"
	MetaID       = "cloudmux_id" // the broker-wide ID of the resource
)

// Info describes a connected cloud.
type Info struct {
	Kind   registry.Kind `json:"kind"`
	Driver string        `json:"driver"` // e.g. "libvirt", "fake", "gophercloud"
	Region string        `json:"region,omitempty"`
}

// ListOptions narrows a list. Empty fields match everything.
type ListOptions struct {
	Project string
	// Metadata matches resources carrying every one of these pairs.
	Metadata map[string]string
}

// Matches reports whether a resource with project and metadata passes o.
func (o ListOptions) Matches(project string, metadata map[string]string) bool {
	if o.Project != "" && o.Project != project {
		return false
	}
	for k, v := range o.Metadata {
		if metadata[k] != v {
			return false
		}
	}
	return true
}

// Flavor is a server size.
type Flavor struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	VCPUs        int               `json:"vcpus"`
	RAMMiB       int               `json:"ram_mib"`
	DiskGiB      int               `json:"disk_gib"`
	EphemeralGiB int               `json:"ephemeral_gib,omitempty"`
	IsPublic     bool              `json:"is_public"`
	ExtraSpecs   map[string]string `json:"extra_specs,omitempty"`
}

// ServerStatus follows Nova's server statuses.
type ServerStatus string

// Nova's statuses, the subset a driver reports.
const (
	ServerBuild      ServerStatus = "BUILD"
	ServerActive     ServerStatus = "ACTIVE"
	ServerShutoff    ServerStatus = "SHUTOFF"
	ServerReboot     ServerStatus = "REBOOT"
	ServerHardReboot ServerStatus = "HARD_REBOOT"
	ServerError      ServerStatus = "ERROR"
	ServerDeleted    ServerStatus = "DELETED"
	// ServerPaused is a guest frozen in memory (pause); ServerSuspended one
	// whose memory is saved to disk and that holds no CPU (suspend).
	ServerPaused    ServerStatus = "PAUSED"
	ServerSuspended ServerStatus = "SUSPENDED"
	// A resize goes RESIZE (under way), VERIFY_RESIZE (done, with the new
	// flavor, waiting for a confirm or a revert), REVERT_RESIZE (going
	// back to the old flavor).
	ServerResize       ServerStatus = "RESIZE"
	ServerVerifyResize ServerStatus = "VERIFY_RESIZE"
	ServerRevertResize ServerStatus = "REVERT_RESIZE"
	// ServerRebuild is a rebuild under way (ServerRebuilder): the server
	// gets a fresh root disk from an image, then goes back to the power
	// state it had.
	ServerRebuild ServerStatus = "REBUILD"
	// A shelved server (ServerShelver) is stopped with its disk kept:
	// SHELVED while it still holds its place on a host,
	// SHELVED_OFFLOADED once its disk is kept as an image and the host
	// freed.
	ServerShelved          ServerStatus = "SHELVED"
	ServerShelvedOffloaded ServerStatus = "SHELVED_OFFLOADED"
	// ServerRescue is a server booted from a rescue image with its own
	// root disk attached second (ServerRescuer).
	ServerRescue ServerStatus = "RESCUE"
)

// ServerAction is a power action.
type ServerAction string

// Power actions every Compute implements.
const (
	ActionStart      ServerAction = "start"
	ActionStop       ServerAction = "stop"
	ActionReboot     ServerAction = "reboot"
	ActionHardReboot ServerAction = "hard_reboot"
	// Pause freezes an ACTIVE guest in memory (PAUSED); Unpause thaws a
	// PAUSED one. Suspend saves an ACTIVE guest's memory to disk and stops
	// it (SUSPENDED); Resume restores a SUSPENDED one. As in Nova, each
	// from any other status is ErrConflict.
	ActionPause   ServerAction = "pause"
	ActionUnpause ServerAction = "unpause"
	ActionSuspend ServerAction = "suspend"
	ActionResume  ServerAction = "resume"
	// ConfirmResize ends a VERIFY_RESIZE server's resize, keeping the new
	// flavor and freeing what the old one held; RevertResize goes back to
	// the old flavor. Only a ServerResizer's servers reach VERIFY_RESIZE.
	ActionConfirmResize ServerAction = "confirm_resize"
	ActionRevertResize  ServerAction = "revert_resize"
)

// Address is one IP of a server on a network.
type Address struct {
	// Network is the network's name, as Nova labels addresses.
	Network string `json:"network"`
	Addr    string `json:"addr"`
	Version int    `json:"version"`
	MAC     string `json:"mac,omitempty"`
	Type    string `json:"type,omitempty"` // "fixed" or "floating"
}

// Server is a virtual machine.
type Server struct {
	ID               string       `json:"id"`
	Name             string       `json:"name"`
	Status           ServerStatus `json:"status"`
	Project          string       `json:"project"`
	FlavorID         string       `json:"flavor_id"`
	ImageID          string       `json:"image_id,omitempty"`
	KeyName          string       `json:"key_name,omitempty"`
	AvailabilityZone string       `json:"availability_zone,omitempty"`
	Host             string       `json:"host,omitempty"`
	// Hostname is the guest's host name as the cloud publishes it (config
	// drive, metadata service), when it reports one.
	Hostname  string            `json:"hostname,omitempty"`
	Addresses []Address         `json:"addresses,omitempty"`
	Volumes   []string          `json:"volumes,omitempty"` // attached volume IDs
	Metadata  map[string]string `json:"metadata,omitempty"`
	Fault     string            `json:"fault,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	UpdatedAt time.Time         `json:"updated_at"`
	// Task is Nova's task_state for work that leaves the status as it
	// is: TaskImageSnapshot while a snapshot (ServerImager) reads the
	// disk. Other actions show in the status; empty when idle.
	Task string `json:"task,omitempty"`
}

// TaskImageSnapshot is Server.Task while a snapshot is taken: the server
// takes no other action until it ends (ErrConflict).
const TaskImageSnapshot = "image_snapshot"

// NetworkAttachment asks for a NIC: on a network, or an existing port.
type NetworkAttachment struct {
	NetworkID string `json:"network_id,omitempty"`
	PortID    string `json:"port_id,omitempty"`
	FixedIP   string `json:"fixed_ip,omitempty"`
}

// ServerSpec is what CreateServer needs.
type ServerSpec struct {
	Name     string
	Project  string
	FlavorID string
	// ImageID may be empty when BootVolumeID is set.
	ImageID          string
	BootVolumeID     string
	Networks         []NetworkAttachment
	KeyName          string
	UserData         []byte
	Metadata         map[string]string
	AvailabilityZone string
	// Hostname is the guest's host name; empty lets the cloud derive one
	// from Name (Nova's sanitized name). A cloud that cannot set one
	// refuses the create (ErrCapacity: another cloud may).
	Hostname string
	// SecurityGroups, for a SecurityGroups cloud, are the groups (IDs put
	// before) of the ports the cloud makes for the server; ports given by
	// PortID keep theirs. Nil leaves them to the cloud's own default.
	SecurityGroups []string
}

// ImageStatus follows the Image Service lifecycle.
type ImageStatus string

// Image statuses: queued -> saving -> active; killed on a failed upload;
// pending_delete while a delayed delete waits; deleted.
const (
	ImageQueued        ImageStatus = "queued"
	ImageSaving        ImageStatus = "saving"
	ImageActive        ImageStatus = "active"
	ImageKilled        ImageStatus = "killed"
	ImageDeleted       ImageStatus = "deleted"
	ImagePendingDelete ImageStatus = "pending_delete"
)

// Image is a VM disk image and its metadata.
type Image struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Status          ImageStatus       `json:"status"`
	Project         string            `json:"project"` // the owner
	DiskFormat      string            `json:"disk_format"`
	ContainerFormat string            `json:"container_format"`
	Size            int64             `json:"size"`
	Checksum        string            `json:"checksum,omitempty"` // MD5, hex
	OSHashAlgo      string            `json:"os_hash_algo,omitempty"`
	OSHashValue     string            `json:"os_hash_value,omitempty"`
	MinRAMMiB       int               `json:"min_ram"`
	MinDiskGiB      int               `json:"min_disk"`
	Visibility      string            `json:"visibility"`
	Protected       bool              `json:"protected"`
	Tags            []string          `json:"tags,omitempty"`
	Properties      map[string]string `json:"properties,omitempty"`
	CreatedAt       time.Time         `json:"created_at"`
	UpdatedAt       time.Time         `json:"updated_at"`
}

// ImageSpec registers an image (its data comes later, through ImageData).
type ImageSpec struct {
	// ID may request a specific UUID (the broker keeps IDs stable across
	// peers when it stages a copy); empty lets the cloud choose.
	ID              string
	Name            string
	Project         string
	DiskFormat      string
	ContainerFormat string
	MinRAMMiB       int
	MinDiskGiB      int
	Visibility      string
	Protected       bool
	Tags            []string
	Properties      map[string]string
	// Checksum, when set, is the MD5 (hex) the uploaded bytes must have; a
	// mismatch kills the upload. The broker sets it when it copies an image
	// between peers. Glance takes no checksum on create, so a Glance-backed
	// driver checks the MD5 itself after the upload and deletes the image on
	// a mismatch.
	Checksum string
}

// ImagePatch changes an image's metadata; nil fields stay as they are.
type ImagePatch struct {
	Name             *string
	MinRAMMiB        *int
	MinDiskGiB       *int
	Visibility       *string
	Protected        *bool
	SetProperties    map[string]string
	RemoveProperties []string
	AddTags          []string
	RemoveTags       []string
}

// Network is a layer-2 network.
type Network struct {
	ID           string            `json:"id"`
	Name         string            `json:"name"`
	Project      string            `json:"project"`
	Status       string            `json:"status"` // ACTIVE, DOWN, BUILD, ERROR
	AdminStateUp bool              `json:"admin_state_up"`
	Shared       bool              `json:"shared"`
	External     bool              `json:"external"`
	MTU          int               `json:"mtu,omitempty"`
	Subnets      []string          `json:"subnets,omitempty"`
	Metadata     map[string]string `json:"metadata,omitempty"`
}

// NetworkSpec creates a network.
type NetworkSpec struct {
	Name    string
	Project string
	Shared  bool
	// External makes a network routers lead to and floating IPs are taken
	// from (Neutron's router:external), for clouds with peers.Routers.
	External bool
	MTU      int
	Metadata map[string]string
}

// IPRange is an inclusive range of addresses.
type IPRange struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// Subnet is an IP range on a network.
type Subnet struct {
	ID              string            `json:"id"`
	Name            string            `json:"name"`
	Project         string            `json:"project"`
	NetworkID       string            `json:"network_id"`
	CIDR            string            `json:"cidr"`
	IPVersion       int               `json:"ip_version"`
	GatewayIP       string            `json:"gateway_ip,omitempty"`
	EnableDHCP      bool              `json:"enable_dhcp"`
	AllocationPools []IPRange         `json:"allocation_pools,omitempty"`
	DNSNameservers  []string          `json:"dns_nameservers,omitempty"`
	Metadata        map[string]string `json:"metadata,omitempty"`
}

// SubnetSpec creates a subnet. An empty GatewayIP picks the first host
// address; NoGateway disables the gateway.
type SubnetSpec struct {
	Name           string
	Project        string
	NetworkID      string
	CIDR           string
	IPVersion      int
	GatewayIP      string
	NoGateway      bool
	EnableDHCP     bool
	DNSNameservers []string
	Metadata       map[string]string
}

// FixedIP is an address of a port on a subnet.
type FixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// Port is a NIC attachment point on a network.
type Port struct {
	ID          string            `json:"id"`
	Name        string            `json:"name"`
	Project     string            `json:"project"`
	NetworkID   string            `json:"network_id"`
	MACAddress  string            `json:"mac_address"`
	FixedIPs    []FixedIP         `json:"fixed_ips,omitempty"`
	DeviceID    string            `json:"device_id,omitempty"`
	DeviceOwner string            `json:"device_owner,omitempty"`
	Status      string            `json:"status"` // ACTIVE, DOWN, BUILD
	Metadata    map[string]string `json:"metadata,omitempty"`
	// SecurityGroups are the broker security groups (peers.SecurityGroups)
	// filtering the port, nil when none of them does ([] is every packet
	// dropped; JSON keeps the two apart).
	SecurityGroups []string `json:"security_groups"`
}

// PortSpec creates a port.
type PortSpec struct {
	Name      string
	Project   string
	NetworkID string
	FixedIPs  []FixedIP // SubnetID and/or IPAddress; empty picks one
	Metadata  map[string]string
	// SecurityGroups, for a SecurityGroups cloud, are the port's groups
	// (IDs put before); nil leaves it to the cloud's own default.
	SecurityGroups []string
}

// VolumeStatus follows Cinder's volume statuses.
type VolumeStatus string

// Cinder's statuses, the subset a driver reports.
const (
	VolumeCreating  VolumeStatus = "creating"
	VolumeAvailable VolumeStatus = "available"
	VolumeAttaching VolumeStatus = "attaching"
	VolumeInUse     VolumeStatus = "in-use"
	VolumeDetaching VolumeStatus = "detaching"
	VolumeDeleting  VolumeStatus = "deleting"
	VolumeExtending VolumeStatus = "extending"
	VolumeError     VolumeStatus = "error"
)

// VolumeAttachment links a volume to a server.
type VolumeAttachment struct {
	ID       string `json:"id"`
	ServerID string `json:"server_id"`
	VolumeID string `json:"volume_id"`
	Device   string `json:"device,omitempty"`
}

// Volume is a block device.
type Volume struct {
	ID               string             `json:"id"`
	Name             string             `json:"name"`
	Description      string             `json:"description,omitempty"`
	Project          string             `json:"project"`
	SizeGiB          int                `json:"size_gib"`
	Status           VolumeStatus       `json:"status"`
	VolumeType       string             `json:"volume_type,omitempty"`
	AvailabilityZone string             `json:"availability_zone,omitempty"`
	Bootable         bool               `json:"bootable"`
	SourceImageID    string             `json:"source_image_id,omitempty"`
	Attachments      []VolumeAttachment `json:"attachments,omitempty"`
	Metadata         map[string]string  `json:"metadata,omitempty"`
	CreatedAt        time.Time          `json:"created_at"`

	// SnapshotID and SourceVolumeID name the snapshot or volume it was
	// made from (Snapshots).
	SnapshotID     string `json:"snapshot_id,omitempty"`
	SourceVolumeID string `json:"source_volume_id,omitempty"`
}

// VolumeSpec creates a volume, empty or from an image.
type VolumeSpec struct {
	Name             string
	Description      string
	Project          string
	SizeGiB          int
	VolumeType       string
	AvailabilityZone string
	ImageID          string
	Metadata         map[string]string

	// SnapshotID or SourceVolumeID (at most one of them and ImageID) make
	// the volume a copy of a snapshot or of another volume of the same
	// cloud, at least as large: only a cloud with Snapshots takes them.
	SnapshotID     string
	SourceVolumeID string
}

// Keypair is an SSH public key servers can be booted with. Names are unique
// per cloud; the broker namespaces user keypairs onto peers.
type Keypair struct {
	Name        string `json:"name"`
	Project     string `json:"project,omitempty"`
	UserID      string `json:"user_id,omitempty"`
	Type        string `json:"type"` // "ssh" or "x509"
	PublicKey   string `json:"public_key"`
	Fingerprint string `json:"fingerprint"`
	// PrivateKey is set only in the answer to a create that generated the
	// key pair; it is never stored.
	PrivateKey string    `json:"private_key,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
}

// KeypairSpec imports a public key, or, with PublicKey empty, asks the
// cloud to generate a key pair and return its private key once. Nova stopped
// generating pairs at microversion 2.92, so a Nova-backed driver generates
// the pair itself and imports the public half. Generating an x509 pair may
// be ErrNotSupported.
type KeypairSpec struct {
	Name      string
	Project   string
	UserID    string
	Type      string
	PublicKey string
}
