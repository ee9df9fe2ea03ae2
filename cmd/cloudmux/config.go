package main

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/tracing"
	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

// Config is `cloudmux serve`'s typed configuration. It is built in layers:
// defaults, then the -config file, then environment variables, then flags,
// then Validate reports every problem at once.
type Config struct {
	Listen   string    `yaml:"listen"`
	DataDir  string    `yaml:"data_dir"`
	BrokerID string    `yaml:"broker_id"`
	Log      LogConfig `yaml:"log"`
	Store    struct {
		// Backend is "consul" or "memory" (memory loses everything on exit:
		// for -dev and experiments).
		Backend string       `yaml:"backend"`
		Consul  ConsulConfig `yaml:"consul"`
	} `yaml:"store"`
	Prober struct {
		Interval Duration `yaml:"interval"`
		Timeout  Duration `yaml:"timeout"`
	} `yaml:"prober"`
	LocalCloud LocalCloudConfig `yaml:"local_cloud"`
	// GC sets the retention of the records that grow with use.
	GC GCConfig `yaml:"gc"`
	// CredentialsKeyFile holds the key (64 hex characters) peer credentials
	// are sealed with in the store. Every replica of an installation needs
	// the same file; a missing file is created with a new key. -dev keeps
	// one in its data dir.
	CredentialsKeyFile string `yaml:"credentials_key_file"`
	// Identity holds the password policy (Keystone's
	// [security_compliance]); the zero value is Keystone's defaults.
	Identity IdentityConfig `yaml:"identity"`
	// TLS serves the API over HTTPS; Metrics protects /metrics.
	TLS     TLSConfig     `yaml:"tls"`
	Metrics MetricsConfig `yaml:"metrics"`
	// Tracing exports OpenTelemetry spans over OTLP/HTTP; off unless
	// tracing.otlp_endpoint (or OTEL_EXPORTER_OTLP_ENDPOINT) is set.
	Tracing tracing.Config `yaml:"tracing"`
	// AdminPassword comes from CLOUDMUX_ADMIN_PASSWORD, never the file;
	// empty in -dev generates one.
	AdminPassword string `yaml:"-"`
	Dev           bool   `yaml:"-"`
	// DevTLS (-dev-tls) generates a CA and a server pair under the data
	// dir; DevCAFile is that CA, written into the client files.
	DevTLS    bool   `yaml:"-"`
	DevCAFile string `yaml:"-"`

	// store, when set, is the Store serve uses instead of the configured
	// backend: in-process tests hand it a registry.Memory whose faults
	// they inject.
	store registry.Store
}

// LogConfig selects level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // auto (text on a terminal, JSON otherwise), text, json
}

// ConsulConfig is the file form of consul.Config.
type ConsulConfig struct {
	Address    string `yaml:"address"`
	Token      string `yaml:"token"`
	Scheme     string `yaml:"scheme"`
	Datacenter string `yaml:"datacenter"`
	KeyPrefix  string `yaml:"key_prefix"`
	TLS        struct {
		CAFile             string `yaml:"ca_file"`
		CertFile           string `yaml:"cert_file"`
		KeyFile            string `yaml:"key_file"`
		ServerName         string `yaml:"server_name"`
		InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	} `yaml:"tls"`
}

