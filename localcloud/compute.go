package localcloud

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
)

// defaultAZ is the one availability zone, named as Nova names its default.
const defaultAZ = "nova"

// gib is a GiB in bytes.
const gib = 1 << 30

// server is a Nova server and what the cloud holds for it.
type server struct {
	peers.Server
	alloc      HostResources   // taken from Host's capacity; zero once given back
	rootDisk   string          // pool volume of the root disk; "" when booted from a volume
	ports      []string        // in NIC order
	ownPorts   map[string]bool // ports created for the server, deleted with it
	defined    bool            // the domain exists on Host
	task       string          // the background work running ("" when idle)
	deleteWait bool            // DeleteServer came while a task ran
	// interrupted is the task a restart cut short, until Recover settles
	// the status from the domain's state.
	interrupted string
	// resizeFrom is the flavor a resize started from, until it is
	// confirmed or reverted (alloc holds both flavors' needs meanwhile);
	// resizeOff says the server was SHUTOFF, not ACTIVE, before it.
	resizeFrom string
	resizeOff  bool
	// userData and publicKey are what the guest's config drive holds, kept
	// so a domain can be defined again (unshelve) as it was.
	userData  []byte
	publicKey string
}

// ListFlavors returns the configured flavors.
func (c *Cloud) ListFlavors(ctx context.Context) ([]peers.Flavor, error) {
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	return cloneFlavors(c.flavors), nil
}

// GetFlavor returns the flavor with ID id.
func (c *Cloud) GetFlavor(ctx context.Context, id string) (peers.Flavor, error) {
	if err := c.begin(ctx); err != nil {
		return peers.Flavor{}, err
	}
	defer c.mu.Unlock()
	return c.flavor(id)
}

func (c *Cloud) flavor(id string) (peers.Flavor, error) {
	for _, f := range c.flavors {
		if f.ID == id {
			return cloneFlavors([]peers.Flavor{f})[0], nil
		}
	}
	return peers.Flavor{}, notFound("flavor", id)
}

// forcedHost reads an availability zone: empty or "nova" lets the
// scheduler choose, "nova:HOST" (Nova's admin syntax) names the host.
func forcedHost(az string) (string, error) {
	zone, hostName, _ := strings.Cut(az, ":")
	if zone != "" && zone != defaultAZ {
		return "", errf(peers.ErrInvalid, "availability zone %q: the only zone is %q", az, defaultAZ)
	}
	return hostName, nil
}

