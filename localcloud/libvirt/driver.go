package libvirt

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/localcloud/vswitch"
	"github.com/cloudmux/cloudmux/peers"
)

// Defaults of Config.
const (
	DefaultPool        = "cloudmux"
	DefaultPoolPath    = "/var/lib/cloudmux/pool"
	DefaultPrefix      = "cloudmux-"
	DefaultMachine     = "pc"
	DefaultArch        = "x86_64"
	DefaultCallTimeout = 30 * time.Second
	DefaultDialTimeout = 10 * time.Second
	// consoleTail is how much of a console log ConsoleOutput reads, from
	// the end.
	consoleTail = 256 << 10
)

// Config configures the driver.
type Config struct {
	// Hosts are the hypervisors, by name, with the libvirt URI of each.
	Hosts []localcloud.HostConfig
	// Pool names the dir storage pool on every host (default "cloudmux");
	// PoolPath is its directory (default /var/lib/cloudmux/pool). The driver
	// defines, builds, starts and autostarts the pool where it is missing.
	Pool     string
	PoolPath string
	// Prefix starts the name of every domain, volume and network the
	// driver makes (default "cloudmux-"), so they can be listed apart from
	// others'.
	Prefix string
	// Machine and Arch are the domains' machine type (default "pc") and
	// architecture (default "x86_64"). Domains are always type='qemu'
	// (TCG): no KVM needed.
	Machine, Arch string
	// CallTimeout bounds every libvirt call except volume uploads and
	// downloads, which only ctx bounds (default 30s). A call that takes
	// longer drops the connection: the next call redials.
	CallTimeout time.Duration
	// DialTimeout bounds connecting to a host (default 10s).
	DialTimeout time.Duration
	// Dial opens connections (default Dial); tests wrap it.
	Dial DialFunc
	// SwitchAddr is the address the guest networks' user-space switch
	// listens on, the one every NIC sends its frames to (default
	// 127.0.0.1: hypervisors on this machine only). NICAddrs gives, per
	// host name, the address QEMU binds a NIC's socket to on that host
	// (default SwitchAddr); a remote host needs both set to addresses
	// the two machines reach each other on.
	SwitchAddr netip.Addr
	NICAddrs   map[string]netip.Addr
}

func (c Config) withDefaults() Config {
	c.Pool = cmp.Or(c.Pool, DefaultPool)
	c.PoolPath = strings.TrimRight(cmp.Or(c.PoolPath, DefaultPoolPath), "/")
	c.Prefix = cmp.Or(c.Prefix, DefaultPrefix)
	c.Machine = cmp.Or(c.Machine, DefaultMachine)
	c.Arch = cmp.Or(c.Arch, DefaultArch)
	c.CallTimeout = cmp.Or(c.CallTimeout, DefaultCallTimeout)
	c.DialTimeout = cmp.Or(c.DialTimeout, DefaultDialTimeout)
	if c.Dial == nil {
		c.Dial = Dial
	}
	return c
}

// Driver is the libvirt driver of the local cloud. Create it with New and
// Close it when done.
type Driver struct {
	cfg   Config
	n     names
	log   logrus.FieldLogger
	hosts map[string]*hostConn
	// sw is the guest networks' switch; nets the networks each host has
	// (CreateNetwork), which is switch state only.
	sw    *vswitch.Switch
	netMu sync.Mutex
	nets  map[string]map[string]bool
}

var _ localcloud.Driver = (*Driver)(nil)

// New returns a driver for cfg's hosts. It does not connect: each host's
// connection opens on its first call.
func New(cfg Config, log logrus.FieldLogger) (*Driver, error) {
	cfg = cfg.withDefaults()
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	log = log.WithField("driver", "libvirt")
	d := &Driver{cfg: cfg, n: names{prefix: cfg.Prefix, pool: cfg.Pool, path: cfg.PoolPath}, log: log, hosts: map[string]*hostConn{},
		nets: map[string]map[string]bool{}}
	if len(cfg.Hosts) == 0 {
		return nil, fmt.Errorf("libvirt: no hosts: %w", peers.ErrInvalid)
	}
	for _, h := range cfg.Hosts {
		if _, dup := d.hosts[h.Name]; dup || h.Name == "" {
			return nil, fmt.Errorf("libvirt: host name %q is empty or repeated: %w", h.Name, peers.ErrInvalid)
		}
		hc, err := newHostConn(h.Name, h.URI, cfg.Dial, cfg.DialTimeout, log)
		if err != nil {
			return nil, err
		}
		d.hosts[h.Name] = hc
	}
	d.sw = vswitch.New(vswitch.Config{Addr: cfg.SwitchAddr}, log)
	return d, nil
}

