package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// DefaultTTL is how long a reservation outlives the last sign of its
// holder: long against clock skew between brokers and a slow Store write,
// short against a dead broker holding a project's last instance.
const DefaultTTL = time.Minute

// Scope says whose usage a request counts against: a project's, or for
// key_pairs (which Nova counts per user) one user's. Limits are always the
// project's.
type Scope struct {
	Project string
	// User, when set, keeps the usage in the user's record instead of the
	// project's.
	User string
}

func (s Scope) key() (string, error) {
	if s.User != "" {
		if _, err := scopedKey("", s.Project); err != nil {
			return "", err
		}
		return scopedKey("quota-usage/user:", s.User)
	}
	return scopedKey("quota-usage/", s.Project)
}

// record is one scope's usage and the reservations in flight against it.
type record struct {
	Used         Amounts                 `json:"used,omitempty"`
	Reservations map[string]*reservation `json:"reservations,omitempty"`
	// Marks name each writer's last write (a Ledger's, see writerID), so
	// a writer whose answer was lost can tell, by reading the record
	// back, whether its write landed (see writeBatch): a Consul leader
	// dying under a write leaves that unknown. A writer writes a record
	// serially (combine.go), so its mark is exactly its last write.
	Marks map[string]mark `json:"marks,omitempty"`
}

// settlePause waits d (or until ctx ends) and returns the next, longer
// pause.
func settlePause(ctx context.Context, d time.Duration) time.Duration {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return min(2*d, time.Second)
}

// lostSettle bounds how long an update keeps settling a write whose
// answer was lost and trying again: a Consul leader election takes a few
// seconds, several on a loaded machine, and the resource a commit counts
// already exists, so failing it early costs more than waiting.
const lostSettle = 30 * time.Second

// markTTL is how long a writer's mark outlives its last write to the
// record: a broker gone for that long settles nothing any more.
const markTTL = 10 * time.Minute

// mark is a writer's last write to a record.
type mark struct {
	Op string    `json:"op"`
	At time.Time `json:"at"`
}

type reservation struct {
	Amounts  Amounts   `json:"amounts"`
	Expires  time.Time `json:"expires"`
	Holder   string    `json:"holder,omitempty"`
	Resource string    `json:"resource,omitempty"`
}

// reserved sums the reservations not expired at now.
func (r *record) reserved(now time.Time) Amounts {
	sum := Amounts{}
	for _, res := range r.Reservations {
		if now.Before(res.Expires) {
			sum.add(res.Amounts, 1)
		}
	}
	return sum
}

// dropExpired removes the reservations expired at now, reporting whether
// any was.
func (r *record) dropExpired(now time.Time) bool {
	n := len(r.Reservations)
	maps.DeleteFunc(r.Reservations, func(_ string, res *reservation) bool { return !now.Before(res.Expires) })
	return len(r.Reservations) != n
}

// LimitSource gives a project's limits (Limits does).
type LimitSource interface {
	Get(ctx context.Context, project string) (Amounts, error)
}

var _ LimitSource = (*Limits)(nil)

// Ledger counts what projects use and reserves what creates will use,
// against the limits of Limits. Its zero value is not usable: set Store
// and Limits; Holder (the broker's ID) names the reservations it makes.
type Ledger struct {
	Store  Store
	Limits LimitSource
	Holder string
	// TTL is how long a reservation lives without being extended; zero is
	// DefaultTTL. A Reservation extends itself every TTL/3 until it is
	// committed or released.
	TTL time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	Log logrus.FieldLogger
	// Metrics, when set, counts reservations (NewMetrics).
	Metrics *Metrics

	// queues hold the changes waiting for their record's next write, by
	// key (combine.go).
	qmu    sync.Mutex
	queues map[string]*keyQueue
	// writer names this Ledger's writes in the records' marks.
	writerOnce sync.Once
	writer     string
}