// CreateServer validates spec, picks a host, allocates ports and returns the
// server in BUILD; the boot (root disk, domain, power on) runs in the
// background and ends in ACTIVE, or ERROR with a fault.
//
// Refusals: an unknown flavor, image, boot volume, keypair, network or port
// is ErrNotFound; an image that is not active, or whose min_ram/min_disk or
// size the flavor does not meet, is ErrInvalid; no host with room is
// ErrCapacity; a port in use is ErrConflict.
func (c *Cloud) CreateServer(ctx context.Context, spec peers.ServerSpec) (peers.Server, error) {
	if err := ctx.Err(); err != nil {
		return peers.Server{}, err
	}
	if spec.Name == "" || len(spec.Name) > 255 {
		return peers.Server{}, errf(peers.ErrInvalid, "server name %q: want 1 to 255 characters", spec.Name)
	}
	if err := requireProject("server", spec.Project); err != nil {
		return peers.Server{}, err
	}
	if err := checkMetadata(spec.Metadata); err != nil {
		return peers.Server{}, fmt.Errorf("server %q: %w", spec.Name, err)
	}
	if (spec.ImageID == "") == (spec.BootVolumeID == "") {
		return peers.Server{}, errf(peers.ErrInvalid, "server %q: give exactly one of an image or a boot volume", spec.Name)
	}
	forced, err := forcedHost(spec.AvailabilityZone)
	if err != nil {
		return peers.Server{}, err
	}
	if err := c.knowHosts(ctx); err != nil {
		return peers.Server{}, err
	}
	if err := c.begin(ctx); err != nil {
		return peers.Server{}, err
	}
	defer c.mu.Unlock()
	b, err := c.planBoot(spec, forced)
	if err != nil {
		return peers.Server{}, fmt.Errorf("server %q: %w", spec.Name, err)
	}
	if err := c.checkGroupsLocked(spec.SecurityGroups); err != nil {
		return peers.Server{}, fmt.Errorf("server %q: %w", spec.Name, err)
	}
	h, err := c.pickHost(b.need, b.forced, spreadByRAM)
	if err != nil {
		return peers.Server{}, fmt.Errorf("server %q: %w", spec.Name, err)
	}

	t := now()
	s := &server{
		Server: peers.Server{
			ID: newID(), Name: spec.Name, Status: peers.ServerBuild, Project: spec.Project, FlavorID: b.flavor.ID,
			ImageID: spec.ImageID, KeyName: spec.KeyName, AvailabilityZone: defaultAZ, Host: h.cfg.Name,
			Hostname: spec.Hostname, Metadata: maps.Clone(spec.Metadata), CreatedAt: t, UpdatedAt: t,
		},
		ownPorts: map[string]bool{}, userData: append([]byte(nil), spec.UserData...),
	}
	if b.keypair != nil {
		s.publicKey = b.keypair.PublicKey
	}
	if err := c.attachPortsLocked(s, spec); err != nil {
		return peers.Server{}, fmt.Errorf("server %q: %w", spec.Name, err)
	}
	var root *rootDisk
	if b.img != nil {
		// Opened now, so deleting the image during the boot does not fail it.
		f, err := c.openImageData(b.img)
		if err != nil {
			c.releasePortsLocked(s)
			return peers.Server{}, err
		}
		s.rootDisk = s.ID + "-disk"
		root = &rootDisk{
			base: baseSource{imageID: b.img.ID, format: poolFormat(b.img.DiskFormat), size: b.imgSize, data: f},
			vol:  PoolVolume{ID: s.rootDisk, Name: s.Name + "-disk", SizeGiB: b.rootGiB},
		}
	}
	if b.bootVol != nil {
		c.markAttachedLocked(b.bootVol, s, peers.VolumeAttachment{ID: newID(), ServerID: s.ID, VolumeID: b.bootVol.ID, Device: "/dev/vda"})
	}
	s.alloc = b.need
	h.used = h.used.add(b.need)
	h.instances++
	c.addServerLocked(s)

	dom, hostName := c.domainSpecLocked(s, b, spec.UserData), h.cfg.Name
	log := c.log.WithFields(logrus.Fields{"server": s.ID, "name": s.Name, "project": s.Project, "host": h.cfg.Name, "flavor": b.flavor.ID})
	log.Info("server building")
	c.runTask(s, "spawning", func(ctx context.Context) error {
		return c.spawn(ctx, hostName, dom, root)
	}, func(err error) {
		if err != nil {
			log.WithError(err).Warn("server build failed")
			s.Status, s.Fault = peers.ServerError, "build failed: "+err.Error()
			c.releaseAllocLocked(s)
			c.detachAllLocked(s)
			return
		}
		s.defined, s.Status = true, peers.ServerActive
		c.setPortStatusLocked(s, "ACTIVE")
		log.Info("server active")
	})
	view := c.serverView(s) // as it is now: the save lets others in
	c.markServerLocked(s)
	c.saveLocked()
	return view, nil
}

// bootPlan is what CreateServer found valid in a spec.
type bootPlan struct {
	flavor  peers.Flavor
	img     *image  // nil when booting from a volume
	imgSize int64   // bytes
	bootVol *volume // nil when booting from an image
	keypair *peers.Keypair
	rootGiB int           // size of the root disk to create
	need    HostResources // what the server takes from its host
	forced  string        // the host it must go to, if any
}

