package localcloud

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// Recovery is what Recover found and did, for logs and tests. Each entry
// names the resource ("server 1234...", "volume 5678... on host h1").
type Recovery struct {
	// Hosts are the hosts whose inventory was reconciled.
	Hosts []string
	// Adopted are domains found on a host with no record (the state was
	// lost or is older than the host): they become ERROR servers, with
	// their name, project and metadata read from the domain, so they can be
	// seen and deleted.
	Adopted []string
	// Errored are records the hosts contradict (a server whose domain is
	// gone, a volume whose pool volume is gone) or whose work the restart
	// cut short (a server build): now ERROR / error.
	Errored []string
	// Resumed are deletes a restart interrupted, started again.
	Resumed []string
	// Removed are leftovers removed from the hosts: base volumes no overlay
	// uses (an interrupted upload's among them), root disks of servers
	// that are gone, networks nothing has a record of.
	Removed []string
	// Restored are networks recreated on a host that lacked them.
	Restored []string
	// Settled are records whose interrupted transition (power action,
	// attach, detach, extend) was settled from what the host shows.
	Settled []string
	// Unknown are pool volumes with no record and no known role, left
	// alone: they may hold someone's data.
	Unknown []string
}

// Recover reconciles the records New loaded from the state file with what
// the hosts hold, after a crash or restart of this process. It asks every
// host for its inventory (when the driver can list one; without, only the
// interrupted deletes are resumed), then:
//
//   - servers: a record whose domain is gone is ERROR; one whose build was
//     running is ERROR (Nova's rule: delete it); otherwise the status
//     follows the domain's power state. A domain with no record is adopted
//     as an ERROR server.
//   - volumes: attaching, detaching and extending settle on what the host
//     shows; a record whose pool volume is gone is in error.
//   - networks: recreated on hosts that lack them; a network being created
//     with nothing on it yet is removed; hosts' networks with no record
//     and no domain using them are removed.
//   - base volumes of images no overlay is based on are removed (an upload
//     the crash cut is one: it may be partial); root disks of servers that
//     are gone are removed.
//   - deletes of servers, volumes and networks a restart interrupted run
//     again.
//   - routers: every router's plan is handed to the driver again (the
//     data plane of a restarted host may have lost it).
//
// Call it once after New, before serving (calls made meanwhile are safe:
// only records loaded from the file are reconciled). A host that does not
// answer is left as it was and named in the error, wrapping
// peers.ErrUnavailable: Recover may be called again.
func (c *Cloud) Recover(ctx context.Context) (Recovery, error) {
	var rec Recovery
	inv, ok := c.driver.(Inventorier)
	invs := map[string]HostInventory{}
	var errs []error
	if ok {
		for _, h := range c.cfg.Hosts {
			hi, err := inv.Inventory(ctx, h.Name)
			if err != nil {
				errs = append(errs, fmt.Errorf("host %s: inventory: %w", h.Name, err))
				continue
			}
			invs[h.Name] = hi
			rec.Hosts = append(rec.Hosts, h.Name)
		}
	}
	if err := c.begin(ctx); err != nil {
		return rec, err
	}
	actions := c.reconcileLocked(invs, &rec)
	c.resumeDeletesLocked(&rec)
	if len(invs) == len(c.cfg.Hosts) {
		// Every host has been seen: the loaded records are all settled.
		c.loaded = newLoadedSet()
	}
	c.recountLocked()
	c.markAllLocked()
	c.saveLocked()
	c.mu.Unlock()

	for _, a := range actions {
		if err := a.run(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.what, err))
			continue
		}
		if a.restore {
			rec.Restored = append(rec.Restored, a.what)
		} else {
			rec.Removed = append(rec.Removed, a.what)
		}
	}
	if err := c.syncRouters(ctx); err != nil {
		errs = append(errs, err)
	}
	// The driver's port filters are handed over again (a restarted
	// driver starts with none, and fails closed for filtered NICs): every
	// filtered NIC found counts as holding an unknown filter, so the
	// sync sets the wanted one or removes it.
	c.filterMu.Lock()
	for host, hi := range invs {
		for _, d := range hi.Domains {
			for _, nic := range d.NICs {
				if _, ok := c.filters[nic.PortID]; nic.Filtered && !ok {
					c.filters[nic.PortID] = filterState{host: host, key: "recovered"}
				}
			}
		}
	}
	c.filterMu.Unlock()
	if err := c.syncFilters(ctx); err != nil {
		errs = append(errs, fmt.Errorf("port filters: %w", err))
	}
	c.log.WithFields(logrus.Fields{
		"hosts": rec.Hosts, "adopted": len(rec.Adopted), "errored": len(rec.Errored), "resumed": len(rec.Resumed),
		"removed": len(rec.Removed), "restored": len(rec.Restored), "settled": len(rec.Settled), "unknown": rec.Unknown,
	}).Info("recovered")
	if err := errors.Join(errs...); err != nil {
		return rec, fmt.Errorf("local cloud %s: recovery incomplete: %w: %w", c.cfg.Name, peers.ErrUnavailable, err)
	}
	return rec, nil
}

