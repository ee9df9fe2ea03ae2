package peers

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Connector builds a Cloud for a peer record. The pool calls it when a peer
// appears or its connection settings (kind, endpoint, credentials) change.
type Connector func(ctx context.Context, p registry.Peer, creds registry.Credentials) (Cloud, error)

// PeerSource is the part of registry.PeerSnapshot the pool follows.
type PeerSource interface {
	View() *registry.PeerView
	Changed() <-chan struct{}
}

// CredentialSource reads a peer's stored credentials.
type CredentialSource interface {
	Credentials(ctx context.Context, p registry.Peer) (registry.Credentials, error)
}

// Member is one peer of the pool: its latest record and its connection.
// Cloud is nil while the peer cannot be connected; Err says why.
type Member struct {
	Peer  registry.Peer
	Cloud Cloud
	Err   error

	fingerprint string
	attemptedAt time.Time // last connection attempt
}

// Usable reports whether new work may go to the member: connected, and up
// or degraded.
func (m *Member) Usable() bool {
	return m.Cloud != nil && (m.Peer.Status == registry.StatusUp || m.Peer.Status == registry.StatusDegraded)
}

// Pool is the live set of connected clouds. Reads (Get, Members) are lock-free
// loads of an immutable map; Run reconciles it with the registry snapshot.
type Pool struct {
	source     PeerSource
	creds      CredentialSource
	connectors map[registry.Kind]Connector
	inProcess  map[string]Cloud
	log        logrus.FieldLogger
	retry      time.Duration

	members atomic.Pointer[map[string]*Member]
	mu      sync.Mutex // serializes reconciles
	changed chan struct{}
}

// PoolConfig wires a Pool.
type PoolConfig struct {
	Source      PeerSource
	Credentials CredentialSource
	Connectors  map[registry.Kind]Connector
	// InProcess are clouds living in this process (the local cloud), by
	// peer name, serving local-kind peers. Their owner closes them; the pool
	// never does, since a reconnect hands out the same instance again.
	InProcess map[string]Cloud
	Log       logrus.FieldLogger
	// RetryInterval is how often peers that failed to connect are retried.
	RetryInterval time.Duration
}

// NewPool returns an empty pool; call Run (or Reconcile) to fill it.
func NewPool(cfg PoolConfig) *Pool {
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 30 * time.Second
	}
	p := &Pool{
		source: cfg.Source, creds: cfg.Credentials, connectors: cfg.Connectors, inProcess: cfg.InProcess,
		log: cfg.Log, retry: cfg.RetryInterval, changed: make(chan struct{}),
	}
	empty := map[string]*Member{}
	p.members.Store(&empty)
	return p
}

// Get returns the member with this peer ID.
func (p *Pool) Get(id string) (*Member, bool) {
	m, ok := (*p.members.Load())[id]
	return m, ok
}

// Lookup finds a member by peer ID or name.
func (p *Pool) Lookup(idOrName string) (*Member, bool) {
	if m, ok := p.Get(idOrName); ok {
		return m, true
	}
	if pr, ok := p.source.View().Lookup(idOrName); ok {
		return p.Get(pr.ID)
	}
	return nil, false
}

// Members returns every member sorted by peer name.
func (p *Pool) Members() []*Member {
	ms := *p.members.Load()
	out := make([]*Member, 0, len(ms))
	for _, m := range ms {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Peer.Name < out[j].Peer.Name })
	return out
}

// Changed returns a channel closed after the next reconcile that changed
// the pool.
func (p *Pool) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// Run reconciles on every snapshot change, and periodically to retry
// peers that failed to connect, until ctx ends. On return every
// connection is closed.
func (p *Pool) Run(ctx context.Context) error {
	ticker := time.NewTicker(p.retry)
	defer ticker.Stop()
	defer p.closeAll()
	for {
		changed := p.source.Changed()
		p.Reconcile(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-ticker.C:
		}
	}
}

