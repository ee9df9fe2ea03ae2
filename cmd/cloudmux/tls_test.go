package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	pemFile string
	pool    *x509.CertPool
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, pemFile: filepath.Join(t.TempDir(), name+".pem"), pool: x509.NewCertPool()}
	ca.pool.AddCert(cert)
	writePEM(t, ca.pemFile, "CERTIFICATE", der)
	return ca
}

// issue signs a server (127.0.0.1) or client certificate with serial and
// the given expiry and writes it and its key into dir.
func (ca *testCA) issue(t *testing.T, dir string, serial int64, client bool, notAfter time.Time) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: fmt.Sprintf("test-%d", serial)},
		NotBefore: time.Now().Add(-2 * time.Hour), NotAfter: notAfter, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	if client {
		tmpl.ExtKeyUsage, tmpl.IPAddresses = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, nil
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certFile, keyFile = filepath.Join(dir, fmt.Sprintf("%d.crt", serial)), filepath.Join(dir, fmt.Sprintf("%d.key", serial))
	writePEM(t, certFile, "CERTIFICATE", der)
	writePEM(t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func writePEM(t *testing.T, file, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(file, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// copyFile replaces dst with src's bytes (a certificate renewal).
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// httpsClient trusts ca, speaks at most maxVersion (0: any) and presents
// the client pair when given. Every request is a new connection unless
// keepAlive, so each sees the certificate served at the time.
func httpsClient(t *testing.T, ca *testCA, maxVersion uint16, certFile, keyFile string, keepAlive bool) *http.Client {
	t.Helper()
	// MinVersion 1.0: the client offers what the test asks; the server
	// is what refuses.
	tc := &tls.Config{RootCAs: ca.pool, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			t.Fatal(err)
		}
		// Sent whatever CAs the server names (Go's client would otherwise
		// send nothing when its certificate is not from one of them).
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: tc, DisableKeepAlives: !keepAlive}}
}

// getServed GETs url and returns the status and the serial of the
// certificate the server presented.
func getServed(c *http.Client, url string, header map[string]string) (int, string, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	serial := ""
	if resp.TLS != nil && len(resp.TLS.PeerCertificates) > 0 {
		serial = resp.TLS.PeerCertificates[0].SerialNumber.String()
	}
	return resp.StatusCode, serial, nil
}

// TestTLSListener: the API over HTTPS with a certificate the client
// trusts, TLS 1.2 and 1.3 accepted, TLS 1.1 and plain HTTP refused, and
// the catalog's URLs are https ones.
func TestTLSListener(t *testing.T) {
	ca := newTestCA(t, "ca")
	certFile, keyFile := ca.issue(t, t.TempDir(), 10, false, time.Now().Add(time.Hour))
	addr, token := startInProcessWith(t, func(c *Config) { c.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile} },
		LogConfig{Level: "error", Format: "json"}, io.Discard)
	if !strings.HasPrefix(addr, "https://127.0.0.1:") {
		t.Fatalf("the banner's address is %q, want https on loopback", addr)
	}
	tests := []struct {
		name       string
		maxVersion uint16
		wantErr    string
	}{
		{"TLS 1.3", tls.VersionTLS13, ""},
		{"TLS 1.2", tls.VersionTLS12, ""},
		{"TLS 1.1 refused", tls.VersionTLS11, "protocol version"},
		{"TLS 1.0 refused", tls.VersionTLS10, "protocol version"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, serial, err := getServed(httpsClient(t, ca, tc.maxVersion, "", "", false), addr+"/healthz", nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("GET = %d, %v; want an error with %q", code, err, tc.wantErr)
				}
				return
			}
			if err != nil || code != http.StatusOK || serial != "10" {
				t.Fatalf("GET = %d (certificate %s), %v; want 200 with certificate 10", code, serial, err)
			}
		})
	}
	t.Run("plain HTTP gets no API", func(t *testing.T) {
		code, _, err := getServed(http.DefaultClient, "http://"+strings.TrimPrefix(addr, "https://")+"/healthz", nil)
		if err == nil && code != http.StatusBadRequest {
			t.Fatalf("plain HTTP = %d, want 400 or an error", code)
		}
	})
	t.Run("catalog is https", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, addr+"/v3/auth/catalog", nil)
		req.Header.Set("X-Auth-Token", token)
		resp, err := httpsClient(t, ca, 0, "", "", false).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"`+addr+`/compute`) || strings.Contains(string(raw), "http://") {
			t.Fatalf("catalog = %d %s; want %s endpoints only", resp.StatusCode, raw, addr)
		}
	})
}