// hostAction is driver work Recover does once c.mu is released.
type hostAction struct {
	what    string
	restore bool // a restoration, not a removal
	run     func(ctx context.Context) error
}

// reconcileLocked compares the loaded records of each host in invs with
// its inventory, fixing records at once and returning the driver work to
// do. Callers hold c.mu.
func (c *Cloud) reconcileLocked(invs map[string]HostInventory, rec *Recovery) []hostAction {
	var actions []hostAction
	for _, hc := range c.cfg.Hosts {
		hi, ok := invs[hc.Name]
		if !ok {
			continue
		}
		hostName := hc.Name
		doms := map[string]InventoryDomain{}
		for _, d := range hi.Domains {
			doms[d.ID] = d
		}
		c.reconcileServersLocked(hostName, doms, rec)
		c.reconcileVolumesLocked(hostName, doms, hi.Volumes, rec)
		actions = append(actions, c.reconcilePoolLocked(hostName, hi, rec)...)
		actions = append(actions, c.reconcileNetworksLocked(hostName, hi, rec)...)
	}
	return actions
}

// reconcileServersLocked settles the loaded servers of hostName against its
// domains and adopts domains without a record.
func (c *Cloud) reconcileServersLocked(hostName string, doms map[string]InventoryDomain, rec *Recovery) {
	for id := range c.loaded.servers {
		s := c.servers[id]
		if s == nil || s.Host != hostName || s.task != "" || s.deleteWait {
			continue
		}
		delete(c.loaded.servers, id)
		dom, exists := doms[id]
		was, interrupted := s.Status, s.interrupted
		s.interrupted = ""
		switch {
		case !exists && s.Status == peers.ServerShelvedOffloaded:
			s.defined = false // its domain is undefined on purpose (shelve.go)
		case !exists:
			s.defined = false
			if s.Status != peers.ServerError {
				s.Status, s.Fault = peers.ServerError, "its domain is gone from host "+hostName
				if was == peers.ServerBuild {
					s.Fault = "build interrupted by a restart of the cloud; delete the server"
				}
				rec.Errored = append(rec.Errored, "server "+id)
			}
		case s.Status == peers.ServerBuild:
			s.defined = true
			s.Status, s.Fault = peers.ServerError, "build interrupted by a restart of the cloud; delete the server"
			rec.Errored = append(rec.Errored, "server "+id)
		case interrupted == "resize" || interrupted == "revert_resize" || interrupted == "rebuilding":
			// Nova leaves a resize or rebuild a restart cut short in ERROR too: how far
			// the domain got is not known.
			s.defined = true
			s.Status, s.Fault = peers.ServerError, interrupted+" interrupted by a restart of the cloud"
			rec.Errored = append(rec.Errored, "server "+id)
		default:
			s.defined = true
			if s.Status == peers.ServerError || s.Status == peers.ServerVerifyResize {
				break // a VERIFY_RESIZE waits for its confirm or revert, whatever the guest does
			}
			switch dom.State {
			case DomainRunning:
				s.Status = peers.ServerActive
			case DomainPaused:
				s.Status = peers.ServerPaused
			case DomainShutoff:
				// A suspended server's domain is off, its memory saved
				// (also when the suspend was cut short after the save).
				s.Status = peers.ServerShutoff
				if was == peers.ServerSuspended || interrupted == string(peers.ActionSuspend) {
					s.Status = peers.ServerSuspended
				}
			case DomainCrashed:
				s.Status, s.Fault = peers.ServerError, "its domain crashed"
			case DomainTransitioning:
				if s.Status == peers.ServerReboot || s.Status == peers.ServerHardReboot {
					s.Status = peers.ServerActive // the reboot is under way
				}
			}
		}
		if s.Status != was || interrupted != "" {
			s.UpdatedAt = now()
			rec.Settled = append(rec.Settled, fmt.Sprintf("server %s %s -> %s", id, was, s.Status))
		}
		if !s.defined {
			c.setPortStatusLocked(s, "DOWN")
		}
	}
	for id, dom := range doms {
		if _, known := c.servers[id]; known {
			continue
		}
		c.adoptLocked(hostName, dom)
		rec.Adopted = append(rec.Adopted, "server "+id+" on host "+hostName)
	}
}

