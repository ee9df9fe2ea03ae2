package fake

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// Op names a driver operation, for fault injection.
type Op string

// The operations a FaultFunc sees.
const (
	OpHostResources Op = "host_resources"
	OpDefine        Op = "define"
	OpStart         Op = "start"
	OpShutdown      Op = "shutdown"
	OpReboot        Op = "reboot"
	OpDestroy       Op = "destroy"
	OpPause         Op = "pause"
	OpUnpause       Op = "unpause"
	OpSave          Op = "save"
	OpSetSize       Op = "set_size"
	OpUndefine      Op = "undefine"
	OpState         Op = "state"
	OpAttach        Op = "attach"
	OpDetach        Op = "detach"
	OpConsole       Op = "console"
	OpCreateVolume  Op = "create_volume"
	OpUploadVolume  Op = "upload_volume"
	OpDeleteVolume  Op = "delete_volume"
	OpResizeVolume  Op = "resize_volume"
	OpCopyVolume    Op = "copy_volume"
	OpExportVolume  Op = "export_volume"
	OpInventory     Op = "inventory"
	OpCreateNetwork Op = "create_network"
	OpDeleteNetwork Op = "delete_network"
	OpSetFilter     Op = "set_filter"
	OpDeleteFilter  Op = "delete_filter"
)

// FaultFunc decides whether an operation fails: host is the host, id the
// domain, volume or network acted on. Returning nil lets it run. It may
// block (the operation hangs); other operations go on meanwhile.
type FaultFunc func(op Op, host, id string) error

// Resources a host reports for what its HostConfig leaves at zero.
const (
	DefaultVCPUs   = 8
	DefaultRAMMiB  = 16384
	DefaultDiskGiB = 200
)

// Driver is the fake. Create it with New.
type Driver struct {
	mu    sync.Mutex
	hosts map[string]*host
	fault FaultFunc
	// transition is how long a power transition (boot, shutdown, reboot,
	// save) lasts at least; see SetTransitionTime.
	transitionTime time.Duration
	// routers are the router plans by host and ID (routers.go).
	routers map[string]map[string]localcloud.RouterPlan
}

var (
	_ localcloud.Driver       = (*Driver)(nil)
	_ localcloud.VolumeCopier = (*Driver)(nil)
	_ localcloud.FilterDriver = (*Driver)(nil)
)

type host struct {
	res      localcloud.HostResources
	domains  map[string]*domain
	volumes  map[string]*volume
	networks map[string]localcloud.IsolatedNetwork
	filters  map[string]localcloud.PortFilter // by port ID
}

type domain struct {
	spec    localcloud.DomainSpec
	state   localcloud.DomainState
	settle  localcloud.DomainState // what a transitioning domain becomes
	until   time.Time              // a transitioning domain settles no sooner
	saved   bool                   // SaveDomain kept its memory; StartDomain restores it
	console []string
}

type volume struct {
	spec       localcloud.PoolVolume
	written    int64
	sha256     string
	attachedTo string // domain ID
}

// New returns a fake with the given hosts. A host's resources are its
// HostConfig's, or the defaults where those are zero.
func New(hosts ...localcloud.HostConfig) *Driver {
	d := &Driver{hosts: map[string]*host{}}
	for _, h := range hosts {
		d.hosts[h.Name] = &host{
			res: localcloud.HostResources{
				VCPUs:   int64(orDefault(h.VCPUs, DefaultVCPUs)),
				RAMMiB:  int64(orDefault(h.RAMMiB, DefaultRAMMiB)),
				DiskGiB: int64(orDefault(h.DiskGiB, DefaultDiskGiB)),
			},
			domains: map[string]*domain{}, volumes: map[string]*volume{}, networks: map[string]localcloud.IsolatedNetwork{}, filters: map[string]localcloud.PortFilter{},
		}
	}
	return d
}

func orDefault(v, def int) int {
	if v != 0 {
		return v
	}
	return def
}

// InjectFault makes every later operation consult fn first; nil removes it.
func (d *Driver) InjectFault(fn FaultFunc) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fault = fn
}

// SetTransitionTime makes every later power transition (boot, shutdown,
// reboot, save) last at least t, as a real guest's does: a domain reads as
// transitioning until t has passed and it has been read once. Zero (the
// default) settles it at the first read after the call. `serve -dev` sets
// a couple of seconds, so clients polling once a second see a server in
// REBOOT, as they do on a real cloud.
func (d *Driver) SetTransitionTime(t time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.transitionTime = t
}