// TestTLSClientCertificates: with a client CA, require refuses a
// connection without a certificate; verify_if_given lets it in; both
// refuse a certificate from another CA and accept one from the client CA.
func TestTLSClientCertificates(t *testing.T) {
	serverCA, clientCA, otherCA := newTestCA(t, "server-ca"), newTestCA(t, "client-ca"), newTestCA(t, "other-ca")
	dir := t.TempDir()
	certFile, keyFile := serverCA.issue(t, dir, 20, false, time.Now().Add(time.Hour))
	goodCert, goodKey := clientCA.issue(t, dir, 21, true, time.Now().Add(time.Hour))
	otherDir := t.TempDir()
	badCert, badKey := otherCA.issue(t, otherDir, 22, true, time.Now().Add(time.Hour))
	for _, mode := range []string{"require", "verify_if_given"} {
		var logs lockedBuffer
		addr, _ := startInProcessWith(t, func(c *Config) {
			c.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile, ClientCAFile: clientCA.pemFile, ClientAuth: mode}
		}, LogConfig{Level: "info", Format: "json"}, &logs)
		tests := []struct {
			name              string
			certFile, keyFile string
			wantOK            bool
		}{
			{"no client certificate", "", "", mode == "verify_if_given"},
			{"certificate from the client CA", goodCert, goodKey, true},
			{"certificate from another CA", badCert, badKey, false},
		}
		for _, tc := range tests {
			t.Run(mode+"/"+tc.name, func(t *testing.T) {
				code, _, err := getServed(httpsClient(t, serverCA, 0, tc.certFile, tc.keyFile, false), addr+"/healthz", nil)
				if tc.wantOK && (err != nil || code != http.StatusOK) {
					t.Fatalf("GET = %d, %v; want 200", code, err)
				}
				if !tc.wantOK && err == nil {
					t.Fatalf("GET = %d; want the handshake refused", code)
				}
			})
		}
		// The refusals are in the broker's own (JSON) log, not on bare stderr.
		waitFor(t, "the refused handshake in the log", func() (bool, string) {
			return regexp.MustCompile(`"component":"http".*TLS handshake error`).MatchString(logs.String()), ""
		})
	}
}

// TestMetricsProtection: a token makes /metrics 401 without it or with
// a wrong one; metrics.listen moves /metrics off the API listener; with
// neither, /metrics is open and the start log warns once.
func TestMetricsProtection(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "metrics.token")
	const token = "0123456789abcdef-metrics-token"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var openLogs, adminLogs lockedBuffer
	lc := LogConfig{Level: "info", Format: "json"}
	open, _ := startInProcessWith(t, nil, lc, &openLogs)
	withToken, _ := startInProcessWith(t, func(c *Config) { c.Metrics.TokenFile = tokenFile }, LogConfig{Level: "error", Format: "json"}, io.Discard)
	admin, _ := startInProcessWith(t, func(c *Config) { c.Metrics = MetricsConfig{Listen: "127.0.0.1:0", TokenFile: tokenFile} }, lc, &adminLogs)
	m := regexp.MustCompile(`"metrics_addr":"(http://127\.0\.0\.1:\d+/metrics)"`).FindStringSubmatch(adminLogs.String())
	if m == nil {
		t.Fatalf("no metrics_addr in the log:\n%s", adminLogs.String())
	}
	adminURL := m[1]
	bearer := func(v string) map[string]string { return map[string]string{"Authorization": v} }
	tests := []struct {
		name   string
		url    string
		header map[string]string
		want   int
	}{
		{"no token configured: open", open + "/metrics", nil, 200},
		{"token: none sent", withToken + "/metrics", nil, 401},
		{"token: wrong one", withToken + "/metrics", bearer("Bearer 0123456789abcdef-metrics-tokeN"), 401},
		{"token: a prefix of it", withToken + "/metrics", bearer("Bearer 0123456789abcdef"), 401},
		{"token: as basic auth", withToken + "/metrics", bearer("Basic " + token), 401},
		{"token: the right one", withToken + "/metrics", bearer("Bearer " + token), 200},
		{"admin listener: not on the API", admin + "/metrics", bearer("Bearer " + token), 404},
		{"admin listener: no token", adminURL, nil, 401},
		{"admin listener: the right token", adminURL, bearer("Bearer " + token), 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("GET %s = %d %s, want %d", tc.url, resp.StatusCode, raw, tc.want)
			}
			if tc.want == 200 && !strings.Contains(string(raw), "cloudmux_peers{") {
				t.Fatalf("GET %s lacks the broker's metrics:\n%.300s", tc.url, raw)
			}
			if tc.want == 401 && (resp.Header.Get("WWW-Authenticate") == "" || strings.Contains(string(raw), "cloudmux_")) {
				t.Fatalf("401 without WWW-Authenticate or with metrics: %v %s", resp.Header, raw)
			}
		})
	}
	const warning = "/metrics is served on the API listener without authentication"
	if n := strings.Count(openLogs.String(), warning); n != 1 {
		t.Errorf("the open broker warned %d times, want once", n)
	}
	if strings.Contains(adminLogs.String(), warning) {
		t.Error("the broker with metrics.listen warned about open metrics")
	}
}

