package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cloudmux/cloudmux/internal/oscli"
)

// TestDevTLSClients: serve -dev -dev-tls serves HTTPS with a generated CA
// (key 0600, CA key nowhere), and the files it writes are all the real
// clients need: the openstack CLI from clouds.yaml and from openrc, the
// cloudmux CLI and the aws CLI from cloudmux.env, none told anything else.
func TestDevTLSClients(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack and aws CLIs")
	}
	b := startBroker(t, []string{"serve", "-dev", "-dev-tls", "-listen", "127.0.0.1:0", "-log-format", "json"},
		[]string{"CLOUDMUX_ADMIN_PASSWORD=" + testAdminPassword})
	if !strings.HasPrefix(b.addr, "https://127.0.0.1:") {
		t.Fatalf("address %q, want https", b.addr)
	}
	caFile, certFile, keyFile := devTLSFiles(b.dataDir)
	if st, err := os.Stat(keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("server key %s: %v, %v; want mode 0600", keyFile, st, err)
	}
	if _, err := loadKeyPair(certFile, keyFile, time.Now()); err != nil {
		t.Fatalf("the generated pair: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Dir(caFile))
	if len(entries) != 3 {
		t.Errorf("%s holds %d files, want the CA certificate and the server pair only", filepath.Dir(caFile), len(entries))
	}
	raw, err := os.ReadFile(filepath.Join(b.dataDir, "clouds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var clouds struct {
		Clouds map[string]struct {
			CACert string `yaml:"cacert"`
			Auth   struct {
				AuthURL string `yaml:"auth_url"`
			} `yaml:"auth"`
		} `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(raw, &clouds); err != nil || clouds.Clouds["cloudmux"].CACert != caFile || clouds.Clouds["cloudmux"].Auth.AuthURL != b.addr+"/v3" {
		t.Fatalf("clouds.yaml = %s (%v); want cacert %s and auth_url %s/v3", raw, err, caFile, b.addr)
	}

	cli := oscli.Path(t)
	home := t.TempDir()
	steps := []struct {
		name   string
		script string
		want   string
	}{
		{"openstack from clouds.yaml: token issue", `OS_CLIENT_CONFIG_FILE="$D/clouds.yaml" OS_CLOUD=cloudmux "$OSC" token issue -f value -c id`, "cmx_"},
		{"openstack from clouds.yaml: server list", `OS_CLIENT_CONFIG_FILE="$D/clouds.yaml" OS_CLOUD=cloudmux "$OSC" server list -f value && echo listed`, "listed"},
		{"openstack from openrc: catalog", `. "$D/openrc" && "$OSC" catalog list -f value -c Endpoints`, strings.TrimPrefix(b.addr, "https://") + "/compute"},
		{"cloudmux CLI from cloudmux.env", `. "$D/cloudmux.env" && "$CMX" peer list`, "local"},
		{"aws CLI with cloudmux.env's CA bundle", `. "$D/cloudmux.env" && eval "$("$CMX" ec2 credentials create -o env)" &&
			aws --endpoint-url "$CLOUDMUX_ADDR/ec2/" --region RegionOne --output text ec2 describe-availability-zones`, "local"},
		{"without the CA the openstack CLI refuses", `out=$(OS_CLIENT_CONFIG_FILE="$D/clouds.yaml" OS_CLOUD=cloudmux "$OSC" --os-cacert /etc/ssl/certs/ca-certificates.crt token issue 2>&1) && exit 1; echo "$out"`,
			"CERTIFICATE_VERIFY_FAILED"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			cmd := exec.Command("bash", "-c", "set -e; "+st.script)
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "D=" + b.dataDir, "OSC=" + cli, "CMX=" + cloudmuxBin,
				"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
				"AWS_CONFIG_FILE=" + filepath.Join(home, "aws-config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "aws-credentials")}
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), st.want) {
				t.Fatalf("%s: %v\n%s\nwant %q", st.script, err, out, st.want)
			}
		})
	}
}