// planBoot checks everything spec refers to before anything changes.
// Callers hold c.mu.
func (c *Cloud) planBoot(spec peers.ServerSpec, forced string) (bootPlan, error) {
	b := bootPlan{forced: forced}
	var err error
	if b.flavor, err = c.flavor(spec.FlavorID); err != nil {
		return b, err
	}
	if spec.ImageID != "" {
		if b.img, err = c.liveImage(spec.ImageID); err != nil {
			return b, err
		}
		if err := checkImageFitsFlavor(&b.img.Image, b.flavor); err != nil {
			return b, err
		}
		if !bootableFormat(b.img.DiskFormat) {
			return b, errf(peers.ErrInvalid, "image %s is %s; servers boot from raw or qcow2 images", b.img.ID, b.img.DiskFormat)
		}
		b.imgSize = b.img.Size
		// A flavor with no root disk size takes the image's (Nova's rule).
		b.rootGiB = b.flavor.DiskGiB
		if b.rootGiB == 0 {
			b.rootGiB = max(b.img.MinDiskGiB, int((b.img.Size+gib-1)/gib), 1)
		}
	} else {
		v, ok := c.volumeLocked(spec.BootVolumeID)
		switch {
		case !ok:
			return b, notFound("boot volume", spec.BootVolumeID)
		case v.Status != peers.VolumeAvailable:
			return b, errf(peers.ErrConflict, "boot volume %s is %s, not available", v.ID, v.Status)
		case !v.Bootable:
			return b, errf(peers.ErrInvalid, "boot volume %s is not bootable", v.ID)
		case forced != "" && forced != v.host:
			return b, errf(peers.ErrInvalid, "boot volume %s lives on host %s, not %s", v.ID, v.host, forced)
		}
		b.bootVol, b.forced = v, v.host
	}
	if spec.KeyName != "" {
		kp, ok := c.keypairs[spec.KeyName]
		if !ok {
			return b, notFound("keypair", spec.KeyName)
		}
		b.keypair = kp
	}
	seen := map[string]bool{}
	for i, a := range spec.Networks {
		switch {
		case a.PortID != "":
			p, ok := c.ports[a.PortID]
			switch {
			case !ok:
				return b, notFound("port", a.PortID)
			case p.DeviceID != "":
				return b, errf(peers.ErrConflict, "port %s is in use by server %s", p.ID, p.DeviceID)
			case a.NetworkID != "" && a.NetworkID != p.NetworkID:
				return b, errf(peers.ErrInvalid, "networks[%d]: port %s is on network %s, not %s", i, p.ID, p.NetworkID, a.NetworkID)
			case seen[p.ID]:
				return b, errf(peers.ErrInvalid, "networks[%d]: port %s is asked for twice", i, p.ID)
			}
			seen[p.ID] = true
		case a.NetworkID != "":
			if _, ok := c.networks[a.NetworkID]; !ok {
				return b, notFound("network", a.NetworkID)
			}
		default:
			return b, errf(peers.ErrInvalid, "networks[%d]: needs a network_id or a port_id", i)
		}
	}
	b.need = flavorNeeds(b.flavor, b.bootVol != nil)
	if b.img != nil {
		b.need.DiskGiB += int64(b.rootGiB - b.flavor.DiskGiB)
	}
	return b, nil
}

// checkImageFitsFlavor applies Nova's boot-time checks of an image against
// a flavor (FlavorMemoryTooSmall, FlavorDiskTooSmall,
// FlavorDiskSmallerThanImage), all 400s.
func checkImageFitsFlavor(img *peers.Image, f peers.Flavor) error {
	if img.Status != peers.ImageActive {
		return errf(peers.ErrInvalid, "image %s is %s; a server boots only from an active image", img.ID, img.Status)
	}
	if img.MinRAMMiB > f.RAMMiB {
		return errf(peers.ErrInvalid, "flavor %s has %d MiB of RAM but image %s needs min_ram %d MiB", f.Name, f.RAMMiB, img.ID, img.MinRAMMiB)
	}
	if f.DiskGiB > 0 && img.MinDiskGiB > f.DiskGiB {
		return errf(peers.ErrInvalid, "flavor %s has a %d GiB disk but image %s needs min_disk %d GiB", f.Name, f.DiskGiB, img.ID, img.MinDiskGiB)
	}
	if f.DiskGiB > 0 && img.Size > int64(f.DiskGiB)*gib {
		return errf(peers.ErrInvalid, "flavor %s has a %d GiB disk, smaller than image %s (%d bytes)", f.Name, f.DiskGiB, img.ID, img.Size)
	}
	return nil
}