// TestTLSConfigErrors: every TLS and metrics setting that cannot work is
// reported, by field, together.
func TestTLSConfigErrors(t *testing.T) {
	ca := newTestCA(t, "ca")
	dir := t.TempDir()
	certFile, keyFile := ca.issue(t, dir, 30, false, time.Now().Add(time.Hour))
	_, otherKey := ca.issue(t, dir, 31, false, time.Now().Add(time.Hour))
	expiredCert, expiredKey := ca.issue(t, dir, 32, false, time.Now().Add(-time.Hour))
	notPEM := filepath.Join(dir, "not.pem")
	shortToken := filepath.Join(dir, "short.token")
	for f, content := range map[string]string{notPEM: "hello", shortToken: "abc\n"} {
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing.pem")
	tests := []struct {
		name string
		edit func(*Config)
		want map[string]string // field -> part of the reason
	}{
		{"valid", func(c *Config) {
			c.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile, ClientCAFile: ca.pemFile, ClientAuth: "verify_if_given"}
		}, nil},
		{"key of another certificate", func(c *Config) { c.TLS = TLSConfig{CertFile: certFile, KeyFile: otherKey} },
			map[string]string{"tls.key_file": "is not the key of the certificate"}},
		{"unreadable files", func(c *Config) { c.TLS = TLSConfig{CertFile: missing, KeyFile: keyFile} },
			map[string]string{"tls.cert_file": "cannot read"}},
		{"unreadable key", func(c *Config) { c.TLS = TLSConfig{CertFile: certFile, KeyFile: missing} },
			map[string]string{"tls.key_file": "cannot read"}},
		{"certificate not PEM", func(c *Config) { c.TLS = TLSConfig{CertFile: notPEM, KeyFile: keyFile} },
			map[string]string{"tls.cert_file": "PEM CERTIFICATE"}},
		{"expired certificate", func(c *Config) { c.TLS = TLSConfig{CertFile: expiredCert, KeyFile: expiredKey} },
			map[string]string{"tls.cert_file": "expired"}},
		{"certificate without key", func(c *Config) { c.TLS = TLSConfig{CertFile: certFile} },
			map[string]string{"tls.key_file": "is required"}},
		{"every problem at once", func(c *Config) {
			c.TLS = TLSConfig{KeyFile: keyFile, ClientCAFile: notPEM, ClientAuth: "sometimes"}
			c.Metrics = MetricsConfig{Listen: "0.0.0.0:9100", TokenFile: shortToken}
		}, map[string]string{"tls.cert_file": "is required", "tls.client_ca_file": "no PEM certificate",
			"tls.client_auth": "must be require or verify_if_given", "metrics.listen": "not a loopback address",
			"metrics.token_file": "at least 16 characters"}},
		{"client auth without a CA", func(c *Config) {
			c.TLS = TLSConfig{CertFile: certFile, KeyFile: keyFile, ClientAuth: "require"}
		}, map[string]string{"tls.client_auth": "needs tls.client_ca_file"}},
		{"client CA without TLS", func(c *Config) { c.TLS = TLSConfig{ClientCAFile: ca.pemFile} },
			map[string]string{"tls.client_ca_file": "over TLS only"}},
		{"metrics token file missing", func(c *Config) { c.Metrics.TokenFile = missing },
			map[string]string{"metrics.token_file": "cannot read"}},
		{"-dev-tls without -dev", func(c *Config) { c.Dev, c.DevTLS, c.Store.Backend = false, true, "consul" },
			map[string]string{"-dev-tls": "needs -dev"}},
		{"-dev-tls with a configured pair", func(c *Config) { c.DevTLS, c.TLS = true, TLSConfig{CertFile: certFile, KeyFile: keyFile} },
			map[string]string{"-dev-tls": "do not set tls.cert_file"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.applyDev()
			cfg.applyDefaults()
			cfg.DataDir = t.TempDir()
			tc.edit(&cfg)
			got := map[string]string{}
			for _, fe := range registry.FieldErrors(cfg.Validate()) {
				got[fe.Field] = fe.Reason
			}
			for field, want := range tc.want {
				if !strings.Contains(got[field], want) {
					t.Errorf("%s: got %q, want a reason with %q (all: %v)", field, got[field], want, got)
				}
			}
			for field, reason := range got {
				if _, ok := tc.want[field]; !ok && (strings.HasPrefix(field, "tls") || strings.HasPrefix(field, "metrics") || field == "-dev-tls") {
					t.Errorf("unexpected %s: %s", field, reason)
				}
			}
		})
	}
}

