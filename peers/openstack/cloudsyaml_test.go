package openstack_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/peers/openstack"
	"github.com/cloudmux/cloudmux/registry"
)

const goodClouds = `
clouds:
  eu-public:
    auth:
      auth_url: https://keystone.eu.example.test:5000/v3
      username: svc
      password: s3cret
      project_name: cloudmux
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
  lab:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://127.0.0.1:5000/v3
      application_credential_id: abc
      application_credential_secret: xyz
    region_name: lab1
    interface: internalURL
`

func TestImportCloudsYAML(t *testing.T) {
	got, err := openstack.ImportCloudsYAML([]byte(goodClouds), openstack.ImportOptions{Labels: map[string]string{"tier": "public"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Peer.Name != "eu-public" || got[1].Peer.Name != "lab" {
		t.Fatalf("imported %d peers: %+v", len(got), got)
	}
	eu, lab := got[0], got[1]
	if eu.Peer.Endpoint.AuthURL != "https://keystone.eu.example.test:5000/v3" || eu.Peer.Endpoint.Region != "RegionOne" ||
		eu.Peer.Labels["tier"] != "public" || eu.Credentials.Password != "s3cret" || eu.Credentials.ProjectName != "cloudmux" {
		t.Fatalf("eu-public imported as %+v", eu.Peer)
	}
	if lab.Credentials.AuthType != registry.AuthApplicationCredential || lab.Peer.Endpoint.Interface != "internal" {
		t.Fatalf("lab imported as %+v / auth %s", lab.Peer, lab.Credentials.AuthType)
	}
	only, err := openstack.ImportCloudsYAML([]byte(goodClouds), openstack.ImportOptions{Only: []string{"lab"}})
	if err != nil || len(only) != 1 || only[0].Peer.Name != "lab" {
		t.Fatalf("Only=lab: %v %v", only, err)
	}
}

func TestImportCloudsYAMLErrors(t *testing.T) {
	tests := []struct {
		name   string
		yaml   string
		opts   openstack.ImportOptions
		fields []string
	}{
		{"not yaml", "clouds: [unclosed", openstack.ImportOptions{}, []string{"clouds.yaml"}},
		{"no clouds", "foo: bar\n", openstack.ImportOptions{}, []string{"clouds"}},
		{"missing cloud", goodClouds, openstack.ImportOptions{Only: []string{"nope"}}, []string{"clouds.nope"}},
		{"every problem in every entry", `
clouds:
  a:
    auth:
      auth_url: "keystone:5000"
      username: u
    interface: private
  b:
    auth_type: kerberos
    auth:
      auth_url: http://127.0.0.1:5000/v3
  c:
    region_name: x
`, openstack.ImportOptions{}, []string{
			"clouds.a.auth.auth_url", "clouds.a.interface", "clouds.a.auth.password", "clouds.a.auth.user_domain_name",
			"clouds.b.auth_type", "clouds.b.auth.username", "clouds.b.auth.password",
			"clouds.c.auth", "clouds.c.auth.auth_url", "clouds.c.auth.username", "clouds.c.auth.password",
		}},
		{"unreadable cacert", `
clouds:
  a:
    cacert: /nonexistent/ca.pem
    auth: {auth_url: "https://k:5000/v3", username: u, password: p, user_domain_name: Default}
`, openstack.ImportOptions{}, []string{"clouds.a.cacert"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openstack.ImportCloudsYAML([]byte(tc.yaml), tc.opts)
			var got []string
			for _, fe := range registry.FieldErrors(err) {
				got = append(got, fe.Field)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.fields) {
				t.Fatalf("fields = %v\nwant     %v\nerr: %v", got, tc.fields, err)
			}
		})
	}
}

// testCA returns a self-signed certificate and its private key, PEM-encoded.
func testCA(t *testing.T) (certPEM, keyPEM string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
}

func TestCACertHandling(t *testing.T) {
	cert, key := testCA(t)
	dir := t.TempDir()
	certFile := filepath.Join(dir, "ca.pem")
	leaky := filepath.Join(dir, "leaky.pem")
	if err := os.WriteFile(certFile, []byte(cert), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(leaky, []byte(cert+key), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := func(path string) []byte {
		return []byte(`clouds:
  a:
    cacert: ` + path + `
    auth: {auth_url: "https://k:5000/v3", username: u, password: p, user_domain_name: Default}
`)
	}

	t.Run("a broker never reads a path", func(t *testing.T) {
		_, err := openstack.ImportCloudsYAML(doc(certFile), openstack.ImportOptions{})
		fes := registry.FieldErrors(err)
		if len(fes) != 1 || fes[0].Field != "clouds.a.cacert" || !strings.Contains(fes[0].Reason, "cacert_pem") {
			t.Fatalf("import with a cacert path and no reader = %v; want a clouds.a.cacert error pointing at cacert_pem", err)
		}
	})
	t.Run("the CLI inlines the file", func(t *testing.T) {
		inlined, err := openstack.InlineCACerts(doc(certFile), os.ReadFile)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(inlined), certFile) {
			t.Fatalf("the path survived inlining:\n%s", inlined)
		}
		got, err := openstack.ImportCloudsYAML(inlined, openstack.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got[0].Peer.Endpoint.CACert != cert {
			t.Fatalf("ca_cert = %q, want the file's certificate", got[0].Peer.Endpoint.CACert)
		}
	})
	t.Run("a bundle with a private key is refused", func(t *testing.T) {
		inlined, err := openstack.InlineCACerts(doc(leaky), os.ReadFile)
		if err != nil {
			t.Fatal(err)
		}
		_, err = openstack.ImportCloudsYAML(inlined, openstack.ImportOptions{})
		fes := registry.FieldErrors(err)
		if len(fes) != 1 || fes[0].Field != "clouds.a.cacert" || !strings.Contains(fes[0].Reason, "PRIVATE KEY") {
			t.Fatalf("import of a bundle holding a key = %v; want clouds.a.cacert naming the PRIVATE KEY block", err)
		}
		if strings.Contains(err.Error(), "BEGIN") {
			t.Fatalf("the error echoes the bundle: %v", err)
		}
	})
	t.Run("unreadable file reported by the CLI", func(t *testing.T) {
		_, err := openstack.InlineCACerts(doc(filepath.Join(dir, "missing.pem")), os.ReadFile)
		if fes := registry.FieldErrors(err); len(fes) != 1 || fes[0].Field != "clouds.a.cacert" {
			t.Fatalf("InlineCACerts with a missing file = %v", err)
		}
	})
}