// LocalCloudConfig configures the in-process local cloud peer.
type LocalCloudConfig struct {
	Enabled bool `yaml:"enabled"`
	// Name is the peer's name in the registry.
	Name string `yaml:"name"`
	// Driver is "fake" (in-memory, nothing boots) or "libvirt".
	Driver string `yaml:"driver"`
	// FakeTransition is how long the fake driver's guests take to boot,
	// stop or reboot (-dev: 2s, so clients polling once a second see a
	// server in REBOOT as on a real cloud); 0 settles them at once.
	FakeTransition Duration `yaml:"fake_transition"`
	// Seed creates the devstack-like starter image and network.
	Seed   bool              `yaml:"seed"`
	Labels map[string]string `yaml:"labels"`
	// Hosts are the hypervisors (libvirt driver): a name and a libvirt URI
	// each (qemu:///system, qemu+tcp://host/system). Default: this machine.
	Hosts []LocalHost `yaml:"hosts"`
	// Pool and PoolPath name each host's dir storage pool (default
	// "cloudmux" at /var/lib/cloudmux/pool).
	Pool     string `yaml:"pool"`
	PoolPath string `yaml:"pool_path"`
	// SwitchAddr is the address the guest networks' user-space switch
	// listens on, where every guest NIC sends its frames (libvirt driver;
	// default 127.0.0.1, loopback unless CLOUDMUX_ALLOW_PUBLIC_LISTEN=1).
	// Remote hosts need an address they reach, and their nic_addr.
	SwitchAddr string `yaml:"switch_addr"`
	// ObjectQuotaBytes caps the local cloud's object storage (kept under
	// data_dir); 0: the filesystem's size is the limit.
	ObjectQuotaBytes int64 `yaml:"object_quota_bytes"`
}

// LocalHost is one hypervisor of the local cloud. Zero resources are
// asked of the host; smaller values reserve the rest for the host itself.
type LocalHost struct {
	Name string `yaml:"name"`
	URI  string `yaml:"uri"`
	// NICAddr is the host's address its guests' NICs bind (default
	// switch_addr), which the switch sends their frames to.
	NICAddr string `yaml:"nic_addr"`
	VCPUs   int    `yaml:"vcpus"`
	RAMMiB  int    `yaml:"ram_mib"`
	DiskGiB int    `yaml:"disk_gib"`
}

// IdentityConfig configures the identity service.
type IdentityConfig struct {
	Password PasswordConfig `yaml:"password"`
	// LoginThrottle: past Failures failed logins of one user name within
	// Window, a replica answers 429 until the window ends (defaults 20 a
	// minute; failures -1 turns it off).
	LoginThrottle struct {
		Failures int      `yaml:"failures"`
		Window   Duration `yaml:"window"`
	} `yaml:"login_throttle"`
}

// PasswordConfig is identity.PasswordPolicy as the config file writes it.
type PasswordConfig struct {
	MinLength           int      `yaml:"min_length"`
	Regex               string   `yaml:"regex"`
	RegexDescription    string   `yaml:"regex_description"`
	UniqueLastPasswords int      `yaml:"unique_last_passwords"`
	LockoutFailures     int      `yaml:"lockout_failures"`
	LockoutDuration     Duration `yaml:"lockout_duration"`
	ExpiresDays         int      `yaml:"expires_days"`
}

// Policy is the identity package's form.
func (p PasswordConfig) Policy() identity.PasswordPolicy {
	return identity.PasswordPolicy{MinLength: p.MinLength, Regex: p.Regex, RegexDescription: p.RegexDescription,
		UniqueLastPasswords: p.UniqueLastPasswords, LockoutFailures: p.LockoutFailures,
		LockoutDuration: time.Duration(p.LockoutDuration), ExpiresDays: p.ExpiresDays}
}

// Duration reads "10s" style durations from YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as 10s", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

func defaultConfig() Config {
	var c Config
	c.Listen = "127.0.0.1:8080"
	c.Log = LogConfig{Level: "info", Format: "auto"}
	c.Store.Backend = "consul"
	c.Store.Consul.Address = "127.0.0.1:8500" // Consul's own default
	c.Prober.Interval = Duration(10 * time.Second)
	c.Prober.Timeout = Duration(5 * time.Second)
	// Labels stay nil here: YAML would merge a file's map into a default
	// map, so a file could never drop tier=private. See applyDefaults.
	c.LocalCloud = LocalCloudConfig{Enabled: false, Name: "local", Driver: "libvirt"}
	c.GC = defaultGCConfig()
	return c
}

// applyDefaults fills what must not be set before the file is read.
func (c *Config) applyDefaults() {
	if c.LocalCloud.Labels == nil {
		c.LocalCloud.Labels = map[string]string{"tier": "private"}
	}
}

