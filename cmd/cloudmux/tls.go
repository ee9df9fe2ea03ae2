package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"
)

// TLSConfig serves the broker's API over HTTPS. The certificate and key
// are read again on SIGHUP, so a renewed pair is served without a restart;
// a client CA makes the broker ask clients for certificates.
type TLSConfig struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ClientCAFile holds the PEM CAs client certificates must chain to.
	ClientCAFile string `yaml:"client_ca_file"`
	// ClientAuth is require (the default with a client CA: no certificate,
	// no connection) or verify_if_given (a certificate is optional, but
	// one that does not verify is refused).
	ClientAuth string `yaml:"client_auth"`
}

func (t TLSConfig) enabled() bool { return t.CertFile != "" || t.KeyFile != "" }

// validate reports what is wrong with the TLS settings, reading the files
// so an unreadable file or a key that is not the certificate's is a
// config error rather than a failed start. With generated set (-dev-tls)
// the pair does not exist yet and must not be configured.
func (t TLSConfig) validate(generated bool, bad func(field, format string, args ...any)) {
	switch {
	case generated && t.enabled():
		bad("-dev-tls", "generates the certificate and key; do not set tls.cert_file or tls.key_file as well")
	case t.CertFile != "" && t.KeyFile == "":
		bad("tls.key_file", "is required with tls.cert_file")
	case t.CertFile == "" && t.KeyFile != "":
		bad("tls.cert_file", "is required with tls.key_file")
	case t.enabled():
		if _, err := loadKeyPair(t.CertFile, t.KeyFile, time.Now()); err != nil {
			var fe *tlsFileError
			if errors.As(err, &fe) {
				bad(fe.field, "%s", fe.reason)
			} else {
				bad("tls", "%v", err)
			}
		}
	}
	on := t.enabled() || generated
	switch t.ClientAuth {
	case "", "require", "verify_if_given":
		if t.ClientAuth != "" && t.ClientCAFile == "" {
			bad("tls.client_auth", "needs tls.client_ca_file (the CAs client certificates are checked against)")
		}
	default:
		bad("tls.client_auth", "must be require or verify_if_given; got %q", t.ClientAuth)
	}
	if t.ClientCAFile != "" {
		if !on {
			bad("tls.client_ca_file", "needs tls.cert_file and tls.key_file: client certificates are asked for over TLS only")
		}
		if _, err := loadCAPool(t.ClientCAFile); err != nil {
			bad("tls.client_ca_file", "%v", err)
		}
	}
}

// tlsFileError names the setting a bad certificate or key came from.
type tlsFileError struct{ field, reason string }

func (e *tlsFileError) Error() string { return e.field + ": " + e.reason }

// loadKeyPair reads and checks a PEM certificate (chain) and its key: both
// readable, the key the certificate's, the certificate not expired at now.
func loadKeyPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, &tlsFileError{"tls.cert_file", fmt.Sprintf("cannot read: %v", err)}
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, &tlsFileError{"tls.key_file", fmt.Sprintf("cannot read: %v", err)}
	}
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return nil, &tlsFileError{"tls.cert_file", certFile + " does not start with a PEM CERTIFICATE block"}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		reason := err.Error()
		if strings.Contains(reason, "does not match") {
			reason = keyFile + " is not the key of the certificate in " + certFile
		}
		return nil, &tlsFileError{"tls.key_file", reason}
	}
	if pair.Leaf.NotAfter.Before(now) {
		return nil, &tlsFileError{"tls.cert_file", fmt.Sprintf("the certificate in %s expired on %s", certFile, pair.Leaf.NotAfter.UTC().Format(time.RFC3339))}
	}
	return &pair, nil
}

func loadCAPool(file string) (*x509.CertPool, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("cannot read: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(raw) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}

// certReloader serves the current pair to every handshake and swaps in a
// new one atomically, so reloading never touches the listener or the
// connections it has.
type certReloader struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
}

func newCertReloader(certFile, keyFile string) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile}
	return r, r.reload()
}

// reload reads the files again; a pair that does not load (half-written,
// a key for another certificate, expired) leaves the current one served.
func (r *certReloader) reload() error {
	pair, err := loadKeyPair(r.certFile, r.keyFile, time.Now())
	if err != nil {
		return err
	}
	r.cur.Store(pair)
	return nil
}

func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cur.Load(), nil
}

// serverTLS is the listener's tls.Config: TLS 1.2 at least, the reloader's
// pair, client certificates as configured. HTTP/1.1 only: the broker's
// per-request body deadlines and streamed uploads are written for it.
func serverTLS(t TLSConfig) (*tls.Config, *certReloader, error) {
	r, err := newCertReloader(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, nil, err
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: r.getCertificate, NextProtos: []string{"http/1.1"}}
	if t.ClientCAFile != "" {
		if c.ClientCAs, err = loadCAPool(t.ClientCAFile); err != nil {
			return nil, nil, &tlsFileError{"tls.client_ca_file", err.Error()}
		}
		c.ClientAuth = tls.RequireAndVerifyClientCert
		if t.ClientAuth == "verify_if_given" {
			c.ClientAuth = tls.VerifyClientCertIfGiven
		}
	}
	return c, r, nil
}

// devTLSFiles are the files -dev-tls keeps under the data dir: the CA the
// clients trust (its key is never written: nothing else is signed with it)
// and the server's pair.
func devTLSFiles(dataDir string) (ca, cert, key string) {
	d := filepath.Join(dataDir, "tls")
	return filepath.Join(d, "ca.crt"), filepath.Join(d, "server.crt"), filepath.Join(d, "server.key")
}

// ensureDevTLS gives -dev-tls a certificate for 127.0.0.1, ::1, localhost
// and the listen host, signed by a fresh CA (ECDSA P-256), unless the data
// dir already holds a valid set: a reused -data-dir keeps the CA clients
// were given.
func ensureDevTLS(dataDir, listenHost string, now time.Time) (caFile string, t TLSConfig, err error) {
	caFile, t.CertFile, t.KeyFile = devTLSFiles(dataDir)
	if _, err := loadKeyPair(t.CertFile, t.KeyFile, now.Add(24*time.Hour)); err == nil {
		if _, err := loadCAPool(caFile); err == nil {
			return caFile, t, nil
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", t, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber: randSerial(), Subject: pkix.Name{CommonName: "cloudmux dev CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", t, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", t, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", t, err
	}
	leaf := &x509.Certificate{
		SerialNumber: randSerial(), Subject: pkix.Name{CommonName: "cloudmux dev broker"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.AddDate(1, 0, 0),
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(listenHost); ip != nil && !ip.IsLoopback() && !ip.IsUnspecified() {
		leaf.IPAddresses = append(leaf.IPAddresses, ip)
	} else if ip == nil && listenHost != "" && listenHost != "localhost" {
		leaf.DNSNames = append(leaf.DNSNames, listenHost)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", t, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return "", t, err
	}
	if err := os.MkdirAll(filepath.Dir(caFile), 0o700); err != nil {
		return "", t, err
	}
	pemOf := func(typ string, der []byte) []byte { return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}) }
	// The key is written first and alone readable: a crash between the
	// writes leaves a set the next start regenerates.
	return caFile, t, errors.Join(
		os.WriteFile(t.KeyFile, pemOf("PRIVATE KEY", keyDER), 0o600),
		os.WriteFile(t.CertFile, pemOf("CERTIFICATE", leafDER), 0o644),
		os.WriteFile(caFile, pemOf("CERTIFICATE", caDER), 0o644),
	)
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return n
}