// Name is "fake".
func (d *Driver) Name() string { return "fake" }

// lock is the preamble of every operation: context, fault, host. On
// success it returns the host with d.mu held.
func (d *Driver) lock(ctx context.Context, op Op, hostName, id string) (*host, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	d.mu.Lock()
	// The fault runs without d.mu, so one that blocks (a hung host, a
	// process dying mid-call) stalls only its own operation.
	if fault := d.fault; fault != nil {
		d.mu.Unlock()
		if err := fault(op, hostName, id); err != nil {
			return nil, fmt.Errorf("fake %s %s on %s: %w", op, id, hostName, err)
		}
		d.mu.Lock()
	}
	h, ok := d.hosts[hostName]
	if !ok {
		d.mu.Unlock()
		return nil, fmt.Errorf("fake: no host %q: %w", hostName, peers.ErrUnavailable)
	}
	return h, nil
}

// lockDomain is lock plus the domain lookup. On success the caller holds
// d.mu and must unlock it.
func (d *Driver) lockDomain(ctx context.Context, op Op, hostName, id string) (*host, *domain, error) {
	h, err := d.lock(ctx, op, hostName, id)
	if err != nil {
		return nil, nil, err
	}
	dom, err := h.domain(id)
	if err != nil {
		d.mu.Unlock()
		return nil, nil, err
	}
	return h, dom, nil
}

func errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("fake: %s: %w", fmt.Sprintf(format, args...), sentinel)
}

// HostResources reports the host's configured (or default) resources.
func (d *Driver) HostResources(ctx context.Context, hostName string) (localcloud.HostResources, error) {
	h, err := d.lock(ctx, OpHostResources, hostName, "")
	if err != nil {
		return localcloud.HostResources{}, err
	}
	defer d.mu.Unlock()
	return h.res, nil
}

func (h *host) domain(id string) (*domain, error) {
	dom, ok := h.domains[id]
	if !ok {
		return nil, errf(peers.ErrNotFound, "no domain %s", id)
	}
	return dom, nil
}

// DefineDomain records a stopped domain. Its disks must be pool volumes no
// other domain uses, its NICs on networks the host has.
func (d *Driver) DefineDomain(ctx context.Context, hostName string, spec localcloud.DomainSpec) error {
	h, err := d.lock(ctx, OpDefine, hostName, spec.ID)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if _, dup := h.domains[spec.ID]; dup {
		return errf(peers.ErrConflict, "domain %s already defined", spec.ID)
	}
	for _, disk := range spec.Disks {
		v, ok := h.volumes[disk.VolumeID]
		if !ok {
			return errf(peers.ErrNotFound, "domain %s: disk %s is not in the pool", spec.ID, disk.VolumeID)
		}
		if v.attachedTo != "" {
			return errf(peers.ErrConflict, "domain %s: disk %s is used by domain %s", spec.ID, disk.VolumeID, v.attachedTo)
		}
	}
	for _, nic := range spec.NICs {
		if _, ok := h.networks[nic.NetworkID]; !ok {
			return errf(peers.ErrNotFound, "domain %s: network %s does not exist", spec.ID, nic.NetworkID)
		}
		if _, ok := h.filters[nic.PortID]; nic.Filtered && !ok {
			return errf(peers.ErrNotFound, "domain %s: the filter of port %s does not exist", spec.ID, nic.PortID)
		}
	}
	for _, disk := range spec.Disks {
		h.volumes[disk.VolumeID].attachedTo = spec.ID
	}
	spec.Disks = slices.Clone(spec.Disks)
	spec.NICs = slices.Clone(spec.NICs)
	h.domains[spec.ID] = &domain{spec: spec, state: localcloud.DomainShutoff,
		console: []string{fmt.Sprintf("fake driver: domain %s (%s) defined: %d vCPU, %d MiB", spec.Name, spec.ID, spec.VCPUs, spec.RAMMiB)}}
	return nil
}

