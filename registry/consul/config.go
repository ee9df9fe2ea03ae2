package consul

import (
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
	"github.com/hashicorp/go-cleanhttp"
	"github.com/hashicorp/go-hclog"

	"github.com/cloudmux/cloudmux/registry"
)

// DefaultKeyPrefix is where cloudmux keeps its keys when Config.KeyPrefix is
// empty. Every key a Store reads or writes lives under its prefix, so one
// Consul cluster can host several cloudmux installations (or tests).
const DefaultKeyPrefix = "cloudmux/"

// Config says how to reach Consul. The zero value of a field means "the
// default" (see the field comments), with one exception inherited from the
// Consul client library: an empty Token falls back to CONSUL_HTTP_TOKEN /
// CONSUL_HTTP_TOKEN_FILE, as every Consul tool does.
type Config struct {
	// Address is host:port, http://host:port, https://host:port or
	// unix:///path/to/socket.
	Address string
	// Token is the ACL token. It is never logged or printed (see String).
	Token string
	// Scheme is "http" or "https"; empty means http unless Address says
	// https://.
	Scheme string
	// Datacenter targets a datacenter other than the agent's own.
	Datacenter string
	// KeyPrefix is prepended to every key; it must end in '/' so prefixes
	// of two installations cannot overlap ("a/" vs "ab/"). Empty means
	// DefaultKeyPrefix.
	KeyPrefix string
	// TLS configures HTTPS. Files are PEM.
	TLS TLSConfig
	// RetryBudget bounds how long one call retries while Consul is
	// unreachable or has no leader; zero is DefaultRetryBudget, negative
	// turns retries off (the first transient error is returned).
	RetryBudget time.Duration

	// envErr records variables ConfigFromEnv could not parse, so Validate
	// reports them instead of the client library logging and ignoring them.
	envErr error
}

// TLSConfig is the TLS side of Config.
type TLSConfig struct {
	CAFile   string
	CertFile string
	KeyFile  string
	// ServerName overrides the name the server certificate is checked
	// against (CONSUL_TLS_SERVER_NAME).
	ServerName         string
	InsecureSkipVerify bool
}

// The environment variables ConfigFromEnv parses itself (the client library
// reads the rest). Named here because the library has no exported constant
// for every one of them.
const (
	envHTTPSSL       = "CONSUL_HTTP_SSL"
	envHTTPSSLVerify = "CONSUL_HTTP_SSL_VERIFY"
)

// ConfigFromEnv builds a Config from the standard Consul variables:
// CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, CONSUL_HTTP_SSL, CONSUL_CACERT,
// CONSUL_CLIENT_CERT, CONSUL_CLIENT_KEY, CONSUL_TLS_SERVER_NAME and
// CONSUL_HTTP_SSL_VERIFY. Unset variables leave Consul's defaults
// (127.0.0.1:8500 over http). A variable that does not parse is reported by
// Validate, not silently ignored.
func ConfigFromEnv() Config {
	// The library reads the variables; a null logger keeps it from writing
	// parse warnings to stderr, since we re-check those two below.
	d := api.DefaultConfigWithLogger(hclog.NewNullLogger())
	cfg := Config{
		Address:   d.Address,
		Token:     d.Token,
		Scheme:    d.Scheme,
		KeyPrefix: DefaultKeyPrefix,
		TLS: TLSConfig{
			CAFile:             d.TLSConfig.CAFile,
			CertFile:           d.TLSConfig.CertFile,
			KeyFile:            d.TLSConfig.KeyFile,
			ServerName:         d.TLSConfig.Address,
			InsecureSkipVerify: d.TLSConfig.InsecureSkipVerify,
		},
	}
	// CONSUL_HTTP_ADDR=https://... is standard and means TLS even without
	// CONSUL_HTTP_SSL; say so in Scheme so Validate sees no conflict.
	if s, _ := splitAddress(cfg.Address); s == "https" {
		cfg.Scheme = "https"
	}
	var errs []error
	for _, name := range []string{envHTTPSSL, envHTTPSSLVerify} {
		if v := os.Getenv(name); v != "" {
			if _, err := strconv.ParseBool(v); err != nil {
				errs = append(errs, &registry.FieldError{Field: name, Reason: fmt.Sprintf("%q is not a boolean", v)})
				if name == envHTTPSSLVerify {
					// The library turns an unparsable value into "do not
					// verify"; fail closed instead (Validate refuses the
					// config anyway).
					cfg.TLS.InsecureSkipVerify = false
				}
			}
		}
	}
	cfg.envErr = errors.Join(errs...)
	return cfg
}

// String describes the config without the token, so a config that ends up
// in a log line or an error message leaks no credential.
func (c Config) String() string {
	token := "unset"
	if c.Token != "" {
		token = "set"
	}
	return fmt.Sprintf("consul.Config{Address:%q Scheme:%q Datacenter:%q KeyPrefix:%q Token:%s TLS:%+v}",
		c.Address, c.Scheme, c.Datacenter, c.KeyPrefix, token, c.TLS)
}

// GoString keeps %#v from printing the token too.
func (c Config) GoString() string { return c.String() }

// datacenterRE is Consul's own rule for datacenter names.
var datacenterRE = regexp.MustCompile(`^[a-zA-Z0-9_-]+$`)

