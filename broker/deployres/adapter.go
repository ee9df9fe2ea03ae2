package deployres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// Servers is the part of compute.Servers the adapter uses.
type Servers interface {
	Create(ctx context.Context, c compute.Caller, spec compute.CreateSpec) (compute.Server, error)
	Get(ctx context.Context, c compute.Caller, id string) (compute.Server, error)
	Delete(ctx context.Context, c compute.Caller, id string) error
	Marked(ctx context.Context, c compute.Caller, marks map[string]string) ([]string, error)
	Attach(ctx context.Context, c compute.Caller, serverID, volumeID string) (compute.Attachment, error)
	Detach(ctx context.Context, c compute.Caller, serverID, volumeID string) error
	Attachments(ctx context.Context, c compute.Caller, serverID string) ([]compute.Attachment, error)
	Flavors(ctx context.Context) (flavors []peers.Flavor, failed []string)
}

var _ Servers = (*compute.Servers)(nil)

// Keypairs is the part of compute.KeypairStore the adapter uses.
type Keypairs interface {
	Create(ctx context.Context, project, userID string, spec peers.KeypairSpec) (peers.Keypair, error)
	Get(ctx context.Context, userID, name string) (peers.Keypair, error)
	Delete(ctx context.Context, project, userID, name string) error
}

var _ Keypairs = (*compute.KeypairStore)(nil)

// Networks is the part of network.Service the adapter uses.
type Networks interface {
	CreateNetwork(ctx context.Context, project string, req network.NetworkCreate) (network.Network, error)
	CreateSubnet(ctx context.Context, project string, req network.SubnetCreate) (network.Subnet, error)
	CreatePort(ctx context.Context, project string, req network.PortCreate) (network.Port, error)
	GetNetwork(ctx context.Context, project, id string) (network.Network, error)
	GetSubnet(ctx context.Context, project, id string) (network.Subnet, error)
	GetPort(ctx context.Context, project, id string) (network.Port, error)
	DeleteNetwork(ctx context.Context, project, id string) error
	DeleteSubnet(ctx context.Context, project, id string) error
	DeletePort(ctx context.Context, project, id string) error
	Resolve(ctx context.Context, project, kind, id string) (network.Ref, error)
	List(ctx context.Context, project string, withPorts bool) (network.Visible, error)
	Marked(ctx context.Context, project, kind string, marks map[string]string) ([]string, error)
}

var _ Networks = (*network.Service)(nil)

// Images is the part of image.Service the adapter uses.
type Images interface {
	Create(ctx context.Context, c image.Caller, spec image.CreateSpec) (image.Image, error)
	Get(ctx context.Context, c image.Caller, id string) (image.Image, error)
	List(ctx context.Context, c image.Caller, q image.Query) (image.Page, error)
	Delete(ctx context.Context, c image.Caller, id string) error
	Marked(ctx context.Context, c image.Caller, marks map[string]string) ([]string, error)
}

var _ Images = (*image.Service)(nil)

// Quota is the part of quota.Ledger the adapter uses.
type Quota interface {
	Check(ctx context.Context, s quota.Scope, want quota.Amounts) error
}

var _ Quota = (*quota.Ledger)(nil)

// Pool is the part of peers.Pool the adapter shows the planner.
type Pool interface {
	Members() []*peers.Member
	Get(id string) (*peers.Member, bool)
}

// Adapter implements deploy.Resources and deploy.Peers. Set every field.
type Adapter struct {
	Servers  Servers
	Keypairs Keypairs
	Networks Networks
	Images   Images
	Volumes  Volumes
	Quota    Quota
	Pool     Pool
}

// Validate reports the fields left unset: a wiring mistake, caught at
// start rather than by the first deployment.
func (a *Adapter) Validate() error {
	var errs []error
	for name, missing := range map[string]bool{"Servers": a.Servers == nil, "Keypairs": a.Keypairs == nil, "Networks": a.Networks == nil,
		"Images": a.Images == nil, "Volumes": a.Volumes == nil, "Quota": a.Quota == nil, "Pool": a.Pool == nil} {
		if missing {
			errs = append(errs, fmt.Errorf("deployres.Adapter.%s is not set", name))
		}
	}
	slices.SortFunc(errs, func(x, y error) int {
		if x.Error() < y.Error() {
			return -1
		}
		return 1
	})
	return errors.Join(errs...)
}