// connFingerprint is what forces a reconnect when it changes.
func connFingerprint(pr registry.Peer) string {
	return fmt.Sprintf("%s|%+v|%s|%d", pr.Kind, pr.Endpoint, pr.CredentialsRef, pr.CredentialsUpdatedAt.UnixNano())
}

// Reconcile brings the members in line with the current registry view:
// connect new peers, reconnect changed ones, close removed ones, and refresh
// every member's record. A peer that failed to connect is retried when its
// connection settings change or RetryInterval has passed, not on every
// registry change. Connections are made in parallel, so one slow cloud does
// not hold up the others; reads of the pool never wait for any of this.
func (p *Pool) Reconcile(ctx context.Context) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := *p.members.Load()
	view := p.source.View()
	next := make(map[string]*Member, view.Len())
	var toConnect []*Member
	now := time.Now()
	for _, pr := range view.List() {
		fp := connFingerprint(pr)
		m, had := old[pr.ID]
		switch {
		case had && m.fingerprint == fp && (m.Cloud != nil || now.Sub(m.attemptedAt) < p.retry):
			next[pr.ID] = &Member{Peer: pr, Cloud: m.Cloud, Err: m.Err, fingerprint: fp, attemptedAt: m.attemptedAt}
		default:
			if had && m.Cloud != nil {
				p.closeCloud(m.Cloud)
			}
			nm := &Member{Peer: pr, fingerprint: fp, attemptedAt: now}
			next[pr.ID] = nm
			toConnect = append(toConnect, nm)
		}
	}
	var wg sync.WaitGroup
	for _, m := range toConnect {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m.Cloud, m.Err = p.connect(ctx, m.Peer)
			if m.Err != nil {
				p.log.WithError(m.Err).WithFields(logrus.Fields{"peer_id": m.Peer.ID, "peer": m.Peer.Name, "kind": m.Peer.Kind}).Warn("pool: cannot connect peer")
			}
		}()
	}
	wg.Wait()
	for id, m := range old {
		if _, ok := next[id]; !ok && m.Cloud != nil {
			p.closeCloud(m.Cloud)
		}
	}
	p.members.Store(&next)
	close(p.changed)
	p.changed = make(chan struct{})
}

func (p *Pool) connect(ctx context.Context, pr registry.Peer) (Cloud, error) {
	if pr.Kind == registry.KindLocal {
		if c, ok := p.inProcess[pr.Name]; ok {
			return c, nil
		}
	}
	connector, ok := p.connectors[pr.Kind]
	if !ok {
		return nil, fmt.Errorf("peer %q: no driver for kind %q in this broker: %w", pr.Name, pr.Kind, ErrNotSupported)
	}
	creds, err := p.creds.Credentials(ctx, pr)
	if err != nil {
		return nil, fmt.Errorf("peer %q: %w", pr.Name, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return connector(cctx, pr, creds)
}

func (p *Pool) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range *p.members.Load() {
		if m.Cloud != nil {
			p.closeCloud(m.Cloud)
		}
	}
}

// closeCloud closes a connection the pool made, if it holds resources
// (io.Closer). In-process clouds belong to their owner and stay open.
func (p *Pool) closeCloud(c Cloud) {
	for _, own := range p.inProcess {
		if own == c {
			return
		}
	}
	if cl, ok := c.(io.Closer); ok {
		_ = cl.Close()
	}
}

// Candidates splits members into the connected peers, which are what
// placement chooses among, and the names of the others, which a refusal
// names as reasons.
func Candidates(members []*Member) (connected []registry.Peer, disconnected []string) {
	for _, m := range members {
		if m.Cloud != nil {
			connected = append(connected, m.Peer)
		} else {
			disconnected = append(disconnected, m.Peer.Name)
		}
	}
	return connected, disconnected
}

// Named reports whether one of members is called name: each peer is an
// availability zone, so this is the check that a zone exists.
func Named(members []*Member, name string) bool {
	for _, m := range members {
		if m.Peer.Name == name {
			return true
		}
	}
	return false
}
