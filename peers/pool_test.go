package peers_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/registry"
)

// capacityCloud answers Capacity (what the prober calls) and counts
// closes; any other call panics through the nil embedded interface, which
// is the point: pool and prober must call nothing else.
type capacityCloud struct {
	peers.Cloud
	mu     sync.Mutex
	err    error
	closed atomic.Int32
}

func (c *capacityCloud) Capacity(context.Context) (registry.Capacity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return registry.Capacity{VCPUs: registry.Resource{Total: 8, Used: 2}}, c.err
}

func (c *capacityCloud) setErr(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

func (c *capacityCloud) Close() error { c.closed.Add(1); return nil }

type harness struct {
	store   *registry.Memory
	reg     *registry.PeerRegistry
	snap    *registry.PeerSnapshot
	pool    *peers.Pool
	connect atomic.Int32
	clouds  sync.Map // peer name -> *capacityCloud
}

func newHarness(t *testing.T) (*harness, context.Context) {
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	t.Cleanup(cancel)
	h := &harness{store: registry.NewMemory()}
	h.reg = registry.NewPeerRegistry(h.store)
	log := logrus.New()
	log.SetLevel(logrus.WarnLevel)
	h.snap = registry.NewPeerSnapshot(h.store, log)
	go func() { _ = h.snap.Run(ctx) }()
	connector := func(_ context.Context, p registry.Peer, creds registry.Credentials) (peers.Cloud, error) {
		h.connect.Add(1)
		if creds.Password == "wrong" {
			return nil, peers.ErrUnauthorized
		}
		c := &capacityCloud{}
		h.clouds.Store(p.Name, c)
		return c, nil
	}
	h.pool = peers.NewPool(peers.PoolConfig{
		Source: h.snap, Credentials: h.reg, Log: log,
		Connectors: map[registry.Kind]peers.Connector{registry.KindOpenStack: connector},
	})
	if err := h.snap.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return h, ctx
}

// sync waits for the snapshot to reach rev, then reconciles.
func (h *harness) sync(t *testing.T, ctx context.Context, rev uint64) {
	t.Helper()
	if err := h.snap.WaitIndex(ctx, rev); err != nil {
		t.Fatal(err)
	}
	h.pool.Reconcile(ctx)
}

func peerSpec(name string) registry.Peer {
	return registry.Peer{Name: name, Kind: registry.KindOpenStack, Endpoint: registry.Endpoint{AuthURL: "http://127.0.0.1:5000/v3"}}
}

func creds(pw string) *registry.Credentials {
	return &registry.Credentials{Username: "u", UserDomainName: "Default", Password: pw}
}

func TestPoolReconcile(t *testing.T) {
	h, ctx := newHarness(t)
	p, err := h.reg.Create(ctx, peerSpec("a"), creds("pw"))
	if err != nil {
		t.Fatal(err)
	}
	h.sync(t, ctx, p.Revision)
	m, ok := h.pool.Lookup("a")
	if !ok || m.Cloud == nil || m.Err != nil {
		t.Fatalf("member a = %+v, %v; want connected", m, ok)
	}

	// A label change refreshes the record without reconnecting.
	upd := p
	upd.Labels = map[string]string{"tier": "public"}
	p, err = h.reg.Update(ctx, upd)
	if err != nil {
		t.Fatal(err)
	}
	h.sync(t, ctx, p.Revision)
	if m, _ := h.pool.Get(p.ID); m.Peer.Labels["tier"] != "public" || h.connect.Load() != 1 {
		t.Fatalf("after label change: labels %v, %d connects; want refreshed record and 1 connect", m.Peer.Labels, h.connect.Load())
	}

	// New credentials reconnect and close the old connection.
	old, _ := h.clouds.Load("a")
	p, err = h.reg.SetCredentials(ctx, p.ID, *creds("wrong"))
	if err != nil {
		t.Fatal(err)
	}
	h.sync(t, ctx, p.Revision)
	m, _ = h.pool.Get(p.ID)
	if h.connect.Load() != 2 || m.Cloud != nil || !errors.Is(m.Err, peers.ErrUnauthorized) {
		t.Fatalf("after new credentials: %d connects, member %+v; want a reconnect that failed with ErrUnauthorized", h.connect.Load(), m)
	}
	if old.(*capacityCloud).closed.Load() != 1 {
		t.Fatal("old connection not closed on reconnect")
	}

	// Removal drops the member.
	if _, err := h.reg.Delete(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	for {
		changed := h.snap.Changed() // before reconciling, or a change in between is missed
		h.pool.Reconcile(ctx)
		if _, ok := h.pool.Get(p.ID); !ok {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("removed peer never left the pool")
		}
	}
}

func TestPoolUnknownKind(t *testing.T) {
	h, ctx := newHarness(t)
	p, err := h.reg.Create(ctx, registry.Peer{Name: "local-1", Kind: registry.KindLocal}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.sync(t, ctx, p.Revision)
	m, ok := h.pool.Get(p.ID)
	if !ok || m.Cloud != nil || !errors.Is(m.Err, peers.ErrNotSupported) || m.Usable() {
		t.Fatalf("member without a driver = %+v; want present, unusable, ErrNotSupported", m)
	}
}

// recordingCatalog remembers the last health per peer.
type recordingCatalog struct {
	mu         sync.Mutex
	registered map[string]bool
	health     map[string]registry.Status
}

func (c *recordingCatalog) RegisterPeer(_ context.Context, p registry.Peer) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.registered[p.ID] = true
	return nil
}

func (c *recordingCatalog) DeregisterPeer(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.registered, id)
	return nil
}

func (c *recordingCatalog) SetHealth(_ context.Context, id string, s registry.Status, _ string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.registered[id] {
		return fmt.Errorf("peer %s not registered: %w", id, registry.ErrNotFound) // as the Consul catalog answers
	}
	c.health[id] = s
	return nil
}

// forget drops every registration, as a Consul agent restarted without its
// state would.
func (c *recordingCatalog) forget() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.registered = map[string]bool{}
	c.health = map[string]registry.Status{}
}

