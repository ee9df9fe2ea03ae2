package localcloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// Cloud is the local cloud. Create it with New; Close it when done.
type Cloud struct {
	cfg     Config
	driver  Driver
	log     logrus.FieldLogger
	store   *imageStore
	objects *objectStore
	flavors []peers.Flavor // immutable after New

	// bg outlives requests: background work (boots, deletes) runs under it,
	// and Close cancels it.
	bg     context.Context
	stopBG context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	closed  bool
	hosts   []*host // in config order
	servers map[string]*server
	// serversByMark: the servers by their broker project mark
	// (peers.MetaProject), for a broker's per-project lists.
	serversByMark map[string]map[string]*server
	keypairs      map[string]*peers.Keypair
	images        map[string]*image // includes deleted ones (tombstones)
	networks      map[string]*network
	subnets       map[string]*subnet
	ports         map[string]*peers.Port
	volumes       map[string]*volume
	groups        map[string]*peers.SecurityGroup // the broker's security groups, by ID
	routers       map[string]*router
	fips          map[string]*floatingIP
	// routerPlans are the router plans the driver last took (routers.go),
	// as JSON, under routerMu, which serializes handing them over.
	routerMu    sync.Mutex
	routerPlans map[string]string
	// filters are the port filters the driver last took (secgroups.go),
	// under filterMu, which serializes handing them over.
	filterMu sync.Mutex
	filters  map[string]filterState
	macs     map[string]bool
	bases    map[string]*baseImage // by host and image ID
	// loaded are the records read from the state file that Recover has
	// not reconciled with their hosts yet.
	loaded loadedSet
	// halted stops saving: after Close, or in a test as the stand-in for
	// the process dying.
	halted bool
	// Saving the state (state.go): changes counted, changes on disk, a
	// writer running, and the signal a write is done.
	stateGen, savedGen uint64
	saving             bool
	saved              *sync.Cond
	// The journal (journal.go): the records changed since the last
	// write, a snapshot asked for, the open journal (nil: none yet, the
	// next write is a snapshot), its sequence number and size, and the
	// size of the snapshot it follows.
	dirty                     map[recordKey]struct{}
	compactNext               bool
	journal                   *os.File
	journalSeq                uint64
	journalSize, snapshotSize int64
	// dirLock holds DataDir for this cloud until Close.
	dirLock *os.File
}

var (
	_ peers.Cloud         = (*Cloud)(nil)
	_ peers.ImageData     = (*Cloud)(nil)
	_ peers.ConsoleReader = (*Cloud)(nil)
	_ peers.Objects       = (*Cloud)(nil)
)

// New validates cfg and returns a Cloud over driver. It creates
// DataDir/images and DataDir/objects, removes partial uploads a previous
// process left there, loads the object store's indexes,
// and loads the records a previous process saved in DataDir/state.json
// (none the first time: see Seed). Call Recover next to reconcile those
// records with the hosts. A state file that cannot be read fails New: a
// cloud starting empty over it would forget, then overwrite, everything.
func New(cfg Config, driver Driver, log logrus.FieldLogger) (*Cloud, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("localcloud: invalid config: %w", err)
	}
	if driver == nil {
		return nil, fmt.Errorf("localcloud: a driver is required: %w", peers.ErrInvalid)
	}
	if log == nil {
		l := logrus.New()
		l.SetOutput(io.Discard)
		log = l
	}
	cfg.Overcommit = cfg.Overcommit.withDefaults()
	cfg.Hosts = append([]HostConfig(nil), cfg.Hosts...)
	log = log.WithFields(logrus.Fields{"cloud": cfg.Name, "driver": driver.Name()})
	// One cloud a data directory: a second would remove the first's
	// uploads in progress and overwrite its state file.
	dirLock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("localcloud: %w", err)
	}
	store, err := newImageStore(filepath.Join(cfg.DataDir, "images"), log)
	if err != nil {
		_ = dirLock.Close()
		return nil, fmt.Errorf("localcloud: image store: %w", err)
	}
	objects, err := openObjectStore(filepath.Join(cfg.DataDir, "objects"), cfg.ObjectQuotaBytes, log)
	if err != nil {
		_ = dirLock.Close()
		return nil, fmt.Errorf("localcloud: object store: %w", err)
	}
	bg, stop := context.WithCancel(context.Background())
	c := &Cloud{
		cfg: cfg, driver: driver, log: log, store: store, objects: objects, flavors: cloneFlavors(cfg.Flavors),
		bg: bg, stopBG: stop,
		servers: map[string]*server{}, serversByMark: map[string]map[string]*server{}, keypairs: map[string]*peers.Keypair{}, images: map[string]*image{},
		networks: map[string]*network{}, subnets: map[string]*subnet{}, ports: map[string]*peers.Port{},
		volumes: map[string]*volume{}, groups: map[string]*peers.SecurityGroup{}, routers: map[string]*router{}, fips: map[string]*floatingIP{}, routerPlans: map[string]string{}, filters: map[string]filterState{}, macs: map[string]bool{}, bases: map[string]*baseImage{},
		loaded: newLoadedSet(), dirLock: dirLock, dirty: map[recordKey]struct{}{},
	}
	c.saved = sync.NewCond(&c.mu)
	for _, h := range cfg.Hosts {
		c.hosts = append(c.hosts, &host{cfg: h})
	}
	// Under c.mu like every other *Locked call: a delayed image delete
	// the state resumes may fire its timer while loading goes on.
	c.mu.Lock()
	err = c.loadState()
	c.mu.Unlock()
	if err != nil {
		stop()
		if c.journal != nil {
			_ = c.journal.Close()
		}
		_ = dirLock.Close()
		return nil, fmt.Errorf("localcloud: state: %w", err)
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.reapObjects(bg)
	}()
	log.WithField("hosts", len(cfg.Hosts)).Info("local cloud ready")
	return c, nil
}