// attachPortsLocked gives s its NICs: binds the ports spec names and creates
// one on each network it names. All or nothing.
func (c *Cloud) attachPortsLocked(s *server, spec peers.ServerSpec) error {
	for i, a := range spec.Networks {
		if a.PortID != "" {
			p := c.ports[a.PortID]
			p.DeviceID, p.DeviceOwner = s.ID, "compute:nova"
			s.ports = append(s.ports, p.ID)
			c.markLocked(recPort, p.ID)
			continue
		}
		ps := peers.PortSpec{Name: "", Project: s.Project, NetworkID: a.NetworkID, SecurityGroups: spec.SecurityGroups}
		if a.FixedIP != "" {
			ps.FixedIPs = []peers.FixedIP{{IPAddress: a.FixedIP}}
		}
		p, err := c.createPortLocked(ps)
		if err != nil {
			c.releasePortsLocked(s)
			return fmt.Errorf("networks[%d]: %w", i, err)
		}
		p.DeviceID, p.DeviceOwner = s.ID, "compute:nova"
		s.ports = append(s.ports, p.ID)
		s.ownPorts[p.ID] = true
		c.markLocked(recPort, p.ID)
	}
	return nil
}

// releasePortsLocked deletes the ports created for s and unbinds the ones
// it was given (Nova's preserve_on_delete).
func (c *Cloud) releasePortsLocked(s *server) {
	c.markServerLocked(s)
	for _, id := range s.ports {
		p := c.ports[id]
		if p == nil {
			continue
		}
		if s.ownPorts[id] {
			c.releasePortLocked(p)
			continue
		}
		p.DeviceID, p.DeviceOwner, p.Status = "", "", "DOWN"
	}
	s.ports, s.ownPorts = nil, map[string]bool{}
}

func (c *Cloud) setPortStatusLocked(s *server, status string) {
	for _, id := range s.ports {
		if p := c.ports[id]; p != nil {
			p.Status = status
			c.markLocked(recPort, id)
		}
	}
}

// releaseAllocLocked gives back what s took from its host.
func (c *Cloud) releaseAllocLocked(s *server) {
	if s.alloc == (HostResources{}) {
		return
	}
	if h := c.hostNamed(s.Host); h != nil {
		h.used = h.used.sub(s.alloc)
		h.instances--
	}
	s.alloc = HostResources{}
	c.markLocked(recServer, s.ID)
}

// domainSpecLocked describes s's domain for the driver, with metadata
// enough to rebuild the record from the host.
func (c *Cloud) domainSpecLocked(s *server, b bootPlan, userData []byte) DomainSpec {
	d := DomainSpec{
		ID: s.ID, Name: s.Name, VCPUs: b.flavor.VCPUs, RAMMiB: b.flavor.RAMMiB,
		KeyName: s.KeyName, UserData: append([]byte(nil), userData...),
		Metadata: map[string]string{
			"localcloud.name": s.Name, "localcloud.project": s.Project, "localcloud.flavor_id": s.FlavorID,
			"localcloud.image_id": s.ImageID, "localcloud.created_at": s.CreatedAt.Format("2006-01-02T15:04:05Z"),
		},
	}
	for k, v := range s.Metadata {
		d.Metadata["server."+k] = v
	}
	if s.Hostname != "" {
		d.Metadata[MetaHostname] = s.Hostname // the config drive's hostname, kept with the domain
	}
	if b.keypair != nil {
		d.PublicKey = b.keypair.PublicKey
	}
	if b.bootVol != nil {
		d.Disks = []Disk{{VolumeID: b.bootVol.ID, Device: "vda"}}
		d.Metadata["localcloud.boot_volume_id"] = b.bootVol.ID
	} else {
		d.Disks = []Disk{{VolumeID: s.rootDisk, Device: "vda"}}
	}
	for _, id := range s.ports {
		p := c.ports[id]
		nic := NIC{PortID: p.ID, NetworkID: p.NetworkID, MAC: p.MACAddress, Filtered: p.SecurityGroups != nil}
		for _, f := range p.FixedIPs {
			if sn := c.subnets[f.SubnetID]; sn != nil {
				nic.IPs = append(nic.IPs, fmt.Sprintf("%s/%d", f.IPAddress, sn.plan.prefix.Bits()))
				nic.Gateway = cmp.Or(nic.Gateway, sn.GatewayIP)
			}
		}
		d.NICs = append(d.NICs, nic)
	}
	return d
}

