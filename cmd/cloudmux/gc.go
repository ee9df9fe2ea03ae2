package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/ec2"
	"github.com/cloudmux/cloudmux/broker/gc"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/object"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates/deploy"
)

// GCConfig is garbage collection: how often one broker of the
// installation collects, and how long each kind of record that grows with
// use is kept.
type GCConfig struct {
	Interval  Duration `yaml:"interval"`
	Decisions struct {
		MaxAge     Duration `yaml:"max_age"`
		MaxRecords int      `yaml:"max_records"`
	} `yaml:"decisions"`
	Deployments struct {
		// MaxAge: a deleted deployment's record and events go this long
		// after the delete.
		MaxAge Duration `yaml:"max_age"`
		// MaxEvents bounds each deployment's event log (the newest stay).
		MaxEvents int `yaml:"max_events"`
	} `yaml:"deployments"`
	// ImageTombstones: the local cloud keeps a deleted image's record
	// this long.
	ImageTombstones Duration `yaml:"image_tombstones"`
	// ExpiredAppCredentials: an application credential (and a trust)
	// stays this long after it expired.
	ExpiredAppCredentials Duration `yaml:"expired_app_credentials"`
	// OrphanGrace: a record whose owner is gone (a removed peer's health,
	// a deleted image's deactivation or staged copies, a vanished server's
	// or network's attributes, a deleted project's quota or security groups) goes once it has
	// been seen so this long.
	OrphanGrace Duration `yaml:"orphan_grace"`
	// RemovedPeerEntries: index entries of resources on a peer that was
	// removed stay this long, in case the peer comes back.
	RemovedPeerEntries Duration `yaml:"removed_peer_entries"`
	// EC2IDs: the EC2 ID pair of a resource that is gone stays this long
	// (an ID a client still holds resolves meanwhile).
	EC2IDs Duration `yaml:"ec2_ids"`
}

func defaultGCConfig() GCConfig {
	var c GCConfig
	c.Interval = Duration(gc.DefaultInterval)
	c.Decisions.MaxAge = Duration(policy.DefaultMaxAge)
	c.Decisions.MaxRecords = policy.DefaultMaxRecords
	c.Deployments.MaxAge = Duration(deploy.DefaultRetention)
	c.Deployments.MaxEvents = deploy.DefaultMaxEvents
	c.ImageTombstones = Duration(localcloud.DefaultImageTombstoneRetention)
	c.ExpiredAppCredentials = Duration(identity.DefaultExpiredAppCredentialRetention)
	c.OrphanGrace = Duration(time.Hour)
	c.RemovedPeerEntries = Duration(7 * 24 * time.Hour)
	c.EC2IDs = Duration(ec2.DefaultIDRetention)
	return c
}

// gcFlags registers serve's retention flags; the returned function
// applies the ones given (flags beat the file and the environment).
func gcFlags(fs *flag.FlagSet) func(*GCConfig) {
	durations := map[string]func(*GCConfig) *Duration{
		"gc-interval":                    func(c *GCConfig) *Duration { return &c.Interval },
		"retain-decisions":               func(c *GCConfig) *Duration { return &c.Decisions.MaxAge },
		"retain-deployments":             func(c *GCConfig) *Duration { return &c.Deployments.MaxAge },
		"retain-image-tombstones":        func(c *GCConfig) *Duration { return &c.ImageTombstones },
		"retain-expired-app-credentials": func(c *GCConfig) *Duration { return &c.ExpiredAppCredentials },
		"gc-orphan-grace":                func(c *GCConfig) *Duration { return &c.OrphanGrace },
		"retain-removed-peer-entries":    func(c *GCConfig) *Duration { return &c.RemovedPeerEntries },
		"retain-ec2-ids":                 func(c *GCConfig) *Duration { return &c.EC2IDs },
	}
	usage := map[string]string{
		"gc-interval":                    "time between garbage collection passes (default 10m)",
		"retain-decisions":               "keep placement decision records this long (default 168h)",
		"retain-deployments":             "keep deleted deployments and their events this long (default 168h)",
		"retain-image-tombstones":        "the local cloud keeps deleted images' records this long (default 168h)",
		"retain-expired-app-credentials": "keep expired application credentials this long (default 720h)",
		"gc-orphan-grace":                "remove records whose owner is gone once they were seen so this long (default 1h)",
		"retain-removed-peer-entries":    "keep the index entries of a removed peer's resources this long (default 168h)",
		"retain-ec2-ids":                 "keep the EC2 ID of a deleted resource this long (default 24h)",
	}
	given := map[string]*time.Duration{}
	for name := range durations {
		given[name] = fs.Duration(name, 0, usage[name])
	}
	decisionsMax := fs.Int("retain-decisions-max", 0, "keep at most this many placement decision records (default 1000)")
	events := fs.Int("retain-deployment-events", 0, "keep at most this many events of each deployment (default 1000)")
	return func(c *GCConfig) {
		fs.Visit(func(f *flag.Flag) {
			if field, ok := durations[f.Name]; ok {
				*field(c) = Duration(*given[f.Name])
			} else if f.Name == "retain-decisions-max" {
				c.Decisions.MaxRecords = *decisionsMax
			} else if f.Name == "retain-deployment-events" {
				c.Deployments.MaxEvents = *events
			}
		})
	}
}

