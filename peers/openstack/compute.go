package openstack

import (
	"context"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/peers"
)

// ListFlavors lists the flavors the project may use.
func (c *Cloud) ListFlavors(ctx context.Context) ([]peers.Flavor, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	pages, err := flavors.ListDetail(c.compute, flavors.ListOpts{}).AllPages(ctx)
	if err != nil {
		return nil, c.translate("nova: list flavors", err)
	}
	fs, err := flavors.ExtractFlavors(pages)
	if err != nil {
		return nil, c.translate("nova: list flavors", err)
	}
	out := make([]peers.Flavor, 0, len(fs))
	c.mu.Lock()
	for _, f := range fs {
		c.flavors[f.Name] = f.ID
		out = append(out, toFlavor(f))
	}
	c.mu.Unlock()
	return out, nil
}

// GetFlavor shows one flavor.
func (c *Cloud) GetFlavor(ctx context.Context, id string) (peers.Flavor, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	f, err := flavors.Get(ctx, c.compute, id).Extract()
	if err != nil {
		return peers.Flavor{}, c.translate("nova: show flavor "+id, err)
	}
	return toFlavor(*f), nil
}

func toFlavor(f flavors.Flavor) peers.Flavor {
	return peers.Flavor{ID: f.ID, Name: f.Name, VCPUs: f.VCPUs, RAMMiB: f.RAM, DiskGiB: f.Disk,
		EphemeralGiB: f.Ephemeral, IsPublic: f.IsPublic, ExtraSpecs: f.ExtraSpecs}
}

