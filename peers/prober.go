package peers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// HealthReporter is the part of registry.PeerRegistry the prober writes to.
type HealthReporter interface {
	ReportHealth(ctx context.Context, id string, h registry.Health) (registry.Peer, error)
}

// ProberConfig wires a Prober.
type ProberConfig struct {
	Pool     *Pool
	Registry HealthReporter
	Catalog  registry.ServiceCatalog
	Log      logrus.FieldLogger
	Interval time.Duration // between probe rounds; default 10s
	Timeout  time.Duration // per probe; default 5s
	// FallAfter consecutive failures mark a peer down (earlier ones mark it
	// degraded); RiseAfter consecutive successes bring a down peer back up.
	// Hysteresis keeps a flapping peer from flapping placement.
	FallAfter, RiseAfter int
	Now                  func() time.Time
	// Leader, when set, elects one broker of the installation to probe
	// remote peers, so replicas that disagree (one sees a peer, another
	// does not) do not take turns overwriting its health. Nil: this broker
	// is alone and probes everything. Local clouds are always probed by the
	// broker hosting them.
	Leader registry.Locker
	// LeaderKey and Holder name the lock and this broker in it.
	LeaderKey, Holder string
	// Metrics, when set, counts probes (NewProbeMetrics).
	Metrics *ProbeMetrics
}

// Prober probes every pool member on an interval (a cheap capacity call),
// writes status, capacity and heartbeat to the registry, and keeps each
// peer's Consul TTL check passing or failing.
type Prober struct {
	cfg ProberConfig

	mu         sync.Mutex
	state      map[string]*probeState
	registered map[string]string // peer ID -> catalog fingerprint
	lease      registry.Lease    // held while this broker leads
}

type probeState struct {
	fails, oks int
	status     registry.Status
	seenAlive  bool // ever answered: recorded heartbeat, or a probe here
}

// NewProber applies defaults and returns a prober.
func NewProber(cfg ProberConfig) *Prober {
	if cfg.Interval <= 0 {
		cfg.Interval = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.FallAfter <= 0 {
		cfg.FallAfter = 3
	}
	if cfg.RiseAfter <= 0 {
		cfg.RiseAfter = 2
	}
	if cfg.Catalog == nil {
		cfg.Catalog = registry.NopCatalog{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LeaderKey == "" {
		cfg.LeaderKey = "leader/prober"
	}
	return &Prober{cfg: cfg, state: map[string]*probeState{}, registered: map[string]string{}}
}

// Run probes at once, then every interval, and probes a peer that joins
// the pool as soon as it appears (a new peer should not wait an interval to
// take work), until ctx ends; then it gives up the leadership.
func (pr *Prober) Run(ctx context.Context) error {
	t := time.NewTicker(pr.cfg.Interval)
	defer t.Stop()
	defer pr.Stop(context.WithoutCancel(ctx))
	// The channel is taken before each round, or a member joining during
	// the round would be missed until the next tick.
	changed := pr.cfg.Pool.Changed()
	pr.ProbeAll(ctx)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			changed = pr.cfg.Pool.Changed()
			pr.ProbeAll(ctx)
		case <-changed:
			changed = pr.cfg.Pool.Changed()
			pr.probeNew(ctx)
		}
	}
}

// probeNew probes the members this broker judges but has not probed yet.
// Probes of known members change the pool too (their health is written);
// those are left to the interval, so this does not loop.
func (pr *Prober) probeNew(ctx context.Context) {
	pr.mu.Lock()
	leading := pr.cfg.Leader == nil || pr.lease != nil
	var fresh []*Member
	for _, m := range pr.cfg.Pool.Members() {
		if _, seen := pr.state[m.Peer.ID]; !seen && pr.judges(m, leading) {
			fresh = append(fresh, m)
		}
	}
	pr.mu.Unlock()
	var wg sync.WaitGroup
	for _, m := range fresh {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr.probe(ctx, m)
		}()
	}
	wg.Wait()
}