// Switch is the guest networks' switch.
func (d *Driver) Switch() *vswitch.Switch { return d.sw }

// Name is "libvirt".
func (d *Driver) Name() string { return "libvirt" }

// Close closes every host's connection and the switch (running guests
// lose their networks until a driver's Inventory reopens their ports).
// Later calls fail with peers.ErrUnavailable.
func (d *Driver) Close() error {
	errs := []error{d.sw.Close()}
	for _, h := range d.hosts {
		errs = append(errs, h.close())
	}
	return errors.Join(errs...)
}

func (d *Driver) host(name string) (*hostConn, error) {
	h, ok := d.hosts[name]
	if !ok {
		return nil, errNoHost(name)
	}
	return h, nil
}

// Ping checks that host answers (and redials it if needed).
func (d *Driver) Ping(ctx context.Context, host string) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	return do(ctx, h, d.cfg.CallTimeout, "version", func(a API) error { _, err := a.ConnectGetLibVersion(); return err })
}

// HostResources reports the host's CPUs and memory (NodeGetInfo) and its
// storage pool's capacity.
func (d *Driver) HostResources(ctx context.Context, host string) (localcloud.HostResources, error) {
	h, err := d.host(host)
	if err != nil {
		return localcloud.HostResources{}, err
	}
	type info struct {
		mem  uint64
		cpus int32
	}
	ni, err := call(ctx, h, d.cfg.CallTimeout, "node info", func(a API) (info, error) {
		_, mem, cpus, _, _, _, _, _, err := a.NodeGetInfo()
		return info{mem, cpus}, err
	})
	if err != nil {
		return localcloud.HostResources{}, err
	}
	pool, err := d.pool(ctx, h)
	if err != nil {
		return localcloud.HostResources{}, err
	}
	capacity, err := call(ctx, h, d.cfg.CallTimeout, "pool info", func(a API) (uint64, error) {
		_, c, _, _, err := a.StoragePoolGetInfo(pool)
		return c, err
	})
	if err != nil {
		return localcloud.HostResources{}, err
	}
	return localcloud.HostResources{VCPUs: int64(ni.cpus), RAMMiB: int64(ni.mem / 1024), DiskGiB: int64(capacity >> 30)}, nil
}

// pool returns the host's storage pool, defining, building and starting it
// the first time if it is missing or stopped.
func (d *Driver) pool(ctx context.Context, h *hostConn) (golibvirt.StoragePool, error) {
	h.poolMu.Lock()
	defer h.poolMu.Unlock()
	if h.pool != nil && h.poolGen == h.generation() {
		return *h.pool, nil
	}
	to := d.cfg.CallTimeout
	p, err := call(ctx, h, to, "look up pool "+d.cfg.Pool, func(a API) (golibvirt.StoragePool, error) { return a.StoragePoolLookupByName(d.cfg.Pool) })
	if errors.Is(err, peers.ErrNotFound) {
		d.log.WithFields(logrus.Fields{"host": h.name, "pool": d.cfg.Pool, "path": d.cfg.PoolPath}).Info("defining the storage pool")
		p, err = call(ctx, h, to, "define pool", func(a API) (golibvirt.StoragePool, error) {
			return a.StoragePoolDefineXML(poolXML(d.cfg.Pool, d.cfg.PoolPath), 0)
		})
		if err == nil {
			err = do(ctx, h, to, "build pool", func(a API) error { return a.StoragePoolBuild(p, golibvirt.StoragePoolBuildNew) })
			if errors.Is(err, peers.ErrConflict) { // already built
				err = nil
			}
		}
		if err == nil {
			err = do(ctx, h, to, "autostart pool", func(a API) error { return a.StoragePoolSetAutostart(p, 1) })
		}
	}
	if err != nil {
		return golibvirt.StoragePool{}, err
	}
	active, err := call(ctx, h, to, "pool active", func(a API) (int32, error) { return a.StoragePoolIsActive(p) })
	if err != nil {
		return golibvirt.StoragePool{}, err
	}
	if active == 0 {
		if err := do(ctx, h, to, "start pool", func(a API) error { return a.StoragePoolCreate(p, 0) }); err != nil {
			return golibvirt.StoragePool{}, err
		}
	}
	h.pool, h.poolGen = &p, h.generation()
	return p, nil
}