// CreateServer boots a server in the scoped project. The broker's project
// and IDs ride in spec.Metadata (Nova metadata). User data is sent
// base64-encoded, always: gophercloud's "encode unless it already looks like
// base64" would send a user's base64-looking text undecoded.
func (c *Cloud) CreateServer(ctx context.Context, spec peers.ServerSpec) (peers.Server, error) {
	if spec.ImageID == "" && spec.BootVolumeID == "" {
		return peers.Server{}, fmt.Errorf("nova: create server %q: neither an image nor a boot volume: %w", spec.Name, peers.ErrInvalid)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	opts := servers.CreateOpts{
		Name: spec.Name, ImageRef: spec.ImageID, FlavorRef: spec.FlavorID,
		AvailabilityZone: spec.AvailabilityZone, Metadata: c.outMeta(spec.Metadata),
	}
	if len(spec.UserData) > 0 {
		opts.UserData = []byte(base64.StdEncoding.EncodeToString(spec.UserData))
	}
	for _, g := range spec.SecurityGroups {
		// Nova resolves a name in the project through Neutron: the mirror.
		if _, err := c.mirror(ctx, peers.SecurityGroup{ID: g}, false); err != nil {
			return peers.Server{}, fmt.Errorf("nova: create server %q: %w", spec.Name, err)
		}
		opts.SecurityGroups = append(opts.SecurityGroups, mirrorName(g))
	}
	if len(spec.Networks) > 0 {
		nets := make([]servers.Network, len(spec.Networks))
		for i, n := range spec.Networks {
			nets[i] = servers.Network{UUID: n.NetworkID, Port: n.PortID, FixedIP: n.FixedIP}
		}
		opts.Networks = nets
	} else if c.computeMinor >= 37 {
		// Since 2.37 networks is required; "none" is the contract's "no NIC".
		opts.Networks = "none"
	}
	if spec.BootVolumeID != "" {
		opts.ImageRef = ""
		opts.BlockDevice = []servers.BlockDevice{{SourceType: servers.SourceVolume, DestinationType: servers.DestinationVolume,
			UUID: spec.BootVolumeID, BootIndex: 0}}
	}
	client := c.compute
	if spec.Hostname != "" {
		// 2.90's create differs from 2.79's by hostname alone.
		if c.computeMaxMinor < 90 {
			return peers.Server{}, fmt.Errorf("nova: create server %q: the cloud's compute API (2.%d) cannot set a hostname (2.90): %w", spec.Name, c.computeMaxMinor, peers.ErrCapacity)
		}
		sc := *c.compute
		sc.Microversion, opts.Hostname = "2.90", spec.Hostname
		client = &sc
	}
	var create servers.CreateOptsBuilder = opts
	if spec.KeyName != "" {
		create = keyNameOpts{opts, spec.KeyName}
	}
	srv, err := servers.Create(ctx, client, create, nil).Extract()
	if err != nil {
		return peers.Server{}, c.translate(fmt.Sprintf("nova: create server %q", spec.Name), err)
	}
	// Nova answers a create with the ID only; the rest is what was asked.
	return peers.Server{ID: srv.ID, Name: spec.Name, Status: peers.ServerBuild, Project: c.ProjectID(),
		FlavorID: spec.FlavorID, ImageID: spec.ImageID, KeyName: spec.KeyName, Hostname: spec.Hostname,
		AvailabilityZone: spec.AvailabilityZone, Metadata: spec.Metadata}, nil
}

// keyNameOpts adds key_name to a create (gophercloud keeps it in the
// keypairs extension).
type keyNameOpts struct {
	servers.CreateOpts
	keyName string
}

func (o keyNameOpts) ToServerCreateMap() (map[string]any, error) {
	m, err := o.CreateOpts.ToServerCreateMap()
	if err != nil {
		return nil, err
	}
	m["server"].(map[string]any)["key_name"] = o.keyName
	return m, nil
}

// GetServer shows a server; a DELETED or SOFT_DELETED one is ErrNotFound.
func (c *Cloud) GetServer(ctx context.Context, id string) (peers.Server, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	s, err := servers.Get(ctx, c.compute, id).Extract()
	if err != nil {
		return peers.Server{}, c.translate("nova: show server "+id, err)
	}
	out := c.toServer(ctx, *s)
	if out.Status == peers.ServerDeleted {
		return peers.Server{}, fmt.Errorf("nova: server %s is deleted: %w", id, peers.ErrNotFound)
	}
	return out, nil
}

// ListServers lists the project's servers. Nova filters by metadata only
// client-side, so the filter is applied here. Project: a project other than
// the scoped one needs an admin token (all_tenants); without one the list
// is empty, as the project could see none of them.
func (c *Cloud) ListServers(ctx context.Context, opts peers.ListOptions) ([]peers.Server, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	lo := servers.ListOpts{}
	if own := c.ProjectID(); opts.Project != "" && opts.Project != own {
		if !c.admin {
			return nil, ctx.Err()
		}
		lo.AllTenants, lo.TenantID = true, opts.Project
	}
	pages, err := servers.List(c.compute, lo).AllPages(ctx)
	if err != nil {
		return nil, c.translate("nova: list servers", err)
	}
	all, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, c.translate("nova: list servers", err)
	}
	var out []peers.Server
	for _, s := range all {
		srv := c.toServer(ctx, s)
		if srv.Status != peers.ServerDeleted && opts.Matches(srv.Project, srv.Metadata) {
			out = append(out, srv)
		}
	}
	return out, nil
}

// DeleteServer starts deletion.
func (c *Cloud) DeleteServer(ctx context.Context, id string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.translate("nova: delete server "+id, servers.Delete(ctx, c.compute, id).ExtractErr())
}