func (l *Ledger) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l *Ledger) ttl() time.Duration {
	if l.TTL > 0 {
		return l.TTL
	}
	return DefaultTTL
}

func (l *Ledger) log() logrus.FieldLogger {
	if l.Log != nil {
		return l.Log
	}
	return logrus.StandardLogger()
}

// read returns the scope's record and its index (0: none yet).
func (l *Ledger) read(ctx context.Context, key string) (*record, uint64, error) {
	kv, err := l.Store.Get(ctx, key)
	if errors.Is(err, registry.ErrNotFound) {
		return &record{Used: Amounts{}, Reservations: map[string]*reservation{}}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading %s: %w", key, err)
	}
	rec := &record{}
	if err := json.Unmarshal(kv.Value, rec); err != nil {
		return nil, 0, fmt.Errorf("decoding %s: %w", key, err)
	}
	if rec.Used == nil {
		rec.Used = Amounts{}
	}
	if rec.Reservations == nil {
		rec.Reservations = map[string]*reservation{}
	}
	// A null reservation (a hand-edited record) holds nothing.
	maps.DeleteFunc(rec.Reservations, func(_ string, r *reservation) bool { return r == nil })
	return rec, kv.ModifyIndex, nil
}

// errSkip tells update that change found nothing to write.
var errSkip = errors.New("nothing to change")

// over returns the limits want exceeds, over usage and live reservations.
func over(limits, used, reserved, want Amounts) []Over {
	var out []Over
	for _, k := range slices.Sorted(maps.Keys(want)) {
		n := want[k]
		lim, ok := limits[k]
		if n <= 0 || !ok || lim < 0 {
			continue
		}
		if u := used[k] + reserved[k]; u+n > lim {
			out = append(out, Over{Resource: k, Requested: n, Used: u, Limit: lim})
		}
	}
	return out
}

// positive returns want without its zero and negative amounts, or an
// error naming an unknown dimension.
func positive(want Amounts) (Amounts, error) {
	out := Amounts{}
	for k, v := range want {
		if !Known(k) {
			return nil, fmt.Errorf("%w: unknown quota resource %s", ErrInvalid, k)
		}
		if v > 0 {
			out[k] = v
		}
	}
	return out, nil
}

// Check says whether want fits the project's quota now, without reserving
// it: a deployment's plan uses it to fail early, naming the resource and
// the numbers. Only Reserve guarantees the fit.
func (l *Ledger) Check(ctx context.Context, s Scope, want Amounts) error {
	want, err := positive(want)
	if err != nil {
		return err
	}
	limits, err := l.Limits.Get(ctx, s.Project)
	if err != nil {
		return err
	}
	used, reserved, err := l.Usage(ctx, s)
	if err != nil {
		return err
	}
	if o := over(limits, used, reserved, want); len(o) > 0 {
		return &OverError{Project: s.Project, Over: o}
	}
	return nil
}

// Usage returns what the scope uses and what live reservations hold.
func (l *Ledger) Usage(ctx context.Context, s Scope) (used, reserved Amounts, err error) {
	key, err := s.key()
	if err != nil {
		return nil, nil, err
	}
	rec, _, err := l.read(ctx, key)
	if err != nil {
		return nil, nil, err
	}
	return rec.Used, rec.reserved(l.now()), nil
}