func TestProberHysteresis(t *testing.T) {
	h, ctx := newHarness(t)
	p, err := h.reg.Create(ctx, peerSpec("flappy"), creds("pw"))
	if err != nil {
		t.Fatal(err)
	}
	h.sync(t, ctx, p.Revision)
	catalog := &recordingCatalog{registered: map[string]bool{}, health: map[string]registry.Status{}}
	reg := prometheus.NewRegistry()
	prober := peers.NewProber(peers.ProberConfig{
		Pool: h.pool, Registry: h.reg, Catalog: catalog, Log: logrus.New(), FallAfter: 3, RiseAfter: 2,
		Metrics: peers.NewProbeMetrics(reg),
	})
	c, _ := h.clouds.Load("flappy")
	cloud := c.(*capacityCloud)

	steps := []struct {
		name string
		err  error
		want registry.Status
	}{
		{"first success rises at once", nil, registry.StatusUp},
		{"one failure degrades", errors.New("timeout"), registry.StatusDegraded},
		{"two failures still degraded", errors.New("timeout"), registry.StatusDegraded},
		{"third failure is down", errors.New("timeout"), registry.StatusDown},
		{"one success is not enough", nil, registry.StatusDown},
		{"second success brings it up", nil, registry.StatusUp},
	}
	var lastSeen time.Time
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			cloud.setErr(st.err)
			prober.ProbeAll(ctx)
			got, err := h.reg.Get(ctx, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != st.want || got.LastHeartbeat.IsZero() {
				t.Fatalf("status = %s (%s), heartbeat %v; want %s", got.Status, got.StatusReason, got.LastHeartbeat, st.want)
			}
			if st.err != nil && !got.LastHeartbeat.Equal(lastSeen) {
				t.Fatalf("a failed probe moved the heartbeat from %v to %v", lastSeen, got.LastHeartbeat)
			}
			lastSeen = got.LastHeartbeat
			catalog.mu.Lock()
			defer catalog.mu.Unlock()
			if !catalog.registered[p.ID] || catalog.health[p.ID] != st.want {
				t.Fatalf("catalog: registered %v health %s; want registered, %s", catalog.registered[p.ID], catalog.health[p.ID], st.want)
			}
		})
	}
	got, _ := h.reg.Get(ctx, p.ID)
	if got.Capacity.VCPUs.Total != 8 {
		t.Fatalf("capacity not recorded: %+v", got.Capacity)
	}
	// Every probe counted once, under its result and the status concluded.
	counts := map[string]float64{}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			switch f.GetName() {
			case "cloudmux_peer_probes_total":
				counts[l["peer"]+" "+l["result"]+" "+l["status"]] = m.GetCounter().GetValue()
			case "cloudmux_peer_probe_seconds":
				counts["timed "+l["peer"]] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	want := map[string]float64{"flappy ok up": 2, "flappy failed degraded": 2, "flappy failed down": 1, "flappy ok down": 1, "timed flappy": 6}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Fatalf("probe metrics %v, want %v", counts, want)
	}
}

