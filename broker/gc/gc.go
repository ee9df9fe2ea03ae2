package gc

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/registry"
)

// Collector removes the records of one kind that are past retention; see
// the package documentation.
type Collector interface {
	Name() string
	Collect(ctx context.Context, now time.Time) (removed int, err error)
}

// Defaults of Config.
const (
	DefaultKey      = "leader/gc"
	DefaultInterval = 10 * time.Minute
	// leaseTTL: a broker that dies holding the lease gives it up this long
	// after its last renewal.
	leaseTTL = 3 * registry.MinLockTTL
)

// Config wires a Runner.
type Config struct {
	// Locker is the Store the lease is taken in.
	Locker registry.Locker
	// Key is the lease's key (default DefaultKey); Holder names this
	// broker in it.
	Key, Holder string
	// Interval is the time between passes (default DefaultInterval).
	Interval time.Duration
	// Collectors are the installation's: run by the lease holder only.
	Collectors []Collector
	// Local are this broker's own (what its in-process local cloud
	// keeps): run on every pass, lease or not.
	Local []Collector
	Log   logrus.FieldLogger
	// Metrics, when set, gets the cloudmux_gc_* collectors.
	Metrics prometheus.Registerer
	// Now is the clock passes read (default time.Now).
	Now func() time.Time
}

// Runner runs the collectors on one broker at a time.
type Runner struct {
	cfg     Config
	removed *prometheus.CounterVec
	failed  *prometheus.CounterVec
	seconds *prometheus.HistogramVec

	mu    sync.Mutex
	lease registry.Lease // held while this broker collects
}

// New returns a Runner; it registers its metrics with cfg.Metrics.
func New(cfg Config) (*Runner, error) {
	if cfg.Locker == nil {
		return nil, errors.New("gc: a Locker is needed")
	}
	if cfg.Key == "" {
		cfg.Key = DefaultKey
	}
	if cfg.Interval <= 0 {
		cfg.Interval = DefaultInterval
	}
	if cfg.Log == nil {
		cfg.Log = logrus.StandardLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	r := &Runner{cfg: cfg,
		removed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cloudmux", Subsystem: "gc", Name: "removed_total",
			Help: "Records garbage collection removed, by collector."}, []string{"collector"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cloudmux", Subsystem: "gc", Name: "errors_total",
			Help: "Garbage collection passes that ended in an error, by collector."}, []string{"collector"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "cloudmux", Subsystem: "gc", Name: "pass_seconds",
			Help: "Duration of a collector's pass.", Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"collector"}),
	}
	if cfg.Metrics != nil {
		for _, c := range []prometheus.Collector{r.removed, r.failed, r.seconds} {
			if err := cfg.Metrics.Register(c); err != nil {
				return nil, fmt.Errorf("gc: metrics: %w", err)
			}
		}
	}
	return r, nil
}

// Run passes every Interval, from now, until ctx ends; then it releases
// the lease so another broker takes over without waiting out its TTL.
func (r *Runner) Run(ctx context.Context) error {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = r.Release(rctx)
	}()
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := r.Pass(ctx); err != nil && ctx.Err() == nil {
			r.cfg.Log.WithError(err).Warn("gc: pass incomplete; the next one continues")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Pass runs the Local collectors, then, if this broker holds (or now
// takes) the lease, the installation's, and reports whether it held the
// lease. A collector's error does not stop the others; the errors come
// back joined.
func (r *Runner) Pass(ctx context.Context) (bool, error) {
	now := r.cfg.Now()
	errs := []error{r.run(ctx, now, r.cfg.Local)}
	lease, err := r.lead(ctx)
	if lease == nil {
		return false, errors.Join(append(errs, err)...)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-lease.Lost():
			cancel() // another broker may collect now
		case <-ctx.Done():
		}
	}()
	return true, errors.Join(append(errs, r.run(ctx, now, r.cfg.Collectors))...)
}

// run runs collectors one after the other, logging and counting each.
func (r *Runner) run(ctx context.Context, now time.Time, collectors []Collector) error {
	var errs []error
	for _, c := range collectors {
		name := c.Name()
		if ctx.Err() != nil {
			errs = append(errs, fmt.Errorf("gc: %s not run: %w", name, ctx.Err()))
			continue
		}
		start := time.Now()
		n, err := c.Collect(ctx, now)
		took := time.Since(start)
		r.removed.WithLabelValues(name).Add(float64(n))
		r.seconds.WithLabelValues(name).Observe(took.Seconds())
		l := r.cfg.Log.WithFields(logrus.Fields{"collector": name, "removed": n, "took": took.Round(time.Millisecond)})
		switch {
		case err != nil:
			r.failed.WithLabelValues(name).Inc()
			l.WithError(err).Warn("gc: collector failed")
			errs = append(errs, fmt.Errorf("gc: %s: %w", name, err))
		case n > 0:
			l.Info("gc: collected")
		default:
			l.Debug("gc: nothing to collect")
		}
	}
	return errors.Join(errs...)
}

// lead returns the lease this broker holds, taking it if it is free; nil
// when another broker holds it (no error) or the store failed (the error).
func (r *Runner) lead(ctx context.Context) (registry.Lease, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.lease != nil {
		select {
		case <-r.lease.Lost():
			r.cfg.Log.Warn("gc: lost the lease; another broker may collect")
			r.lease = nil
		default:
			return r.lease, nil
		}
	}
	lease, err := r.cfg.Locker.TryLock(ctx, r.cfg.Key, []byte(r.cfg.Holder), leaseTTL)
	if errors.Is(err, registry.ErrLockHeld) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("gc: take the lease: %w", err)
	}
	r.cfg.Log.WithField("holder", r.cfg.Holder).Info("gc: this broker collects garbage")
	r.lease = lease
	return lease, nil
}

// Release gives the lease up, if held: another broker collects from its
// next pass.
func (r *Runner) Release(ctx context.Context) error {
	r.mu.Lock()
	lease := r.lease
	r.lease = nil
	r.mu.Unlock()
	if lease == nil {
		return nil
	}
	return lease.Release(ctx)
}