// adoptLocked makes an ERROR server of a domain with no record, from the
// metadata the cloud stored in it (see domainSpecLocked).
func (c *Cloud) adoptLocked(hostName string, dom InventoryDomain) {
	m := dom.Metadata
	created, _ := time.Parse("2006-01-02T15:04:05Z", m["localcloud.created_at"])
	s := &server{
		Server: peers.Server{
			ID: dom.ID, Name: cmpOrString(m["localcloud.name"], dom.Name), Status: peers.ServerError,
			Project: m["localcloud.project"], FlavorID: m["localcloud.flavor_id"], ImageID: m["localcloud.image_id"],
			KeyName: dom.KeyName, AvailabilityZone: defaultAZ, Host: hostName, Hostname: m[MetaHostname], CreatedAt: created, UpdatedAt: now(),
			Fault: "found on host " + hostName + " with no record (the cloud's state was lost); delete it",
		},
		ownPorts: map[string]bool{}, defined: true,
	}
	for k, v := range m {
		if key, ok := strings.CutPrefix(k, "server."); ok {
			if s.Metadata == nil {
				s.Metadata = map[string]string{}
			}
			s.Metadata[key] = v
		}
	}
	bootVolume := m["localcloud.boot_volume_id"] != ""
	if len(dom.Disks) > 0 && dom.Disks[0].VolumeID == dom.ID+"-disk" {
		s.rootDisk = dom.Disks[0].VolumeID
	}
	if f, err := c.flavor(s.FlavorID); err == nil {
		s.alloc = flavorNeeds(f, bootVolume)
	} else {
		s.alloc = HostResources{VCPUs: int64(dom.VCPUs), RAMMiB: int64(dom.RAMMiB)}
	}
	c.addServerLocked(s)
	c.log.WithFields(logrus.Fields{"server": s.ID, "host": hostName, "project": s.Project}).Warn("adopted a domain with no record as an ERROR server")
}

