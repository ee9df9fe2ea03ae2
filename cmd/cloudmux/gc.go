package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sirupsen/logrus"

	"github.com/cloudmux/cloudmux/broker/gc"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
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
}

func defaultGCConfig() GCConfig {
	var c GCConfig
	c.Interval = Duration(gc.DefaultInterval)
	c.Decisions.MaxAge = Duration(policy.DefaultMaxAge)
	c.Decisions.MaxRecords = policy.DefaultMaxRecords
	return c
}

// gcFlags registers serve's retention flags; the returned function
// applies the ones given (flags beat the file and the environment).
func gcFlags(fs *flag.FlagSet) func(*GCConfig) {
	interval := fs.Duration("gc-interval", 0, "time between garbage collection passes (default 10m)")
	decisionsAge := fs.Duration("retain-decisions", 0, "keep placement decision records this long (default 168h)")
	decisionsMax := fs.Int("retain-decisions-max", 0, "keep at most this many placement decision records (default 1000)")
	return func(c *GCConfig) {
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "gc-interval":
				c.Interval = Duration(*interval)
			case "retain-decisions":
				c.Decisions.MaxAge = Duration(*decisionsAge)
			case "retain-decisions-max":
				c.Decisions.MaxRecords = *decisionsMax
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
}

// startGC runs the garbage collectors on whichever broker holds the
// installation's gc lease.
func startGC(cfg Config, store registry.Store, reg prometheus.Registerer, log logrus.FieldLogger,
	goBG func(string, func(context.Context) error), collectors ...gc.Collector) error {
	runner, err := gc.New(gc.Config{Locker: store, Holder: brokerID(cfg), Interval: time.Duration(cfg.GC.Interval),
		Collectors: collectors, Log: log.WithField("component", "gc"), Metrics: reg})
	if err != nil {
		return fmt.Errorf("gc: %w", err)
	}
	goBG("gc", runner.Run)
	return nil
}