// domain looks a domain up by the server ID.
func (d *Driver) domain(ctx context.Context, h *hostConn, id string) (golibvirt.Domain, error) {
	return call(ctx, h, d.cfg.CallTimeout, "look up domain "+id, func(a API) (golibvirt.Domain, error) {
		return a.DomainLookupByName(d.n.domain(id))
	})
}

func (d *Driver) volume(ctx context.Context, h *hostConn, id string) (golibvirt.StoragePool, golibvirt.StorageVol, error) {
	p, err := d.pool(ctx, h)
	if err != nil {
		return p, golibvirt.StorageVol{}, err
	}
	v, err := call(ctx, h, d.cfg.CallTimeout, "look up volume "+id, func(a API) (golibvirt.StorageVol, error) {
		return a.StorageVolLookupByName(p, d.n.volume(id))
	})
	return p, v, err
}

// DefineDomain builds the config drive, then defines the domain.
func (d *Driver) DefineDomain(ctx context.Context, host string, spec localcloud.DomainSpec) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	// Defining an existing domain would silently redefine it.
	if _, err := d.domain(ctx, h, spec.ID); err == nil {
		return fmt.Errorf("libvirt: domain %s already defined: %w", spec.ID, peers.ErrConflict)
	} else if !errors.Is(err, peers.ErrNotFound) {
		return err
	}
	o := domainOptions{Arch: d.cfg.Arch, Machine: d.cfg.Machine, DiskFormats: map[string]string{}, ConfigDrive: true}
	for _, disk := range spec.Disks {
		_, v, err := d.volume(ctx, h, disk.VolumeID)
		if err != nil {
			return fmt.Errorf("domain %s disk %s: %w", spec.ID, disk.VolumeID, err)
		}
		x, err := call(ctx, h, d.cfg.CallTimeout, "volume XML", func(a API) (string, error) { return a.StorageVolGetXMLDesc(v, 0) })
		if err != nil {
			return err
		}
		o.DiskFormats[disk.VolumeID] = volumeFormat(x)
	}
	if err := d.writeConfigDrive(ctx, h, spec); err != nil {
		return err
	}
	if err := d.defineOnSwitch(ctx, h, spec, o, "define"); err != nil {
		_ = ignoreNotFound(d.DeleteVolume(context.WithoutCancel(ctx), host, spec.ID+"-config.iso"))
		return err
	}
	return nil
}

// defineOnSwitch opens the switch ports of spec's NICs and defines (or
// redefines) its domain with them; on failure the ports are closed.
func (d *Driver) defineOnSwitch(ctx context.Context, h *hostConn, spec localcloud.DomainSpec, o domainOptions, what string) error {
	eps, err := d.addPorts(h.name, spec, nil)
	if err != nil {
		return err
	}
	x, err := buildDomainXML(d.n, spec, eps, o)
	if err == nil {
		_, err = call(ctx, h, d.cfg.CallTimeout, what+" domain "+spec.ID, func(a API) (golibvirt.Domain, error) {
			return a.DomainDefineXMLFlags(x, 0)
		})
	}
	if err != nil {
		d.removePorts(spec.NICs)
	}
	return err
}

// writeConfigDrive uploads spec's config drive as a raw pool volume.
func (d *Driver) writeConfigDrive(ctx context.Context, h *hostConn, spec localcloud.DomainSpec) error {
	f, size, err := buildConfigDrive(spec)
	if err != nil {
		return err
	}
	defer func() {
		_ = f.Close()
		_ = os.Remove(f.Name())
	}()
	id := spec.ID + "-config.iso"
	// A leftover from an earlier failed attempt is replaced.
	if err := ignoreNotFound(d.DeleteVolume(ctx, h.name, id)); err != nil {
		return err
	}
	if err := d.CreateVolume(ctx, h.name, localcloud.PoolVolume{ID: id, SizeBytes: size, Format: localcloud.VolumeRaw}); err != nil {
		return fmt.Errorf("config drive: %w", err)
	}
	if err := d.UploadVolume(ctx, h.name, id, f, size); err != nil {
		_ = ignoreNotFound(d.DeleteVolume(context.WithoutCancel(ctx), h.name, id))
		return fmt.Errorf("config drive: %w", err)
	}
	return nil
}

func ignoreNotFound(err error) error {
	if errors.Is(err, peers.ErrNotFound) {
		return nil
	}
	return err
}

// domainOp looks the domain up and runs fn on it.
func (d *Driver) domainOp(ctx context.Context, host, id, what string, fn func(API, golibvirt.Domain) error) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	dom, err := d.domain(ctx, h, id)
	if err != nil {
		return err
	}
	return do(ctx, h, d.cfg.CallTimeout, what+" domain "+id, func(a API) error { return fn(a, dom) })
}

