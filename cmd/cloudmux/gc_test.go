package main

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// TestGCConfig: retention comes from the file, flags beat it, and bad
// settings are named.
func TestGCConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloudmux.yaml")
	if err := os.WriteFile(path, []byte("gc: {interval: 5m, decisions: {max_age: 48h, max_records: 50}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		flags []string
		want  GCConfig
		bad   string // the field Validate names, if any
	}{
		{name: "the file", want: gcConfig(5*time.Minute, 48*time.Hour, 50)},
		{name: "flags beat the file", flags: []string{"-retain-decisions", "2h", "-retain-decisions-max", "7"},
			want: gcConfig(5*time.Minute, 2*time.Hour, 7)},
		{name: "interval too short", flags: []string{"-gc-interval", "1s"}, want: gcConfig(time.Second, 48*time.Hour, 50), bad: "gc.interval"},
		{name: "image tombstones", flags: []string{"-retain-image-tombstones", "1h"},
			want: func() GCConfig {
				c := gcConfig(5*time.Minute, 48*time.Hour, 50)
				c.ImageTombstones = Duration(time.Hour)
				return c
			}()},
		{name: "no decisions kept", flags: []string{"-retain-decisions-max", "0"}, want: gcConfig(5*time.Minute, 48*time.Hour, 0),
			bad: "gc.decisions.max_records"},
		{name: "deployments", flags: []string{"-retain-deployments", "2h", "-retain-deployment-events", "10"},
			want: withDeployments(gcConfig(5*time.Minute, 48*time.Hour, 50), 2*time.Hour, 10)},
		{name: "deleted deployments kept too briefly", flags: []string{"-retain-deployments", "1s", "-retain-deployment-events", "0"},
			want: withDeployments(gcConfig(5*time.Minute, 48*time.Hour, 50), time.Second, 0), bad: "gc.deployments.max_age,gc.deployments.max_events"},
		{name: "EC2 IDs", flags: []string{"-retain-ec2-ids", "2h"}, want: withEC2IDs(gcConfig(5*time.Minute, 48*time.Hour, 50), 2*time.Hour)},
		{name: "EC2 IDs kept a negative time", flags: []string{"-retain-ec2-ids", "-1h"},
			want: withEC2IDs(gcConfig(5*time.Minute, 48*time.Hour, 50), -time.Hour), bad: "gc.ec2_ids"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			apply := gcFlags(fs)
			if err := fs.Parse(tc.flags); err != nil {
				t.Fatal(err)
			}
			cfg := defaultConfig()
			cfg.applyDev()
			if err := cfg.loadFile(path); err != nil {
				t.Fatal(err)
			}
			apply(&cfg.GC)
			if cfg.GC != tc.want {
				t.Fatalf("= %+v, want %+v", cfg.GC, tc.want)
			}
			var fields []string
			for _, fe := range registry.FieldErrors(cfg.Validate()) {
				fields = append(fields, fe.Field)
			}
			if got := strings.Join(fields, ","); got != tc.bad {
				t.Fatalf("invalid fields %q, want %q", got, tc.bad)
			}
		})
	}
}

func gcConfig(interval, age time.Duration, records int) GCConfig {
	c := defaultGCConfig()
	c.Interval, c.Decisions.MaxAge, c.Decisions.MaxRecords = Duration(interval), Duration(age), records
	return c
}

func withEC2IDs(c GCConfig, age time.Duration) GCConfig {
	c.EC2IDs = Duration(age)
	return c
}

func withDeployments(c GCConfig, age time.Duration, events int) GCConfig {
	c.Deployments.MaxAge, c.Deployments.MaxEvents = Duration(age), events
	return c
}
