package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"

	"github.com/cloudmux/cloudmux/broker"
	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/deployres"
	"github.com/cloudmux/cloudmux/broker/ec2"
	"github.com/cloudmux/cloudmux/broker/gc"
	"github.com/cloudmux/cloudmux/broker/heat"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/object"
	"github.com/cloudmux/cloudmux/broker/policyapi"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/broker/swift"
	"github.com/cloudmux/cloudmux/broker/templatesapi"
	"github.com/cloudmux/cloudmux/broker/ui"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/tracing"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/peers/openstack"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/focus"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.Bool("dev", false, "everything embedded: memory store, fake local cloud, printed admin credentials")
	devTLS := fs.Bool("dev-tls", false, "with -dev: serve HTTPS with a generated CA and certificate (DATA_DIR/tls), trusted by the client files it writes")
	configPath := fs.String("config", "", "YAML config file")
	listen := fs.String("listen", "", "address to listen on (default 127.0.0.1:8080)")
	dataDir := fs.String("data-dir", "", "directory for cloudmux's files (with -dev: a fresh temporary directory)")
	logLevel := fs.String("log-level", "", "debug, info, warn or error")
	logFormat := fs.String("log-format", "", "auto, text or json")
	applyGCFlags := gcFlags(fs)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "serve: unexpected arguments %v\n", fs.Args())
		return 2
	}

	cfg := defaultConfig()
	if *dev {
		cfg.applyDev()
	}
	if *configPath != "" {
		if err := cfg.loadFile(*configPath); err != nil {
			fmt.Fprintf(stderr, "serve: %v\n", err)
			return 2
		}
	}
	cfg.applyDefaults()
	cfg.applyEnv(os.Getenv)
	applyGCFlags(&cfg.GC)
	for dst, v := range map[*string]string{&cfg.Listen: *listen, &cfg.DataDir: *dataDir, &cfg.Log.Level: *logLevel, &cfg.Log.Format: *logFormat} {
		if v != "" {
			*dst = v
		}
	}
	cfg.DevTLS = *devTLS
	removeDataDir := false
	if cfg.Dev && cfg.DataDir == "" {
		d, err := os.MkdirTemp("", "cloudmux-dev-")
		if err != nil {
			fmt.Fprintf(stderr, "serve: %v\n", err)
			return 1
		}
		cfg.DataDir, removeDataDir = d, true
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "serve: invalid configuration:\n")
		for _, fe := range registry.FieldErrors(err) {
			fmt.Fprintf(stderr, "  - %s: %s\n", fe.Field, fe.Reason)
		}
		if len(registry.FieldErrors(err)) == 0 {
			fmt.Fprintf(stderr, "  - %v\n", err)
		}
		return 2
	}
	if removeDataDir {
		defer os.RemoveAll(cfg.DataDir)
	}
	if cfg.DevTLS {
		host, _, _ := net.SplitHostPort(cfg.Listen)
		ca, t, err := ensureDevTLS(cfg.DataDir, host, time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "serve: -dev-tls: %v\n", err)
			return 1
		}
		cfg.DevCAFile, cfg.TLS.CertFile, cfg.TLS.KeyFile = ca, t.CertFile, t.KeyFile
	}

	log := newLogger(cfg.Log, stderr)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serve(ctx, stop, cfg, log, stdout); err != nil {
		log.WithError(err).Error("cloudmux stopped with an error")
		return 1
	}
	return 0
}

func newLogger(c LogConfig, out io.Writer) *logrus.Logger {
	log := logrus.New()
	log.SetOutput(out)
	lvl, err := logrus.ParseLevel(c.Level)
	if err != nil {
		lvl = logrus.InfoLevel
	}
	log.SetLevel(lvl)
	isTerm := false
	if f, ok := out.(*os.File); ok {
		isTerm = term.IsTerminal(int(f.Fd()))
	}
	if c.Format == "json" || (c.Format == "auto" && !isTerm) {
		log.SetFormatter(&logrus.JSONFormatter{TimestampFormat: time.RFC3339Nano})
	} else {
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	}
	return log
}

