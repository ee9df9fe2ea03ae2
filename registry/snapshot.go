package registry

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sirupsen/logrus"
)

// PeerView is an immutable view of the pool at one store index. Lookups on
// it are map reads: the request hot path never calls the store.
type PeerView struct {
	Index  uint64
	byID   map[string]Peer
	byName map[string]string
	sorted []Peer
}

// Get returns the peer with this ID.
func (v *PeerView) Get(id string) (Peer, bool) {
	p, ok := v.byID[id]
	return p, ok
}

// Lookup finds a peer by ID or by name.
func (v *PeerView) Lookup(idOrName string) (Peer, bool) {
	if p, ok := v.byID[idOrName]; ok {
		return p, true
	}
	if id, ok := v.byName[idOrName]; ok {
		return v.byID[id], true
	}
	return Peer{}, false
}

// List returns the peers sorted by name. The slice is shared: do not modify.
func (v *PeerView) List() []Peer { return v.sorted }

// Len is the number of peers.
func (v *PeerView) Len() int { return len(v.sorted) }

func newPeerView(peers []Peer, index uint64) *PeerView {
	v := &PeerView{Index: index, byID: make(map[string]Peer, len(peers)), byName: make(map[string]string, len(peers))}
	for _, p := range peers {
		v.byID[p.ID] = p
		v.byName[p.Name] = p.ID
	}
	v.sorted = append([]Peer(nil), peers...)
	sort.Slice(v.sorted, func(i, j int) bool { return v.sorted[i].Name < v.sorted[j].Name })
	return v
}

// PeerSnapshot keeps a PeerView current by watching the store: one blocking
// watch per broker, however many requests read it.
type PeerSnapshot struct {
	store Store
	log   logrus.FieldLogger
	view  atomic.Pointer[PeerView]

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when the view changes
	ready   chan struct{}
	once    sync.Once
}

// NewPeerSnapshot returns a snapshot over store; call Run to fill it.
func NewPeerSnapshot(store Store, log logrus.FieldLogger) *PeerSnapshot {
	s := &PeerSnapshot{store: store, log: log, changed: make(chan struct{}), ready: make(chan struct{})}
	s.view.Store(newPeerView(nil, 0))
	return s
}

// View returns the current view.
func (s *PeerSnapshot) View() *PeerView { return s.view.Load() }

// Ready is closed once the first full load has landed.
func (s *PeerSnapshot) Ready() <-chan struct{} { return s.ready }

// Changed returns a channel closed at the next view change.
func (s *PeerSnapshot) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

// WaitIndex blocks until the view reflects store index idx or later, so a
// writer can read its own write from the snapshot.
func (s *PeerSnapshot) WaitIndex(ctx context.Context, idx uint64) error {
	for {
		ch := s.Changed()
		if s.View().Index >= idx {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Run loads the peers and follows the watch until ctx ends. Store errors
// are logged and retried with capped backoff; the last good view stays in
// place meanwhile, so a Consul blip does not empty the pool.
func (s *PeerSnapshot) Run(ctx context.Context) error {
	var index uint64
	backoff := 100 * time.Millisecond
	// After a Store error, the registry is listed whole once more
	// mirrorResync after the first answer (see mirrorResync).
	var resyncAt time.Time
	recovering := false
	for {
		var kvs []KV
		var next uint64
		var err error
		if !resyncAt.IsZero() && !time.Now().Before(resyncAt) {
			index, resyncAt = 0, time.Time{}
		}
		if index == 0 {
			kvs, next, err = s.store.List(ctx, PeerPrefix)
		} else {
			wctx, cancel := ctx, context.CancelFunc(func() {})
			if !resyncAt.IsZero() {
				wctx, cancel = context.WithDeadline(ctx, resyncAt)
			}
			kvs, next, err = s.store.Watch(wctx, PeerPrefix, index)
			cancel()
			if ctx.Err() == nil && wctx.Err() != nil {
				continue // the resync is due
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil {
			s.log.WithError(err).WithField("retry_in", backoff).Warn("peer snapshot: store watch failed")
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return ctx.Err()
			}
			backoff = min(backoff*2, 10*time.Second)
			index = 0 // start over with a full list
			resyncAt, recovering = time.Time{}, true
			continue
		}
		if recovering {
			recovering = false
			resyncAt = time.Now().Add(mirrorResync)
		}
		backoff = 100 * time.Millisecond
		if next == index {
			continue
		}
		index = next
		peers, derr := decodePeers(kvs)
		if derr != nil {
			// A corrupt record is skipped, not fatal: the rest of the
			// pool keeps working and the error says which key is bad.
			s.log.WithError(derr).Error("peer snapshot: skipping undecodable records")
		}
		s.publish(newPeerView(peers, index))
	}
}

func (s *PeerSnapshot) publish(v *PeerView) {
	s.view.Store(v)
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.once.Do(func() { close(s.ready) })
}

// ErrSnapshotNotReady is returned by WaitReady when ctx ends first.
var ErrSnapshotNotReady = errors.New("registry: peer snapshot not loaded yet")

// WaitReady blocks until the first load or ctx's end.
func (s *PeerSnapshot) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return errors.Join(ErrSnapshotNotReady, ctx.Err())
	}
}
