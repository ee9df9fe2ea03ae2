package consul

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Sessions are created with a lock-delay of zero. Consul's default (15s)
// keeps a key whose session was invalidated from being locked again for that
// long, to give the old holder time to notice it lost the lock. We want the
// memory backend's behaviour (a freed lock is free at once), and the lease
// watches its key so the old holder notices within a round trip instead.
// The client library cannot send zero (api.SessionEntry omits a zero
// LockDelay and the server then applies 15s), so sessions are created
// through the raw endpoint with an explicit "0s". Zero also lets Release
// free the key by destroying the session alone (see Release).
type sessionCreate struct {
	Name          string
	TTL           string
	Behavior      string
	LockDelay     string
	NodeChecks    []string           `json:",omitempty"`
	ServiceChecks []api.ServiceCheck `json:",omitempty"`
}

// cleanupTimeout bounds the calls that clean up after a failed TryLock or a
// Release whose context had already ended.
const cleanupTimeout = 5 * time.Second

// retryPause spaces the lease's key watch's retries while Consul is
// unreachable. Losing the lease on an outage is the renewer's decision
// (it gives up after one TTL), not the watcher's.
const retryPause = time.Second

// TryLock implements registry.Locker with a Consul session: a TTL session
// with the release behaviour, then an acquire of the key holding holder.
// The lease renews the session in the background and watches the key.
func (s *Store) TryLock(ctx context.Context, key string, holder []byte, ttl time.Duration) (_ registry.Lease, err error) {
	defer s.track(ctx, "lock")(&err)
	full, err := s.fullKey(key)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("consul: lock %q: %w", key, err)
	}
	ttl = registry.ClampTTL(ttl)
	var created struct{ ID string }
	sessionStart := time.Now() // Consul's TTL clock starts no earlier than this
	create := sessionCreate{
		Name:      "cloudmux lock " + key,
		TTL:       ttl.String(),
		Behavior:  api.SessionBehaviorRelease,
		LockDelay: "0s",
	}
	create.NodeChecks, create.ServiceChecks = s.sessionChecks()
	_, err = s.client.Raw().Write("/v1/session/create", create, &created, writeOpts(ctx))
	if err != nil && len(create.ServiceChecks) > 0 && (strings.Contains(err.Error(), "critical state") || strings.Contains(err.Error(), "Missing check")) {
		// Our liveness check is critical (this process stalled past its
		// TTL and has not set it passing again yet), or the servers do not
		// know it yet (the agent's registration reaches the catalog a
		// moment later, or this request went to another agent): a session
		// bound to it would be refused, so this one lives by its TTL alone.
		create.NodeChecks, create.ServiceChecks = nil, nil
		_, err = s.client.Raw().Write("/v1/session/create", create, &created, writeOpts(ctx))
	}
	if err != nil {
		return nil, s.fail(ctx, "lock: create session", key, err)
	}
	id := created.ID
	ok, _, err := s.kv.Acquire(&api.KVPair{Key: full, Value: holder, Session: id}, writeOpts(ctx))
	if err != nil || !ok {
		// Destroying the session also frees the key should the acquire have
		// succeeded on the server after our side gave up.
		s.destroySession(ctx, key, id)
		if err != nil {
			return nil, s.fail(ctx, "lock", key, err)
		}
		return nil, fmt.Errorf("consul: lock %q: %w", key, registry.ErrLockHeld)
	}

	runCtx, cancel := context.WithCancel(context.Background())
	l := &lease{
		s:       s,
		key:     key,
		full:    full,
		session: id,
		ttl:     ttl,
		lost:    make(chan struct{}),
		cancel:  cancel,
		log:     s.log.WithFields(logrus.Fields{"key": key, "session": id}),
	}
	l.wg.Add(2)
	go l.renew(runCtx, sessionStart)
	go l.watch(runCtx)
	l.log.WithField("ttl", ttl).Debug("consul: lock acquired")
	return l, nil
}

// destroySession is best-effort cleanup; an undestroyed session expires on
// its own within twice its TTL.
func (s *Store) destroySession(ctx context.Context, key, id string) {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	if _, err := s.client.Session().Destroy(id, writeOpts(dctx)); err != nil {
		s.log.WithError(err).WithFields(logrus.Fields{"key": key, "session": id}).
			Warn("consul: cannot destroy session; it will expire on its own")
	}
}