// StartDomain powers the domain on; one already running is ErrConflict.
func (d *Driver) StartDomain(ctx context.Context, host, id string) error {
	st, err := d.DomainState(ctx, host, id)
	if err != nil {
		return err
	}
	if st != localcloud.DomainShutoff && st != localcloud.DomainCrashed {
		return fmt.Errorf("libvirt: start domain %s: it is %s: %w", id, st, peers.ErrConflict)
	}
	return d.domainOp(ctx, host, id, "start", func(a API, dom golibvirt.Domain) error { return a.DomainCreate(dom) })
}

// ShutdownDomain presses the ACPI power button.
func (d *Driver) ShutdownDomain(ctx context.Context, host, id string) error {
	return d.domainOp(ctx, host, id, "shut down", func(a API, dom golibvirt.Domain) error {
		// Default: the hypervisor's choice, ACPI power button for QEMU.
		return a.DomainShutdownFlags(dom, 0)
	})
}

// RebootDomain reboots through ACPI (soft) or resets the machine (hard).
func (d *Driver) RebootDomain(ctx context.Context, host, id string, hard bool) error {
	if hard {
		return d.domainOp(ctx, host, id, "reset", func(a API, dom golibvirt.Domain) error { return a.DomainReset(dom, 0) })
	}
	return d.domainOp(ctx, host, id, "reboot", func(a API, dom golibvirt.Domain) error {
		return a.DomainReboot(dom, golibvirt.DomainRebootDefault)
	})
}

// PauseDomain stops the domain's vCPUs (virDomainSuspend); its memory
// stays allocated.
func (d *Driver) PauseDomain(ctx context.Context, host, id string) error {
	return d.domainOp(ctx, host, id, "pause", func(a API, dom golibvirt.Domain) error { return a.DomainSuspend(dom) })
}

// UnpauseDomain lets a paused domain's vCPUs run again (virDomainResume).
func (d *Driver) UnpauseDomain(ctx context.Context, host, id string) error {
	return d.domainOp(ctx, host, id, "unpause", func(a API, dom golibvirt.Domain) error { return a.DomainResume(dom) })
}

// SaveDomain saves the guest's memory into libvirt's managed save file and
// stops the domain; DomainCreate (StartDomain) restores from it, and
// UndefineDomain (with DomainUndefineManagedSave) removes it. The call
// returns once the memory is written: a save is synchronous in libvirt.
func (d *Driver) SaveDomain(ctx context.Context, host, id string) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	dom, err := d.domain(ctx, h, id)
	if err != nil {
		return err
	}
	// Writing a guest's memory takes longer than an ordinary call.
	return do(ctx, h, 4*d.cfg.CallTimeout, "save domain "+id, func(a API) error { return a.DomainManagedSave(dom, 0) })
}