// storeFor opens the configured Store and the catalog peers are published in.
func storeFor(cfg Config, log logrus.FieldLogger) (registry.Store, registry.ServiceCatalog, error) {
	if cfg.store != nil {
		return cfg.store, registry.NopCatalog{}, nil
	}
	if cfg.Store.Backend == "memory" {
		return registry.NewMemory(), registry.NopCatalog{}, nil
	}
	s, err := consul.New(cfg.Store.Consul.toConsul(), log.WithField("component", "consul"))
	if err != nil {
		return nil, nil, err
	}
	return s, s, nil
}

// serve runs a broker until ctx ends, then shuts down in order: stop
// accepting requests, let in-flight ones finish, stop background loops.
func serve(ctx context.Context, stopSignals func(), cfg Config, log *logrus.Logger, stdout io.Writer) error {
	// One registry for every component's metrics, served at /metrics.
	metrics := prometheus.NewRegistry()
	// Spans of requests, placement, peer and store calls, when configured.
	stopTracing, err := tracing.Setup(ctx, cfg.Tracing, "cloudmux", brokerID(cfg), version)
	if err != nil {
		return err
	}
	defer func() {
		flushCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := stopTracing(flushCtx); err != nil {
			log.WithError(err).Warn("tracing: spans not flushed at shutdown")
		}
	}()
	if cfg.Tracing.Enabled() {
		log.WithField("otlp_endpoint", cfg.Tracing.OTLPEndpoint).Info("tracing: exporting spans over OTLP/HTTP")
	}
	store, catalog, err := storeFor(cfg, log)
	if err != nil {
		return err
	}
	if cs, ok := store.(*consul.Store); ok {
		cs.Instrument(metrics)
	}
	sealer, err := credentialsSealer(ctx, cfg, store)
	if err != nil {
		return err
	}
	peerReg := registry.NewPeerRegistry(store).WithSealer(sealer)
	snap := registry.NewPeerSnapshot(store, log.WithField("component", "snapshot"))

	bg, cancelBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	goBG := func(name string, fn func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fn(bg); err != nil && !errors.Is(err, context.Canceled) {
				log.WithError(err).WithField("loop", name).Error("background loop ended")
			}
		}()
	}
	// closeAfterLoops run once every background loop has stopped, so
	// nothing uses what they close.
	var closeAfterLoops []func() error
	defer func() {
		cancelBG()
		wg.Wait()
		for _, c := range closeAfterLoops {
			if err := c(); err != nil {
				log.WithError(err).Warn("close on shutdown")
			}
		}
	}()

	if cs, ok := store.(*consul.Store); ok {
		// Before any lease is taken: sessions bind to the broker's liveness
		// check, so its leases end within seconds of its death.
		live := cs.StartLiveness(bg, brokerID(cfg))
		goBG("liveness", func(context.Context) error { <-live; return nil })
	}
	goBG("snapshot", snap.Run)
	startCtx, cancelStart := context.WithTimeout(ctx, 30*time.Second)
	defer cancelStart()
	if err := snap.WaitReady(startCtx); err != nil {
		return fmt.Errorf("load the peer registry from the store: %w", err)
	}

	local, closeLocal, err := startLocalCloud(startCtx, cfg, peerReg, log)
	if err != nil {
		return fmt.Errorf("local cloud: %w", err)
	}
	inProcess := map[string]peers.Cloud{}
	if local != nil {
		closeAfterLoops = append(closeAfterLoops, closeLocal)
		inProcess[cfg.LocalCloud.Name] = local
	}
	pool := peers.NewPool(peers.PoolConfig{
		Source: snap, Credentials: peerReg, InProcess: inProcess,
		Connectors: map[registry.Kind]peers.Connector{registry.KindOpenStack: openstack.ConnectorWith(log.WithField("component", "openstack"), openstack.NewMetrics(metrics))},
		Log:        log.WithField("component", "pool"),
	})
	pool.Reconcile(startCtx)
	goBG("pool", pool.Run)
	prober := peers.NewProber(peers.ProberConfig{
		Pool: pool, Registry: peerReg, Catalog: catalog, Log: log.WithField("component", "prober"),
		Interval: time.Duration(cfg.Prober.Interval), Timeout: time.Duration(cfg.Prober.Timeout),
		Leader: store, Holder: brokerID(cfg), Metrics: peers.NewProbeMetrics(metrics),
	})
	goBG("prober", prober.Run)

	installation, err := installationID(startCtx, store)
	if err != nil {
		return err
	}
	// Placement: the admins' active Rego policy (the stock one until they
	// push their own), followed on every replica through the store's watch.
	plog := log.WithField("component", "policy")
	policyVersions := policy.NewVersions(store)
	decisions := policy.NewDecisions(store, cfg.GC.Decisions.MaxRecords, time.Duration(cfg.GC.Decisions.MaxAge))
	placer, err := policy.NewEngine(startCtx, policy.EngineConfig{Versions: policyVersions, Decisions: decisions,
		Log: plog, Labels: map[string]string{"id": brokerID(cfg), "installation": installation}, Metrics: metrics})
	if err != nil {
		return err
	}
	goBG("policy", placer.Run)
	// The records a signed request reads (EC2 keys, users, projects,
	// roles) are served from memory, followed through store watches.
	idCache := identity.NewCache(store, log.WithField("component", "identity-cache"))
	goBG("identity-cache", idCache.Run)
	if err := idCache.WaitReady(startCtx); err != nil {
		return fmt.Errorf("load the identity records from the store: %w", err)
	}
	dir := identity.NewDirectory(idCache)
	if err := dir.SetPasswordPolicy(cfg.Identity.Password.Policy()); err != nil {
		return err
	}
	tokens := identity.NewTokens(store, log.WithField("component", "tokens"))
	// Expired tokens are swept by the garbage collector (startGC).
	goBG("tokens", func(ctx context.Context) error { return tokens.Run(ctx, 0) })
	adminPassword, adminToken, err := bootstrapAdmin(startCtx, cfg, dir, tokens, log)
	if err != nil {
		return err
	}
	// EC2 secrets are sealed like peer credentials: the store alone does
	// not give them away.
	ec2Creds := identity.NewEC2Credentials(dir).WithSealer(sealer)
	// The catalog is data (regions, services, endpoints an admin may
	// change); the broker's own services are seeded rows.
	if err := dir.SeedCatalog(startCtx, identity.DefaultServices); err != nil {
		return fmt.Errorf("seed the identity catalog: %w", err)
	}
	keystone := &identity.Keystone{Dir: dir, Tokens: tokens, Catalog: dir.Catalog,
		Throttle: identity.LoginThrottle{Failures: cfg.Identity.LoginThrottle.Failures, Window: time.Duration(cfg.Identity.LoginThrottle.Window)},
		Log:      log.WithField("component", "identity"), EC2: ec2Creds}

	ln, scheme, reloader, err := listenAPI(cfg)
	if err != nil {
		return err
	}
	defer ln.Close() // when a later step fails; Shutdown closes it otherwise
	addr := scheme + "://" + ln.Addr().String()
	if reloader != nil {
		goBG("tls-reload", reloadOnHUP(reloader, log.WithField("component", "tls")))
	}
	// Per-project quotas (the upstream defaults until an admin sets them
	// through os-quota-sets or Neutron's quotas), enforced in Go by every
	// service with reservations every broker on this Store shares.
	// Limits and defaults are served from memory (the ledger reads them on
	// every create), followed through store watches; Keystone's unified
	// limits are the same records.
	quotaLimits := quota.NewLimits(store, log.WithField("component", "quota-limits"))
	goBG("quota-limits", quotaLimits.Run)
	if err := quotaLimits.WaitReady(startCtx); err != nil {
		return fmt.Errorf("load the quota limits from the store: %w", err)
	}
	keystone.Limits = quotaLimits
	ledger := &quota.Ledger{Store: store, Limits: quotaLimits.Enforcing(), Holder: brokerID(cfg), Log: log.WithField("component", "quota"),
		Metrics: quota.NewMetrics(metrics)}
	// The resource index is served from memory on every replica, kept
	// current by a store watch. It frees the quota of the entries a
	// rebuild removes (their resources are gone from their peers).
	idx := index.New(store).WithLog(log.WithField("component", "index")).WithFreer(ledger)
	metrics.MustRegister(idx.Collector())
	goBG("index", idx.Run)
	if err := idx.WaitReady(startCtx); err != nil {
		return fmt.Errorf("load the resource index from the store: %w", err)
	}
	// A broker that crashed between a peer's create and its index write
	// left a marked resource unindexed; adopt such resources now.
	goBG("index-rebuild", func(ctx context.Context) error {
		rep, err := idx.Rebuild(ctx, pool.Members(), installation, 30*time.Second)
		l := log.WithFields(logrus.Fields{"component": "index", "added": rep.Added, "removed": rep.Removed,
			"conflicts": rep.Conflicts, "failed_peers": rep.FailedPeers})
		if err != nil {
			l.WithError(err).Warn("index rebuild incomplete")
			return nil
		}
		l.Info("index rebuilt from the peers")
		return nil
	})
	// Images a server's peer lacks are copied there; the image service
	// keeps those copies in step with their image (renames, deletes).
	stager := staging.New(store, brokerID(cfg), log.WithField("component", "staging"))
	stager.Metrics = staging.NewMetrics(metrics)
	deactivations := image.NewDeactivations(store, log.WithField("component", "image-deactivations"))
	goBG("image-deactivations", deactivations.Run)
	imageMembers := image.NewMembers(store, log.WithField("component", "image-members"))
	goBG("image-members", imageMembers.Run)
	imageImports := image.NewImports(store, log.WithField("component", "image-imports"))
	goBG("image-imports", imageImports.Run)
	netAttrs := network.NewAttrsMemory(store, log.WithField("component", "network-attrs"))
	goBG("network-attrs", netAttrs.Run)
	netGroups := network.NewGroupsMemory(store, log.WithField("component", "network-security-groups"))
	goBG("network-security-groups", netGroups.Run)
	images := &image.Service{Pool: pool, Index: idx, Placer: placer, Store: store, Replicas: stager, Deactivations: deactivations,
		Members: imageMembers, Imports: imageImports, Log: log.WithField("component", "image"), BrokerID: installation}
	networks := &network.Service{Pool: pool, Index: idx, Store: store, AttrsMemory: netAttrs, GroupsMemory: netGroups, Placer: placer, Quota: ledger,
		Log: log.WithField("component", "network"), BrokerID: installation}
	// The peers' own networks, known by broker ID from memory, and the
	// servers' ports' entries dropped once gone.
	goBG("network-discovery", networks.Run)
	// Keypairs and the servers' broker-kept attributes are served from
	// memory too, each fed by its own store watch.
	keypairs := compute.NewKeypairStore(store)
	keypairs.Quota = ledger
	goBG("keypairs", keypairs.Run)
	serverAttrs := compute.NewServerAttrs(store, log.WithField("component", "server-attrs"))
	goBG("server-attrs", serverAttrs.Run)
	flavorAttrs := compute.NewFlavorAttrs(store, log.WithField("component", "flavor-attrs"))
	goBG("flavor-attrs", flavorAttrs.Run)
	serverGroups := compute.NewServerGroups(store, log.WithField("component", "server-groups"))
	goBG("server-groups", serverGroups.Run)
	volumeAttrs := volume.NewAttrsMemory(store, log.WithField("component", "volume-attrs"))
	goBG("volume-attrs", volumeAttrs.Run)
	volumeTypes := volume.NewTypesMemory(store, log.WithField("component", "volume-types"))
	goBG("volume-types", volumeTypes.Run)
	// One volume service behind Cinder, EC2 and the servers' boot volumes.
	volumes := &volume.Service{Pool: pool, Index: idx, Placer: placer, Images: images, Store: store, Attrs: volumeAttrs, Types: volumeTypes, Quota: ledger,
		Log: log.WithField("component", "volume"), BrokerID: installation}
	// Object storage: containers are broker records served from memory,
	// their objects on the peers with object storage.
	objContainers := object.NewContainersMemory(store, log.WithField("component", "object-containers"))
	goBG("object-containers", objContainers.Run)
	objAccounts := object.NewAccountsMemory(store, log.WithField("component", "object-accounts"))
	goBG("object-accounts", objAccounts.Run)
	objects := &object.Service{Pool: pool, Placer: placer, Store: store, Containers: objContainers, Accounts: objAccounts,
		Log: log.WithField("component", "object"), BrokerID: installation}
	// One servers service behind Nova and EC2: the same placement, tenancy
	// and IDs through either API. Images a peer lacks are staged to it by
	// the image service's stager, so both see the same copies.
	servers := &compute.Servers{Pool: pool, Index: idx, Placer: placer, Images: images, Networks: networks,
		Stager: stager, Volumes: volumes,
		Keypairs: keypairs, Store: store, Attrs: serverAttrs, FlavorAttrs: flavorAttrs, GroupMemory: serverGroups, Log: log.WithField("component", "servers"), BrokerID: installation,
		Quota: ledger, QuotaAdmin: quotaLimits}
	// Eve templates: the Focus catalog, and the deployment engine, which
	// resumes deployments whose owning broker died (their lease lapsed).
	// The catalog's lists and the deployments' records are served from
	// memory too, each fed by its own store watch.
	templateCatalog := &focus.Catalog{Store: store, Memory: focus.NewMemory(store, log.WithField("component", "catalog"))}
	goBG("catalog", templateCatalog.Memory.Run)
	if err := migrateCatalog(startCtx, templateCatalog, dir, log); err != nil {
		return err
	}
	// The engine is a front end over the services, like Nova and EC2: it
	// makes everything through them with each deployment's identity.
	resources := &deployres.Adapter{Servers: servers, Keypairs: keypairs, Networks: networks, Images: images, Volumes: volumes,
		Quota: ledger, Pool: pool}
	if err := resources.Validate(); err != nil {
		return err
	}
	deployRecords := deploy.NewRecords(store, log.WithField("component", "deploy-records"))
	deployments := &deploy.Engine{Store: store, Records: deployRecords, Metrics: deploy.NewMetrics(metrics, deployRecords),
		Resources: resources, Peers: resources, Placer: placer, Resolver: templateCatalog, Uses: templateCatalog,
		Holder: brokerID(cfg), Log: log.WithField("component", "deploy")}
	goBG("deploy-records", deployments.Records.Run)
	goBG("deploy", deployments.Serve)
	// The EC2 API follows its ID pairs through a watch; the gc runner
	// collects the pairs of gone resources.
	ec2API := &ec2.API{Pool: pool, Store: store, Creds: ec2Creds, Keypairs: keypairs, Images: images, Servers: servers,
		Networks: networks, Addresses: networks, Volumes: volumes, Index: idx, Placer: placer, Log: log.WithField("component", "ec2"), BrokerID: installation,
		IDRetention: time.Duration(cfg.GC.EC2IDs)}
	goBG("ec2", ec2API.Run)
	if err := startGC(cfg, gcDeps{store: store, peers: peerReg, dir: dir, tokens: tokens, decisions: decisions, images: images,
		networks: networks, servers: servers, index: idx, quota: ledger, objects: objects, local: local, metrics: metrics,
		more: []gc.Collector{deployments.Collector(time.Duration(cfg.GC.Deployments.MaxAge), cfg.GC.Deployments.MaxEvents),
			ec2API.IDCollector(), identity.DeletedUsersCredentials{EC2: ec2Creds, Tokens: tokens}}},
		log, goBG); err != nil {
		return err
	}
	templatesAPI := &templatesapi.API{Catalog: templateCatalog, Engine: deployments, Log: log.WithField("component", "templatesapi")}
	brokerCfg := broker.Config{
		Peers: peerReg, Snapshot: snap, Pool: pool, Identity: keystone,
		Compute: &compute.Nova{Pool: pool, Keypairs: keypairs, Servers: servers, Auth: keystone.Authenticate,
			Log: log.WithField("component", "compute")},
		EC2:     ec2API,
		Volume:  &volume.Cinder{Volumes: volumes, QuotaAdmin: quotaLimits, Auth: keystone.Authenticate, Log: log.WithField("component", "cinder")},
		Swift:   &swift.API{Objects: objects, Tokens: tokens, Log: log.WithField("component", "swift")},
		Image:   &image.Glance{Images: images, Auth: keystone.Authenticate, Log: log.WithField("component", "glance")},
		Network: &network.Neutron{Service: networks, QuotaAdmin: quotaLimits, Auth: keystone.Authenticate, Log: log.WithField("component", "neutron")},
		Policy: &policyapi.API{Versions: policyVersions, Decisions: decisions, Engine: placer,
			Candidates: policyapi.PoolCandidates(pool), Log: log.WithField("component", "policyapi")},
		Templates: templatesAPI,
		Heat:      &heat.API{Engine: deployments, Templates: templatesAPI, Auth: keystone.Authenticate, Log: log.WithField("component", "heat")},
		Index:     idx, BrokerID: installation,
		Log: log.WithField("component", "http"), Version: version, Metrics: metrics,
	}
	// The dashboards: one more front end over the same services.
	brokerCfg.UI, err = ui.New(ui.Config{Keystone: keystone, Servers: servers, Keypairs: keypairs, Volumes: volumes, Images: images,
		Networks: networks, Templates: brokerCfg.Templates, Policy: brokerCfg.Policy, Peers: snap, PeerAdmin: peerReg,
		Log: log.WithField("component", "ui")})
	if err != nil {
		return err
	}
	metricsSrv, err := startMetrics(cfg.Metrics, metrics, &brokerCfg, log.WithField("component", "metrics"))
	if err != nil {
		return err
	}
	if metricsSrv != nil {
		defer metricsSrv.Close()
	}
	handler := broker.New(brokerCfg)
	errorLog, closeErrorLog := serverErrorLog(log.WithField("component", "http"))
	defer closeErrorLog()
	httpSrv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		// No ReadTimeout: the broker sets each request's body deadline
		// itself, since image uploads stream for as long as they take.
		IdleTimeout: 2 * time.Minute,
		// Failed TLS handshakes (no or a refused client certificate, an
		// old protocol) are logged as the broker's other lines are.
		ErrorLog: errorLog,
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()

	if err := writeEnvFile(cfg.DataDir, addr, adminToken, cfg.DevCAFile); err != nil {
		log.WithError(err).Warn("cannot write cloudmux.env")
	}
	if adminPassword != "" {
		if err := writeClientFiles(cfg.DataDir, addr, adminPassword, cfg.DevCAFile); err != nil {
			log.WithError(err).Warn("cannot write openrc and clouds.yaml")
		}
	}
	printBanner(stdout, cfg, addr, adminPassword, adminToken)
	log.WithFields(logrus.Fields{"addr": addr, "config": cfg.String(), "version": version}).Info("cloudmux serving")

	select {
	case <-ctx.Done():
		// A second SIGINT/SIGTERM now kills the process the default way
		// instead of waiting out the graceful shutdown.
		stopSignals()
		log.Info("shutting down")
	case err := <-serveErr:
		return err
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("http shutdown: %w", err)
	}
	return nil
}

