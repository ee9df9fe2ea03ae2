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
	"github.com/cloudmux/cloudmux/templates/deploy"
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
	Deployments struct {
		// MaxAge: a deleted deployment's record and events go this long
		// after the delete.
		MaxAge Duration `yaml:"max_age"`
		// MaxEvents bounds each deployment's event log (the newest stay).
		MaxEvents int `yaml:"max_events"`
	} `yaml:"deployments"`
}

func defaultGCConfig() GCConfig {
	var c GCConfig
	c.Interval = Duration(gc.DefaultInterval)
	c.Decisions.MaxAge = Duration(policy.DefaultMaxAge)
	c.Decisions.MaxRecords = policy.DefaultMaxRecords
	c.Deployments.MaxAge = Duration(deploy.DefaultRetention)
	c.Deployments.MaxEvents = deploy.DefaultMaxEvents
	return c
}

// gcFlags registers serve's retention flags; the returned function
// applies the ones given (flags beat the file and the environment).
func gcFlags(fs *flag.FlagSet) func(*GCConfig) {
	interval := fs.Duration("gc-interval", 0, "time between garbage collection passes (default 10m)")
	decisionsAge := fs.Duration("retain-decisions", 0, "keep placement decision records this long (default 168h)")
	decisionsMax := fs.Int("retain-decisions-max", 0, "keep at most this many placement decision records (default 1000)")
	deployments := fs.Duration("retain-deployments", 0, "keep deleted deployments and their events this long (default 168h)")
	events := fs.Int("retain-deployment-events", 0, "keep at most this many events of each deployment (default 1000)")
	return func(c *GCConfig) {
		fs.Visit(func(f *flag.Flag) {
			switch f.Name {
			case "gc-interval":
				c.Interval = Duration(*interval)
			case "retain-decisions":
				c.Decisions.MaxAge = Duration(*decisionsAge)
			case "retain-decisions-max":
				c.Decisions.MaxRecords = *decisionsMax
			case "retain-deployments":
				c.Deployments.MaxAge = Duration(*deployments)
			case "retain-deployment-events":
				c.Deployments.MaxEvents = *events
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
	if c.Deployments.MaxAge < Duration(time.Minute) {
		bad("gc.deployments.max_age", "must be at least 1m")
	}
	if c.Deployments.MaxEvents < 1 {
		bad("gc.deployments.max_events", "must be at least 1")
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