// ProbeAll probes, concurrently, the members this broker should judge: the
// local clouds it hosts, and remote peers when it leads. It waits for all.
func (pr *Prober) ProbeAll(ctx context.Context) {
	members := pr.cfg.Pool.Members()
	leading := pr.lead(ctx)
	var mine []*Member
	var wg sync.WaitGroup
	for _, m := range members {
		if !pr.judges(m, leading) {
			continue
		}
		mine = append(mine, m)
		wg.Add(1)
		go func() {
			defer wg.Done()
			pr.probe(ctx, m)
		}()
	}
	wg.Wait()
	pr.forgetOthers(ctx, mine)
}

// judges says whether this broker judges m's health.
func (pr *Prober) judges(m *Member, leading bool) bool {
	if m.Peer.Kind == registry.KindLocal {
		// Another broker's in-process local cloud is that broker's to
		// judge; should it die, its Consul TTL check lapses.
		return !errors.Is(m.Err, ErrNotSupported)
	}
	return leading
}

// lead keeps or takes the prober leadership; without a Leader configured
// this broker always leads.
func (pr *Prober) lead(ctx context.Context) bool {
	if pr.cfg.Leader == nil {
		return true
	}
	pr.mu.Lock()
	lease := pr.lease
	pr.mu.Unlock()
	if lease != nil {
		select {
		case <-lease.Lost():
			pr.cfg.Log.Warn("prober: lost the leadership")
		default:
			return true
		}
	}
	lease, err := pr.cfg.Leader.TryLock(ctx, pr.cfg.LeaderKey, []byte(pr.cfg.Holder), 3*registry.MinLockTTL)
	if err != nil {
		if !errors.Is(err, registry.ErrLockHeld) {
			pr.cfg.Log.WithError(err).Warn("prober: cannot take the leadership")
		}
		lease = nil
	} else {
		pr.cfg.Log.WithField("holder", pr.cfg.Holder).Info("prober: leading; probing remote peers")
	}
	pr.mu.Lock()
	pr.lease = lease
	pr.mu.Unlock()
	return lease != nil
}

// Stop gives the leadership up, so another broker takes over at once
// rather than after the lease's TTL.
func (pr *Prober) Stop(ctx context.Context) {
	pr.mu.Lock()
	lease := pr.lease
	pr.lease = nil
	pr.mu.Unlock()
	if lease != nil {
		_ = lease.Release(ctx)
	}
}

func (pr *Prober) probe(ctx context.Context, m *Member) {
	log := pr.cfg.Log.WithFields(logrus.Fields{"peer_id": m.Peer.ID, "peer": m.Peer.Name})
	// Every call of a probe is bounded: a hung store, agent or driver must
	// not stall the round (and with it every other peer's health).
	bounded := func(fn func(ctx context.Context)) {
		cctx, cancel := context.WithTimeout(ctx, pr.cfg.Timeout)
		defer cancel()
		fn(cctx)
	}
	bounded(func(ctx context.Context) { pr.ensureRegistered(ctx, m.Peer, log) })

	var capacity *registry.Capacity
	err := m.Err
	start := time.Now()
	if m.Cloud != nil {
		res := Gather(ctx, []*Member{m}, pr.cfg.Timeout, func(ctx context.Context, m *Member) (registry.Capacity, error) {
			return m.Cloud.Capacity(ctx) // Gather answers even for a driver that ignores ctx
		})[0]
		if res.Err == nil {
			capacity = &res.Value
		}
		err = res.Err
	}
	if ctx.Err() != nil {
		return // shutting down: a canceled probe says nothing about the peer
	}
	status, reason := pr.judge(m.Peer, err)
	pr.cfg.Metrics.observe(m.Peer.Name, err, string(status), time.Since(start))
	var seen time.Time
	if err == nil {
		seen = pr.cfg.Now()
	}
	bounded(func(ctx context.Context) {
		if _, rerr := pr.cfg.Registry.ReportHealth(ctx, m.Peer.ID, registry.Health{
			Status: status, Reason: reason, Capacity: capacity, At: seen,
		}); rerr != nil {
			log.WithError(rerr).Warn("prober: cannot record health")
		}
	})
	if m.Peer.Status == registry.StatusMaintenance {
		status, reason = registry.StatusMaintenance, "in maintenance: "+m.Peer.StatusReason
	}
	bounded(func(ctx context.Context) {
		herr := pr.cfg.Catalog.SetHealth(ctx, m.Peer.ID, status, reason)
		if errors.Is(herr, registry.ErrNotFound) {
			// The agent forgot the service (restarted without its state,
			// or reaped it after DeregisterCriticalAfter): register again.
			pr.mu.Lock()
			delete(pr.registered, m.Peer.ID)
			pr.mu.Unlock()
			pr.ensureRegistered(ctx, m.Peer, log)
			herr = pr.cfg.Catalog.SetHealth(ctx, m.Peer.ID, status, reason)
		}
		if herr != nil {
			log.WithError(herr).Warn("prober: cannot update the catalog health check")
		}
	})
	if err != nil {
		log.WithError(err).WithField("status", status).Debug("prober: probe failed")
	}
}

