package localcloud

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/cloudmux/cloudmux/peers"
)

// The cloud's records (servers, images, keypairs, networks, subnets,
// ports with their addresses, volumes with their attachments) are saved as
// JSON in DataDir: a snapshot (state.json) and a journal of the changes
// since (journal.go), synced before the call that made a change returns:
// what a caller was told exists survives a crash of this process. The
// hosts hold the rest (domains, pool volumes, networks, with cloudmux
// metadata on domains), and Recover reconciles the two. What costs is the
// fsync, so concurrent changes share writes (saveLocked): 100 servers
// created at once over the fake driver go ACTIVE at about 5000/s with
// saving, 10000/s without, and 130/s when every change wrote on its own.

// stateFileName is the state file's name in Config.DataDir.
const stateFileName = "state.json"

// stateVersion is the layout of the state file; a newer one is refused
// rather than half read.
const stateVersion = 2 // 1: the whole state, no journal

type savedState struct {
	Version int       `json:"version"`
	SavedAt time.Time `json:"saved_at"`
	// Journal names the journal file of the changes made after this
	// snapshot ("" in files written before journals: none).
	Journal  string          `json:"journal,omitempty"`
	Servers  []savedServer   `json:"servers"`
	Images   []savedImage    `json:"images"`
	Keypairs []peers.Keypair `json:"keypairs"`
	Networks []savedNetwork  `json:"networks"`
	Subnets  []peers.Subnet  `json:"subnets"`
	Ports    []peers.Port    `json:"ports"`
	Volumes  []savedVolume   `json:"volumes"`
	// SecurityGroups are the broker's groups put here (secgroups.go).
	SecurityGroups []peers.SecurityGroup `json:"security_groups,omitempty"`
	// Routers and FloatingIPs (routers.go, floatingips.go).
	Routers     []savedRouter     `json:"routers,omitempty"`
	FloatingIPs []savedFloatingIP `json:"floating_ips,omitempty"`
}

type savedServer struct {
	Server     peers.Server  `json:"server"`
	Alloc      HostResources `json:"alloc"`
	RootDisk   string        `json:"root_disk,omitempty"`
	Ports      []string      `json:"ports,omitempty"`
	OwnPorts   []string      `json:"own_ports,omitempty"`
	Defined    bool          `json:"defined"`
	Task       string        `json:"task,omitempty"`
	DeleteWait bool          `json:"delete_wait,omitempty"`
	ResizeFrom string        `json:"resize_from,omitempty"`
	ResizeOff  bool          `json:"resize_off,omitempty"`
	UserData   []byte        `json:"user_data,omitempty"`
	PublicKey  string        `json:"public_key,omitempty"`
}

type savedImage struct {
	Image   peers.Image `json:"image"`
	WantMD5 string      `json:"want_md5,omitempty"`
}

type savedNetwork struct {
	Network  peers.Network `json:"network"`
	Deleting bool          `json:"deleting,omitempty"`
}

type savedVolume struct {
	Volume peers.Volume `json:"volume"`
	Host   string       `json:"host"`
	Alloc  int64        `json:"alloc"`
	// SnapshotOf makes the record a snapshot of that volume.
	SnapshotOf string `json:"snapshot_of,omitempty"`
}

func (c *Cloud) statePath() string { return filepath.Join(c.cfg.DataDir, stateFileName) }

