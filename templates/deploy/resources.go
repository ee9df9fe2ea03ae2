package deploy

import (
	"context"

	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// Resources is the broker's service layer as the engine uses it: the
// only way a deployment touches a peer. Each call carries the
// deployment's identity, so a template gets exactly what its project
// would get through Nova, Neutron, Cinder and Glance: references resolve
// by broker ID or name under the same visibility rules (another project's
// private image, port, volume or network is not found, by any ID form),
// creates reserve quota, and IDs in and out are broker IDs. The broker's
// adapter (broker/deployres) implements it.
type Resources interface {
	CreateServer(ctx context.Context, c resource.Caller, spec resource.ServerSpec) (resource.Created, error)
	CreateVolume(ctx context.Context, c resource.Caller, spec resource.VolumeSpec) (resource.Created, error)
	// GrowVolume extends a volume to sizeGiB (the one in-place change).
	GrowVolume(ctx context.Context, c resource.Caller, id string, sizeGiB int) error
	CreateNetwork(ctx context.Context, c resource.Caller, spec resource.NetworkSpec) (resource.Created, error)
	CreateSubnet(ctx context.Context, c resource.Caller, spec resource.SubnetSpec) (resource.Created, error)
	CreatePort(ctx context.Context, c resource.Caller, spec resource.PortSpec) (resource.Created, error)
	CreateKeypair(ctx context.Context, c resource.Caller, spec resource.KeypairSpec) (resource.Created, error)
	CreateImage(ctx context.Context, c resource.Caller, spec resource.ImageSpec) (resource.Created, error)
	// Attach attaches a volume to a server (both broker IDs); Attached
	// reads the attachment (resource.ErrNotFound once it is gone), Detach
	// undoes it (not attached is success).
	Attach(ctx context.Context, c resource.Caller, server, volume string) (resource.Created, error)
	Attached(ctx context.Context, c resource.Caller, server, volume string) (resource.State, error)
	Detach(ctx context.Context, c resource.Caller, server, volume string) error
	// Get reads a resource of kind; resource.ErrNotFound when it is gone.
	Get(ctx context.Context, c resource.Caller, kind templates.Kind, id string) (resource.State, error)
	// Delete starts removing it; one already gone is success.
	Delete(ctx context.Context, c resource.Caller, kind templates.Kind, id string) error
	// Find returns the broker IDs of the caller's resources of kind
	// carrying every mark. What a create left half-made (on its peer,
	// never recorded by the service) is removed, not returned.
	Find(ctx context.Context, c resource.Caller, kind templates.Kind, marks map[string]string) ([]string, error)
	// Flavor finds a flavor by broker ID or name.
	Flavor(ctx context.Context, ref string) (resource.Flavor, error)
	// Image finds an image the caller may use by broker ID or name.
	Image(ctx context.Context, c resource.Caller, ref string) (resource.Image, error)
	// Reference says whether the caller may use the existing resource of
	// kind (network, port, volume, server, keypair) ref names, resolved as
	// the create using it on peer (a name) will: resource.ErrNotFound when
	// it may not (or it does not exist; with resource.ErrAmbiguous when
	// several bear the name), another error when that cannot be told now.
	Reference(ctx context.Context, c resource.Caller, kind templates.Kind, ref, peer string) error
	// CheckQuota says whether want fits the caller's quota now: a
	// *quota error naming the resource and the numbers when it does not
	// (wrapping resource.ErrOverQuota). The creates reserve for real.
	CheckQuota(ctx context.Context, c resource.Caller, want resource.Usage) error
}

// Peers is what the planner knows of the pool: the peers placement may
// choose among, and any peer by ID (a resource stays on its peer while
// the peer is in the pool). It gives no way to call a peer.
type Peers interface {
	Usable() []registry.Peer
	Peer(id string) (registry.Peer, bool)
}