// judge turns a probe outcome into a status with hysteresis.
func (pr *Prober) judge(p registry.Peer, err error) (registry.Status, string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	st, ok := pr.state[p.ID]
	if !ok {
		// Start from the recorded verdict (another broker's, before a
		// leadership change, or this one's before a restart), so a new
		// judge's first failed probe degrades an up peer rather than
		// dropping it.
		st = &probeState{status: registry.StatusDown, seenAlive: !p.LastHeartbeat.IsZero()}
		if p.Status == registry.StatusUp || p.Status == registry.StatusDegraded {
			st.status = p.Status
		}
		pr.state[p.ID] = st
	}
	if err != nil {
		st.fails++
		st.oks = 0
		if st.fails >= pr.cfg.FallAfter || st.status == registry.StatusDown {
			st.status = registry.StatusDown
		} else {
			st.status = registry.StatusDegraded
		}
		return st.status, fmt.Sprintf("probe failed (%d in a row): %v", st.fails, err)
	}
	st.oks++
	st.fails = 0
	// A peer never seen alive rises on its first success: there is no flap
	// to damp yet, and a new peer should not wait rounds to take work. A
	// peer that was seen and went down must prove itself RiseAfter times.
	if st.status == registry.StatusDown && st.oks < pr.cfg.RiseAfter && st.seenAlive {
		return registry.StatusDown, fmt.Sprintf("recovering (%d/%d good probes)", st.oks, pr.cfg.RiseAfter)
	}
	st.seenAlive = true
	st.status = registry.StatusUp
	return st.status, ""
}

func catalogFingerprint(p registry.Peer) string {
	return fmt.Sprintf("%s|%s|%v", p.Name, p.Kind, p.Labels)
}

func (pr *Prober) ensureRegistered(ctx context.Context, p registry.Peer, log logrus.FieldLogger) {
	fp := catalogFingerprint(p)
	pr.mu.Lock()
	done := pr.registered[p.ID] == fp
	pr.mu.Unlock()
	if done {
		return
	}
	if err := pr.cfg.Catalog.RegisterPeer(ctx, p); err != nil {
		log.WithError(err).Warn("prober: cannot register the peer in the catalog")
		return
	}
	pr.mu.Lock()
	pr.registered[p.ID] = fp
	pr.mu.Unlock()
}

// forgetOthers drops the catalog registration and hysteresis state of
// every peer this broker no longer judges (removed, or judged by the leader
// now), so its agent does not show a stale, lapsing instance.
func (pr *Prober) forgetOthers(ctx context.Context, judged []*Member) {
	live := make(map[string]bool, len(judged))
	for _, m := range judged {
		live[m.Peer.ID] = true
	}
	pr.mu.Lock()
	var gone []string
	for id := range pr.registered {
		if !live[id] {
			gone = append(gone, id)
			delete(pr.registered, id)
		}
	}
	for id := range pr.state {
		if !live[id] {
			delete(pr.state, id)
		}
	}
	pr.mu.Unlock()
	for _, id := range gone {
		if err := pr.cfg.Catalog.DeregisterPeer(ctx, id); err != nil {
			pr.cfg.Log.WithError(err).WithField("peer_id", id).Warn("prober: cannot deregister a peer it no longer judges")
		}
	}
}
