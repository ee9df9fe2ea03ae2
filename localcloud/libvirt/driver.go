package libvirt

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/localcloud"
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
	d := &Driver{cfg: cfg, n: names{prefix: cfg.Prefix, pool: cfg.Pool, path: cfg.PoolPath}, log: log, hosts: map[string]*hostConn{}}
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
	return d, nil
}

// Name is "libvirt".
func (d *Driver) Name() string { return "libvirt" }

// Close closes every host's connection. Later calls fail with
// peers.ErrUnavailable.
func (d *Driver) Close() error {
	var errs []error
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
	x, err := buildDomainXML(d.n, spec, o)
	if err != nil {
		return err
	}
	_, err = call(ctx, h, d.cfg.CallTimeout, "define domain "+spec.ID, func(a API) (golibvirt.Domain, error) {
		return a.DomainDefineXMLFlags(x, 0)
	})
	if err != nil {
		_ = ignoreNotFound(d.DeleteVolume(context.WithoutCancel(ctx), host, spec.ID+"-config.iso"))
		return err
	}
	return nil
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
	err := d.domainOp(ctx, host, id, "undefine", func(a API, dom golibvirt.Domain) error {
		return a.DomainUndefineFlags(dom, golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineSnapshotsMetadata)
	})
	if err != nil && !errors.Is(err, peers.ErrNotFound) {
		return err
	}
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

func (d *Driver) refreshPool(ctx context.Context, h *hostConn) error {
	p, err := d.pool(ctx, h)
	if err != nil {
		return err
	}
	return do(ctx, h, d.cfg.CallTimeout, "refresh pool", func(a API) error { return a.StoragePoolRefresh(p, 0) })
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
	default: // nostate, paused, shutting down
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
	return st == localcloud.DomainRunning || st == localcloud.DomainTransitioning, err
}

// AttachDisk adds a virtio disk, to the definition and, when the domain
// runs, to the guest (hotplug).
func (d *Driver) AttachDisk(ctx context.Context, host, domainID string, disk localcloud.Disk) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	_, v, err := d.volume(ctx, h, disk.VolumeID)
	if err != nil {
		return err
	}
	vx, err := call(ctx, h, d.cfg.CallTimeout, "volume XML", func(a API) (string, error) { return a.StorageVolGetXMLDesc(v, 0) })
	if err != nil {
		return err
	}
	x, err := diskDeviceXML(d.n, disk, volumeFormat(vx))
	if err != nil {
		return err
	}
	flags, err := d.deviceFlags(ctx, host, domainID)
	if err != nil {
		return err
	}
	err = d.domainOp(ctx, host, domainID, "attach "+disk.VolumeID+" to", func(a API, dom golibvirt.Domain) error {
		return a.DomainAttachDeviceFlags(dom, x, flags)
	})
	if h.test && errors.Is(err, peers.ErrNotSupported) {
		return d.redefine(ctx, h, domainID, func(dx string) (string, error) {
			i := strings.LastIndex(dx, "</devices>")
			if i < 0 {
				return "", fmt.Errorf("libvirt: domain %s XML has no </devices>", domainID)
			}
			return dx[:i] + x + "\n" + dx[i:], nil
		})
	}
	return err
}

// redefine edits the domain's persistent XML with edit and defines it
// again: how the test:// driver, which cannot hotplug, gets disks attached
// and detached.
func (d *Driver) redefine(ctx context.Context, h *hostConn, domainID string, edit func(string) (string, error)) error {
	dom, err := d.domain(ctx, h, domainID)
	if err != nil {
		return err
	}
	dx, err := call(ctx, h, d.cfg.CallTimeout, "XML of domain "+domainID, func(a API) (string, error) {
		return a.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
	})
	if err != nil {
		return err
	}
	nx, err := edit(dx)
	if err != nil {
		return err
	}
	_, err = call(ctx, h, d.cfg.CallTimeout, "redefine domain "+domainID, func(a API) (golibvirt.Domain, error) {
		return a.DomainDefineXMLFlags(nx, 0)
	})
	return err
}

// removeDiskXML cuts the <disk> element whose source is volume out of a
// domain's XML.
func removeDiskXML(dx, volume string) (string, error) {
	for _, q := range []string{"'", "\""} {
		at := strings.Index(dx, "volume="+q+volume+q)
		if at < 0 {
			continue
		}
		start := strings.LastIndex(dx[:at], "<disk ")
		end := strings.Index(dx[at:], "</disk>")
		if start < 0 || end < 0 {
			break
		}
		end += at + len("</disk>")
		for end < len(dx) && (dx[end] == '\n' || dx[end] == ' ') {
			end++
		}
		return dx[:start] + dx[end:], nil
	}
	return "", fmt.Errorf("libvirt: no disk of volume %s in the domain XML: %w", volume, peers.ErrNotFound)
}