// installationID is the ID every resource this installation creates
// carries (peers.MetaBrokerID), so it can find and adopt its resources on a
// peer. The first broker creates it; every replica reads the same one.
func installationID(ctx context.Context, store registry.Store) (string, error) {
	kv, err := store.Get(ctx, "cluster/id")
	if err == nil {
		return string(kv.Value), nil
	}
	if !errors.Is(err, registry.ErrNotFound) {
		return "", err
	}
	id := uuid.NewString()
	if _, err := store.CAS(ctx, "cluster/id", []byte(id), 0); errors.Is(err, registry.ErrConflict) {
		return installationID(ctx, store) // another broker won
	} else if err != nil {
		return "", err
	}
	return id, nil
}

// brokerID names this broker among the installation's replicas: the
// configured broker_id, or the host name, which survives restarts (a local
// peer stays this broker's after one).
func brokerID(cfg Config) string {
	if cfg.BrokerID != "" {
		return cfg.BrokerID
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		return "cloudmux"
	}
	return host
}

// credentialsSealer loads the credentials key, creating it when the file
// does not exist yet (two replicas starting together on one machine may race
// to create it: the loser loads the winner's), then checks it is the
// installation's key: a replica with another key could not open the others'
// sealed credentials, and would re-seal them under its own key when it
// wrote any.
func credentialsSealer(ctx context.Context, cfg Config, store registry.Store) (registry.Sealer, error) {
	path := cfg.CredentialsKeyFile
	if path == "" {
		path = filepath.Join(cfg.DataDir, "credentials.key")
	}
	key, err := registry.LoadKeyFile(path)
	if errors.Is(err, os.ErrNotExist) {
		// A fresh -data-dir does not exist yet.
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("credentials key: %w", err)
		}
		key, err = registry.GenerateKeyFile(path)
		if errors.Is(err, os.ErrExist) {
			key, err = registry.LoadKeyFile(path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("credentials key: %w", err)
	}
	if err := registry.CheckKey(ctx, store, key); err != nil {
		return nil, fmt.Errorf("credentials key %s: %w", path, err)
	}
	return registry.NewAESGCM(key)
}

// migrateCatalog gives the admin project the templates and bindings of
// the catalog's first layout, which had no owner: they stay private until
// an admin publishes them, instead of becoming everyone's.
func migrateCatalog(ctx context.Context, c *focus.Catalog, dir *identity.Directory, log logrus.FieldLogger) error {
	admin, err := dir.FindProject(ctx, identity.DefaultDomainID, identity.AdminProjectName)
	if err != nil {
		return fmt.Errorf("the admin project for the template catalog: %w", err)
	}
	rep, err := c.MigrateLegacy(ctx, admin.ID)
	if err != nil {
		return fmt.Errorf("migrating the template catalog: %w", err)
	}
	if rep.Moved+rep.Kept > 0 {
		log.WithFields(logrus.Fields{"component": "focus", "moved": rep.Moved, "kept": rep.Kept}).
			Warn("unowned templates and bindings now belong to the admin project")
	}
	return nil
}

// bootstrapAdmin gives the directory what devstack has (domain Default,
// roles, project admin, user admin) and, in -dev, returns the admin password
// and a fresh admin token for the banner. A password given in
// CLOUDMUX_ADMIN_PASSWORD is (re)set; otherwise a new admin gets a generated
// one, and only the broker that created the admin (of two starting
// together) writes DATA_DIR/admin-password.
func bootstrapAdmin(ctx context.Context, cfg Config, dir *identity.Directory, tokens *identity.Tokens, log logrus.FieldLogger) (string, string, error) {
	password, reset := cfg.AdminPassword, true
	if password == "" {
		var b [18]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", "", err
		}
		password, reset = base64.RawURLEncoding.EncodeToString(b[:]), false
	}
	boot, err := dir.Bootstrap(ctx, password, reset)
	if err != nil {
		return "", "", err
	}
	if boot.PasswordReset {
		log.Warn("admin password reset from CLOUDMUX_ADMIN_PASSWORD; the admin's tokens are revoked")
		if err := tokens.RevokeUser(ctx, boot.User.ID); err != nil {
			return "", "", err
		}
	}
	if !reset && !boot.Created {
		log.Info("admin user exists; keeping its password")
		password = ""
	}
	if !reset && boot.Created && !cfg.Dev {
		path := filepath.Join(cfg.DataDir, "admin-password")
		if err := os.WriteFile(path, []byte(password+"\n"), 0o600); err != nil {
			return "", "", err
		}
		log.WithField("file", path).Warn("generated the admin password; it is in this file, readable only by this user")
	}
	if !cfg.Dev || password == "" {
		return "", "", nil
	}
	token, _, err := tokens.Issue(ctx, identity.Token{
		UserID: boot.User.ID, UserName: boot.User.Name, UserDomainID: boot.User.DomainID, UserDomainName: boot.Domain.Name,
		ProjectID: boot.Project.ID, ProjectName: boot.Project.Name, ProjectDomain: boot.Project.DomainID, AdminProject: true,
		Roles: []identity.Role{boot.Roles[identity.RoleAdmin]}, Methods: []string{"password"},
	}, 24*time.Hour)
	return password, token, err
}