// serverView is what callers see of s: addresses from its ports, labelled
// with the network's name as Nova labels them.
func (c *Cloud) serverView(s *server) peers.Server {
	v := s.Server
	v.Metadata = maps.Clone(s.Metadata)
	v.Volumes = slices.Clone(s.Volumes)
	v.Addresses = nil
	if s.task == peers.TaskImageSnapshot {
		v.Task = s.task
	}
	for _, id := range s.ports {
		p := c.ports[id]
		if p == nil {
			continue
		}
		label := p.NetworkID
		if n := c.networks[p.NetworkID]; n != nil && n.Name != "" {
			label = n.Name
		}
		for _, f := range p.FixedIPs {
			version := 4
			if a, err := netip.ParseAddr(f.IPAddress); err == nil && a.Is6() {
				version = 6
			}
			v.Addresses = append(v.Addresses, peers.Address{Network: label, Addr: f.IPAddress, Version: version, MAC: p.MACAddress, Type: "fixed"})
			// A floating IP mapped onto the address follows it, as Nova
			// lists it (OS-EXT-IPS:type floating).
			for _, fip := range c.fips {
				if fip.PortID == p.ID && fip.FixedIP == f.IPAddress {
					v.Addresses = append(v.Addresses, peers.Address{Network: label, Addr: fip.Address, Version: 4, MAC: p.MACAddress, Type: "floating"})
				}
			}
		}
	}
	return v
}

// GetServer returns a server.
func (c *Cloud) GetServer(ctx context.Context, id string) (peers.Server, error) {
	return getView(c, ctx, "server", c.servers, id, c.serverView)
}

// ListServers returns the servers passing opts, oldest first. A broker
// asks for one project's servers by its project mark: only that
// project's servers are read, however many others the peer holds.
func (c *Cloud) ListServers(ctx context.Context, opts peers.ListOptions) ([]peers.Server, error) {
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	from := c.servers
	if mark, ok := opts.Metadata[peers.MetaProject]; ok {
		from = c.serversByMark[mark]
	}
	var out []peers.Server
	for _, s := range from {
		if opts.Matches(s.Project, s.Metadata) {
			out = append(out, c.serverView(s))
		}
	}
	slices.SortFunc(out, func(a, b peers.Server) int { return byAgeThenID(a.CreatedAt, a.ID, b.CreatedAt, b.ID) })
	return out, nil
}

// addServerLocked records s, and under its project mark (a server's
// metadata does not change after it is made).
func (c *Cloud) addServerLocked(s *server) {
	c.servers[s.ID] = s
	mark, ok := s.Metadata[peers.MetaProject]
	if !ok {
		return
	}
	if c.serversByMark[mark] == nil {
		c.serversByMark[mark] = map[string]*server{}
	}
	c.serversByMark[mark][s.ID] = s
}

// removeServerLocked forgets s.
func (c *Cloud) removeServerLocked(s *server) {
	delete(c.servers, s.ID)
	mark := s.Metadata[peers.MetaProject]
	if byID := c.serversByMark[mark]; byID != nil {
		delete(byID, s.ID)
		if len(byID) == 0 {
			delete(c.serversByMark, mark)
		}
	}
}

// DeleteServer starts deleting a server, in any status. When a boot or a
// power action is running, the delete follows it. Deleting a server that is
// already being deleted is fine.
func (c *Cloud) DeleteServer(ctx context.Context, id string) error {
	s, err := lockOne(c, ctx, "server", c.servers, id)
	if err != nil {
		return err
	}
	defer c.mu.Unlock()
	switch s.task {
	case "deleting":
	case "":
		c.startDeleteLocked(s)
	default:
		s.deleteWait = true
	}
	c.markServerLocked(s)
	c.saveLocked()
	return nil
}

// startDeleteLocked tears down s's domain and root disk in the background,
// then forgets it: its ports, addresses, volumes and capacity come free. A
// failed teardown leaves s in ERROR, to be deleted again.
func (c *Cloud) startDeleteLocked(s *server) {
	s.deleteWait = false
	hostName, id, root := s.Host, s.ID, s.rootDisk
	log := c.log.WithFields(logrus.Fields{"server": id, "host": hostName})
	c.runTask(s, "deleting", func(ctx context.Context) error {
		return c.teardown(ctx, hostName, id, root)
	}, func(err error) {
		if err != nil {
			log.WithError(err).Warn("server delete failed")
			s.Status, s.Fault = peers.ServerError, "delete failed: "+err.Error()
			return
		}
		c.releaseAllocLocked(s)
		c.releasePortsLocked(s)
		c.detachAllLocked(s)
		c.removeServerLocked(s)
		c.kickFiltersLocked() // its ports' filters go, its addresses leave their groups
		log.Info("server deleted")
		c.collectBasesLocked(hostName)
	})
}