// Reserve sets want aside for a create, or refuses with *OverError when
// the project's usage, its live reservations and want together exceed a
// limit. what names the resource being made (logs and the record). The
// reservation keeps itself alive until Commit or Release; one of them
// must be called.
func (l *Ledger) Reserve(ctx context.Context, s Scope, want Amounts, what string) (_ *Reservation, err error) {
	want, err = positive(want)
	if err == nil && len(want) > 0 {
		defer func() { l.Metrics.reserved(err) }()
	}
	if err != nil {
		return nil, err
	}
	r := &Reservation{ledger: l, scope: s, id: uuid.NewString(), amounts: want, done: make(chan struct{})}
	if len(want) == 0 {
		r.finished = true // nothing to hold: Commit and Release do nothing
		return r, nil
	}
	limits, err := l.Limits.Get(ctx, s.Project)
	if err != nil {
		return nil, err
	}
	err = l.update(ctx, s, func(rec *record, now time.Time) error {
		reserved := rec.reserved(now)
		if o := over(limits, rec.Used, reserved, want); len(o) > 0 {
			return &OverError{Project: s.Project, Over: o}
		}
		rec.Reservations[r.id] = &reservation{Amounts: want, Expires: now.Add(l.ttl()), Holder: l.Holder, Resource: what}
		r.seen = Snapshot{Limits: limits, Used: rec.Used.Clone(), Reserved: reserved}
		return nil
	})
	if err != nil {
		return nil, err
	}
	go r.keepAlive()
	return r, nil
}

// Free gives back what a deleted resource used. Usage never goes below 0.
func (l *Ledger) Free(ctx context.Context, s Scope, amounts Amounts) error {
	amounts, err := positive(amounts)
	if err != nil || len(amounts) == 0 {
		return err
	}
	return l.update(ctx, s, func(rec *record, _ time.Time) error {
		rec.Used.add(amounts, -1)
		return nil
	})
}

// SetUsage replaces the named dimensions of the scope's usage: a
// reconciler that counted the resources corrects drift with it.
func (l *Ledger) SetUsage(ctx context.Context, s Scope, used Amounts) error {
	if _, err := positive(used); err != nil {
		return err
	}
	return l.update(ctx, s, func(rec *record, _ time.Time) error {
		for k, v := range used {
			if v > 0 {
				rec.Used[k] = v
			} else {
				delete(rec.Used, k)
			}
		}
		return nil
	})
}

// Reservation is usage set aside for one create.
type Reservation struct {
	ledger  *Ledger
	scope   Scope
	id      string
	amounts Amounts

	seen     Snapshot
	mu       sync.Mutex
	finished bool
	done     chan struct{}
}

// Snapshot is a scope's limits and usage as a reservation found them.
type Snapshot struct {
	Limits Amounts
	// Used and Reserved leave out the reservation that took the snapshot.
	Used, Reserved Amounts
}

// Seen returns the limits and the usage the reservation was checked
// against (without itself): what a placement policy is told, with no
// second read of the store.
func (r *Reservation) Seen() Snapshot { return r.seen }

// Amounts returns what the reservation holds.
func (r *Reservation) Amounts() Amounts { return r.amounts.Clone() }

// finish marks the reservation done once, stopping its renewal; it
// reports false when it already was.
func (r *Reservation) finish() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.finished {
		return false
	}
	r.finished = true
	close(r.done)
	return true
}

// Commit turns the reservation into usage: the resource exists. A
// reservation that expired meanwhile (its renewals failed) is counted all
// the same, since the resource exists; committing twice does nothing.
func (r *Reservation) Commit(ctx context.Context) error {
	if !r.finish() {
		return nil
	}
	r.ledger.Metrics.ended("commit")
	return r.ledger.update(ctx, r.scope, func(rec *record, _ time.Time) error {
		delete(rec.Reservations, r.id)
		rec.Used.add(r.amounts, 1)
		return nil
	})
}

// Release gives the reservation back: the create failed. Releasing twice,
// or after Commit, does nothing.
func (r *Reservation) Release(ctx context.Context) error {
	if !r.finish() {
		return nil
	}
	r.ledger.Metrics.ended("release")
	return r.ledger.update(ctx, r.scope, func(rec *record, _ time.Time) error {
		if _, ok := rec.Reservations[r.id]; !ok {
			return errSkip
		}
		delete(rec.Reservations, r.id)
		return nil
	})
}

