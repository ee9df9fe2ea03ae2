package peers

import (
	"context"
	"io"

	"github.com/cloudmux/cloudmux/registry"
)

// Cloud is the contract every cloud in the pool satisfies. It is the union
// of small parts so a consumer can declare only the part it uses (the image
// stager needs Images and ImageData, not Volumes).
//
// A Cloud that holds connections or goroutines also implements io.Closer;
// the pool closes the clouds it connected when their peer goes away.
//
// Every call takes a context and honours its deadline. Long operations
// (server boot, volume creation) return at once with a transitional status
// (BUILD, creating); callers poll Get* until the resource settles.
type Cloud interface {
	// Info says what kind of cloud this is and which driver serves it.
	Info() Info
	// Capacity reports totals and usage, for the registry and placement.
	// Totals are what may be allocated, after the cloud's allocation
	// (overcommit) ratios, so Free() is what is left to place.
	Capacity(ctx context.Context) (registry.Capacity, error)
	Compute
	Keypairs
	Images
	Networks
	Volumes
}

// Compute manages flavors and servers.
type Compute interface {
	ListFlavors(ctx context.Context) ([]Flavor, error)
	GetFlavor(ctx context.Context, id string) (Flavor, error)
	// CreateServer boots a server. An unknown flavor, image, keypair or
	// network is ErrNotFound or ErrInvalid (Nova answers 400; the broker
	// resolves references before it calls). Empty Networks means no NIC:
	// the broker turns Nova's "auto" into explicit networks first.
	CreateServer(ctx context.Context, spec ServerSpec) (Server, error)
	GetServer(ctx context.Context, id string) (Server, error)
	ListServers(ctx context.Context, opts ListOptions) ([]Server, error)
	// DeleteServer starts deletion; GetServer reports ErrNotFound once gone.
	DeleteServer(ctx context.Context, id string) error
	// ServerAction runs a power action (start, stop, reboot, hard_reboot,
	// pause, unpause, suspend, resume); it returns once the cloud took the
	// action on and the server settles in the status the action leads to.
	// An action the current status does not allow (start an ACTIVE server,
	// pause a SUSPENDED one) is ErrConflict, an unknown action ErrInvalid.
	ServerAction(ctx context.Context, id string, action ServerAction) error
}

// Keypairs manages SSH keypairs. Keypairs carry no metadata, so a
// ListOptions.Metadata filter matches none of them.
type Keypairs interface {
	CreateKeypair(ctx context.Context, spec KeypairSpec) (Keypair, error)
	GetKeypair(ctx context.Context, name string) (Keypair, error)
	ListKeypairs(ctx context.Context, opts ListOptions) ([]Keypair, error)
	DeleteKeypair(ctx context.Context, name string) error
}

// Images manages image metadata. Image bytes move through ImageData.
// Deleted and pending_delete images are ErrNotFound to GetImage and absent
// from ListImages, as in Glance v2.
type Images interface {
	CreateImage(ctx context.Context, spec ImageSpec) (Image, error)
	GetImage(ctx context.Context, id string) (Image, error)
	ListImages(ctx context.Context, opts ListOptions) ([]Image, error)
	UpdateImage(ctx context.Context, id string, patch ImagePatch) (Image, error)
	DeleteImage(ctx context.Context, id string) error
}

// Networks manages networks, subnets and ports.
type Networks interface {
	CreateNetwork(ctx context.Context, spec NetworkSpec) (Network, error)
	GetNetwork(ctx context.Context, id string) (Network, error)
	ListNetworks(ctx context.Context, opts ListOptions) ([]Network, error)
	DeleteNetwork(ctx context.Context, id string) error

	CreateSubnet(ctx context.Context, spec SubnetSpec) (Subnet, error)
	GetSubnet(ctx context.Context, id string) (Subnet, error)
	ListSubnets(ctx context.Context, opts ListOptions) ([]Subnet, error)
	DeleteSubnet(ctx context.Context, id string) error

	CreatePort(ctx context.Context, spec PortSpec) (Port, error)
	GetPort(ctx context.Context, id string) (Port, error)
	ListPorts(ctx context.Context, opts ListOptions) ([]Port, error)
	DeletePort(ctx context.Context, id string) error
}

// Volumes manages block storage and attachments.
type Volumes interface {
	CreateVolume(ctx context.Context, spec VolumeSpec) (Volume, error)
	GetVolume(ctx context.Context, id string) (Volume, error)
	ListVolumes(ctx context.Context, opts ListOptions) ([]Volume, error)
	// DeleteVolume of an attached volume is ErrConflict.
	DeleteVolume(ctx context.Context, id string) error
	AttachVolume(ctx context.Context, serverID, volumeID string) (VolumeAttachment, error)
	DetachVolume(ctx context.Context, serverID, volumeID string) error
	// ExtendVolume grows a volume to newSizeGiB (Cinder's os-extend): an
	// available volume, or an in-use one live (the guest sees the new size).
	// It returns at once with the volume extending (Cinder's status); the
	// volume settles back to available or in-use with SizeGiB newSizeGiB.
	// A size not larger than the current one is ErrInvalid; a volume in
	// another status ErrConflict.
	ExtendVolume(ctx context.Context, id string, newSizeGiB int) (Volume, error)
}