// act runs change on a domain in one of the states from, under d.mu, and
// logs the line it returns on the domain's console.
func (d *Driver) act(ctx context.Context, op Op, hostName, id string, from []localcloud.DomainState, change func(*domain) string) error {
	_, dom, err := d.lockDomain(ctx, op, hostName, id)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if !slices.Contains(from, dom.state) {
		return errf(peers.ErrConflict, "%s domain %s: it is %s, not %v", op, id, dom.state, from)
	}
	dom.console = append(dom.console, "fake driver: "+change(dom))
	return nil
}

// transition moves a domain from one settled state towards another.
func (d *Driver) transition(ctx context.Context, op Op, hostName, id string, from, to localcloud.DomainState, say string) error {
	return d.transitionWith(ctx, op, hostName, id, from, to, func(*domain) string { return say })
}

func (d *Driver) transitionWith(ctx context.Context, op Op, hostName, id string, from, to localcloud.DomainState, sayFn func(*domain) string) error {
	return d.act(ctx, op, hostName, id, []localcloud.DomainState{from}, func(dom *domain) string {
		say := sayFn(dom)
		dom.state, dom.settle, dom.until = localcloud.DomainTransitioning, to, time.Now().Add(d.transitionTime)
		return say + " (there is no guest; nothing runs)"
	})
}

// StartDomain powers a shutoff domain on; it runs after the next
// DomainState read.
func (d *Driver) StartDomain(ctx context.Context, hostName, id string) error {
	return d.transitionWith(ctx, OpStart, hostName, id, localcloud.DomainShutoff, localcloud.DomainRunning, func(dom *domain) string {
		if dom.saved { // a saved domain is restored, not booted
			dom.saved = false
			return "restored from its saved memory"
		}
		return "powered on"
	})
}

// ShutdownDomain asks a running domain to power off; it is off after the
// next DomainState read.
func (d *Driver) ShutdownDomain(ctx context.Context, hostName, id string) error {
	return d.transition(ctx, OpShutdown, hostName, id, localcloud.DomainRunning, localcloud.DomainShutoff, "ACPI shutdown")
}

// RebootDomain restarts a running domain; it runs again after the next
// DomainState read.
func (d *Driver) RebootDomain(ctx context.Context, hostName, id string, hard bool) error {
	say := "reboot"
	if hard {
		say = "reset"
	}
	return d.transition(ctx, OpReboot, hostName, id, localcloud.DomainRunning, localcloud.DomainRunning, say)
}

// PauseDomain freezes a running domain.
func (d *Driver) PauseDomain(ctx context.Context, hostName, id string) error {
	return d.flip(ctx, OpPause, hostName, id, localcloud.DomainRunning, localcloud.DomainPaused, "paused")
}

// UnpauseDomain lets a paused domain run again.
func (d *Driver) UnpauseDomain(ctx context.Context, hostName, id string) error {
	return d.flip(ctx, OpUnpause, hostName, id, localcloud.DomainPaused, localcloud.DomainRunning, "unpaused")
}

// flip moves a domain between two settled states at once, as libvirt's
// suspend and resume of the vCPUs do.
func (d *Driver) flip(ctx context.Context, op Op, hostName, id string, from, to localcloud.DomainState, say string) error {
	return d.act(ctx, op, hostName, id, []localcloud.DomainState{from}, func(dom *domain) string {
		dom.state = to
		return say
	})
}

// SaveDomain saves a running or paused domain and shuts it off; the next
// StartDomain restores it.
func (d *Driver) SaveDomain(ctx context.Context, hostName, id string) error {
	return d.act(ctx, OpSave, hostName, id, []localcloud.DomainState{localcloud.DomainRunning, localcloud.DomainPaused}, func(dom *domain) string {
		dom.state, dom.settle, dom.until, dom.saved = localcloud.DomainTransitioning, localcloud.DomainShutoff, time.Now().Add(d.transitionTime), true
		return "memory saved, powered off"
	})
}

// SetDomainSize changes a shut-off domain's vCPUs and memory.
func (d *Driver) SetDomainSize(ctx context.Context, hostName, id string, vcpus, ramMiB int) error {
	return d.act(ctx, OpSetSize, hostName, id, []localcloud.DomainState{localcloud.DomainShutoff}, func(dom *domain) string {
		dom.spec.VCPUs, dom.spec.RAMMiB = vcpus, ramMiB
		return fmt.Sprintf("resized to %d vCPU, %d MiB", vcpus, ramMiB)
	})
}