// snapshotLocked copies the records into their saved form, sorted so equal
// states write equal files.
func (c *Cloud) snapshotLocked() savedState {
	st := savedState{Version: stateVersion, SavedAt: now()}
	for _, s := range c.servers {
		st.Servers = append(st.Servers, c.savedServerLocked(s))
	}
	for _, img := range c.images {
		st.Images = append(st.Images, savedImage{Image: img.view(), WantMD5: img.wantMD5})
	}
	for _, kp := range c.keypairs {
		st.Keypairs = append(st.Keypairs, *kp)
	}
	for _, n := range c.networks {
		st.Networks = append(st.Networks, savedNetwork{Network: n.view(), Deleting: n.deleting})
	}
	for _, sn := range c.subnets {
		st.Subnets = append(st.Subnets, sn.view())
	}
	for _, p := range c.ports {
		st.Ports = append(st.Ports, portView(p))
	}
	for _, v := range c.volumes {
		st.Volumes = append(st.Volumes, v.saved())
	}
	for _, g := range c.groups {
		st.SecurityGroups = append(st.SecurityGroups, groupView(g))
	}
	slices.SortFunc(st.Servers, func(a, b savedServer) int { return cmp.Compare(a.Server.ID, b.Server.ID) })
	slices.SortFunc(st.Images, func(a, b savedImage) int { return cmp.Compare(a.Image.ID, b.Image.ID) })
	slices.SortFunc(st.Keypairs, func(a, b peers.Keypair) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(st.Networks, func(a, b savedNetwork) int { return cmp.Compare(a.Network.ID, b.Network.ID) })
	slices.SortFunc(st.Subnets, func(a, b peers.Subnet) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Ports, func(a, b peers.Port) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(st.Volumes, func(a, b savedVolume) int { return cmp.Compare(a.Volume.ID, b.Volume.ID) })
	slices.SortFunc(st.SecurityGroups, func(a, b peers.SecurityGroup) int { return cmp.Compare(a.ID, b.ID) })
	for _, r := range c.routers {
		st.Routers = append(st.Routers, r.saved())
	}
	for _, f := range c.fips {
		st.FloatingIPs = append(st.FloatingIPs, f.saved())
	}
	slices.SortFunc(st.Routers, func(a, b savedRouter) int { return cmp.Compare(a.Router.ID, b.Router.ID) })
	slices.SortFunc(st.FloatingIPs, func(a, b savedFloatingIP) int { return cmp.Compare(a.FloatingIP.ID, b.FloatingIP.ID) })
	return st
}

// savedServerLocked is s's saved form.
func (c *Cloud) savedServerLocked(s *server) savedServer {
	ss := savedServer{
		Server: c.serverView(s), Alloc: s.alloc, RootDisk: s.rootDisk, Ports: slices.Clone(s.ports),
		OwnPorts: slices.Sorted(maps.Keys(s.ownPorts)), Defined: s.defined, Task: s.task, DeleteWait: s.deleteWait,
		ResizeFrom: s.resizeFrom, ResizeOff: s.resizeOff, UserData: s.userData, PublicKey: s.publicKey,
	}
	ss.Server.Addresses = nil // derived from the ports
	return ss
}

// saveLocked makes the records durable before the caller goes on: it
// counts a change and waits until a state file holding it is written
// (appended to the journal and synced, or a new snapshot), so what a
// caller is told has happened survives a crash. The change must have
// named what it changed (markLocked) first. Saves are grouped: one writer goroutine
// writes the latest state while the changes made meanwhile wait for the
// next write, so a burst of calls costs a few writes, not one each. The
// wait releases c.mu (it is a sync.Cond on it): callers call it at the end
// of their change, and find the records as others left them after. A
// failed write is logged: the change has happened in memory and the next
// write carries it. Callers hold c.mu.
func (c *Cloud) saveLocked() {
	if c.halted {
		return
	}
	c.stateGen++
	gen := c.stateGen
	if !c.saving {
		c.saving = true
		go c.stateWriter()
	}
	for c.savedGen < gen && !c.halted {
		c.saved.Wait()
	}
}

// stateWriter writes the state until the disk holds every counted change:
// the changed records appended to the journal, or, when the journal has
// outgrown the snapshot (or there is none yet), a new snapshot.
func (c *Cloud) stateWriter() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.savedGen < c.stateGen && !c.halted {
		gen := c.stateGen
		snapshot := c.journal == nil || c.compactNext ||
			c.journalSize > max(journalMinCompact, c.snapshotSize)
		var err error
		if snapshot {
			st := c.snapshotLocked()
			clear(c.dirty)
			c.compactNext = false
			seq := c.journalSeq + 1
			old := c.journal
			c.mu.Unlock()
			f, size, synced, cerr := c.compact(st, seq)
			c.mu.Lock()
			if err = cerr; err == nil {
				if old != nil {
					_ = old.Close()
				}
				c.journal, c.journalSeq, c.journalSize, c.snapshotSize = f, seq, 0, size
				c.compactNext = c.compactNext || !synced
			}
		} else {
			var b []byte
			b, err = c.journalLinesLocked()
			f := c.journal
			if err == nil {
				c.mu.Unlock()
				err = c.appendJournal(f, b)
				c.mu.Lock()
			}
			if err == nil {
				c.journalSize += int64(len(b))
			}
		}
		if err != nil {
			// The changes are in memory; a snapshot, next, carries them
			// (and whatever a failed append left half written is
			// superseded with its journal).
			c.compactNext = true
			c.log.WithError(err).Error("saving the cloud's state failed; a crash now would lose the latest changes")
		} else if verifyState {
			c.verifyStateLocked()
		}
		c.savedGen = gen
		c.saved.Broadcast()
	}
	c.saving = false
	c.saved.Broadcast() // halted: nobody waits for a write any more
}

// writeState replaces the state file with b: a temporary file, synced,
// renamed over the old one, so the file is always one whole state. The
// directory is not synced: a machine crash may lose the last rename
// (leaving the previous whole state, which Recover reconciles with the
// hosts), never the file's content.
func (c *Cloud) writeState(b []byte) error {
	path := c.statePath()
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// loadState reads the state file, if there is one, into the empty maps of
// a new Cloud, and settles what the crash interrupted as far as it can
// without the hosts: an upload in progress is killed (its partial file is
// gone already), a volume being created is in error (Cinder's rule), a
// delayed image delete is scheduled again, and work on servers is left for
// Recover, which asks the hosts. It records what it loaded in c.loaded for
// Recover. Called from New, before the Cloud is shared.
func (c *Cloud) loadState() error {
	st, good, err := readState(c.cfg.DataDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Journal != "" {
		// Appends continue where the last whole line ends: a torn line a
		// crash left is cut off first.
		f, err := os.OpenFile(c.journalPath(st.Journal), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		if err := f.Truncate(good); err != nil {
			_ = f.Close()
			return err
		}
		var seq uint64
		if _, err := fmt.Sscanf(strings.TrimPrefix(st.Journal, journalFileName+"."), "%d", &seq); err != nil {
			_ = f.Close()
			return fmt.Errorf("%s names journal %q: %w", c.statePath(), st.Journal, err)
		}
		c.journal, c.journalSeq, c.journalSize = f, seq, good
		if fi, err := os.Stat(c.statePath()); err == nil {
			c.snapshotSize = fi.Size()
		}
		c.removeStaleJournals(st.Journal)
	}
	for _, kp := range st.Keypairs {
		c.keypairs[kp.Name] = &kp
	}
	for _, si := range st.Images {
		img := &image{Image: si.Image, wantMD5: si.WantMD5}
		c.images[img.ID] = img
		c.settleImageLocked(img)
	}
	for _, sn := range st.Networks {
		n := &network{Network: sn.Network, deleting: sn.Deleting}
		c.networks[n.ID] = n
		c.loaded.networks[n.ID] = true
	}
	for _, ps := range st.Subnets {
		plan, err := planOf(ps)
		if err != nil {
			return fmt.Errorf("%s: subnet %s: %w", c.statePath(), ps.ID, err)
		}
		c.subnets[ps.ID] = &subnet{Subnet: ps, plan: plan, used: map[netip.Addr]string{}}
	}
	for _, p := range st.Ports {
		p := p
		c.ports[p.ID] = &p
		c.macs[p.MACAddress] = true
		for _, f := range p.FixedIPs {
			a, err := netip.ParseAddr(f.IPAddress)
			if sn := c.subnets[f.SubnetID]; sn != nil && err == nil {
				sn.used[a] = p.ID
			}
		}
	}
	for _, g := range st.SecurityGroups {
		c.groups[g.ID] = &g
	}
	for _, sr := range st.Routers {
		c.routers[sr.Router.ID] = &router{Router: sr.Router, interfaces: sr.Interfaces, gwPort: sr.GatewayPort}
	}
	for _, sf := range st.FloatingIPs {
		c.fips[sf.FloatingIP.ID] = &floatingIP{FloatingIP: sf.FloatingIP, extPort: sf.ExtPort}
	}
	for _, sv := range st.Volumes {
		v := &volume{Volume: sv.Volume, host: sv.Host, alloc: sv.Alloc, snapshotOf: sv.SnapshotOf}
		c.volumes[v.ID] = v
		c.loaded.volumes[v.ID] = true
		if v.Status == peers.VolumeCreating {
			v.Status = peers.VolumeError
			c.log.WithField("volume", v.ID).Warn("volume creation was interrupted by a restart; volume in error")
		}
	}
	for _, ss := range st.Servers {
		s := &server{
			Server: ss.Server, alloc: ss.Alloc, rootDisk: ss.RootDisk, ports: ss.Ports, ownPorts: map[string]bool{},
			defined: ss.Defined, deleteWait: ss.DeleteWait || ss.Task == "deleting",
			resizeFrom: ss.ResizeFrom, resizeOff: ss.ResizeOff, userData: ss.UserData, publicKey: ss.PublicKey,
		}
		for _, id := range ss.OwnPorts {
			s.ownPorts[id] = true
		}
		if ss.Task != "" && ss.Task != "deleting" {
			s.interrupted = ss.Task
		}
		c.addServerLocked(s)
		c.loaded.servers[s.ID] = true
	}
	c.recountLocked()
	// What the load settled (an interrupted upload killed, a volume
	// being created in error) is written whole with the next save.
	c.compactNext = true
	c.log.WithField("saved_at", st.SavedAt).WithField("servers", len(st.Servers)).WithField("images", len(st.Images)).
		WithField("networks", len(st.Networks)).WithField("volumes", len(st.Volumes)).Info("state loaded")
	return nil
}

// settleImageLocked ends what a restart interrupted for a loaded image.
func (c *Cloud) settleImageLocked(img *image) {
	log := c.log.WithField("image", img.ID)
	switch img.Status {
	case peers.ImageSaving:
		img.Status, img.UpdatedAt = peers.ImageKilled, now()
		log.Warn("image upload was interrupted by a restart; image killed")
	case peers.ImageActive:
		if _, err := os.Stat(c.store.path(img.ID)); err != nil {
			img.Status, img.UpdatedAt = peers.ImageKilled, now()
			log.WithError(err).Error("an active image's data is missing; image killed")
		}
	case peers.ImagePendingDelete:
		left := max(img.UpdatedAt.Add(c.cfg.ImageDeleteDelay).Sub(now()), 0)
		id := img.ID
		img.scrub = time.AfterFunc(left, func() { c.scrubImage(id) })
	}
}

// planOf rebuilds a saved subnet's addressing from its fields.
func planOf(sn peers.Subnet) (subnetPlan, error) {
	p, err := netip.ParsePrefix(sn.CIDR)
	if err != nil {
		return subnetPlan{}, err
	}
	plan := subnetPlan{prefix: p}
	if sn.GatewayIP != "" {
		if plan.gateway, err = netip.ParseAddr(sn.GatewayIP); err != nil {
			return subnetPlan{}, err
		}
	}
	for _, r := range sn.AllocationPools {
		start, err1 := netip.ParseAddr(r.Start)
		end, err2 := netip.ParseAddr(r.End)
		if err := errors.Join(err1, err2); err != nil {
			return subnetPlan{}, err
		}
		plan.pools = append(plan.pools, ipRange{start, end})
	}
	return plan, nil
}

// recountLocked recomputes what every host has handed out from the
// records: the servers' and volumes' allocations.
func (c *Cloud) recountLocked() {
	for _, h := range c.hosts {
		h.used, h.instances = HostResources{}, 0
	}
	for _, s := range c.servers {
		if h := c.hostNamed(s.Host); h != nil && s.alloc != (HostResources{}) {
			h.used = h.used.add(s.alloc)
			h.instances++
		}
	}
	for _, v := range c.volumes {
		if h := c.hostNamed(v.host); h != nil {
			h.used.DiskGiB += v.alloc
		}
	}
}

// lockDataDir creates dir if needed and takes its lock file (DataDir/lock,
// flock, released by closing the file or by the process's end); a
// directory another cloud holds is peers.ErrConflict.
func lockDataDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("data directory %s is in use by another local cloud: %w", dir, peers.ErrConflict)
		}
		return nil, fmt.Errorf("locking data directory %s: %w", dir, err)
	}
	return f, nil
}