// writeClientFiles writes what OpenStack clients need to reach this broker
// as admin: an openrc to source and a clouds.yaml with cloud "cloudmux".
// Values are quoted for their format, so any password is safe in both.
// With a CA file (-dev-tls) both name it (OS_CACERT, cacert), so clients
// verify the broker's certificate unchanged.
func writeClientFiles(dir, addr, password, caFile string) error {
	sh := func(v string) string { return "'" + strings.ReplaceAll(v, "'", `'"'"'`) + "'" }
	openrc := fmt.Sprintf(`export OS_AUTH_URL=%s
export OS_IDENTITY_API_VERSION=3
export OS_USERNAME=admin
export OS_PASSWORD=%s
export OS_PROJECT_NAME=admin
export OS_USER_DOMAIN_NAME=Default
export OS_PROJECT_DOMAIN_NAME=Default
export OS_REGION_NAME=%s
export OS_INTERFACE=public
`, sh(addr+"/v3"), sh(password), sh(identity.Region))
	cloud := map[string]any{
		"auth": map[string]string{
			"auth_url": addr + "/v3", "username": "admin", "password": password, "project_name": "admin",
			"user_domain_name": "Default", "project_domain_name": "Default",
		},
		"region_name": identity.Region, "interface": "public", "identity_api_version": 3,
	}
	if caFile != "" {
		openrc += "export OS_CACERT=" + sh(caFile) + "\n"
		cloud["cacert"] = caFile
	}
	clouds, err := yaml.Marshal(map[string]any{"clouds": map[string]any{"cloudmux": cloud}})
	if err != nil {
		return err
	}
	return errors.Join(
		os.WriteFile(filepath.Join(dir, "openrc"), []byte(openrc), 0o600),
		os.WriteFile(filepath.Join(dir, "clouds.yaml"), clouds, 0o600),
	)
}

