package openstack

import (
	"context"
	"encoding/base64"
	"fmt"

	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/peers"
)

var (
	_ peers.ServerRebuilder = (*Cloud)(nil)
	_ peers.ServerShelver   = (*Cloud)(nil)
)

// RebuildServer calls Nova's rebuild with the image and metadata, and,
// where the cloud's compute API takes them (2.54 key_name, 2.57
// user_data), the key and user data: a null key or user data takes the
// old ones away, as the contract's "" and nil ask. An older cloud keeps
// the server's own; one asked for a hostname without 2.90 is
// ErrNotSupported.
func (c *Cloud) RebuildServer(ctx context.Context, id string, spec peers.RebuildSpec) error {
	opts := rebuildOpts{RebuildOpts: servers.RebuildOpts{ImageRef: spec.ImageID, Metadata: c.outMeta(spec.Metadata)}}
	client := c.compute
	opts.extra = map[string]any{"preserve_ephemeral": spec.PreserveEphemeral}
	// The cloud's maximum, not the microversion calls are pinned to (an
	// admin may pin the peer lower): below 2.57 the key and user data
	// would be dropped while the broker records them.
	if c.computeMinor < 57 && c.computeMaxMinor >= 57 {
		sc := *c.compute
		sc.Microversion = "2.57"
		client = &sc
	}
	if c.computeMaxMinor >= 57 {
		opts.extra["key_name"], opts.extra["user_data"] = nil, nil
		if spec.KeyName != "" {
			opts.extra["key_name"] = spec.KeyName
		}
		if spec.UserData != nil {
			opts.extra["user_data"] = base64.StdEncoding.EncodeToString(spec.UserData)
		}
	}
	if spec.Hostname != "" {
		if c.computeMaxMinor < 90 {
			return fmt.Errorf("nova: rebuild server %s: the cloud's compute API (2.%d) cannot set a hostname (2.90): %w", id, c.computeMaxMinor, peers.ErrNotSupported)
		}
		sc := *c.compute
		sc.Microversion = "2.90"
		client = &sc
		opts.extra["hostname"] = spec.Hostname
	}
	ctx, cancel := c.call(ctx)
	defer cancel()
	_, err := servers.Rebuild(ctx, client, id, opts).Extract()
	return c.translate(fmt.Sprintf("nova: rebuild server %s from image %s", id, spec.ImageID), err)
}

// rebuildOpts adds what gophercloud's RebuildOpts lacks (key_name,
// user_data, hostname, preserve_ephemeral), nulls included.
type rebuildOpts struct {
	servers.RebuildOpts
	extra map[string]any
}

func (o rebuildOpts) ToServerRebuildMap() (map[string]any, error) {
	m, err := o.RebuildOpts.ToServerRebuildMap()
	if err != nil {
		return nil, err
	}
	body := m["rebuild"].(map[string]any)
	for k, v := range o.extra {
		body[k] = v
	}
	return m, nil
}

// ShelveServer calls Nova's shelve; the cloud's shelved_offload_time
// decides when it offloads (0, Nova's default: at once).
func (c *Cloud) ShelveServer(ctx context.Context, id string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.translate("nova: shelve server "+id, servers.Shelve(ctx, c.compute, id).ExtractErr())
}

// OffloadServer calls Nova's shelveOffload.
func (c *Cloud) OffloadServer(ctx context.Context, id string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.translate("nova: offload server "+id, servers.ShelveOffload(ctx, c.compute, id).ExtractErr())
}

// UnshelveServer calls Nova's unshelve without a zone: the cloud's
// scheduler picks the host, as the contract leaves it to the cloud.
func (c *Cloud) UnshelveServer(ctx context.Context, id string) error {
	ctx, cancel := c.call(ctx)
	defer cancel()
	return c.translate("nova: unshelve server "+id, servers.Unshelve(ctx, c.compute, id, servers.UnshelveOpts{}).ExtractErr())
}
