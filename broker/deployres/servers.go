package deployres

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

// CreateServer implements deploy.Resources through compute.Servers: the
// image by broker ID or name as the caller sees it, networks by broker ID
// or name (a name shared by several copies picks the one on the server's
// peer), ports by broker ID, the user's keypair, pinned to the plan's
// peer (its availability zone) with the template's labels for the
// policy. The service reserves the instance, cores and ram.
func (a *Adapter) CreateServer(ctx context.Context, c resource.Caller, spec resource.ServerSpec) (resource.Created, error) {
	boot, err := a.volumeID(ctx, c, spec.BootVolume)
	if err != nil {
		return resource.Created{}, err
	}
	cs := compute.CreateSpec{Name: spec.Name, FlavorRef: spec.Flavor, BootVolume: boot, KeyName: spec.KeyName,
		UserData: spec.UserData, Metadata: spec.Metadata, AvailabilityZone: spec.Placement.Peer,
		RequiredLabels: spec.Placement.RequiredLabels, PreferredLabels: spec.Placement.PreferredLabels, Marks: spec.Marks}
	if len(cs.Metadata) == 0 {
		cs.Metadata = nil
	}
	if spec.Image != "" {
		img, err := a.image(ctx, c, spec.Image, spec.Placement.Peer)
		if err != nil {
			return resource.Created{}, err
		}
		cs.ImageRef = img.ID
	}
	for _, n := range spec.NICs {
		nic := compute.NIC{FixedIP: n.FixedIP}
		if n.Port != "" {
			id, err := a.portID(ctx, c, n.Port)
			if err != nil {
				return resource.Created{}, err
			}
			nic.Port = id
		}
		if n.Network != "" {
			id, err := a.networkID(ctx, c, n.Network, spec.Placement.Peer)
			if err != nil {
				return resource.Created{}, err
			}
			nic.Network = id
		}
		cs.NICs = append(cs.NICs, nic)
	}
	if len(cs.NICs) == 0 {
		cs.NetworksMode = compute.NetworksNone
	}
	s, err := a.Servers.Create(ctx, computeCaller(c), cs)
	if err != nil {
		return resource.Created{}, wrap(err)
	}
	return resource.Created{ID: s.ID}, nil
}

// server reads a server: ready once ACTIVE, an error once in ERROR.
func (a *Adapter) server(ctx context.Context, c resource.Caller, id string) (resource.State, error) {
	s, err := a.Servers.Get(ctx, computeCaller(c), id)
	if err != nil {
		return resource.State{}, err
	}
	if s.Status == peers.ServerError {
		return resource.State{}, fmt.Errorf("server %s went to ERROR: %s", s.ID, s.Fault)
	}
	attrs := map[string]any{"name": s.Name, "status": string(s.Status), "host": s.Host, "flavor": s.FlavorID, "image": s.ImageID}
	addrs, nets := map[string]any{}, map[string]any{}
	first := ""
	for _, ad := range s.Addresses {
		l, _ := addrs[ad.Network].([]any)
		addrs[ad.Network] = append(l, map[string]any{"addr": ad.Addr, "version": int64(ad.Version), "mac": ad.MAC})
		n, _ := nets[ad.Network].([]any)
		nets[ad.Network] = append(n, ad.Addr)
		if first == "" && ad.Version == 4 {
			first = ad.Addr
		}
	}
	attrs["addresses"], attrs["networks"], attrs["first_address"] = addrs, nets, first
	return resource.State{Ready: s.Status == peers.ServerActive, Attrs: attrs}, nil
}

// Attach implements deploy.Resources: a volume of the caller's project
// (broker ID or name) onto one of its servers, on their common peer. Its
// ID is the volume's broker ID.
func (a *Adapter) Attach(ctx context.Context, c resource.Caller, server, volume string) (resource.Created, error) {
	id, err := a.volumeID(ctx, c, volume)
	if err != nil {
		return resource.Created{}, err
	}
	at, err := a.Servers.Attach(ctx, computeCaller(c), server, id)
	if err != nil {
		return resource.Created{}, wrap(err)
	}
	return resource.Created{ID: id, Attrs: map[string]any{"device": at.Device, "volume_id": id}}, nil
}

// Attached implements deploy.Resources.
func (a *Adapter) Attached(ctx context.Context, c resource.Caller, server, volume string) (resource.State, error) {
	id, err := a.volumeID(ctx, c, volume)
	if err != nil {
		return resource.State{}, err
	}
	ats, err := a.Servers.Attachments(ctx, computeCaller(c), server)
	if err != nil {
		return resource.State{}, wrap(err)
	}
	for _, at := range ats {
		if at.VolumeID == id {
			return resource.State{Ready: true, Attrs: map[string]any{"device": at.Device, "volume_id": id}}, nil
		}
	}
	// The server lists a volume once the attach is done; until then the
	// volume is attaching, and the attachment on its way, not gone.
	if v, err := a.Volumes.Get(ctx, volumeCaller(c), id); err == nil && v.Status == peers.VolumeAttaching {
		return resource.State{Ready: false}, nil
	}
	return resource.State{}, notFound("attachment of volume", volume)
}

// Detach implements deploy.Resources; a volume not attached is success.
func (a *Adapter) Detach(ctx context.Context, c resource.Caller, server, volume string) error {
	id, err := a.volumeID(ctx, c, volume)
	if errors.Is(err, resource.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	err = a.Servers.Detach(ctx, computeCaller(c), server, id)
	if errors.Is(err, peers.ErrNotFound) {
		return nil
	}
	return wrap(err)
}