func (d *Driver) deviceFlags(ctx context.Context, host, domainID string) (uint32, error) {
	run, err := d.running(ctx, host, domainID)
	if err != nil {
		return 0, err
	}
	flags := uint32(golibvirt.DomainDeviceModifyConfig)
	if run {
		flags |= uint32(golibvirt.DomainDeviceModifyLive)
	}
	return flags, nil
}

// attachedDisk finds the disk of volume volumeID in the domain's
// (persistent) definition.
func (d *Driver) attachedDisk(ctx context.Context, h *hostConn, domainID, volumeID string) (diskXML, error) {
	dom, err := d.domain(ctx, h, domainID)
	if err != nil {
		return diskXML{}, err
	}
	x, err := call(ctx, h, d.cfg.CallTimeout, "XML of domain "+domainID, func(a API) (string, error) {
		return a.DomainGetXMLDesc(dom, golibvirt.DomainXMLInactive)
	})
	if err != nil {
		return diskXML{}, err
	}
	pd, err := parseDomainXML(x)
	if err != nil {
		return diskXML{}, fmt.Errorf("libvirt: domain %s XML: %w", domainID, err)
	}
	for _, disk := range pd.Devices.Disks {
		if disk.Source.Volume == d.n.volume(volumeID) {
			return disk, nil
		}
	}
	return diskXML{}, fmt.Errorf("libvirt: volume %s is not attached to domain %s: %w", volumeID, domainID, peers.ErrNotFound)
}

// DetachDisk removes a volume's disk from the definition and the guest.
// Unplugging from a running guest needs the guest's cooperation (ACPI
// hotplug); libvirt returns once it has asked.
func (d *Driver) DetachDisk(ctx context.Context, host, domainID, volumeID string) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	disk, err := d.attachedDisk(ctx, h, domainID, volumeID)
	if err != nil {
		return err
	}
	x, err := diskDeviceXML(d.n, localcloud.Disk{VolumeID: volumeID, Device: disk.Target.Dev}, disk.Driver.Type)
	if err != nil {
		return err
	}
	flags, err := d.deviceFlags(ctx, host, domainID)
	if err != nil {
		return err
	}
	err = d.domainOp(ctx, host, domainID, "detach "+volumeID+" from", func(a API, dom golibvirt.Domain) error {
		return a.DomainDetachDeviceFlags(dom, x, flags)
	})
	if h.test && errors.Is(err, peers.ErrNotSupported) {
		return d.redefine(ctx, h, domainID, func(dx string) (string, error) { return removeDiskXML(dx, d.n.volume(volumeID)) })
	}
	return err
}

// ConsoleOutput reads the end (the last 256 KiB, from a line start) of
// the serial console's log, a file in the pool directory that virtlogd
// writes. On a host reached through the local socket the driver reads the
// file itself. On a remote host it refreshes the pool and downloads the log
// volume (StorageVolDownload) on a connection of its own, cut right after:
// go-libvirt can deadlock a connection when libvirtd ends a download
// stream with an empty packet before the final one, which happens with
// files being appended to (see the package documentation). A domain
// whose guest has written nothing yet has an empty console.
func (d *Driver) ConsoleOutput(ctx context.Context, host, id string) (string, error) {
	h, err := d.host(host)
	if err != nil {
		return "", err
	}
	if _, err := d.domain(ctx, h, id); err != nil {
		return "", err
	}
	if h.test {
		return "", nil // the test driver runs no guest and writes no log
	}
	if h.local {
		out, err := readTail(d.cfg.PoolPath + "/" + d.n.consoleLog(id))
		if !errors.Is(err, os.ErrPermission) { // not root: go through libvirtd
			return out, err
		}
	}
	if err := d.refreshPool(ctx, h); err != nil {
		return "", err
	}
	_, v, err := d.volume(ctx, h, id+"-console.log")
	if errors.Is(err, peers.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	size, err := call(ctx, h, d.cfg.CallTimeout, "console log size", func(a API) (uint64, error) {
		_, capacity, _, err := a.StorageVolGetInfo(v)
		return capacity, err
	})
	if err != nil || size == 0 {
		return "", err
	}
	off := uint64(0)
	if size > consoleTail {
		off = size - consoleTail
	}
	out, err := d.download(ctx, h, v, off, size-off)
	if err != nil {
		return "", fmt.Errorf("console of domain %s: %w", id, err)
	}
	return fromLineStart(out, off > 0), nil
}

// fullWriter collects want bytes and closes full when it has them.
type fullWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want int
	full chan struct{}
}