func cmpOrString(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// attachedTo returns the domain that has volumeID as a disk, and the disk.
func attachedTo(doms map[string]InventoryDomain, volumeID string) (string, Disk, bool) {
	for id, d := range doms {
		for _, disk := range d.Disks {
			if disk.VolumeID == volumeID {
				return id, disk, true
			}
		}
	}
	return "", Disk{}, false
}

// reconcileVolumesLocked settles the loaded volumes of hostName.
func (c *Cloud) reconcileVolumesLocked(hostName string, doms map[string]InventoryDomain, pool []PoolVolume, rec *Recovery) {
	inPool := map[string]PoolVolume{}
	for _, pv := range pool {
		inPool[pv.ID] = pv
	}
	for id := range c.loaded.volumes {
		v := c.volumes[id]
		if v == nil || v.host != hostName || v.Status == peers.VolumeDeleting {
			continue
		}
		delete(c.loaded.volumes, id)
		was := v.Status
		pv, exists := inPool[id]
		domID, disk, attached := attachedTo(doms, id)
		switch v.Status {
		case peers.VolumeAttaching, peers.VolumeDetaching:
			s := c.servers[domID]
			if attached && s != nil {
				if !slices.Contains(s.Volumes, id) {
					c.markAttachedLocked(v, s, peers.VolumeAttachment{ID: newID(), ServerID: s.ID, VolumeID: id, Device: "/dev/" + disk.Device})
				}
				v.Status = peers.VolumeInUse
			} else {
				for _, a := range v.Attachments {
					if s := c.servers[a.ServerID]; s != nil {
						c.unmarkAttachedLocked(v, s)
					}
				}
				v.Status, v.Attachments = peers.VolumeAvailable, nil
			}
		case peers.VolumeExtending:
			v.Status = peers.VolumeAvailable
			if len(v.Attachments) > 0 {
				v.Status = peers.VolumeInUse
			}
			if exists {
				v.SizeGiB = max(v.SizeGiB, int(pv.Bytes()/gib))
			}
			v.alloc = int64(v.SizeGiB)
		}
		if !exists && v.Status != peers.VolumeError {
			v.Status = peers.VolumeError
			rec.Errored = append(rec.Errored, "volume "+id)
			c.log.WithFields(logrus.Fields{"volume": id, "host": hostName}).Error("volume's pool volume is gone; volume in error")
		}
		if v.Status != was {
			rec.Settled = append(rec.Settled, fmt.Sprintf("volume %s %s -> %s", id, was, v.Status))
		}
	}
}

// reconcilePoolLocked finds pool volumes on hostName nothing needs: base
// volumes no overlay is based on, root disks of servers without a record.
func (c *Cloud) reconcilePoolLocked(hostName string, hi HostInventory, rec *Recovery) []hostAction {
	backing := map[string]bool{}
	for _, pv := range hi.Volumes {
		if pv.BackingID != "" {
			backing[pv.BackingID] = true
		}
	}
	rootDisks := map[string]bool{}
	for _, s := range c.servers {
		if s.Host == hostName && s.rootDisk != "" {
			rootDisks[s.rootDisk] = true
		}
	}
	var actions []hostAction
	remove := func(id, what string) {
		actions = append(actions, hostAction{what: what + " on host " + hostName, run: func(ctx context.Context) error {
			return ignoreNotFound(c.driver.DeleteVolume(ctx, hostName, id))
		}})
	}
	for _, pv := range hi.Volumes {
		switch imageID, isBase := strings.CutPrefix(pv.ID, "image-"); {
		case isBase:
			key := hostName + "\x00" + imageID
			switch {
			case c.bases[key] != nil: // in use by this process already
			case backing[pv.ID]:
				// Complete: an overlay was made on it.
				c.bases[key] = &baseImage{ready: true}
			default:
				remove(pv.ID, "base volume "+pv.ID+" (no overlay on it; maybe a cut upload)")
			}
		case strings.HasSuffix(pv.ID, "-disk"):
			if !rootDisks[pv.ID] && !backing[pv.ID] {
				remove(pv.ID, "root disk "+pv.ID+" of a server that is gone")
			}
		default:
			if _, known := c.volumes[pv.ID]; !known {
				rec.Unknown = append(rec.Unknown, "volume "+pv.ID+" on host "+hostName)
			}
		}
	}
	// Bases of deleted images that nothing uses any more go as usual.
	c.collectBasesLocked(hostName)
	return actions
}

// reconcileNetworksLocked restores the networks hostName lacks and removes
// the ones on it nothing knows; a network whose creation was cut short
// with nothing on it yet is forgotten (its creator got no answer).
func (c *Cloud) reconcileNetworksLocked(hostName string, hi HostInventory, rec *Recovery) []hostAction {
	var actions []hostAction
	onHost := map[string]bool{}
	for _, id := range hi.Networks {
		onHost[id] = true
	}
	for id := range c.loaded.networks {
		n := c.networks[id]
		if n == nil || n.deleting {
			continue
		}
		if n.Status == "BUILD" && len(n.Subnets) == 0 && len(c.portsOn(id)) == 0 {
			n.deleting = true
			rec.Resumed = append(rec.Resumed, "network "+id+" (creation cut short: removed)")
			continue
		}
		n.Status = "ACTIVE"
		if !onHost[id] {
			spec := IsolatedNetwork{ID: n.ID, Name: n.Name, MTU: n.MTU}
			actions = append(actions, hostAction{what: "network " + id + " on host " + hostName, restore: true, run: func(ctx context.Context) error {
				return c.driver.CreateNetwork(ctx, hostName, spec)
			}})
		}
	}
	used := map[string]bool{}
	for _, d := range hi.Domains {
		for _, nic := range d.NICs {
			used[nic.NetworkID] = true
		}
	}
	for _, id := range hi.Networks {
		if _, known := c.networks[id]; known || used[id] {
			continue
		}
		actions = append(actions, hostAction{what: "network " + id + " (no record) on host " + hostName, run: func(ctx context.Context) error {
			return ignoreNotFound(c.driver.DeleteNetwork(ctx, hostName, id))
		}})
	}
	return actions
}

// resumeDeletesLocked starts again the deletes a restart interrupted.
func (c *Cloud) resumeDeletesLocked(rec *Recovery) {
	for _, s := range c.servers {
		if s.deleteWait && s.task == "" {
			c.startDeleteLocked(s)
			rec.Resumed = append(rec.Resumed, "server "+s.ID)
		}
	}
	for _, v := range c.volumes {
		if v.Status == peers.VolumeDeleting && c.loaded.volumes[v.ID] {
			delete(c.loaded.volumes, v.ID)
			c.startVolumeDeleteLocked(v)
			rec.Resumed = append(rec.Resumed, "volume "+v.ID)
		}
	}
	for id, n := range c.networks {
		if n.deleting && c.loaded.networks[id] {
			delete(c.loaded.networks, id)
			c.background(func(ctx context.Context) {
				ctx, cancel := context.WithTimeout(ctx, powerTimeout)
				defer cancel()
				if err := c.finishNetworkDelete(ctx, n); err != nil {
					c.log.WithError(err).WithField("network", id).Warn("resumed network delete failed")
				}
			})
			if !slices.ContainsFunc(rec.Resumed, func(r string) bool { return strings.HasPrefix(r, "network "+id) }) {
				rec.Resumed = append(rec.Resumed, "network "+id)
			}
		}
	}
}

// loadedSet names the records loadState read, which Recover has yet to
// reconcile with their hosts.
type loadedSet struct {
	servers, volumes, networks map[string]bool
}

func newLoadedSet() loadedSet {
	return loadedSet{servers: map[string]bool{}, volumes: map[string]bool{}, networks: map[string]bool{}}
}