// devConfig is what -dev changes: everything embedded.
func (c *Config) applyDev() {
	c.Dev = true
	c.Store.Backend = "memory"
	c.LocalCloud.Enabled = true
	c.LocalCloud.Driver = "fake"
	c.LocalCloud.Seed = true
	if c.LocalCloud.FakeTransition == 0 {
		c.LocalCloud.FakeTransition = Duration(2 * time.Second)
	}
}

// loadFile overlays a YAML config file; unknown keys are errors, so a typo
// does not silently fall back to a default.
func (c *Config) loadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // an empty file is all defaults
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// applyEnv overlays the environment: CLOUDMUX_* for cloudmux's own settings
// and the standard CONSUL_* variables for the Consul client.
func (c *Config) applyEnv(getenv func(string) string) {
	set := func(dst *string, name string) {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	set(&c.Listen, "CLOUDMUX_LISTEN")
	set(&c.DataDir, "CLOUDMUX_DATA_DIR")
	set(&c.BrokerID, "CLOUDMUX_BROKER_ID")
	set(&c.Log.Level, "CLOUDMUX_LOG_LEVEL")
	set(&c.Log.Format, "CLOUDMUX_LOG_FORMAT")
	set(&c.AdminPassword, "CLOUDMUX_ADMIN_PASSWORD")
	set(&c.CredentialsKeyFile, "CLOUDMUX_CREDENTIALS_KEY_FILE")
	set(&c.TLS.CertFile, "CLOUDMUX_TLS_CERT_FILE")
	set(&c.TLS.KeyFile, "CLOUDMUX_TLS_KEY_FILE")
	set(&c.Metrics.TokenFile, "CLOUDMUX_METRICS_TOKEN_FILE")
	set(&c.Tracing.OTLPEndpoint, "OTEL_EXPORTER_OTLP_ENDPOINT")
	cc := &c.Store.Consul
	set(&cc.Address, "CONSUL_HTTP_ADDR")
	set(&cc.Token, "CONSUL_HTTP_TOKEN")
	set(&cc.TLS.CAFile, "CONSUL_CACERT")
	set(&cc.TLS.CertFile, "CONSUL_CLIENT_CERT")
	set(&cc.TLS.KeyFile, "CONSUL_CLIENT_KEY")
	set(&cc.TLS.ServerName, "CONSUL_TLS_SERVER_NAME")
	if v := getenv("CONSUL_HTTP_SSL"); v == "true" || v == "1" {
		cc.Scheme = "https"
	}
	if v := getenv("CONSUL_HTTP_SSL_VERIFY"); v == "false" || v == "0" {
		cc.TLS.InsecureSkipVerify = true
	}
}

func (c ConsulConfig) toConsul() consul.Config {
	return consul.Config{
		Address: c.Address, Token: c.Token, Scheme: c.Scheme, Datacenter: c.Datacenter, KeyPrefix: c.KeyPrefix,
		TLS: consul.TLSConfig{
			CAFile: c.TLS.CAFile, CertFile: c.TLS.CertFile, KeyFile: c.TLS.KeyFile,
			ServerName: c.TLS.ServerName, InsecureSkipVerify: c.TLS.InsecureSkipVerify,
		},
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &registry.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	checkListen("listen", c.Listen, c.allowPublicListen(), bad)
	if c.DevTLS && !c.Dev {
		bad("-dev-tls", "needs -dev; give a real broker tls.cert_file and tls.key_file")
	}
	c.TLS.validate(c.DevTLS, bad)
	c.Metrics.validate(c.allowPublicListen(), bad)
	problems := c.Tracing.Problems()
	for _, field := range slices.Sorted(maps.Keys(problems)) {
		bad(field, "%s", problems[field])
	}
	if err := identity.NewDirectory(nil).SetPasswordPolicy(c.Identity.Password.Policy()); err != nil {
		bad("identity.password", "%v", err)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "warning", "error":
	default:
		bad("log.level", "must be debug, info, warn or error; got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "auto", "text", "json":
	default:
		bad("log.format", "must be auto, text or json; got %q", c.Log.Format)
	}
	switch c.Store.Backend {
	case "memory":
		if !c.Dev {
			bad("store.backend", "memory keeps nothing across restarts; use it with -dev only")
		}
	case "consul":
		for _, fe := range registry.FieldErrors(c.Store.Consul.toConsul().Validate()) {
			bad("store.consul."+fe.Field, "%s", fe.Reason)
		}
		if err := c.Store.Consul.toConsul().Validate(); err != nil && len(registry.FieldErrors(err)) == 0 {
			bad("store.consul", "%v", err)
		}
	default:
		bad("store.backend", "must be consul or memory; got %q", c.Store.Backend)
	}
	if c.Prober.Interval < Duration(time.Second) {
		bad("prober.interval", "must be at least 1s")
	}
	if c.Prober.Timeout <= 0 || c.Prober.Timeout > c.Prober.Interval {
		bad("prober.timeout", "must be positive and at most prober.interval")
	}
	if c.LocalCloud.Enabled {
		if c.LocalCloud.Name == "" {
			bad("local_cloud.name", "is required when the local cloud is enabled")
		}
		switch c.LocalCloud.Driver {
		case "fake", "libvirt":
		default:
			bad("local_cloud.driver", "must be fake or libvirt; got %q", c.LocalCloud.Driver)
		}
	}
	if c.LocalCloud.ObjectQuotaBytes < 0 {
		bad("local_cloud.object_quota_bytes", "must be positive, or 0 for the filesystem's size")
	}
	for i, h := range c.LocalCloud.Hosts {
		if h.Name == "" || h.URI == "" {
			bad(fmt.Sprintf("local_cloud.hosts[%d]", i), "needs a name and a libvirt uri")
		}
		if _, err := netip.ParseAddr(h.NICAddr); h.NICAddr != "" && err != nil {
			bad(fmt.Sprintf("local_cloud.hosts[%d].nic_addr", i), "%q is not an IP address", h.NICAddr)
		}
	}
	if a, err := netip.ParseAddr(c.LocalCloud.SwitchAddr); c.LocalCloud.SwitchAddr != "" && err != nil {
		bad("local_cloud.switch_addr", "%q is not an IP address", c.LocalCloud.SwitchAddr)
	} else if err == nil && !a.IsLoopback() && !c.allowPublicListen() {
		bad("local_cloud.switch_addr", "%q is not a loopback address; cloudmux listens on loopback unless CLOUDMUX_ALLOW_PUBLIC_LISTEN=1", c.LocalCloud.SwitchAddr)
	}
	c.GC.validate(bad)
	if c.AdminPassword != "" && len(c.AdminPassword) < 8 {
		bad("CLOUDMUX_ADMIN_PASSWORD", "must be at least 8 characters")
	}
	if !c.Dev && c.DataDir == "" {
		bad("data_dir", "is required outside -dev")
	}
	if !c.Dev && c.CredentialsKeyFile == "" {
		bad("credentials_key_file", "is required outside -dev: peer credentials are sealed with it (a missing file is created; share it between replicas)")
	}
	return errors.Join(errs...)
}

func (c Config) allowPublicListen() bool {
	return os.Getenv("CLOUDMUX_ALLOW_PUBLIC_LISTEN") == "1"
}

// String lists the settings without secrets, for the startup log.
func (c Config) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "listen=%s tls=%t data_dir=%s store=%s", c.Listen, c.TLS.enabled(), c.DataDir, c.Store.Backend)
	if c.Store.Backend == "consul" {
		fmt.Fprintf(&b, " consul=%s prefix=%s", c.Store.Consul.Address, c.Store.Consul.KeyPrefix)
	}
	if c.LocalCloud.Enabled {
		fmt.Fprintf(&b, " local_cloud=%s(%s)", c.LocalCloud.Name, c.LocalCloud.Driver)
	}
	return b.String()
}