func (w *fullWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.buf.Len() >= w.want && w.full != nil {
		close(w.full)
		w.full = nil
	}
	return len(p), nil
}

func (w *fullWriter) bytes() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Clone(w.buf.Bytes())
}

// download reads length bytes of a volume from offset on a throwaway
// connection, cut when done. It returns as soon as it has them, without
// waiting for go-libvirt's StorageVolDownload to return: that can
// deadlock after the data is in (see the package documentation), and only
// the throwaway connection's goroutines are left behind then.
func (d *Driver) download(ctx context.Context, h *hostConn, v golibvirt.StorageVol, offset, length uint64) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dctx, cancel := context.WithTimeout(ctx, d.cfg.DialTimeout)
	api, err := h.dial(dctx, h.uri)
	cancel()
	if err != nil {
		return nil, fmt.Errorf("libvirt: host %s: connecting to %s: %w: %w", h.name, h.uri, peers.ErrUnavailable, err)
	}
	defer closeAPI(api)
	full := make(chan struct{})
	w := &fullWriter{want: int(length), full: full}
	done := make(chan error, 1)
	go func() { done <- api.StorageVolDownload(v, w, offset, length, 0) }()
	timer := time.NewTimer(d.cfg.CallTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			return nil, mapError("download volume "+v.Name, err)
		}
	case <-full:
	case <-ctx.Done():
		return nil, fmt.Errorf("libvirt: download volume %s: %w", v.Name, ctx.Err())
	case <-timer.C:
		return nil, fmt.Errorf("libvirt: download volume %s: no answer in %s: %w", v.Name, d.cfg.CallTimeout, peers.ErrUnavailable)
	}
	return w.bytes(), nil
}

// readTail reads the last consoleTail bytes of a local file; a missing
// file is empty.
func readTail(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("libvirt: console log: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("libvirt: console log: %w", err)
	}
	off := max(st.Size()-consoleTail, 0)
	b, err := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	if err != nil {
		return "", fmt.Errorf("libvirt: console log: %w", err)
	}
	return fromLineStart(b, off > 0), nil
}

// fromLineStart drops a partial first line when b starts mid-file.
func fromLineStart(b []byte, cut bool) string {
	if cut {
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// CreateVolume creates a sparse volume: qcow2 unless vol.Format says raw,
// an overlay when vol.BackingID is set. A volume of exact SizeBytes is a
// plain file that UploadVolume fills verbatim (a base image, a config
// drive), whatever format its bytes are in.
func (d *Driver) CreateVolume(ctx context.Context, host string, vol localcloud.PoolVolume) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	p, err := d.pool(ctx, h)
	if err != nil {
		return err
	}
	format := cmp.Or(vol.Format, localcloud.VolumeQCOW2)
	if vol.SizeBytes > 0 {
		format = localcloud.VolumeRaw
	}
	var backingPath string
	if vol.BackingID != "" {
		format = localcloud.VolumeQCOW2
		_, bv, err := d.volume(ctx, h, vol.BackingID)
		if err != nil {
			return fmt.Errorf("backing volume of %s: %w", vol.ID, err)
		}
		if backingPath, err = call(ctx, h, d.cfg.CallTimeout, "backing path", func(a API) (string, error) { return a.StorageVolGetPath(bv) }); err != nil {
			return err
		}
	}
	if vol.Bytes() <= 0 {
		return fmt.Errorf("libvirt: volume %s: size %d: %w", vol.ID, vol.Bytes(), peers.ErrInvalid)
	}
	x, err := buildVolumeXML(d.n.volume(vol.ID), vol.Bytes(), format, backingPath, cmp.Or(vol.BackingFormat, localcloud.VolumeRaw))
	if err != nil {
		return err
	}
	_, err = call(ctx, h, d.cfg.CallTimeout, "create volume "+vol.ID, func(a API) (golibvirt.StorageVol, error) {
		return a.StorageVolCreateXML(p, x, 0)
	})
	if isCode(err, golibvirt.ErrStorageVolExist) || (err != nil && strings.Contains(err.Error(), "already exists")) {
		return fmt.Errorf("libvirt: volume %s already exists: %w: %w", vol.ID, peers.ErrConflict, err)
	}
	return err
}

// countingReader counts what passes and stops when ctx ends.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	n   int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// UploadVolume streams data into the volume with StorageVolUpload (in
// chunks; nothing is buffered whole). The test:// driver has no storage
// data path: there the data is read and dropped, so callers behave the
// same.
func (d *Driver) UploadVolume(ctx context.Context, host, id string, data io.Reader, size int64) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	_, v, err := d.volume(ctx, h, id)
	if err != nil {
		return err
	}
	cr := &countingReader{ctx: ctx, r: data}
	if size >= 0 {
		cr.r = io.LimitReader(data, size+1)
	}
	length := uint64(0)
	if size > 0 {
		length = uint64(size)
	}
	err = do(ctx, h, 0, "upload to volume "+id, func(a API) error { return a.StorageVolUpload(v, cr, 0, length, 0) })
	if h.test && errors.Is(err, peers.ErrNotSupported) {
		_, err = io.Copy(io.Discard, cr)
	}
	if err != nil {
		return err
	}
	if size >= 0 && cr.n != size {
		return fmt.Errorf("libvirt: volume %s: got %d bytes, expected %d: %w", id, cr.n, size, peers.ErrInvalid)
	}
	if h.test {
		return nil
	}
	return d.refuseBackingFile(ctx, h, id)
}

