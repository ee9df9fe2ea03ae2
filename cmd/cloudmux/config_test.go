package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestConfigLayers: defaults, then the file, then the environment; a map in
// the file replaces the default rather than merging into it.
func TestConfigLayers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cloudmux.yaml")
	content := "listen: 127.0.0.1:9000\nprober: {interval: 30s}\nlocal_cloud: {enabled: true, driver: fake, labels: {zone: a}}\nstore: {consul: {address: 127.0.0.1:8501}}\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CONSUL_HTTP_ADDR": "127.0.0.1:8502", "CLOUDMUX_LOG_LEVEL": "debug"}
	tests := []struct {
		name string
		env  bool
		got  func(Config) any
		want any
	}{
		{"file beats default", false, func(c Config) any { return c.Listen }, "127.0.0.1:9000"},
		{"default kept", false, func(c Config) any { return c.Prober.Timeout }, Duration(5 * time.Second)},
		{"file duration", false, func(c Config) any { return c.Prober.Interval }, Duration(30 * time.Second)},
		{"file map replaces default", false, func(c Config) any { return len(c.LocalCloud.Labels) == 1 && c.LocalCloud.Labels["zone"] == "a" }, true},
		{"env beats file", true, func(c Config) any { return c.Store.Consul.Address }, "127.0.0.1:8502"},
		{"env sets unset", true, func(c Config) any { return c.Log.Level }, "debug"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			if err := cfg.loadFile(path); err != nil {
				t.Fatal(err)
			}
			cfg.applyDefaults()
			if tc.env {
				cfg.applyEnv(func(k string) string { return env[k] })
			}
			if got := tc.got(cfg); got != tc.want {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
	cfg := defaultConfig()
	cfg.applyDefaults()
	if cfg.Store.Consul.Address != "127.0.0.1:8500" {
		t.Fatalf("default Consul address = %q, want Consul's own default", cfg.Store.Consul.Address)
	}
	if cfg.LocalCloud.Labels["tier"] != "private" {
		t.Fatalf("default labels = %v, want tier=private", cfg.LocalCloud.Labels)
	}
}

// TestClientFilesQuoting: any password survives both files intact; nothing
// in it runs when openrc is sourced.
func TestClientFilesQuoting(t *testing.T) {
	dir := t.TempDir()
	password := `it's $HOME; $(touch ` + filepath.Join(dir, "pwned") + `) "quoted" \ ` + "`x`"
	if err := writeClientFiles(dir, "http://127.0.0.1:8080", password, ""); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("bash", "-c", `source "$1/openrc" && printf %s "$OS_PASSWORD"`, "bash", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != password {
		t.Fatalf("openrc gave %q, want %q", out, password)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Fatal("sourcing openrc ran code from the password")
	}
	raw, err := os.ReadFile(filepath.Join(dir, "clouds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Clouds map[string]struct {
			Auth struct {
				Password string `yaml:"password"`
			} `yaml:"auth"`
		} `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil || doc.Clouds["cloudmux"].Auth.Password != password {
		t.Fatalf("clouds.yaml password = %q, %v", doc.Clouds["cloudmux"].Auth.Password, err)
	}
}