// Info says this is a local cloud and which driver runs it.
func (c *Cloud) Info() peers.Info {
	return peers.Info{Kind: registry.KindLocal, Driver: c.driver.Name(), Region: c.cfg.Region}
}

// Close stops background work (boots, deletes and the like in flight end
// with an error status) and delayed image deletes (those images keep their
// bytes), and waits for it to finish. Later calls fail with
// peers.ErrUnavailable.
func (c *Cloud) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	for _, img := range c.images {
		if img.scrub != nil {
			img.scrub.Stop()
		}
	}
	c.mu.Unlock()
	c.stopBG()
	c.wg.Wait()
	c.mu.Lock()
	for c.saving {
		c.saved.Wait()
	}
	// Nothing is written after Close: the data directory's lock goes
	// next, and another cloud may take it (work still finishing, an
	// upload's last step, changes memory only).
	c.halted = true
	if c.journal != nil {
		_ = c.journal.Close()
		c.journal = nil
	}
	c.mu.Unlock()
	_ = c.dirLock.Close()
	c.log.Info("local cloud closed")
	return nil
}

// begin is the preamble of every call: a done context or a closed cloud
// ends it. On success it returns with c.mu held.
func (c *Cloud) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return fmt.Errorf("local cloud %s is closed: %w", c.cfg.Name, peers.ErrUnavailable)
	}
	return nil
}

// background runs fn in a goroutine under the Cloud's lifetime context. The
// caller holds c.mu and has checked c.closed, so Close cannot be between its
// check and wg.Wait.
func (c *Cloud) background(fn func(ctx context.Context)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn(c.bg)
	}()
}

// errf wraps sentinel with a message naming the resource and the reason.
func errf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), sentinel)
}

func notFound(kind, id string) error {
	return errf(peers.ErrNotFound, "%s %s", kind, id)
}

// newID returns a fresh UUID.
func newID() string { return uuid.NewString() }

func now() time.Time { return time.Now().UTC() }

// Limits Nova and Neutron put on metadata.
const (
	maxMetadataItems = 128
	maxMetadataLen   = 255
)

// checkMetadata validates a resource's metadata as Nova does: at most 128
// pairs, keys 1 to 255 characters, values at most 255.
func checkMetadata(m map[string]string) error {
	if len(m) > maxMetadataItems {
		return errf(peers.ErrInvalid, "metadata has %d items; at most %d allowed", len(m), maxMetadataItems)
	}
	for k, v := range m {
		if k == "" || len(k) > maxMetadataLen {
			return errf(peers.ErrInvalid, "metadata key %q: want 1 to %d characters", k, maxMetadataLen)
		}
		if len(v) > maxMetadataLen {
			return errf(peers.ErrInvalid, "metadata %q: value longer than %d characters", k, maxMetadataLen)
		}
	}
	return nil
}

// requireProject refuses a create without the owning project: every
// resource the broker makes is some project's.
func requireProject(kind, project string) error {
	if project == "" {
		return errf(peers.ErrInvalid, "%s: project is required", kind)
	}
	return nil
}

func cloneFlavors(fs []peers.Flavor) []peers.Flavor {
	out := make([]peers.Flavor, len(fs))
	for i, f := range fs {
		f.ExtraSpecs = maps.Clone(f.ExtraSpecs)
		out[i] = f
	}
	return out
}

// ignoreNotFound treats a driver's "already gone" as success, for deletes.
func ignoreNotFound(err error) error {
	if errors.Is(err, peers.ErrNotFound) {
		return nil
	}
	return err
}