// keepAlive extends the reservation every TTL/3 until it is finished.
// A failed extension is retried at the next tick; if every one fails the
// reservation expires, which errs towards the project (its quota frees).
func (r *Reservation) keepAlive() {
	l := r.ledger
	t := time.NewTicker(l.ttl() / 3)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.ttl()/3)
		err := l.update(ctx, r.scope, func(rec *record, now time.Time) error {
			res, ok := rec.Reservations[r.id]
			if !ok {
				return errSkip
			}
			res.Expires = now.Add(l.ttl())
			return nil
		})
		cancel()
		if err != nil {
			l.log().WithError(err).WithField("project", r.scope.Project).Warn("quota reservation not extended")
		}
	}
}

// Quota returns project's limits (the ledger's LimitSource's).
func (l *Ledger) Quota(ctx context.Context, project string) (Amounts, error) {
	return l.Limits.Get(ctx, project)
}

// NewLedger returns a ledger over store with the default limits, its
// reservations named by holder.
func NewLedger(store Store, holder string, log logrus.FieldLogger) *Ledger {
	return &Ledger{Store: store, Limits: &Limits{Store: store}, Holder: holder, Log: log}
}

// Add counts amounts as used without checking any limit: for what exists
// whether or not the project asked (Neutron's default security group, made
// on a project's first look at its groups).
func (l *Ledger) Add(ctx context.Context, s Scope, amounts Amounts) error {
	amounts, err := positive(amounts)
	if err != nil || len(amounts) == 0 {
		return err
	}
	return l.update(ctx, s, func(rec *record, _ time.Time) error {
		rec.Used.add(amounts, 1)
		return nil
	})
}

// Split hands the reservation over to one reservation per part, in one
// write, so what a batch (Nova's multi-create) reserved at once is
// committed or given back resource by resource. The parts must add up to
// what the reservation holds; whats name them. The reservation itself is
// done. Each part's Seen counts the other parts as reserved.
func (r *Reservation) Split(ctx context.Context, parts []Amounts, whats []string) ([]*Reservation, error) {
	sum := Amounts{}
	for _, p := range parts {
		if _, err := positive(p); err != nil {
			return nil, err
		}
		sum.add(p, 1)
	}
	if len(parts) != len(whats) || !maps.Equal(withoutZeros(sum), withoutZeros(r.amounts)) {
		return nil, fmt.Errorf("quota: splitting a reservation of %v into parts adding to %v: %w", r.amounts, sum, ErrInvalid)
	}
	if !r.finish() {
		return nil, fmt.Errorf("quota: splitting a reservation already committed or released: %w", ErrInvalid)
	}
	l := r.ledger
	out := make([]*Reservation, len(parts))
	for i, p := range parts {
		seen := Snapshot{Limits: r.seen.Limits, Used: r.seen.Used, Reserved: r.seen.Reserved.Clone()}
		if seen.Reserved == nil {
			seen.Reserved = Amounts{}
		}
		for j, q := range parts {
			if j != i {
				seen.Reserved.add(q, 1)
			}
		}
		out[i] = &Reservation{ledger: l, scope: r.scope, id: uuid.NewString(), amounts: p.Clone(), seen: seen, done: make(chan struct{})}
	}
	if len(r.amounts) > 0 {
		err := l.update(ctx, r.scope, func(rec *record, now time.Time) error {
			old, ok := rec.Reservations[r.id]
			if !ok {
				return fmt.Errorf("quota: reservation %s expired before it was split: %w", r.id, ErrInvalid)
			}
			delete(rec.Reservations, r.id)
			for i, part := range out {
				rec.Reservations[part.id] = &reservation{Amounts: part.amounts, Expires: now.Add(l.ttl()), Holder: old.Holder, Resource: whats[i]}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, part := range out {
		if len(part.amounts) == 0 {
			part.finished = true
			continue
		}
		go part.keepAlive()
	}
	return out, nil
}

func withoutZeros(a Amounts) Amounts {
	out := Amounts{}
	for k, v := range a {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}