// validate reports the bad settings, as Config.Validate does.
func (c GCConfig) validate(bad func(field, format string, args ...any)) {
	if c.Interval < Duration(time.Minute) {
		bad("gc.interval", "must be at least 1m")
	}
	if c.Decisions.MaxAge < Duration(time.Hour) {
		bad("gc.decisions.max_age", "must be at least 1h")
	}
	if c.Decisions.MaxRecords < 1 {
		bad("gc.decisions.max_records", "must be at least 1")
	}
	if c.Deployments.MaxAge < Duration(time.Minute) {
		bad("gc.deployments.max_age", "must be at least 1m")
	}
	if c.Deployments.MaxEvents < 1 {
		bad("gc.deployments.max_events", "must be at least 1")
	}
	for field, d := range map[string]Duration{"gc.image_tombstones": c.ImageTombstones,
		"gc.expired_app_credentials": c.ExpiredAppCredentials, "gc.orphan_grace": c.OrphanGrace,
		"gc.removed_peer_entries": c.RemovedPeerEntries, "gc.ec2_ids": c.EC2IDs} {
		if d < 0 {
			bad(field, "must not be negative")
		}
	}
}

// gcDeps are the services whose records the collectors judge.
type gcDeps struct {
	store     registry.Store
	peers     *registry.PeerRegistry
	dir       *identity.Directory
	tokens    *identity.Tokens
	decisions *policy.Decisions
	images    *image.Service
	networks  *network.Service
	servers   *compute.Servers
	index     *index.Index
	quota     index.Freer // frees the charges of index entries removed
	objects   *object.Service
	local     *localcloud.Cloud // nil without a local cloud
	metrics   prometheus.Registerer
	// more are collectors their owners built (the deployments').
	more []gc.Collector
}