// ImageData is the optional ability to move image bytes as streams. A cloud
// without it can still boot images that are already there.
type ImageData interface {
	// UploadImage streams data into a queued image. size is the expected
	// length or -1 when unknown. A failed or interrupted upload leaves the
	// image killed (or queued, as Glance since Rocky resets it), never
	// active with partial bytes.
	UploadImage(ctx context.Context, id string, data io.Reader, size int64) error
	// DownloadImage streams an active image's bytes.
	DownloadImage(ctx context.Context, id string) (io.ReadCloser, error)
}

// ServerResizer is the optional ability to change a server's flavor, as
// Nova's resize does.
type ServerResizer interface {
	// ResizeServer starts moving an ACTIVE or SHUTOFF server to flavorID:
	// it returns at once with the server in RESIZE, which settles in
	// VERIFY_RESIZE with FlavorID the new flavor and the guest in the power
	// state it had. ServerAction's confirm_resize and revert_resize end it.
	// The same flavor, or one with a smaller root disk, is ErrInvalid; an
	// unknown flavor ErrNotFound; another status, ErrConflict; no room for
	// the new flavor where the server runs, ErrCapacity.
	ResizeServer(ctx context.Context, id, flavorID string) error
}

// ServerStateResetter is the optional ability to force a server's status,
// as an admin's os-resetState does in Nova: ACTIVE or ERROR, at once,
// whatever the guest does. Any other status is ErrInvalid; a server in
// the middle of an action the cloud cannot forget may be ErrConflict.
type ServerStateResetter interface {
	ResetServerState(ctx context.Context, id string, status ServerStatus) error
}

// ServerImager is the optional ability to snapshot a server's root disk
// into an image of the cloud, as Nova's createImage does.
type ServerImager interface {
	// ImageServer starts a snapshot of an ACTIVE or SHUTOFF server (a
	// cloud may take PAUSED or SUSPENDED ones too) into a new image made
	// from spec: its name, project, visibility and properties (a cloud
	// sets the disk and container formats itself; spec.ID is honoured
	// where the cloud lets a caller choose, and Nova does not). It
	// returns the image at once, queued or saving; the image becomes
	// active with the disk's bytes, or killed (or gone) when the snapshot
	// fails. The server keeps its status. A server booted from a volume
	// is ErrNotSupported; one in another status, or busy with another
	// action, ErrConflict; an unknown one ErrNotFound.
	ImageServer(ctx context.Context, serverID string, spec ImageSpec) (Image, error)
}

// ConsoleReader is the optional ability to read a server's console log.
type ConsoleReader interface {
	// ConsoleOutput returns the last lines of the console (all when lines <= 0).
	ConsoleOutput(ctx context.Context, serverID string, lines int) (string, error)
}

// ServerRebuilder is the optional ability to reprovision a server from an
// image, as Nova's rebuild does.
type ServerRebuilder interface {
	// RebuildServer starts rebuilding an ACTIVE, SHUTOFF or ERROR server
	// from spec: it returns at once with the server in REBUILD, which
	// settles with ImageID spec.ImageID, a fresh root disk, spec's key,
	// user data and metadata, and the same ID, flavor, ports and volumes;
	// a server that was SHUTOFF is SHUTOFF again (as Nova leaves a stopped
	// one), any other ACTIVE. A server booted from a volume keeps its
	// disk: only its image may be given again (Nova refuses another before
	// 2.93). An unknown image is ErrNotFound, one the server's flavor does
	// not fit or the cloud cannot boot ErrInvalid; another status, or a
	// server busy with another action, ErrConflict.
	RebuildServer(ctx context.Context, id string, spec RebuildSpec) error
}

// RebuildSpec is what a rebuilt server gets. Everything is given whole:
// the broker keeps the server's user data and passes the current key and
// metadata when the caller changes neither.
type RebuildSpec struct {
	// ImageID is the image to boot, as the cloud names it.
	ImageID string
	// KeyName is the keypair whose key the guest gets; "" none.
	KeyName string
	// UserData is the guest's user data; nil none.
	UserData []byte
	// Metadata replaces the server's metadata.
	Metadata map[string]string
	// Hostname, when set, is the guest's new host name (Nova 2.90); empty
	// keeps the one it has.
	Hostname string
	// PreserveEphemeral keeps the server's ephemeral disk, where it has
	// one, instead of making it empty again (a cloud without ephemeral
	// disks has nothing to keep).
	PreserveEphemeral bool
}

// ServerShelver is the optional ability to shelve servers, as Nova's
// shelve, shelveOffload and unshelve do.
type ServerShelver interface {
	// ShelveServer starts shelving an ACTIVE, SHUTOFF, PAUSED or
	// SUSPENDED server: the guest is stopped (SHELVED) and, as Nova does
	// with its default shelved_offload_time of 0, offloaded at once
	// (SHELVED_OFFLOADED): its host's vCPUs and memory are freed, its
	// disk, ports and volumes kept. Another status, or a server busy with
	// another action, is ErrConflict.
	ShelveServer(ctx context.Context, id string) error
	// OffloadServer offloads a SHELVED server (one whose offload has not
	// happened): SHELVED_OFFLOADED. Another status is ErrConflict; a
	// cloud whose policy keeps it to admins (Nova's default) refuses
	// other credentials with ErrUnauthorized.
	OffloadServer(ctx context.Context, id string) error
	// UnshelveServer boots a SHELVED or SHELVED_OFFLOADED server again:
	// it returns at once and the server settles ACTIVE, with the same ID,
	// disk, ports and volumes. No room for it is ErrCapacity; another
	// status ErrConflict.
	UnshelveServer(ctx context.Context, id string) error
}