// lease is a held lock. Two goroutines end it when the lock is gone: the
// renewer, when the session can no longer be renewed (expired, destroyed,
// or Consul unreachable for a whole TTL), and the key watcher, when the key
// no longer names the session (session destroyed by someone else, key
// deleted), which it sees within a round trip.
type lease struct {
	s       *Store
	key     string // as the caller named it
	full    string // with the store's prefix
	session string
	ttl     time.Duration
	log     logrus.FieldLogger

	lost     chan struct{}
	lostOnce sync.Once
	cancel   context.CancelFunc // stops both goroutines
	wg       sync.WaitGroup

	mu       sync.Mutex // serialises Release
	released bool
}

func (l *lease) Key() string           { return l.key }
func (l *lease) Lost() <-chan struct{} { return l.lost }

// end closes Lost once and stops the goroutines; it is how either goroutine
// reports that the lock is gone.
func (l *lease) end(reason string, err error) {
	l.lostOnce.Do(func() {
		entry := l.log.WithField("reason", reason)
		if err != nil {
			entry = entry.WithError(err)
		}
		entry.Warn("consul: lease lost")
		close(l.lost)
	})
	l.cancel()
}

// renew keeps the session alive with its own loop rather than
// RenewPeriodic, for two reasons. RenewPeriodic checks its deadline only
// between calls and the client has no response timeout, so one stalled
// call (a paused server, a dead connection) could block it past the TTL
// while Consul frees the lock (lock-delay is zero) and another broker takes
// it, with Lost never closing here. And closing its done channel destroys
// the session, which would race Release.
//
// So: every call is bounded by TTL/3, and an independent timer closes Lost
// whatever calls are in flight, a little (TTL/10) before the earliest moment
// Consul may free the lock: (start of the last successful renew, or of the
// session) + TTL. Giving the lock up slightly early is safe; late is not.
func (l *lease) renew(ctx context.Context, sessionStart time.Time) {
	defer l.wg.Done()
	margin := l.ttl / 10
	expire := time.AfterFunc(l.ttl-margin-time.Since(sessionStart), func() { l.end("session not renewed within its TTL", nil) })
	defer expire.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(l.ttl / 3):
		}
		start := time.Now()
		cctx, cancel := context.WithTimeout(ctx, l.ttl/3)
		entry, _, err := l.s.client.Session().Renew(l.session, writeOpts(cctx))
		cancel()
		switch {
		case ctx.Err() != nil:
			return // stopped by Release or by the watcher
		case err != nil:
			l.log.WithError(err).Debug("consul: session renewal failed; retrying until the TTL runs out")
		case entry == nil:
			l.end("session expired or destroyed", api.ErrSessionExpired)
			return
		default:
			expire.Reset(l.ttl - margin - time.Since(start))
		}
	}
}

// watch follows the key with blocking queries until it no longer names the
// session.
func (l *lease) watch(ctx context.Context) {
	defer l.wg.Done()
	var index uint64 // 0: the first read answers at once, checking the acquire
	for {
		q := (&api.QueryOptions{WaitIndex: index, WaitTime: watchWaitTime}).WithContext(ctx)
		pair, meta, err := l.s.kv.Get(l.full, q)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.log.WithError(err).Debug("consul: lease key watch failed; retrying")
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryPause):
			}
			continue
		}
		switch {
		case pair == nil:
			l.end("lock key deleted", nil)
			return
		case pair.Session != l.session:
			l.end("lock key no longer held by the session", nil)
			return
		}
		index = meta.LastIndex
	}
}

// Release implements registry.Lease by destroying the session: with the
// release behaviour Consul then clears the key's session in the same Raft
// write, keeping the key and its value, as the memory backend does. An
// explicit KV release first would not do: Consul's `?release=` is a PUT
// whose body becomes the key's new value, so it would blank (or race) the
// holder's value; and the lock-delay that normally makes "release, then
// destroy" the safe order is zero for these sessions.
//
// If ctx has already ended, the call runs on a short detached context
// anyway, since Release is typically deferred on a shutdown path whose
// context is gone; ctx.Err() is still returned, as the memory backend does.
// A Release that could not reach Consul can be retried; the session
// otherwise expires within twice the TTL.
func (l *lease) Release(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	l.cancel()
	l.wg.Wait()
	l.lostOnce.Do(func() { close(l.lost) })

	callCtx := ctx
	if ctx.Err() != nil {
		var cancel context.CancelFunc
		callCtx, cancel = context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
		defer cancel()
	}
	// Destroying a session that is already gone (the lease was lost)
	// succeeds, so a lost lease releases cleanly too.
	if _, err := l.s.client.Session().Destroy(l.session, writeOpts(callCtx)); err != nil {
		return l.s.fail(callCtx, "release", l.key, err)
	}
	l.released = true
	l.log.Debug("consul: lock released")
	return ctx.Err()
}
