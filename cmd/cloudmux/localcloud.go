package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/fake"
	"github.com/cloudmux/cloudmux/localcloud/libvirt"
	"github.com/cloudmux/cloudmux/registry"
)

// HostLabel on a local peer names the broker hosting its cloud.
const HostLabel = "cloudmux.io/host"

// startLocalCloud builds the in-process local cloud and makes sure it is
// registered as a peer, so it is listed, probed and placed on like any
// remote cloud. It returns nil when the local cloud is disabled.
// It returns a close function for the cloud and its driver, to run once
// nothing uses them any more.
func startLocalCloud(ctx context.Context, cfg Config, reg *registry.PeerRegistry, log logrus.FieldLogger) (*localcloud.Cloud, func() error, error) {
	lc := cfg.LocalCloud
	if !lc.Enabled {
		return nil, nil, nil
	}
	lcfg := localcloud.DevDefaults(filepath.Join(cfg.DataDir, "localcloud"))
	lcfg.Name = lc.Name
	lcfg.ObjectQuotaBytes = lc.ObjectQuotaBytes
	if len(lc.Hosts) > 0 {
		lcfg.Hosts = nil
		for _, h := range lc.Hosts {
			lcfg.Hosts = append(lcfg.Hosts, localcloud.HostConfig{Name: h.Name, URI: h.URI, VCPUs: h.VCPUs, RAMMiB: h.RAMMiB, DiskGiB: h.DiskGiB})
		}
	}
	var driver localcloud.Driver
	closeDriver := func() error { return nil }
	switch lc.Driver {
	case "fake":
		fd := fake.New(lcfg.Hosts...)
		fd.SetTransitionTime(time.Duration(lc.FakeTransition))
		driver = fd
	case "libvirt":
		vc := libvirt.Config{Hosts: lcfg.Hosts, Pool: lc.Pool, PoolPath: lc.PoolPath, NICAddrs: map[string]netip.Addr{}}
		// Both were checked with the configuration.
		vc.SwitchAddr, _ = netip.ParseAddr(lc.SwitchAddr)
		for _, h := range lc.Hosts {
			if a, err := netip.ParseAddr(h.NICAddr); err == nil {
				vc.NICAddrs[h.Name] = a
			}
		}
		d, err := libvirt.New(vc, log.WithField("component", "libvirt"))
		if err != nil {
			return nil, nil, err
		}
		driver, closeDriver = d, d.Close
	default:
		return nil, nil, fmt.Errorf("local cloud driver %q is not available in this build", lc.Driver)
	}
	cloud, err := localcloud.New(lcfg, driver, log.WithField("component", "localcloud"))
	if err != nil {
		_ = closeDriver()
		return nil, nil, err
	}
	closeAll := func() error { return errors.Join(cloud.Close(), closeDriver()) }
	// Reconcile what the last life of this broker recorded with what the
	// hosts hold: interrupted builds, uploads and deletes settle, orphans
	// are adopted or removed. A host that does not answer leaves its part
	// for the next start; the broker serves meanwhile.
	// Recover logs what it did itself.
	if _, err := cloud.Recover(ctx); err != nil {
		log.WithError(err).Warn("local cloud recovery incomplete")
	}
	if err := registerLocalCloud(ctx, cfg, cloud, reg, log); err != nil {
		_ = closeAll()
		return nil, nil, err
	}
	return cloud, closeAll, nil
}

// registerLocalCloud seeds the cloud and makes sure it is registered as
// this broker's local peer.
func registerLocalCloud(ctx context.Context, cfg Config, cloud *localcloud.Cloud, reg *registry.PeerRegistry, log logrus.FieldLogger) error {
	lc := cfg.LocalCloud
	if lc.Seed {
		if _, err := cloud.Seed(ctx); err != nil {
			return err
		}
	}
	capacity, err := cloud.Capacity(ctx)
	if err != nil {
		return err
	}
	existing, err := reg.Get(ctx, lc.Name)
	host := brokerID(cfg)
	switch {
	case errors.Is(err, registry.ErrNotFound):
		labels := map[string]string{HostLabel: host}
		for k, v := range lc.Labels {
			labels[k] = v
		}
		p, err := reg.Create(ctx, registry.Peer{Name: lc.Name, Kind: registry.KindLocal, Labels: labels, Capacity: capacity}, nil)
		if err != nil {
			return fmt.Errorf("register the local cloud as peer %q: %w", lc.Name, err)
		}
		log.WithField("peer_id", p.ID).WithField("peer", p.Name).Info("registered the local cloud as a peer")
	case err != nil:
		return err
	case existing.Kind != registry.KindLocal:
		return fmt.Errorf("local_cloud.name %q is taken by a %s peer; choose another name", lc.Name, existing.Kind)
	case existing.Labels[HostLabel] != host:
		// Two brokers serving one local peer would overwrite each other's
		// health and capacity: refuse rather than fight.
		return fmt.Errorf("the local cloud %q is hosted by broker %q; give this broker's local cloud another local_cloud.name (or set broker_id to %q if this is that broker)",
			lc.Name, existing.Labels[HostLabel], existing.Labels[HostLabel])
	}
	return nil
}