// writeEnvFile writes cloudmux.env for the cloudmux CLI; with a CA file
// (-dev-tls) it trusts it, and so does the aws CLI (AWS_CA_BUNDLE).
func writeEnvFile(dir, addr, token, caFile string) error {
	content := fmt.Sprintf("export CLOUDMUX_ADDR=%s\n", addr)
	if token != "" {
		content += fmt.Sprintf("export CLOUDMUX_TOKEN=%s\n", token)
	}
	if caFile != "" {
		content += fmt.Sprintf("export CLOUDMUX_CACERT=%s\nexport AWS_CA_BUNDLE=%s\n", caFile, caFile)
	}
	return os.WriteFile(filepath.Join(dir, "cloudmux.env"), []byte(content), 0o600)
}

func printBanner(w io.Writer, cfg Config, addr, password, token string) {
	if !cfg.Dev {
		fmt.Fprintf(w, "cloudmux %s serving on %s\n", version, addr)
		return
	}
	caLine := ""
	if cfg.DevCAFile != "" {
		caLine = "    export CLOUDMUX_CACERT=" + cfg.DevCAFile + "\n"
	}
	fmt.Fprintf(w, `==> cloudmux dev broker started: everything is in memory and is lost on exit.

    API:            %s
    Dashboard:      %s/ui/ (log in as admin)
    Data dir:       %s
    Local peer:     %s (driver=%s)

    Admin user:     admin (project admin)
    Admin password: %s
    Admin token:    %s

  Point the cloudmux CLI at it:

    export CLOUDMUX_ADDR=%s
    export CLOUDMUX_TOKEN=%s
%s
  (also in %s)

  Or any OpenStack client:

    source %s
    OS_CLIENT_CONFIG_FILE=%s OS_CLOUD=cloudmux openstack token issue

`, addr, addr, cfg.DataDir, cfg.LocalCloud.Name, cfg.LocalCloud.Driver, password, token, addr, token, caLine, filepath.Join(cfg.DataDir, "cloudmux.env"),
		filepath.Join(cfg.DataDir, "openrc"), filepath.Join(cfg.DataDir, "clouds.yaml"))
}