func TestPoolNeverClosesInProcessClouds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()
	store := registry.NewMemory()
	reg := registry.NewPeerRegistry(store)
	snap := registry.NewPeerSnapshot(store, logrus.New())
	go func() { _ = snap.Run(ctx) }()
	local := &capacityCloud{}
	pool := peers.NewPool(peers.PoolConfig{Source: snap, Credentials: reg, Log: logrus.New(),
		InProcess: map[string]peers.Cloud{"local": local}})
	p, err := reg.Create(ctx, registry.Peer{Name: "local", Kind: registry.KindLocal}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.WaitIndex(ctx, p.Revision); err != nil {
		t.Fatal(err)
	}
	pool.Reconcile(ctx)
	if m, _ := pool.Get(p.ID); m == nil || m.Cloud != peers.Cloud(local) {
		t.Fatalf("local peer not served by the in-process cloud: %+v", m)
	}
	// A changed endpoint forces a reconnect; removal drops the member.
	upd := p
	upd.Endpoint.Region = "elsewhere"
	if p, err = reg.Update(ctx, upd); err != nil {
		t.Fatal(err)
	}
	if err := snap.WaitIndex(ctx, p.Revision); err != nil {
		t.Fatal(err)
	}
	pool.Reconcile(ctx)
	if _, err := reg.Delete(ctx, p.ID); err != nil {
		t.Fatal(err)
	}
	for {
		changed := snap.Changed()
		pool.Reconcile(ctx)
		if _, ok := pool.Get(p.ID); !ok {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("removed peer stayed")
		}
	}
	if n := local.closed.Load(); n != 0 {
		t.Fatalf("the pool closed the in-process cloud %d times", n)
	}
}