// SetDomainSize rewrites a shut-off domain's vCPU count and memory in its
// persistent definition. The maximum and the current value move in the
// order libvirt accepts: the maximum first when growing, last when
// shrinking (current may never exceed maximum).
func (d *Driver) SetDomainSize(ctx context.Context, host, id string, vcpus, ramMiB int) error {
	st, err := d.DomainState(ctx, host, id)
	if err != nil {
		return err
	}
	if st != localcloud.DomainShutoff {
		return fmt.Errorf("libvirt: resize domain %s: it is %s, not shut off: %w", id, st, peers.ErrConflict)
	}
	cfgFlag, maxFlag := uint32(golibvirt.DomainVCPUConfig), uint32(golibvirt.DomainVCPUMaximum)
	memCfg, memMax := uint32(golibvirt.DomainMemConfig), uint32(golibvirt.DomainMemMaximum)
	kib := uint64(ramMiB) * 1024
	return d.domainOp(ctx, host, id, "resize", func(a API, dom golibvirt.Domain) error {
		// Grow: maximum, then current. Shrink: current, then maximum. Doing
		// both orders' first step and then the second covers either case.
		for _, step := range []func() error{
			func() error { return a.DomainSetVcpusFlags(dom, uint32(vcpus), cfgFlag|maxFlag) },
			func() error { return a.DomainSetVcpusFlags(dom, uint32(vcpus), cfgFlag) },
			func() error { return a.DomainSetMemoryFlags(dom, kib, memCfg|memMax) },
			func() error { return a.DomainSetMemoryFlags(dom, kib, memCfg) },
		} {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	})
}

// DestroyDomain powers the domain off; one already off is fine.
func (d *Driver) DestroyDomain(ctx context.Context, host, id string) error {
	st, err := d.DomainState(ctx, host, id)
	if err != nil {
		return err
	}
	if st == localcloud.DomainShutoff {
		return nil
	}
	err = d.domainOp(ctx, host, id, "destroy", func(a API, dom golibvirt.Domain) error {
		return a.DomainDestroyFlags(dom, golibvirt.DomainDestroyDefault)
	})
	if errors.Is(err, peers.ErrConflict) { // it stopped meanwhile
		if st, serr := d.DomainState(ctx, host, id); serr == nil && st == localcloud.DomainShutoff {
			return nil
		}
	}
	return err
}

// UndefineDomain removes the definition, then the config drive and the
// console log. Those go even when the domain is already gone (an earlier
// attempt failed half way), so repeating the call cleans up.
func (d *Driver) UndefineDomain(ctx context.Context, host, id string) error {
	var nics []localcloud.NIC
	err := d.domainOp(ctx, host, id, "undefine", func(a API, dom golibvirt.Domain) error {
		// The NICs' switch ports go with the domain.
		if x, err := a.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive); err == nil {
			if spec, err := specFromXML(x, d.cfg.Prefix); err == nil {
				nics = spec.NICs
			}
		}
		return a.DomainUndefineFlags(dom, golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineSnapshotsMetadata)
	})
	if err != nil && !errors.Is(err, peers.ErrNotFound) {
		return err
	}
	d.removePorts(nics)
	if ferr := d.removeDomainFiles(ctx, host, id); ferr != nil {
		return ferr
	}
	return err
}

func (d *Driver) removeDomainFiles(ctx context.Context, host, id string) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	if err := d.refreshPool(ctx, h); err != nil {
		return err
	}
	for _, v := range []string{id + "-config.iso", id + "-console.log"} {
		if err := ignoreNotFound(d.DeleteVolume(ctx, host, v)); err != nil {
			return err
		}
	}
	return nil
}

// refreshPool rescans the pool directory. libvirt refuses a refresh while
// the pool has a volume being built (a qcow2 volume's qemu-img, an upload
// on another connection): "pool has asynchronous jobs running". That ends
// on its own, so the refresh is tried again, with a growing pause, for up
// to CallTimeout.
func (d *Driver) refreshPool(ctx context.Context, h *hostConn) error {
	p, err := d.pool(ctx, h)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(d.cfg.CallTimeout)
	pause := 10 * time.Millisecond
	for {
		err := do(ctx, h, d.cfg.CallTimeout, "refresh pool", func(a API) error { return a.StoragePoolRefresh(p, 0) })
		if err == nil || !strings.Contains(err.Error(), "asynchronous jobs running") || time.Now().Add(pause).After(deadline) {
			return err
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("libvirt: refresh pool: %w (while waiting for the pool's jobs: %w)", ctx.Err(), err)
		case <-t.C:
		}
		pause = min(2*pause, time.Second)
	}
}

// domainState maps libvirt's states onto the driver's.
func domainState(s golibvirt.DomainState) localcloud.DomainState {
	switch s {
	case golibvirt.DomainRunning, golibvirt.DomainBlocked, golibvirt.DomainPmsuspended:
		return localcloud.DomainRunning
	case golibvirt.DomainShutoff:
		return localcloud.DomainShutoff
	case golibvirt.DomainCrashed:
		return localcloud.DomainCrashed
	case golibvirt.DomainPaused:
		return localcloud.DomainPaused
	default: // nostate, shutting down
		return localcloud.DomainTransitioning
	}
}

// DomainState reports the domain's state.
func (d *Driver) DomainState(ctx context.Context, host, id string) (localcloud.DomainState, error) {
	h, err := d.host(host)
	if err != nil {
		return "", err
	}
	dom, err := d.domain(ctx, h, id)
	if err != nil {
		return "", err
	}
	st, err := call(ctx, h, d.cfg.CallTimeout, "state of domain "+id, func(a API) (int32, error) {
		st, _, err := a.DomainGetState(dom, 0)
		return st, err
	})
	if err != nil {
		return "", err
	}
	return domainState(golibvirt.DomainState(st)), nil
}

// running reports whether the domain runs.
func (d *Driver) running(ctx context.Context, host, id string) (bool, error) {
	st, err := d.DomainState(ctx, host, id)
	return st == localcloud.DomainRunning || st == localcloud.DomainTransitioning || st == localcloud.DomainPaused, err
}