// Usable implements deploy.Peers: the peers placement may choose.
func (a *Adapter) Usable() []registry.Peer {
	var out []registry.Peer
	for _, m := range a.Pool.Members() {
		if m.Usable() {
			out = append(out, m.Peer)
		}
	}
	return out
}

// Peer implements deploy.Peers.
func (a *Adapter) Peer(id string) (registry.Peer, bool) {
	m, ok := a.Pool.Get(id)
	if !ok {
		return registry.Peer{}, false
	}
	return m.Peer, true
}

func computeCaller(c resource.Caller) compute.Caller {
	return compute.Caller{Project: c.Project, User: c.User}
}

func imageCaller(c resource.Caller) image.Caller {
	return image.Caller{Project: c.Project}
}

// failure keeps a service's error (its message is the user's) and adds
// the resource sentinel the engine acts on.
type failure struct {
	err, kind error
	also      error // another sentinel, or nil
}

func (f *failure) Error() string { return f.err.Error() }
func (f *failure) Unwrap() []error {
	if f.also != nil {
		return []error{f.err, f.kind, f.also}
	}
	return []error{f.err, f.kind}
}

// wrap classifies a service error for the engine.
func wrap(err error) error {
	var kind error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, peers.ErrNotFound), errors.Is(err, image.ErrNotFound):
		kind = resource.ErrNotFound
	case errors.Is(err, quota.ErrOverQuota):
		kind = resource.ErrOverQuota
	case errors.Is(err, peers.ErrConflict), errors.Is(err, image.ErrConflict):
		kind = resource.ErrConflict
	case errors.Is(err, peers.ErrUnavailable), errors.Is(err, image.ErrUnavailable):
		kind = resource.ErrUnavailable
	default:
		return err
	}
	return &failure{err: err, kind: kind}
}

func notFound(what, ref string) error {
	return &failure{err: fmt.Errorf("%s %s could not be found", what, ref), kind: resource.ErrNotFound}
}

// Flavor implements deploy.Resources: a flavor of the pool by broker ID
// or name.
func (a *Adapter) Flavor(ctx context.Context, ref string) (resource.Flavor, error) {
	fl, _ := a.Servers.Flavors(ctx)
	i := slices.IndexFunc(fl, func(f peers.Flavor) bool { return f.ID == ref })
	if i < 0 {
		i = slices.IndexFunc(fl, func(f peers.Flavor) bool { return f.Name == ref })
	}
	if i < 0 {
		return resource.Flavor{}, notFound("flavor", ref)
	}
	f := fl[i]
	return resource.Flavor{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, RAMMiB: f.RAMMiB, DiskGiB: f.DiskGiB}, nil
}

// Image implements deploy.Resources: an image the caller may use, by
// broker ID (or a peer's own public image by its ID), else by name among
// those Glance lists for the caller (several peers' own images may share
// a name: any of them answers here; a create takes the one on its peer).
func (a *Adapter) Image(ctx context.Context, c resource.Caller, ref string) (resource.Image, error) {
	img, err := a.image(ctx, c, ref, "")
	if err != nil {
		return resource.Image{}, err
	}
	return resource.Image{ID: img.ID, Name: img.Name, MinDiskGiB: img.MinDiskGiB, SizeBytes: img.Size}, nil
}

