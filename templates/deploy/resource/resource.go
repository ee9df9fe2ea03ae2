// Package resource holds the types the deployment engine hands the
// broker's service layer: who asks (Caller), what to make (the specs) and
// what the services answer. It is a leaf, so the broker's adapter
// (broker/deployres) implements the engine's interfaces without importing
// the engine, and the engine's own tests can run over the real services.
//
// Every ID here is a broker ID (a keypair's is its name): references in
// specs are broker IDs or names resolved under the caller's visibility,
// exactly as through the OpenStack APIs, and a peer's raw ID is never
// taken or returned.
package resource

import "errors"

// ErrNotFound: no such resource for this caller (it does not exist, or
// it is another project's: the two are never told apart).
var ErrNotFound = errors.New("resource not found")

// Caller is whose identity a deployment acts with: its project and the
// user who created it. Deployments never act as cloud admins, even when
// an admin created them: a resumed run has no request to vouch for it.
type Caller struct {
	Project string
	User    string
}

// NIC is one interface of a server: a network (broker ID or name) with an
// optional fixed IP, or a port (broker ID).
type NIC struct {
	Network string
	Port    string
	FixedIP string
}

// Placement is what the plan decided about where a resource goes: the
// peer's name (each peer is an availability zone) and the template's
// labels, which the services' placement policy sees as they are.
type Placement struct {
	Peer            string
	RequiredLabels  map[string]string
	PreferredLabels map[string]string
}

// ServerSpec is a new server.
type ServerSpec struct {
	Name string
	// Flavor is a flavor's broker ID or name; Image an image's broker ID
	// or name; BootVolume a volume's broker ID (one of Image and
	// BootVolume).
	Flavor, Image, BootVolume string
	KeyName                   string
	UserData                  []byte
	Metadata                  map[string]string
	NICs                      []NIC
	Placement                 Placement
	// Marks are the engine's tags (cloudmux_ keys) written on the peer's
	// resource, so Find sees what an interrupted create made.
	Marks map[string]string
}

// VolumeSpec is a new volume; Image (broker ID or name) makes it from an
// image.
type VolumeSpec struct {
	Name, Description, VolumeType, Image string
	SizeGiB                              int
	Metadata                             map[string]string
	Placement                            Placement
	Marks                                map[string]string
}

// NetworkSpec is a new network on the plan's peer.
type NetworkSpec struct {
	Name      string
	Shared    bool
	MTU       int
	Placement Placement
	Marks     map[string]string
}

// SubnetSpec is a new subnet of Network (broker ID or name).
type SubnetSpec struct {
	Name, Network, CIDR string
	IPVersion           int
	// GatewayIP empty picks the first host address; NoGateway has none.
	GatewayIP      string
	NoGateway      bool
	EnableDHCP     bool
	DNSNameservers []string
	Marks          map[string]string
	// Peer is the peer the plan put it on (by name): a network named
	// rather than given by ID is the one there.
	Peer string
}

// FixedIP asks for an address on a subnet (broker ID) of the port's network.
type FixedIP struct {
	Subnet, IPAddress string
}

// PortSpec is a new port on Network (broker ID or name).
type PortSpec struct {
	Name, Network string
	FixedIPs      []FixedIP
	Marks         map[string]string
	// Peer is the peer the plan put it on (by name): a network named
	// rather than given by ID is the one there.
	Peer string
}

// KeypairSpec is a new keypair of the caller's user (Nova's keypairs are
// per user and carry no metadata, so they are found by name).
type KeypairSpec struct {
	Name, Type, PublicKey string
}

// ImageSpec is a new image record (metadata only; data is uploaded
// through Glance).
type ImageSpec struct {
	Name, DiskFormat, ContainerFormat, Visibility string
	MinRAMMiB, MinDiskGiB                         int
	Protected                                     bool
	Tags                                          []string
	Properties                                    map[string]string
	Placement                                     Placement
	Marks                                         map[string]string
}

// Created is what a create answers: the broker ID (a keypair's name) and
// attributes only the create knows (a generated private key, an
// attachment's device).
type Created struct {
	ID    string
	Attrs map[string]any
}

// State is a resource as it is now: whether it reached its steady state,
// and its attributes (broker IDs throughout). A resource that failed (a
// server in ERROR) is an error, not a State.
type State struct {
	Ready bool
	Attrs map[string]any
}

// Flavor is a flavor as the broker shows it.
type Flavor struct {
	ID, Name               string
	VCPUs, RAMMiB, DiskGiB int
}

// Image is an image the caller may use.
type Image struct {
	ID, Name   string
	MinDiskGiB int
	SizeBytes  int64
}

// Usage is an amount per quota resource, under Nova's, Cinder's and
// Neutron's names ("instances", "cores", "ram", "volumes", "gigabytes",
// "networks", "subnets", "ports", "key_pairs").
type Usage map[string]int

// Error kinds the engine acts on; the adapter wraps the services' errors
// so errors.Is finds these beside the services' own sentinels.
var (
	// ErrConflict: the resource is busy (a network whose ports a deleting
	// server still holds): a delete retries.
	ErrConflict = errors.New("resource busy")
	// ErrUnavailable: the peer holding it is not connected or did not
	// answer: a resumed run waits for it.
	ErrUnavailable = errors.New("peer unavailable")
	// ErrOverQuota: the project's quota does not allow it.
	ErrOverQuota = errors.New("quota exceeded")
	// ErrAmbiguous: a name several of the caller's resources bear (beside
	// ErrNotFound: nothing is found by it); the error's text says so.
	ErrAmbiguous = errors.New("ambiguous name")
)