// DestroyDomain powers a domain off at once, whatever its state.
func (d *Driver) DestroyDomain(ctx context.Context, hostName, id string) error {
	_, dom, err := d.lockDomain(ctx, OpDestroy, hostName, id)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if dom.state != localcloud.DomainShutoff {
		dom.console = append(dom.console, "fake driver: destroyed (power cut)")
	}
	dom.state = localcloud.DomainShutoff
	return nil
}

// UndefineDomain removes a shutoff domain; its disks stay in the pool.
func (d *Driver) UndefineDomain(ctx context.Context, hostName, id string) error {
	h, dom, err := d.lockDomain(ctx, OpUndefine, hostName, id)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if dom.state != localcloud.DomainShutoff {
		return errf(peers.ErrConflict, "undefine domain %s: it is %s; destroy it first", id, dom.state)
	}
	for _, disk := range dom.spec.Disks {
		if v := h.volumes[disk.VolumeID]; v != nil && v.attachedTo == id {
			v.attachedTo = ""
		}
	}
	delete(h.domains, id)
	return nil
}

// DomainState reports the domain's state. A transitioning domain is
// reported so once and settles.
func (d *Driver) DomainState(ctx context.Context, hostName, id string) (localcloud.DomainState, error) {
	_, dom, err := d.lockDomain(ctx, OpState, hostName, id)
	if err != nil {
		return "", err
	}
	defer d.mu.Unlock()
	st := dom.state
	if st == localcloud.DomainTransitioning && !time.Now().Before(dom.until) {
		dom.state = dom.settle
	}
	return st, nil
}

// AttachDisk adds a pool volume no domain uses to a domain.
func (d *Driver) AttachDisk(ctx context.Context, hostName, domainID string, disk localcloud.Disk) error {
	h, err := d.lock(ctx, OpAttach, hostName, disk.VolumeID)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	dom, err := h.domain(domainID)
	if err != nil {
		return err
	}
	v, ok := h.volumes[disk.VolumeID]
	if !ok {
		return errf(peers.ErrNotFound, "no volume %s", disk.VolumeID)
	}
	if v.attachedTo != "" {
		return errf(peers.ErrConflict, "volume %s is used by domain %s", disk.VolumeID, v.attachedTo)
	}
	for _, other := range dom.spec.Disks {
		if other.Device == disk.Device {
			return errf(peers.ErrConflict, "domain %s already has a disk at %s", domainID, disk.Device)
		}
	}
	v.attachedTo = domainID
	dom.spec.Disks = append(dom.spec.Disks, disk)
	return nil
}

