package consul_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/registry/consul"
)

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pem := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(pem, []byte("not checked here"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.pem")

	for _, tc := range []struct {
		name       string
		cfg        consul.Config
		wantFields []string // in order; nil means valid
	}{
		{name: "host and port", cfg: consul.Config{Address: "127.0.0.1:8500"}},
		{name: "https address", cfg: consul.Config{Address: "https://consul.example:8501", TLS: consul.TLSConfig{CAFile: pem}}},
		{name: "reverse proxy path", cfg: consul.Config{Address: "https://gw.example:443/consul"}},
		{name: "unix socket", cfg: consul.Config{Address: "unix:///run/consul/http.sock"}},
		{name: "everything set", cfg: consul.Config{
			Address: "consul.service:8501", Scheme: "https", Token: "s3cr3t", Datacenter: "eu-west_1",
			KeyPrefix: "prod/cloudmux/", TLS: consul.TLSConfig{CAFile: pem, CertFile: pem, KeyFile: pem, ServerName: "consul"},
		}},
		{name: "empty", cfg: consul.Config{}, wantFields: []string{"address"}},
		{name: "no port", cfg: consul.Config{Address: "consul.example"}, wantFields: []string{"address"}},
		{name: "port out of range", cfg: consul.Config{Address: "127.0.0.1:70000"}, wantFields: []string{"address"}},
		{name: "unknown address scheme", cfg: consul.Config{Address: "ftp://x:1"}, wantFields: []string{"address"}},
		{name: "relative unix socket", cfg: consul.Config{Address: "unix://consul.sock"}, wantFields: []string{"address"}},
		{name: "bad scheme", cfg: consul.Config{Address: "x:1", Scheme: "HTTPS"}, wantFields: []string{"scheme"}},
		{name: "http scheme with https address", cfg: consul.Config{Address: "https://x:1", Scheme: "http"}, wantFields: []string{"scheme"}},
		{name: "datacenter with a dot", cfg: consul.Config{Address: "x:1", Datacenter: "eu.west"}, wantFields: []string{"datacenter"}},
		{name: "prefix without slash", cfg: consul.Config{Address: "x:1", KeyPrefix: "cloudmux"}, wantFields: []string{"key_prefix"}},
		{name: "absolute prefix", cfg: consul.Config{Address: "x:1", KeyPrefix: "/cloudmux/"}, wantFields: []string{"key_prefix"}},
		{name: "dot-dot prefix", cfg: consul.Config{Address: "x:1", KeyPrefix: "a/../"}, wantFields: []string{"key_prefix"}},
		{name: "token with newline", cfg: consul.Config{Address: "x:1", Token: "abc\n"}, wantFields: []string{"token"}},
		{name: "cert without key", cfg: consul.Config{Address: "x:1", TLS: consul.TLSConfig{CertFile: pem}}, wantFields: []string{"tls"}},
		{name: "missing CA file", cfg: consul.Config{Address: "x:1", TLS: consul.TLSConfig{CAFile: missing}}, wantFields: []string{"tls.ca_file"}},
		{name: "CA is a directory", cfg: consul.Config{Address: "x:1", TLS: consul.TLSConfig{CAFile: dir}}, wantFields: []string{"tls.ca_file"}},
		{
			name: "every problem at once",
			cfg: consul.Config{
				Scheme: "gopher", Datacenter: "d c", KeyPrefix: "/x", Token: "tok3n-from-a-file\n",
				TLS: consul.TLSConfig{KeyFile: missing},
			},
			wantFields: []string{"address", "scheme", "datacenter", "key_prefix", "key_prefix", "token", "tls", "tls.key_file"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			var got []string
			for _, fe := range registry.FieldErrors(err) {
				got = append(got, fe.Field)
			}
			if !slices.Equal(got, tc.wantFields) {
				t.Fatalf("Validate() fields = %v, want %v\nerror: %v", got, tc.wantFields, err)
			}
			if (err != nil) != (tc.wantFields != nil) || (err != nil && !errors.Is(err, registry.ErrInvalid)) {
				t.Fatalf("Validate() = %v; want an ErrInvalid error exactly when fields are listed", err)
			}
			if err != nil && strings.Contains(err.Error(), tc.cfg.Token) && tc.cfg.Token != "" {
				t.Fatalf("Validate() error leaks the token: %v", err)
			}
		})
	}
}

// TestConfigFromEnv checks the standard variables land in the right fields.
// It sets the process environment, so it cannot run in parallel.
func TestConfigFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name       string
		env        map[string]string
		want       consul.Config
		wantFields []string
	}{
		{
			name: "defaults",
			env:  map[string]string{},
			want: consul.Config{Address: "localhost:8500", Scheme: "http", KeyPrefix: consul.DefaultKeyPrefix},
		},
		{
			name: "everything",
			env: map[string]string{
				"CONSUL_HTTP_ADDR":       "consul.example:8501",
				"CONSUL_HTTP_TOKEN":      "tok",
				"CONSUL_HTTP_SSL":        "true",
				"CONSUL_CACERT":          "/etc/consul/ca.pem",
				"CONSUL_CLIENT_CERT":     "/etc/consul/cli.pem",
				"CONSUL_CLIENT_KEY":      "/etc/consul/cli-key.pem",
				"CONSUL_TLS_SERVER_NAME": "server.dc1.consul",
				"CONSUL_HTTP_SSL_VERIFY": "false",
			},
			want: consul.Config{
				Address: "consul.example:8501", Token: "tok", Scheme: "https", KeyPrefix: consul.DefaultKeyPrefix,
				TLS: consul.TLSConfig{
					CAFile: "/etc/consul/ca.pem", CertFile: "/etc/consul/cli.pem", KeyFile: "/etc/consul/cli-key.pem",
					ServerName: "server.dc1.consul", InsecureSkipVerify: true,
				},
			},
		},
		{
			name: "https address implies https",
			env:  map[string]string{"CONSUL_HTTP_ADDR": "https://consul.example:8501"},
			want: consul.Config{Address: "https://consul.example:8501", Scheme: "https", KeyPrefix: consul.DefaultKeyPrefix},
		},
		{
			// The client library reads an unparsable CONSUL_HTTP_SSL_VERIFY
			// as "skip verification"; ConfigFromEnv fails closed.
			name:       "unparsable booleans are reported",
			env:        map[string]string{"CONSUL_HTTP_SSL": "yes please", "CONSUL_HTTP_SSL_VERIFY": "nah"},
			want:       consul.Config{Address: "localhost:8500", Scheme: "http", KeyPrefix: consul.DefaultKeyPrefix},
			wantFields: []string{"CONSUL_HTTP_SSL", "CONSUL_HTTP_SSL_VERIFY"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, kv := range os.Environ() {
				if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "CONSUL_") {
					t.Setenv(name, "") // t.Setenv restores the original afterwards
					os.Unsetenv(name)
				}
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got := consul.ConfigFromEnv()
			if got.String() != tc.want.String() || got.Token != tc.want.Token {
				t.Fatalf("ConfigFromEnv() =\n  %v\nwant\n  %v", got, tc.want)
			}
			var fields []string
			for _, fe := range registry.FieldErrors(got.Validate()) {
				fields = append(fields, fe.Field)
			}
			// The "everything" case names files that do not exist here.
			fields = slices.DeleteFunc(fields, func(f string) bool { return strings.HasPrefix(f, "tls.") })
			if !slices.Equal(fields, tc.wantFields) {
				t.Fatalf("Validate() fields = %v, want %v", fields, tc.wantFields)
			}
		})
	}
}

func TestConfigStringHidesToken(t *testing.T) {
	t.Parallel()
	cfg := consul.Config{Address: "x:1", Token: "0c9d6a5e-super-secret"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if out := fmt.Sprintf(verb, cfg); strings.Contains(out, cfg.Token) {
			t.Errorf("Sprintf(%q) leaks the token: %s", verb, out)
		}
	}
	if !strings.Contains(cfg.String(), "Token:set") {
		t.Errorf("String() = %s; want it to say a token is set", cfg.String())
	}
}

func TestNewRejectsInvalidConfig(t *testing.T) {
	t.Parallel()
	_, err := consul.New(consul.Config{Address: "x:1", KeyPrefix: "nope"}, nil)
	if !errors.Is(err, registry.ErrInvalid) {
		t.Fatalf("New(invalid) = %v, want ErrInvalid", err)
	}
}