// Validate reports every problem at once, each a *registry.FieldError (so
// errors.Is(err, registry.ErrInvalid) holds and registry.FieldErrors lists
// them).
func (c Config) Validate() error {
	var errs []error
	add := func(field, format string, args ...any) {
		errs = append(errs, &registry.FieldError{Field: field, Reason: fmt.Sprintf(format, args...)})
	}
	if c.envErr != nil {
		errs = append(errs, c.envErr)
	}

	addrScheme, hostPort := splitAddress(c.Address)
	switch addrScheme {
	case "", "http", "https":
		if addrScheme != "" {
			// http(s)://host:port/path names a reverse-proxy path prefix,
			// which the client library supports.
			hostPort, _, _ = strings.Cut(hostPort, "/")
		}
		if c.Address == "" {
			add("address", "is required (host:port, http(s)://host:port or unix:///path)")
		} else if err := checkHostPort(hostPort); err != nil {
			add("address", "%q: %v", c.Address, err)
		}
	case "unix":
		if !strings.HasPrefix(hostPort, "/") {
			add("address", "%q: a unix socket needs an absolute path", c.Address)
		}
	default:
		add("address", "%q: unknown scheme %q (want http, https or unix)", c.Address, addrScheme)
	}

	switch c.Scheme {
	case "", "http", "https":
	default:
		add("scheme", "%q: want http or https", c.Scheme)
	}
	// The client library silently prefers https when the address says so;
	// an explicit http next to an https:// address is a mistake to surface.
	if c.Scheme == "http" && addrScheme == "https" {
		add("scheme", "is http but the address %q says https", c.Address)
	}

	if c.Datacenter != "" && !datacenterRE.MatchString(c.Datacenter) {
		add("datacenter", "%q: only letters, digits, '-' and '_' are allowed", c.Datacenter)
	}

	if p := c.KeyPrefix; p != "" {
		if err := registry.ValidateKey(p); err != nil {
			add("key_prefix", "%v", err)
		}
		if !strings.HasSuffix(p, "/") {
			add("key_prefix", "%q must end in '/' so it cannot overlap another prefix", p)
		}
	}

	// A token read from a file often keeps its trailing newline, which
	// Consul then rejects with a confusing ACL error. The value itself
	// stays out of the message.
	if strings.ContainsFunc(c.Token, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		add("token", "contains whitespace or control characters (a trailing newline?)")
	}

	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		add("tls", "cert_file and key_file must be set together")
	}
	for _, f := range []struct{ field, path string }{
		{"tls.ca_file", c.TLS.CAFile},
		{"tls.cert_file", c.TLS.CertFile},
		{"tls.key_file", c.TLS.KeyFile},
	} {
		if f.path == "" {
			continue
		}
		if fi, err := os.Stat(f.path); err != nil {
			add(f.field, "%v", err)
		} else if fi.IsDir() {
			add(f.field, "%s is a directory", f.path)
		}
	}
	return errors.Join(errs...)
}

// splitAddress separates an optional "scheme://" from the address.
func splitAddress(addr string) (scheme, rest string) {
	if s, r, ok := strings.Cut(addr, "://"); ok {
		return s, r
	}
	return "", addr
}

func checkHostPort(hp string) error {
	host, port, err := net.SplitHostPort(hp)
	if err != nil {
		return err
	}
	if host == "" {
		return errors.New("missing host")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("port %q is not in 1-65535", port)
	}
	return nil
}

// scheme is the scheme requests will use.
func (c Config) scheme() string {
	if s, _ := splitAddress(c.Address); s == "https" {
		return "https"
	}
	if c.Scheme != "" {
		return c.Scheme
	}
	return "http"
}

func (c Config) keyPrefix() string {
	if c.KeyPrefix == "" {
		return DefaultKeyPrefix
	}
	return c.KeyPrefix
}

// apiConfig translates a validated Config for the client library. The HTTP
// client is built here, from this Config's TLS settings only: left to
// itself, api.NewClient would merge CONSUL_CACERT and friends from the
// environment into an explicitly configured Store.
func (c Config) apiConfig() (*api.Config, error) {
	tlsCfg := api.TLSConfig{
		Address:            c.TLS.ServerName,
		CAFile:             c.TLS.CAFile,
		CertFile:           c.TLS.CertFile,
		KeyFile:            c.TLS.KeyFile,
		InsecureSkipVerify: c.TLS.InsecureSkipVerify,
	}
	// The pooled transport keeps connections alive between calls; Watch's
	// long polls and the lease goroutines would otherwise redial constantly.
	httpClient, err := api.NewHttpClient(cleanhttp.DefaultPooledTransport(), tlsCfg)
	if err != nil {
		return nil, fmt.Errorf("tls: %w", err)
	}
	// Address goes through as written: api.NewClient strips an http(s)://
	// or unix:// scheme itself (and a reverse-proxy path after host:port).
	return &api.Config{
		Address:    c.Address,
		Scheme:     c.scheme(),
		Datacenter: c.Datacenter,
		Token:      c.Token,
		TLSConfig:  tlsCfg,
		HttpClient: httpClient,
	}, nil
}

func (c Config) retryBudget() time.Duration {
	switch {
	case c.RetryBudget < 0:
		return 0
	case c.RetryBudget == 0:
		return DefaultRetryBudget
	}
	return c.RetryBudget
}