// ServerAction runs a power action. Nova answers an action the state does
// not allow with 409.
func (c *Cloud) ServerAction(ctx context.Context, id string, action peers.ServerAction) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	var err error
	switch action {
	case peers.ActionStart:
		err = servers.Start(ctx, c.compute, id).ExtractErr()
	case peers.ActionStop:
		err = servers.Stop(ctx, c.compute, id).ExtractErr()
	case peers.ActionReboot:
		err = servers.Reboot(ctx, c.compute, id, servers.RebootOpts{Type: servers.SoftReboot}).ExtractErr()
	case peers.ActionHardReboot:
		err = servers.Reboot(ctx, c.compute, id, servers.RebootOpts{Type: servers.HardReboot}).ExtractErr()
	case peers.ActionPause:
		err = servers.Pause(ctx, c.compute, id).ExtractErr()
	case peers.ActionUnpause:
		err = servers.Unpause(ctx, c.compute, id).ExtractErr()
	case peers.ActionSuspend:
		err = servers.Suspend(ctx, c.compute, id).ExtractErr()
	case peers.ActionResume:
		err = servers.Resume(ctx, c.compute, id).ExtractErr()
	case peers.ActionConfirmResize:
		err = servers.ConfirmResize(ctx, c.compute, id).ExtractErr()
	case peers.ActionRevertResize:
		err = servers.RevertResize(ctx, c.compute, id).ExtractErr()
	default:
		return fmt.Errorf("nova: server %s: unknown action %q: %w", id, action, peers.ErrInvalid)
	}
	return c.translate(fmt.Sprintf("nova: %s server %s", action, id), err)
}

// ResizeServer asks Nova to resize the server to flavorID (the cloud's
// own scheduler picks where; a single-host cloud needs Nova's
// allow_resize_to_same_host).
func (c *Cloud) ResizeServer(ctx context.Context, id, flavorID string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	err := servers.Resize(ctx, c.compute, id, servers.ResizeOpts{FlavorRef: flavorID}).ExtractErr()
	return c.translate(fmt.Sprintf("nova: resize server %s to flavor %s", id, flavorID), err)
}