// TestProberLeavesPeersItCannotServe: a peer this broker has no driver for
// (another broker's local cloud) is not judged from here.
func TestProberLeavesPeersItCannotServe(t *testing.T) {
	h, ctx := newHarness(t)
	p, err := h.reg.Create(ctx, registry.Peer{Name: "other-brokers-local", Kind: registry.KindLocal}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.sync(t, ctx, p.Revision)
	catalog := &recordingCatalog{registered: map[string]bool{}, health: map[string]registry.Status{}}
	peers.NewProber(peers.ProberConfig{Pool: h.pool, Registry: h.reg, Catalog: catalog, Log: logrus.New()}).ProbeAll(ctx)
	got, err := h.reg.Get(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Revision != p.Revision || !got.LastHeartbeat.IsZero() || catalog.registered[p.ID] {
		t.Fatalf("the prober judged a peer it cannot serve: %+v, registered %v", got, catalog.registered[p.ID])
	}
}

// TestPoolRetriesOnInterval: a peer that failed to connect is retried after
// RetryInterval, not on every registry change.
func TestPoolRetriesOnInterval(t *testing.T) {
	h, ctx := newHarness(t)
	p, err := h.reg.Create(ctx, peerSpec("flaky"), creds("wrong"))
	if err != nil {
		t.Fatal(err)
	}
	h.sync(t, ctx, p.Revision)
	if h.connect.Load() != 1 {
		t.Fatalf("%d connects after create, want 1", h.connect.Load())
	}
	// Unrelated registry changes (another peer) do not retry it.
	for i := range 3 {
		other, err := h.reg.Create(ctx, peerSpec(fmt.Sprintf("other-%d", i)), creds("pw"))
		if err != nil {
			t.Fatal(err)
		}
		h.sync(t, ctx, other.Revision)
	}
	if got := h.connect.Load(); got != 4 { // 1 failed + 3 others
		t.Fatalf("%d connects, want 4: the failed peer was retried on unrelated changes", got)
	}
}

func TestProberReregistersForgottenPeers(t *testing.T) {
	h, ctx := newHarness(t)
	p, err := h.reg.Create(ctx, peerSpec("a"), creds("pw"))
	if err != nil {
		t.Fatal(err)
	}
	h.sync(t, ctx, p.Revision)
	catalog := &recordingCatalog{registered: map[string]bool{}, health: map[string]registry.Status{}}
	prober := peers.NewProber(peers.ProberConfig{Pool: h.pool, Registry: h.reg, Catalog: catalog, Log: logrus.New()})
	prober.ProbeAll(ctx)
	catalog.forget()
	prober.ProbeAll(ctx)
	catalog.mu.Lock()
	defer catalog.mu.Unlock()
	if !catalog.registered[p.ID] || catalog.health[p.ID] != registry.StatusUp {
		t.Fatalf("after the agent forgot: registered %v, health %q; want re-registered and up", catalog.registered[p.ID], catalog.health[p.ID])
	}
}

func TestGather(t *testing.T) {
	ms := []*peers.Member{{Peer: registry.Peer{Name: "fast"}}, {Peer: registry.Peer{Name: "broken"}}, {Peer: registry.Peer{Name: "stuck"}}}
	release := make(chan struct{})
	defer close(release)
	start := time.Now()
	res := peers.Gather(context.Background(), ms, 200*time.Millisecond, func(ctx context.Context, m *peers.Member) (string, error) {
		switch m.Peer.Name {
		case "broken":
			return "", peers.ErrUnavailable
		case "stuck":
			<-release // ignores its context on purpose
		}
		return "hello from " + m.Peer.Name, nil
	})
	if res[0].Err != nil || res[0].Value != "hello from fast" {
		t.Fatalf("fast = %+v", res[0])
	}
	if !errors.Is(res[1].Err, peers.ErrUnavailable) {
		t.Fatalf("broken = %+v", res[1])
	}
	if !errors.Is(res[2].Err, context.DeadlineExceeded) {
		t.Fatalf("stuck = %+v", res[2])
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("a peer that ignores its context held Gather for %v", waited)
	}
}

// countingReporter counts health reports per peer name.
type countingReporter struct {
	peers.HealthReporter
	mu     sync.Mutex
	byPeer map[string]int
	names  map[string]string
}

func (c *countingReporter) ReportHealth(ctx context.Context, id string, h registry.Health) (registry.Peer, error) {
	c.mu.Lock()
	c.byPeer[c.names[id]]++
	c.mu.Unlock()
	return c.HealthReporter.ReportHealth(ctx, id, h)
}

func (c *countingReporter) count(name string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byPeer[name]
}

// TestProberLeadership: of two brokers on one store, only the leader judges
// remote peers; when its lease is lost the other takes over.
func TestProberLeadership(t *testing.T) {
	h, ctx := newHarness(t)
	p, err := h.reg.Create(ctx, peerSpec("remote"), creds("pw"))
	if err != nil {
		t.Fatal(err)
	}
	h.sync(t, ctx, p.Revision)
	names := map[string]string{p.ID: "remote"}
	newProber := func(holder string) (*peers.Prober, *countingReporter) {
		rep := &countingReporter{HealthReporter: h.reg, byPeer: map[string]int{}, names: names}
		return peers.NewProber(peers.ProberConfig{Pool: h.pool, Registry: rep, Log: logrus.New(),
			Leader: h.store, Holder: holder}), rep
	}
	a, repA := newProber("broker-a")
	b, repB := newProber("broker-b")
	for range 3 {
		a.ProbeAll(ctx)
		b.ProbeAll(ctx)
	}
	if repA.count("remote") != 3 || repB.count("remote") != 0 {
		t.Fatalf("remote probed %d times by the leader and %d by the other; want 3 and 0", repA.count("remote"), repB.count("remote"))
	}
	h.store.ExpireLeases() // broker a stops renewing (it died)
	b.ProbeAll(ctx)
	a.ProbeAll(ctx)
	if repB.count("remote") != 1 || repA.count("remote") != 3 {
		t.Fatalf("after a's lease was lost: a %d, b %d; want b to lead", repA.count("remote"), repB.count("remote"))
	}
	b.Stop(ctx)
	a.ProbeAll(ctx)
	if repA.count("remote") != 4 {
		t.Fatalf("after b stepped down, a probed remote %d times, want 4", repA.count("remote"))
	}
}

// TestProberProbesNewPeersAtOnce: a peer joining the pool is probed without
// waiting for the next interval.
func TestProberProbesNewPeersAtOnce(t *testing.T) {
	h, ctx := newHarness(t)
	go func() { _ = h.pool.Run(ctx) }()
	prober := peers.NewProber(peers.ProberConfig{Pool: h.pool, Registry: h.reg, Log: logrus.New(), Interval: time.Hour})
	go func() { _ = prober.Run(ctx) }()
	p, err := h.reg.Create(ctx, peerSpec("newcomer"), creds("pw"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		changed := h.snap.Changed() // before looking, or a change in between is missed
		got, err := h.reg.Get(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == registry.StatusUp {
			return
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("a new peer waited for the next probe interval (an hour)")
		}
	}
}

// TestProberNewJudgeKeepsRecordedVerdict: a prober taking over (restart or
// leadership change) starts from the recorded status: one failed probe
// degrades an up peer, and a peer recorded down after being seen alive
// needs RiseAfter good probes.
func TestProberNewJudgeKeepsRecordedVerdict(t *testing.T) {
	h, ctx := newHarness(t)
	p, err := h.reg.Create(ctx, peerSpec("steady"), creds("pw"))
	if err != nil {
		t.Fatal(err)
	}
	if p, err = h.reg.ReportHealth(ctx, p.ID, registry.Health{Status: registry.StatusUp, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	h.sync(t, ctx, p.Revision)
	if err := h.snap.WaitIndex(ctx, p.Revision); err != nil {
		t.Fatal(err)
	}
	for { // the pool's record must show the recorded verdict
		changed := h.snap.Changed()
		h.pool.Reconcile(ctx)
		if m, _ := h.pool.Get(p.ID); m.Peer.Status == registry.StatusUp {
			break
		}
		select {
		case <-changed:
		case <-ctx.Done():
			t.Fatal("pool never saw the recorded status")
		}
	}
	c, _ := h.clouds.Load("steady")
	c.(*capacityCloud).setErr(errors.New("blip"))
	peers.NewProber(peers.ProberConfig{Pool: h.pool, Registry: h.reg, Log: logrus.New()}).ProbeAll(ctx)
	got, _ := h.reg.Get(ctx, p.ID)
	if got.Status != registry.StatusDegraded {
		t.Fatalf("one failure by a new judge: %s, want degraded", got.Status)
	}
}