// refuseBackingFile checks what was uploaded: a qcow2 image naming a
// backing file of its own would have QEMU open that file on the host (any
// file: /etc/shadow) for the guest to read, so it is refused, as Nova
// refuses it. The pool refresh makes libvirt probe the new bytes.
func (d *Driver) refuseBackingFile(ctx context.Context, h *hostConn, id string) error {
	if err := d.refreshPool(ctx, h); err != nil {
		return err
	}
	_, v, err := d.volume(ctx, h, id)
	if err != nil {
		return err
	}
	x, err := call(ctx, h, d.cfg.CallTimeout, "volume XML", func(a API) (string, error) { return a.StorageVolGetXMLDesc(v, 0) })
	if err != nil {
		return err
	}
	if pv := d.volumeFromXML(id, x); pv.BackingID != "" {
		return fmt.Errorf("libvirt: volume %s: the uploaded image names a backing file (%s); refused: %w", id, pv.BackingID, peers.ErrInvalid)
	}
	return nil
}

// ResizeVolume grows a volume: through the running guest's block layer
// (DomainBlockResize, so the guest sees it) when it is attached to a
// running domain, else in the pool (StorageVolResize). The test:// driver
// resizes nothing.
func (d *Driver) ResizeVolume(ctx context.Context, host, id string, newSizeGiB int, domainID string) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	_, v, err := d.volume(ctx, h, id)
	if err != nil {
		return err
	}
	bytes := uint64(newSizeGiB) << 30
	capacity, err := call(ctx, h, d.cfg.CallTimeout, "volume info", func(a API) (uint64, error) {
		_, c, _, err := a.StorageVolGetInfo(v)
		return c, err
	})
	if err != nil {
		return err
	}
	if bytes < capacity {
		return fmt.Errorf("libvirt: volume %s: %d GiB would shrink it: %w", id, newSizeGiB, peers.ErrInvalid)
	}
	if domainID != "" {
		run, err := d.running(ctx, host, domainID)
		if err != nil {
			return err
		}
		if run {
			disk, err := d.attachedDisk(ctx, h, domainID, id)
			if err != nil {
				return err
			}
			err = d.domainOp(ctx, host, domainID, "block resize "+id+" of", func(a API, dom golibvirt.Domain) error {
				return a.DomainBlockResize(dom, disk.Target.Dev, bytes, golibvirt.DomainBlockResizeBytes)
			})
			if h.test && errors.Is(err, peers.ErrNotSupported) {
				return nil
			}
			return err
		}
	}
	err = do(ctx, h, d.cfg.CallTimeout, "resize volume "+id, func(a API) error { return a.StorageVolResize(v, bytes, 0) })
	if h.test && errors.Is(err, peers.ErrNotSupported) {
		return nil
	}
	return err
}

// DeleteVolume deletes a volume.
func (d *Driver) DeleteVolume(ctx context.Context, host, id string) error {
	h, err := d.host(host)
	if err != nil {
		return err
	}
	_, v, err := d.volume(ctx, h, id)
	if err != nil {
		return err
	}
	return do(ctx, h, d.cfg.CallTimeout, "delete volume "+id, func(a API) error { return a.StorageVolDelete(v, 0) })
}

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