// ResetServerState calls Nova's os-resetState (an admin's action: the
// peer's credentials must allow it, else ErrUnauthorized).
func (c *Cloud) ResetServerState(ctx context.Context, id string, status peers.ServerStatus) error {
	state := servers.StateActive
	switch status {
	case peers.ServerActive:
	case peers.ServerError:
		state = servers.StateError
	default:
		return fmt.Errorf("nova: reset server %s: a reset sets ACTIVE or ERROR, not %q: %w", id, status, peers.ErrInvalid)
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.translate(fmt.Sprintf("nova: reset state of server %s", id), servers.ResetState(ctx, c.compute, id, state).ExtractErr())
}

// ConsoleOutput reads the console log (os-getConsoleOutput); lines <= 0
// asks for all of it.
func (c *Cloud) ConsoleOutput(ctx context.Context, serverID string, lines int) (string, error) {
	ctx, cancel := c.call(ctx)
	defer cancel()
	out, err := servers.ShowConsoleOutput(ctx, c.compute, serverID, servers.ShowConsoleOutputOpts{Length: max(lines, 0)}).Extract()
	if err != nil {
		return "", c.translate("nova: console of server "+serverID, err)
	}
	return out, nil
}

// serverStatus maps Nova's statuses onto the peers subset. Statuses the
// broker does not model land on the nearest one by whether the guest runs:
//
//	ACTIVE BUILD SHUTOFF REBOOT HARD_REBOOT ERROR DELETED
//	PAUSED SUSPENDED RESIZE VERIFY_RESIZE
//	REVERT_RESIZE REBUILD SHELVED
//	SHELVED_OFFLOADED RESCUE                       as they are
//	MIGRATING PASSWORD                             ACTIVE (the guest runs)
//	SOFT_DELETED                                   DELETED
//	UNKNOWN and anything new                       ERROR
func serverStatus(s string) peers.ServerStatus {
	switch st := peers.ServerStatus(s); st {
	case peers.ServerActive, peers.ServerBuild, peers.ServerShutoff, peers.ServerReboot,
		peers.ServerHardReboot, peers.ServerError, peers.ServerDeleted, peers.ServerPaused, peers.ServerSuspended,
		peers.ServerResize, peers.ServerVerifyResize, peers.ServerRevertResize,
		peers.ServerRebuild, peers.ServerShelved, peers.ServerShelvedOffloaded, peers.ServerRescue:
		return st
	}
	switch s {
	case "MIGRATING", "PASSWORD":
		return peers.ServerActive
	case "SOFT_DELETED":
		return peers.ServerDeleted
	}
	return peers.ServerError
}

func (c *Cloud) toServer(ctx context.Context, s servers.Server) peers.Server {
	out := peers.Server{
		ID: s.ID, Name: s.Name, Status: serverStatus(s.Status), Project: s.TenantID,
		KeyName: s.KeyName, AvailabilityZone: s.AvailabilityZone, Host: s.Host,
		Metadata: c.inMeta(s.Metadata), Fault: s.Fault.Message, CreatedAt: s.Created, UpdatedAt: s.Updated,
		FlavorID: c.flavorID(ctx, s.Flavor),
	}
	if strings.HasPrefix(s.TaskState, "image_") { // image_snapshot, image_pending_upload, image_uploading: Nova's snapshot
		out.Task = peers.TaskImageSnapshot
	}
	if id, ok := s.Image["id"].(string); ok {
		out.ImageID = id
	}
	for _, v := range s.AttachedVolumes {
		out.Volumes = append(out.Volumes, v.ID)
	}
	out.Addresses = addresses(s.Addresses)
	return out
}

// flavorID finds the flavor's ID: before 2.47 Nova gives it; since, it
// embeds the flavor by original_name, and names are unique in Nova, so the
// ID is looked up by name (cached; a miss refreshes the cache once). A
// flavor deleted since leaves the name.
func (c *Cloud) flavorID(ctx context.Context, f map[string]any) string {
	if id, ok := f["id"].(string); ok {
		return id
	}
	name, _ := f["original_name"].(string)
	if name == "" {
		return ""
	}
	c.mu.Lock()
	id, ok := c.flavors[name]
	c.mu.Unlock()
	if ok {
		return id
	}
	if _, err := c.ListFlavors(ctx); err == nil {
		c.mu.Lock()
		id, ok = c.flavors[name]
		if !ok {
			c.flavors[name] = name // remember the miss: no relisting per server
			id = name
		}
		c.mu.Unlock()
		return id
	}
	return name
}

// addresses flattens Nova's {"net": [{"addr", "version", ...}]}, networks
// in name order.
func addresses(m map[string]any) []peers.Address {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var out []peers.Address
	for _, n := range names {
		list, _ := m[n].([]any)
		for _, item := range list {
			a, ok := item.(map[string]any)
			if !ok {
				continue
			}
			addr := peers.Address{Network: n}
			addr.Addr, _ = a["addr"].(string)
			switch v := a["version"].(type) {
			case float64:
				addr.Version = int(v)
			case interface{ Int64() (int64, error) }:
				n, _ := v.Int64()
				addr.Version = int(n)
			}
			addr.MAC, _ = a["OS-EXT-IPS-MAC:mac_addr"].(string)
			addr.Type, _ = a["OS-EXT-IPS:type"].(string)
			if addr.Version == 0 {
				addr.Version = 4
				if strings.Contains(addr.Addr, ":") {
					addr.Version = 6
				}
			}
			out = append(out, addr)
		}
	}
	return out
}

var _ peers.ServerImager = (*Cloud)(nil)

// ImageServer asks Nova for a snapshot (createImage): Nova names the
// image's ID and sets its formats and sizes; spec's name and properties
// (the broker's marks among them) become its metadata. The image is read
// back from Glance as it is right after (queued or saving).
func (c *Cloud) ImageServer(ctx context.Context, serverID string, spec peers.ImageSpec) (peers.Image, error) {
	if err := c.needImage(); err != nil {
		return peers.Image{}, err
	}
	cctx, cancel := c.call(ctx)
	defer cancel()
	id, err := servers.CreateImage(cctx, c.compute, serverID, servers.CreateImageOpts{Name: spec.Name, Metadata: c.outMeta(spec.Properties)}).ExtractImageID()
	if err != nil {
		return peers.Image{}, c.translate(fmt.Sprintf("nova: snapshot server %s", serverID), err)
	}
	return c.GetImage(ctx, id)
}
