package deploy

import (
	"context"
	"strings"
	"time"
)

// lockWatchPause spaces the answers of the lock watch: each answer is the
// whole lock prefix, and a burst of lease changes (many deployments
// starting) is read once per pause, not once per change.
const lockWatchPause = time.Second

// watchLocks resumes a deployment as soon as its lease is freed, instead
// of at the next ResumeInterval tick: the lock keys stay when their
// session ends (Consul's release behaviour), without a session. A freed
// lock of a deployment still in progress means its owner died (or stopped
// mid-run); every engine tries it and the lease picks one. Locks the
// periodic Resume covers (deployments never locked) are not its concern.
func (e *Engine) watchLocks(ctx context.Context) {
	if e.Records != nil {
		// Its statuses settle most freed locks without a Store read.
		if err := e.Records.WaitReady(ctx); err != nil {
			return
		}
	}
	var index uint64
	held := map[string]bool{} // deployment ID -> its lock had a session at the last answer
	backoff := lockWatchPause
	for {
		kvs, next, err := e.Store.Watch(ctx, lockPrefix, index)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			e.log().WithError(err).Debug("deploy: lock watch failed; retrying")
			if !pause(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, 30*time.Second)
			index = 0
			continue
		}
		backoff = lockWatchPause
		first := index == 0
		index = next
		now := make(map[string]bool, len(kvs))
		for _, kv := range kvs {
			id := strings.TrimPrefix(kv.Key, lockPrefix)
			now[id] = kv.Session != ""
			// News is a lock seen held and now free, or, in the first
			// answer after a (re)start, any free lock (a second try of one
			// Resume also starts costs nothing: the engine runs an ID once).
			// Our own run that ended in progress is left to the periodic
			// Resume: resuming it at once would spin on a run that keeps
			// failing.
			// A lock new since the last answer and free already was taken
			// and freed in between (its holder died at once): news too.
			_, known := held[id]
			if kv.Session == "" && (first || held[id] || !known) && string(kv.Value) != e.Holder {
				e.resumeFreed(ctx, id)
			}
		}
		held = now
		if !pause(ctx, lockWatchPause) {
			return
		}
	}
}

// resumeFreed starts a run of deployment id if it is still in progress.
// Memory answers for the many settled deployments whose lock keys stay;
// Run reads the record itself before it works.
func (e *Engine) resumeFreed(ctx context.Context, id string) {
	if st, ok := e.Records.status(id); ok && !st.InProgress() {
		return
	}
	d, err := e.Get(ctx, id)
	if err != nil || !d.Status.InProgress() {
		return
	}
	e.log().WithField("deployment", id).Info("deploy: its lease was freed mid-run; resuming it")
	e.startWith(ctx, id)
}

func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// stepAside removes the lock key of a deployment this engine stops
// running while it is still in progress (a peer down: retry later; a
// Store error), before the lease is released: a freed lock reads as its
// holder's death, and the lock watch of every other engine would resume
// it at once, in turns, however often it fails. Without the key, the
// periodic Resume takes it up after ResumeInterval. A shutdown keeps the
// key (another engine should take over at once), and so does a lease
// already lost, whose key may be another engine's by now.
func (e *Engine) stepAside(ctx context.Context, id string, lease interface{ Lost() <-chan struct{} }) {
	select {
	case <-lease.Lost():
		return
	default:
	}
	kv, err := e.Store.Get(ctx, lockPrefix+id)
	if err != nil || kv.Session == "" || string(kv.Value) != e.Holder {
		return
	}
	_ = e.Store.DeleteCAS(ctx, lockPrefix+id, kv.ModifyIndex)
}