// image finds an image for the caller; a name borne by several images
// picks the one on peer (when peer is "", the first).
func (a *Adapter) image(ctx context.Context, c resource.Caller, ref, peer string) (image.Image, error) {
	if ref == "" {
		return image.Image{}, notFound("image", `""`)
	}
	img, err := a.Images.Get(ctx, imageCaller(c), ref)
	if err == nil || !errors.Is(err, image.ErrNotFound) {
		return img, wrap(err)
	}
	page, err := a.Images.List(ctx, imageCaller(c), image.Query{Names: []string{ref}})
	if err != nil {
		return image.Image{}, wrap(err)
	}
	imgs := page.Images
	if len(imgs) > 1 && peer != "" {
		imgs = slices.DeleteFunc(slices.Clone(imgs), func(i image.Image) bool { return i.PeerName != peer })
	}
	switch {
	case len(page.Images) == 0:
		return image.Image{}, notFound("image", ref)
	case len(imgs) == 1:
		return imgs[0], nil
	case peer == "":
		return page.Images[0], nil
	case len(imgs) == 0:
		// Only other peers hold it: the servers service copies it over.
		return page.Images[0], nil
	}
	return image.Image{}, &failure{err: fmt.Errorf("more than one image is named %s: name it by ID", ref), kind: resource.ErrNotFound, also: resource.ErrAmbiguous}
}

// CheckQuota implements deploy.Resources: keypairs count per user, the
// rest per project, as Nova, Cinder and Neutron count them.
func (a *Adapter) CheckQuota(ctx context.Context, c resource.Caller, want resource.Usage) error {
	project, user := quota.Amounts{}, quota.Amounts{}
	for k, v := range want {
		r := quota.Resource(k)
		if !quota.Known(r) {
			return fmt.Errorf("deployres: unknown quota resource %q", k)
		}
		if r == quota.KeyPairs {
			user[r] = v
		} else {
			project[r] = v
		}
	}
	var errs []error
	if len(project) > 0 {
		errs = append(errs, wrap(a.Quota.Check(ctx, quota.Scope{Project: c.Project}, project)))
	}
	if len(user) > 0 {
		errs = append(errs, wrap(a.Quota.Check(ctx, quota.Scope{Project: c.Project, User: c.User}, user)))
	}
	return errors.Join(errs...)
}

// Get implements deploy.Resources.
func (a *Adapter) Get(ctx context.Context, c resource.Caller, kind templates.Kind, id string) (resource.State, error) {
	var st resource.State
	var err error
	switch kind {
	case templates.KindServer:
		st, err = a.server(ctx, c, id)
	case templates.KindVolume:
		st, err = a.volume(ctx, c, id)
	case templates.KindNetwork, templates.KindSubnet, templates.KindPort:
		st, err = a.networkState(ctx, c, kind, id)
	case templates.KindKeypair:
		var k peers.Keypair
		if k, err = a.Keypairs.Get(ctx, c.User, id); err == nil {
			st = resource.State{Ready: true, Attrs: map[string]any{"name": k.Name, "public_key": k.PublicKey, "fingerprint": k.Fingerprint}}
		}
	case templates.KindImage:
		var img image.Image
		if img, err = a.Images.Get(ctx, imageCaller(c), id); err == nil {
			st = resource.State{Ready: true, Attrs: map[string]any{"name": img.Name, "status": string(img.Status)}}
		}
	default:
		return st, fmt.Errorf("deployres: no %s resources", kind)
	}
	return st, wrap(err)
}

// Delete implements deploy.Resources.
func (a *Adapter) Delete(ctx context.Context, c resource.Caller, kind templates.Kind, id string) error {
	var err error
	switch kind {
	case templates.KindServer:
		err = a.Servers.Delete(ctx, computeCaller(c), id)
	case templates.KindVolume:
		err = a.Volumes.Delete(ctx, volumeCaller(c), id)
	case templates.KindNetwork:
		err = a.Networks.DeleteNetwork(ctx, c.Project, id)
	case templates.KindSubnet:
		err = a.Networks.DeleteSubnet(ctx, c.Project, id)
	case templates.KindPort:
		err = a.Networks.DeletePort(ctx, c.Project, id)
	case templates.KindKeypair:
		err = a.Keypairs.Delete(ctx, c.Project, c.User, id)
	case templates.KindImage:
		err = a.Images.Delete(ctx, imageCaller(c), id)
	default:
		return fmt.Errorf("deployres: no %s resources", kind)
	}
	return wrap(err)
}

