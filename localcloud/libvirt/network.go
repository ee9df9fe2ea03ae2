package libvirt

import (
	"context"
	"errors"
	"fmt"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	golibvirt "github.com/digitalocean/go-libvirt"
)

// CreateNetwork defines, autostarts and starts an isolated network.
func (d *Driver) CreateNetwork(ctx context.Context, host string, net localcloud.IsolatedNetwork) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	to := d.cfg.CallTimeout
	_, err = call(ctx, h, to, "look up network "+net.ID, func(a API) (golibvirt.Network, error) {
		return a.NetworkLookupByName(d.n.network(net.ID))
	})
	if err == nil {
		return fmt.Errorf("libvirt: network %s already exists: %w", net.ID, peers.ErrConflict)
	} else if !errors.Is(err, peers.ErrNotFound) {
		return err
	}
	n, err := call(ctx, h, to, "define network "+net.ID, func(a API) (golibvirt.Network, error) {
		return a.NetworkDefineXML(networkXML(d.n.network(net.ID), net.MTU))
	})
	if err != nil {
		return err
	}
	err = do(ctx, h, to, "start network "+net.ID, func(a API) error { return a.NetworkCreate(n) })
	if err == nil {
		err = do(ctx, h, to, "autostart network "+net.ID, func(a API) error { return a.NetworkSetAutostart(n, 1) })
	}
	if err != nil {
		_ = d.DeleteNetwork(context.WithoutCancel(ctx), host, net.ID)
		return err
	}
	return nil
}

// DeleteNetwork stops and undefines a network.
func (d *Driver) DeleteNetwork(ctx context.Context, host, id string) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	to := d.cfg.CallTimeout
	n, err := call(ctx, h, to, "look up network "+id, func(a API) (golibvirt.Network, error) {
		return a.NetworkLookupByName(d.n.network(id))
	})
	if err != nil {
		return err
	}
	active, err := call(ctx, h, to, "network active", func(a API) (int32, error) { return a.NetworkIsActive(n) })
	if err != nil {
		return err
	}
	if active != 0 {
		if err := do(ctx, h, to, "stop network "+id, func(a API) error { return a.NetworkDestroy(n) }); err != nil {
			return err
		}
	}
	return do(ctx, h, to, "undefine network "+id, func(a API) error { return a.NetworkUndefine(n) })
}