// TestTLSReloadOnSIGHUP: the built binary serves a renewed certificate
// after SIGHUP without dropping the listener or an open connection; a bad
// new pair keeps the previous one, logged.
func TestTLSReloadOnSIGHUP(t *testing.T) {
	ca := newTestCA(t, "ca")
	dir, renewals := t.TempDir(), t.TempDir()
	certFile, keyFile := ca.issue(t, dir, 40, false, time.Now().Add(time.Hour))
	renewedCert, renewedKey := ca.issue(t, renewals, 41, false, time.Now().Add(time.Hour))
	_, strayKey := ca.issue(t, renewals, 42, false, time.Now().Add(time.Hour))
	cfgFile := filepath.Join(dir, "cloudmux.yaml")
	if err := os.WriteFile(cfgFile, []byte(fmt.Sprintf("tls: {cert_file: %q, key_file: %q}\n", certFile, keyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, []string{"serve", "-dev", "-listen", "127.0.0.1:0", "-log-format", "json", "-config", cfgFile},
		[]string{"CLOUDMUX_ADMIN_PASSWORD=" + testAdminPassword})
	fresh := httpsClient(t, ca, 0, "", "", false)
	kept := httpsClient(t, ca, 0, "", "", true)
	served := func(c *http.Client) string {
		t.Helper()
		code, serial, err := getServed(c, b.addr+"/healthz", nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("GET /healthz = %d, %v\n%s", code, err, b.stderr)
		}
		return serial
	}
	if s := served(kept); s != "40" {
		t.Fatalf("serving certificate %s, want 40", s)
	}
	hup := func() {
		t.Helper()
		if err := b.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
	}

	copyFile(t, renewedKey, keyFile)
	copyFile(t, renewedCert, certFile)
	hup()
	waitFor(t, "the renewed certificate", func() (bool, string) {
		s := served(fresh)
		return s == "41", "serving " + s
	})
	if s := served(kept); s != "40" {
		t.Errorf("the connection opened before the reload now shows certificate %s; want it kept (40)", s)
	}

	copyFile(t, strayKey, keyFile) // the key of another certificate
	hup()
	waitFor(t, "the refused reload in the log", func() (bool, string) {
		return strings.Contains(b.stderr.String(), "still serving the previous ones"), ""
	})
	if s := served(fresh); s != "41" {
		t.Fatalf("after a bad reload, serving %s; want 41 kept", s)
	}
	if !strings.Contains(b.stderr.String(), "is not the key of the certificate") {
		t.Errorf("the log does not say why the reload was refused:\n%s", b.stderr)
	}
	select {
	case err := <-b.exited:
		b.exited <- err
		t.Fatalf("the broker exited: %v", err)
	default:
	}
}

// TestEnsureDevTLS: -dev-tls on a reused data dir keeps the CA clients
// were given; a set about to expire, or half of one, is made anew.
func TestEnsureDevTLS(t *testing.T) {
	now := time.Now()
	tests := []struct {
		name     string
		later    time.Time
		remove   string // "ca", "key" or ""
		wantSame bool
	}{
		{"reused", now.Add(24 * time.Hour), "", true},
		{"about to expire", now.AddDate(1, 0, 0), "", false},
		{"key missing", now, "key", false},
		{"CA missing", now, "ca", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			caFile, first, err := ensureDevTLS(dir, "127.0.0.1", now)
			if err != nil {
				t.Fatal(err)
			}
			ca1, _ := os.ReadFile(caFile)
			switch tc.remove {
			case "ca":
				os.Remove(caFile)
			case "key":
				os.Remove(first.KeyFile)
			}
			_, second, err := ensureDevTLS(dir, "127.0.0.1", tc.later)
			if err != nil {
				t.Fatal(err)
			}
			ca2, _ := os.ReadFile(caFile)
			if same := string(ca1) == string(ca2); same != tc.wantSame {
				t.Fatalf("CA kept = %v, want %v", same, tc.wantSame)
			}
			pair, err := loadKeyPair(second.CertFile, second.KeyFile, tc.later)
			if err != nil {
				t.Fatal(err)
			}
			pool, _ := loadCAPool(caFile)
			if _, err := pair.Leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: "localhost", CurrentTime: tc.later}); err != nil {
				t.Fatalf("the server certificate does not verify with the CA: %v", err)
			}
		})
	}
}