// Find implements deploy.Resources.
func (a *Adapter) Find(ctx context.Context, c resource.Caller, kind templates.Kind, marks map[string]string) ([]string, error) {
	var ids []string
	var err error
	switch kind {
	case templates.KindServer:
		ids, err = a.Servers.Marked(ctx, computeCaller(c), marks)
	case templates.KindVolume:
		ids, err = a.Volumes.Marked(ctx, volumeCaller(c), marks)
	case templates.KindNetwork:
		ids, err = a.Networks.Marked(ctx, c.Project, network.KindNetwork, marks)
	case templates.KindSubnet:
		ids, err = a.Networks.Marked(ctx, c.Project, network.KindSubnet, marks)
	case templates.KindPort:
		ids, err = a.Networks.Marked(ctx, c.Project, network.KindPort, marks)
	case templates.KindImage:
		ids, err = a.Images.Marked(ctx, imageCaller(c), marks)
	default:
		return nil, nil // keypairs and attachments carry no marks
	}
	return ids, wrap(err)
}

// CreateKeypair implements deploy.Resources: a keypair of the caller's
// user, kept by the broker (os-keypairs shows it), its private key
// returned once when the broker generated it.
func (a *Adapter) CreateKeypair(ctx context.Context, c resource.Caller, spec resource.KeypairSpec) (resource.Created, error) {
	if c.User == "" {
		return resource.Created{}, fmt.Errorf("keypair %s: the deployment has no user to own it", spec.Name)
	}
	k, err := a.Keypairs.Create(ctx, c.Project, c.User, peers.KeypairSpec{Name: spec.Name, Project: c.Project, UserID: c.User,
		Type: spec.Type, PublicKey: spec.PublicKey})
	if err != nil {
		return resource.Created{}, wrap(err)
	}
	out := resource.Created{ID: k.Name, Attrs: map[string]any{}}
	if k.PrivateKey != "" {
		out.Attrs["private_key"] = k.PrivateKey
	}
	return out, nil
}

// CreateImage implements deploy.Resources: an image record (queued until
// data is uploaded through Glance) on the plan's peer.
func (a *Adapter) CreateImage(ctx context.Context, c resource.Caller, spec resource.ImageSpec) (resource.Created, error) {
	img, err := a.Images.Create(ctx, imageCaller(c), image.CreateSpec{Name: spec.Name, DiskFormat: spec.DiskFormat,
		ContainerFormat: spec.ContainerFormat, Visibility: spec.Visibility, MinRAMMiB: spec.MinRAMMiB, MinDiskGiB: spec.MinDiskGiB,
		Protected: spec.Protected, Tags: spec.Tags, Properties: spec.Properties, Zone: spec.Placement.Peer, Marks: spec.Marks})
	if err != nil {
		return resource.Created{}, wrap(err)
	}
	return resource.Created{ID: img.ID}, nil
}

// Reference implements deploy.Resources: whether the caller may use the
// existing resource ref names, resolved exactly as the create that uses
// it will resolve it (broker ID or name, the service layer's visibility
// rules, a network name by the referring resource's peer), so a template
// naming a network, port, volume, server or key pair the project cannot
// use fails at plan, not halfway through an apply.
func (a *Adapter) Reference(ctx context.Context, c resource.Caller, kind templates.Kind, ref, peer string) error {
	var err error
	switch kind {
	case templates.KindNetwork:
		_, err = a.networkID(ctx, c, ref, peer)
	case templates.KindPort:
		_, err = a.portID(ctx, c, ref)
	case templates.KindVolume:
		_, err = a.volumeID(ctx, c, ref)
	case templates.KindServer:
		if _, err = a.Servers.Get(ctx, computeCaller(c), ref); err != nil {
			err = wrap(err)
		}
	case templates.KindKeypair:
		if _, err = a.Keypairs.Get(ctx, c.User, ref); err != nil {
			err = wrap(err)
		}
	default:
		return fmt.Errorf("%s resources are not referenced by ID", kind)
	}
	return err
}