// startGC runs the installation's garbage collectors on whichever broker
// holds the gc lease, and this broker's own (its local cloud's, if it
// hosts one) here.
func startGC(cfg Config, d gcDeps, log logrus.FieldLogger, goBG func(string, func(context.Context) error)) error {
	g := cfg.GC
	orphans := func(kind string, grace Duration, prefixes []string, judge func(context.Context, []registry.KV) ([]registry.KV, error)) gc.Collector {
		return &gc.Orphans{Kind: kind, Store: d.store, Prefixes: prefixes, Orphaned: judge, Grace: time.Duration(grace)}
	}
	shared := []gc.Collector{
		d.decisions,
		d.tokens,
		identity.ExpiredAppCredentials{Creds: identity.NewAppCredentials(d.dir), Retention: time.Duration(g.ExpiredAppCredentials)},
		identity.ExpiredTrusts{Dir: d.dir, Retention: time.Duration(g.ExpiredAppCredentials)},
		orphans("peer-leftovers", g.OrphanGrace, registry.PeerLeftoverPrefixes, d.peers.Leftovers),
		orphans("image-deactivations", g.OrphanGrace, []string{image.DeactivationPrefix}, d.images.DeactivationLeftovers),
		orphans("image-members", g.OrphanGrace, []string{image.MembersPrefix}, d.images.MemberLeftovers),
		orphans("image-imports", g.OrphanGrace, []string{image.ImportPrefix}, d.images.ImportLeftovers),
		orphans("server-attrs", g.OrphanGrace, []string{compute.AttrsPrefix}, d.servers.AttrsLeftovers),
		orphans("server-actions", g.OrphanGrace, []string{compute.ActionsPrefix}, d.servers.ActionsLeftovers),
		orphans("network-attrs", g.OrphanGrace, network.AttrsPrefixes, d.networks.AttrsLeftovers),
		// A deleted project's security groups, the default one included,
		// leave the peers holding copies, then the Store.
		&gc.Orphans{Kind: "security-groups", Store: d.store, Prefixes: []string{network.GroupsPrefix}, Grace: time.Duration(g.OrphanGrace),
			Orphaned: network.GroupsOfGoneProjects(func(ctx context.Context) (map[string]bool, error) { return projectIDs(ctx, d.dir) }),
			Release:  d.networks.ReleaseGroupCopies},
		// A remover that died between deleting an index entry and dropping
		// its claim leaves the claim.
		orphans("index-claims", g.OrphanGrace, []string{index.ClaimPrefix}, d.index.StaleClaims),
		orphans("ec2-vpc-cidrs", g.OrphanGrace, []string{ec2.VPCCIDRPrefix}, ec2.VPCCIDRLeftovers(d.index)),
		orphans("staging-leftovers", g.OrphanGrace, staging.LeftoverPrefixes, staging.Leftovers(func(ctx context.Context) (map[string]bool, map[string]bool, error) {
			images, err := d.index.List(ctx, image.Kind, "")
			if err != nil {
				return nil, nil, err
			}
			homes := make(map[string]bool, len(images))
			for _, e := range images {
				homes[e.PeerResourceID] = true
			}
			peers, err := registeredPeers(ctx, d.peers)
			return homes, peers, err
		})),
		orphans("quota-leftovers", g.OrphanGrace, quota.LeftoverPrefixes, quota.Leftovers(func(ctx context.Context) (map[string]bool, map[string]bool, error) {
			ps, err := projectIDs(ctx, d.dir)
			if err != nil {
				return nil, nil, err
			}
			users, err := d.dir.ListUsers(ctx)
			if err != nil {
				return nil, nil, err
			}
			us := make(map[string]bool, len(users))
			for _, u := range users {
				us[u.ID] = true
			}
			return ps, us, nil
		})),
		&gc.Orphans{Kind: "index-dangling", Store: d.store, Prefixes: index.LeftoverPrefixes, Grace: time.Duration(g.RemovedPeerEntries),
			Orphaned: index.Dangling(func(ctx context.Context) (map[string]bool, error) {
				return registeredPeers(ctx, d.peers)
			}),
			// The servers and volumes of a removed peer stop counting
			// against their projects' quotas.
			Removed: index.FreeCharges(d.quota)},
	}
	if d.objects != nil {
		// A gone project's containers are emptied on their peers, then
		// forgotten, as Swift's account reaper does.
		shared = append(shared, &object.Reaper{Service: d.objects, Grace: time.Duration(g.OrphanGrace),
			Owners: func(ctx context.Context) (map[string]bool, map[string]bool, error) {
				ps, err := projectIDs(ctx, d.dir)
				if err != nil {
					return nil, nil, err
				}
				peers, err := registeredPeers(ctx, d.peers)
				return ps, peers, err
			}})
	}
	shared = append(shared, d.more...)
	var own []gc.Collector
	if d.local != nil {
		own = append(own, localcloud.ImageTombstones{Cloud: d.local, Retention: time.Duration(g.ImageTombstones)})
	}
	runner, err := gc.New(gc.Config{Locker: d.store, Holder: brokerID(cfg), Interval: time.Duration(g.Interval),
		Collectors: shared, Local: own, Log: log.WithField("component", "gc"), Metrics: d.metrics})
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	goBG("gc", runner.Run)
	return nil
}

// projectIDs are the IDs of the projects that exist.
func projectIDs(ctx context.Context, dir *identity.Directory) (map[string]bool, error) {
	projects, err := dir.ListProjects(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(projects))
	for _, p := range projects {
		out[p.ID] = true
	}
	return out, nil
}

func registeredPeers(ctx context.Context, reg *registry.PeerRegistry) (map[string]bool, error) {
	ps, err := reg.List(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ps))
	for _, p := range ps {
		out[p.ID] = true
	}
	return out, nil
}