// DetachDisk removes a pool volume from a domain.
func (d *Driver) DetachDisk(ctx context.Context, hostName, domainID, volumeID string) error {
	h, err := d.lock(ctx, OpDetach, hostName, volumeID)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	dom, err := h.domain(domainID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(dom.spec.Disks, func(x localcloud.Disk) bool { return x.VolumeID == volumeID })
	if i < 0 {
		return errf(peers.ErrNotFound, "volume %s is not attached to domain %s", volumeID, domainID)
	}
	dom.spec.Disks = slices.Delete(dom.spec.Disks, i, i+1)
	h.volumes[volumeID].attachedTo = ""
	return nil
}

// ConsoleOutput returns what the fake logged for the domain.
func (d *Driver) ConsoleOutput(ctx context.Context, hostName, id string) (string, error) {
	_, dom, err := d.lockDomain(ctx, OpConsole, hostName, id)
	if err != nil {
		return "", err
	}
	defer d.mu.Unlock()
	return strings.Join(dom.console, "\n") + "\n", nil
}

// CreateVolume records an empty pool volume.
func (d *Driver) CreateVolume(ctx context.Context, hostName string, vol localcloud.PoolVolume) error {
	h, err := d.lock(ctx, OpCreateVolume, hostName, vol.ID)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if _, dup := h.volumes[vol.ID]; dup {
		return errf(peers.ErrConflict, "volume %s already exists", vol.ID)
	}
	if vol.SizeGiB < 1 && vol.SizeBytes <= 0 {
		return errf(peers.ErrInvalid, "volume %s: size %d GiB", vol.ID, vol.SizeGiB)
	}
	if vol.BackingID != "" {
		b, ok := h.volumes[vol.BackingID]
		if !ok {
			return errf(peers.ErrNotFound, "volume %s: backing volume %s is not in the pool", vol.ID, vol.BackingID)
		}
		if b.spec.Bytes() > vol.Bytes() {
			return errf(peers.ErrInvalid, "volume %s: %d bytes, smaller than its backing volume %s", vol.ID, vol.Bytes(), vol.BackingID)
		}
	}
	h.volumes[vol.ID] = &volume{spec: vol}
	return nil
}

// UploadVolume reads data to the end (or size bytes) and keeps only its
// length and SHA-256, which Volume reports. The read happens without the
// driver's lock, as a real copy would not block the host.
func (d *Driver) UploadVolume(ctx context.Context, hostName, id string, data io.Reader, size int64) error {
	h, err := d.lock(ctx, OpUploadVolume, hostName, id)
	if err != nil {
		return err
	}
	v, ok := h.volumes[id]
	var capacity int64
	if ok {
		capacity = v.spec.Bytes()
	}
	d.mu.Unlock()
	if !ok {
		return errf(peers.ErrNotFound, "no volume %s", id)
	}
	sum := sha256.New()
	n, err := io.Copy(sum, io.LimitReader(ctxReader{ctx, data}, capacity+1))
	if err != nil {
		return fmt.Errorf("fake: upload to volume %s: %w", id, err)
	}
	switch {
	case n > capacity:
		return errf(peers.ErrCapacity, "volume %s: data is larger than its %d bytes", id, capacity)
	case size >= 0 && n != size:
		return errf(peers.ErrInvalid, "volume %s: got %d bytes, expected %d", id, n, size)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok = h.volumes[id]; !ok {
		return errf(peers.ErrNotFound, "volume %s was deleted during the upload", id)
	}
	v.written, v.sha256 = n, hex.EncodeToString(sum.Sum(nil))
	return nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}

// DeleteVolume removes a pool volume no domain uses.
func (d *Driver) DeleteVolume(ctx context.Context, hostName, id string) error {
	h, err := d.lock(ctx, OpDeleteVolume, hostName, id)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	v, ok := h.volumes[id]
	if !ok {
		return errf(peers.ErrNotFound, "no volume %s", id)
	}
	if v.attachedTo != "" {
		return errf(peers.ErrConflict, "volume %s is used by domain %s", id, v.attachedTo)
	}
	for _, o := range h.volumes {
		if o.spec.BackingID == id {
			return errf(peers.ErrConflict, "volume %s is the backing volume of %s", id, o.spec.ID)
		}
	}
	delete(h.volumes, id)
	return nil
}

// ResizeVolume grows a volume; domainID, when set, must be the domain it
// is attached to.
func (d *Driver) ResizeVolume(ctx context.Context, hostName, id string, newSizeGiB int, domainID string) error {
	h, err := d.lock(ctx, OpResizeVolume, hostName, id)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	v, ok := h.volumes[id]
	switch {
	case !ok:
		return errf(peers.ErrNotFound, "no volume %s", id)
	case int64(newSizeGiB)<<30 < v.spec.Bytes():
		return errf(peers.ErrInvalid, "volume %s: %d GiB would shrink it", id, newSizeGiB)
	case v.attachedTo != domainID:
		return errf(peers.ErrConflict, "volume %s is attached to %q, not %q", id, v.attachedTo, domainID)
	}
	v.spec.SizeGiB, v.spec.SizeBytes = newSizeGiB, 0
	return nil
}

// CopyVolume records dst as a standalone copy of src: its capacity, and
// the bytes src shows (its own, or those of the volume it is an overlay
// on), by length and SHA-256, so a test sees that a copy holds its
// source's data. domainID, when set, must be the domain src is attached
// to.
func (d *Driver) CopyVolume(ctx context.Context, hostName, srcID, domainID string, dst localcloud.PoolVolume) error {
	h, err := d.lock(ctx, OpCopyVolume, hostName, dst.ID)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	src, ok := h.volumes[srcID]
	switch {
	case !ok:
		return errf(peers.ErrNotFound, "no volume %s", srcID)
	case h.volumes[dst.ID] != nil:
		return errf(peers.ErrConflict, "volume %s already exists", dst.ID)
	case src.attachedTo != domainID:
		return errf(peers.ErrConflict, "volume %s is attached to %q, not %q", srcID, src.attachedTo, domainID)
	}
	data := src
	for data.written == 0 && data.spec.BackingID != "" && h.volumes[data.spec.BackingID] != nil {
		data = h.volumes[data.spec.BackingID]
	}
	spec := localcloud.PoolVolume{ID: dst.ID, Name: dst.Name, SizeGiB: src.spec.SizeGiB, SizeBytes: src.spec.SizeBytes, Format: localcloud.VolumeQCOW2}
	h.volumes[dst.ID] = &volume{spec: spec, written: data.written, sha256: data.sha256}
	return nil
}

var _ localcloud.VolumeExporter = (*Driver)(nil)

// ExportVolume writes what stands for a standalone qcow2 volume's file: a
// qcow2 (version 3) header of the volume's capacity, without a backing
// file, then the length and SHA-256 of the bytes it holds (the fake keeps
// no more of them), so an image made of it passes the image store's
// format check and two exports of different data differ. An overlay is
// ErrInvalid: only standalone copies are read out.
func (d *Driver) ExportVolume(ctx context.Context, hostName, id string, w io.Writer) error {
	h, err := d.lock(ctx, OpExportVolume, hostName, id)
	if err != nil {
		return err
	}
	v, ok := h.volumes[id]
	var spec localcloud.PoolVolume
	var written int64
	var sum string
	if ok {
		spec, written, sum = v.spec, v.written, v.sha256
	}
	d.mu.Unlock()
	switch {
	case !ok:
		return errf(peers.ErrNotFound, "no volume %s", id)
	case spec.BackingID != "":
		return errf(peers.ErrInvalid, "volume %s is an overlay on %s; copy it first", id, spec.BackingID)
	}
	head := make([]byte, 104)
	copy(head, "QFI\xfb")
	binary.BigEndian.PutUint32(head[4:], 3)   // version
	binary.BigEndian.PutUint32(head[20:], 16) // cluster_bits
	binary.BigEndian.PutUint64(head[24:], uint64(spec.Bytes()))
	binary.BigEndian.PutUint32(head[96:], 4)    // refcount_order
	binary.BigEndian.PutUint32(head[100:], 104) // header_length
	if _, err := w.Write(head); err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "fake volume data: %d bytes, sha256 %s\n", written, sum)
	return err
}

// CreateNetwork records an isolated network.
func (d *Driver) CreateNetwork(ctx context.Context, hostName string, net localcloud.IsolatedNetwork) error {
	h, err := d.lock(ctx, OpCreateNetwork, hostName, net.ID)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if _, dup := h.networks[net.ID]; dup {
		return errf(peers.ErrConflict, "network %s already exists", net.ID)
	}
	h.networks[net.ID] = net
	return nil
}

// DeleteNetwork removes a network no domain has a NIC on.
func (d *Driver) DeleteNetwork(ctx context.Context, hostName, id string) error {
	h, err := d.lock(ctx, OpDeleteNetwork, hostName, id)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if _, ok := h.networks[id]; !ok {
		return errf(peers.ErrNotFound, "no network %s", id)
	}
	for _, dom := range h.domains {
		for _, nic := range dom.spec.NICs {
			if nic.NetworkID == id {
				return errf(peers.ErrConflict, "network %s: domain %s has a NIC on it", id, dom.spec.ID)
			}
		}
	}
	delete(h.networks, id)
	return nil
}

// SetPortFilter keeps a port's filter, as the libvirt driver's switch
// does.
func (d *Driver) SetPortFilter(ctx context.Context, hostName string, pf localcloud.PortFilter) error {
	h, err := d.lock(ctx, OpSetFilter, hostName, pf.PortID)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	pf.Accept = slices.Clone(pf.Accept)
	h.filters[pf.PortID] = pf
	return nil
}

// DeletePortFilter removes a port's filter; a NIC using it then passes
// its traffic unfiltered, as in the libvirt driver's switch.
func (d *Driver) DeletePortFilter(ctx context.Context, hostName, portID string) error {
	h, err := d.lock(ctx, OpDeleteFilter, hostName, portID)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if _, ok := h.filters[portID]; !ok {
		return errf(peers.ErrNotFound, "filter of port %s", portID)
	}
	delete(h.filters, portID)
	return nil
}
