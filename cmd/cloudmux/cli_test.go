package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/cloudmux/cloudmux/internal/libvirttest"
)

// cloudmuxBin is the binary under test, built once in TestMain.
var cloudmuxBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cloudmux-cli-test-")
	if err != nil {
		panic(err)
	}
	cloudmuxBin = filepath.Join(dir, "cloudmux")
	build := exec.Command("go", "build", "-o", cloudmuxBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		panic("build cloudmux: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// devBroker is a running `cloudmux serve -dev` subprocess.
type devBroker struct {
	cmd     *exec.Cmd
	addr    string
	token   string
	dataDir string
	stderr  *lockedBuffer
	exited  chan error
}

// lockedBuffer is written by exec's copying goroutine while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

const testAdminPassword = "correct-horse-battery"

func startDev(t *testing.T) *devBroker {
	t.Helper()
	return startBroker(t, []string{"serve", "-dev", "-listen", "127.0.0.1:0", "-log-format", "json"},
		[]string{"CLOUDMUX_ADMIN_PASSWORD=" + testAdminPassword})
}

// startBroker runs `cloudmux ARGS` and waits for its banner: with -dev the
// export lines (address and admin token), otherwise "serving on ADDR".
func startBroker(t *testing.T, args, env []string) *devBroker {
	t.Helper()
	cmd := exec.Command(cloudmuxBin, args...)
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &devBroker{cmd: cmd, stderr: &lockedBuffer{}, exited: make(chan error, 1)}
	cmd.Stderr = b.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if v, ok := strings.CutPrefix(line, "export CLOUDMUX_ADDR="); ok {
				b.addr = v
			}
			if v, ok := strings.CutPrefix(line, "Data dir:"); ok {
				b.dataDir = strings.TrimSpace(v)
			}
			if v, ok := strings.CutPrefix(line, "export CLOUDMUX_TOKEN="); ok {
				b.token = v
				close(found)
			}
			if _, v, ok := strings.Cut(line, " serving on "); ok {
				b.addr = v
				close(found)
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { b.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if err, ok := <-b.exited; ok {
			b.exited <- err
		}
	})
	select {
	case <-found:
	case err := <-b.exited:
		b.exited <- err
		t.Fatalf("cloudmux %v exited early: %v\n%s", args, err, b.stderr)
	case <-time.After(60 * time.Second):
		t.Fatalf("cloudmux %v printed no banner\n%s", args, b.stderr)
	}
	return b
}

// cli runs the cloudmux CLI against the broker.
func (b *devBroker) cli(t *testing.T, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(cloudmuxBin, args...)
	cmd.Env = append(os.Environ(), "CLOUDMUX_ADDR="+b.addr, "CLOUDMUX_TOKEN="+b.token)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), 0
}

func TestCLIAgainstDevBroker(t *testing.T) {
	b := startDev(t)
	yamlPath := filepath.Join(t.TempDir(), "clouds.yaml")
	const cloudsYAML = `clouds:
  eu-public:
    auth:
      auth_url: http://127.0.0.1:1/v3
      username: svc
      password: never-printed-secret
      user_domain_name: Default
      project_name: p
      project_domain_name: Default
    region_name: RegionOne
`
	if err := os.WriteFile(yamlPath, []byte(cloudsYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	badYAML := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(badYAML, []byte("clouds:\n  x:\n    auth: {auth_url: nope}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		want     []string // substrings of stdout+stderr
		dontWant []string
	}{
		{"version", nil, []string{"version"}, 0, []string{"cloudmux "}, nil},
		{"local peer registered by -dev", nil, []string{"peer", "list"}, 0, []string{"local", "tier=private"}, nil},
		{"import clouds.yaml", nil, []string{"peer", "import", "-label", "tier=public", yamlPath}, 0, []string{"eu-public", "tier=public"}, []string{"never-printed-secret"}},
		{"duplicate import", nil, []string{"peer", "import", yamlPath}, 1, []string{"409", "already exists"}, nil},
		{"bad clouds.yaml lists every problem", nil, []string{"peer", "import", badYAML}, 1,
			[]string{"400", "clouds.x.auth.auth_url", "clouds.x.auth.username", "clouds.x.auth.password"}, nil},
		{"add with every field wrong", nil, []string{"peer", "add", "-name", "bad name", "-kind", "vmware", "-auth-url", "keystone:5000"}, 1,
			[]string{"400", "name:", "kind: unknown peer kind", "endpoint.auth_url:"}, nil},
		{"add with password from env", []string{"PEER_PW=another-secret"}, []string{"peer", "add", "-name", "lab", "-auth-url", "http://127.0.0.1:2/v3",
			"-username", "u", "-project", "p", "-password-env", "PEER_PW", "-label", "region=eu"}, 0, []string{"lab", "region=eu", "stored (never shown)"}, []string{"another-secret"}},
		{"show as json has no secrets", nil, []string{"peer", "show", "eu-public", "-o", "json"}, 0, []string{`"has_credentials": true`, `"auth_url": "http://127.0.0.1:1/v3"`}, []string{"never-printed-secret", `"password"`}},
		{"list filters by label", nil, []string{"peer", "list", "-label", "region=eu"}, 0, []string{"lab"}, []string{"eu-public"}},
		{"maintenance", nil, []string{"peer", "maintenance", "lab", "on", "-reason", "disk swap"}, 0, []string{"maintenance (disk swap)"}, nil},
		{"rm", nil, []string{"peer", "rm", "lab"}, 0, []string{"removed"}, nil},
		{"show removed", nil, []string{"peer", "show", "lab"}, 1, []string{"404"}, nil},
		{"no token", []string{"CLOUDMUX_TOKEN="}, []string{"peer", "list"}, 1, []string{"401"}, nil},
		{"bad token", []string{"CLOUDMUX_TOKEN=cmx_forged"}, []string{"peer", "list"}, 1, []string{"401"}, nil},
		{"login with password", []string{"CLOUDMUX_TOKEN=", "CLOUDMUX_PASSWORD=" + testAdminPassword}, []string{"login", "-u", "admin"}, 0, []string{"export CLOUDMUX_TOKEN=cmx_"}, nil},
		{"login with wrong password", []string{"CLOUDMUX_PASSWORD=wrong-password"}, []string{"login"}, 1, []string{"401"}, nil},
		{"unknown command", nil, []string{"frobnicate"}, 2, []string{"unknown command"}, nil},
		{"help exits 0", nil, []string{"peer", "list", "-h"}, 0, []string{"-label"}, nil},
		{"bad output format", nil, []string{"peer", "list", "-o", "yaml"}, 2, []string{"-o must be table or json"}, nil},
		{"wrong argument count", nil, []string{"peer", "show"}, 2, []string{"expected 1 argument"}, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			stdout, stderr, code := b.cli(t, st.env, st.args...)
			all := stdout + stderr
			if code != st.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, st.wantCode, all)
			}
			for _, w := range st.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			for _, w := range st.dontWant {
				if strings.Contains(all, w) {
					t.Errorf("output contains %q:\n%s", w, all)
				}
			}
		})
	}
	if strings.Contains(b.stderr.String(), "never-printed-secret") || strings.Contains(b.stderr.String(), "another-secret") {
		t.Fatal("the broker log holds a peer password")
	}
}

func TestDevBrokerHTTP(t *testing.T) {
	b := startDev(t)
	get := func(path string, token string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, b.addr+path, nil)
		if token != "" {
			req.Header.Set("X-Auth-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		raw, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(raw, &body)
		if resp.Header.Get("X-Openstack-Request-Id") == "" {
			t.Errorf("%s: no X-Openstack-Request-Id header", path)
		}
		return resp.StatusCode, body
	}
	tests := []struct {
		name  string
		path  string
		token string
		code  int
	}{
		{"keystone discovery", "/", "", 300},
		{"keystone v3", "/v3", "", 200},
		{"healthz", "/healthz", "", 200},
		{"metrics", "/metrics", "", 200},
		{"v1 discovery", "/v1/", "", 200},
		{"peers need a token", "/v1/peers/", "", 401},
		{"peers with token", "/v1/peers/", b.token, 200},
		{"unknown path", "/v1/nope", b.token, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := get(tc.path, tc.token); code != tc.code {
				t.Fatalf("GET %s = %d %v, want %d", tc.path, code, body, tc.code)
			}
		})
	}
}

// TestDevBrokerOpenStackClients: the files -dev writes are all an OpenStack
// client needs; gophercloud authenticates with them and finds the catalog.
func TestDevBrokerOpenStackClients(t *testing.T) {
	b := startDev(t)
	for _, f := range []string{"openrc", "clouds.yaml"} {
		raw, err := os.ReadFile(filepath.Join(b.dataDir, f))
		if err != nil || !strings.Contains(string(raw), b.addr+"/v3") || !strings.Contains(string(raw), testAdminPassword) {
			t.Fatalf("%s = %q, %v; want the auth URL and the admin password", f, raw, err)
		}
	}
	provider, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: b.addr + "/v3", Username: "admin", Password: testAdminPassword, DomainName: "Default", TenantName: "admin",
	})
	if err != nil {
		t.Fatalf("gophercloud against serve -dev: %v", err)
	}
	if _, err := openstack.NewComputeV2(provider, gophercloud.EndpointOpts{Region: "RegionOne"}); err != nil {
		t.Fatalf("compute endpoint from the catalog: %v", err)
	}
	// The Keystone token works on /v1 too: one identity for every API.
	if _, _, code := b.cli(t, []string{"CLOUDMUX_TOKEN=" + provider.Token()}, "peer", "list"); code != 0 {
		t.Fatalf("a Keystone token refused by /v1: exit %d", code)
	}
}

func TestDevBrokerGracefulShutdown(t *testing.T) {
	b := startDev(t)
	if _, err := os.Stat(filepath.Join(b.dataDir, "cloudmux.env")); err != nil {
		t.Fatalf("dev data dir lacks cloudmux.env: %v", err)
	}
	if err := b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.exited:
		b.exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, b.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30s after SIGTERM")
	}
	if !strings.Contains(b.stderr.String(), "shutting down") {
		t.Errorf("no shutdown log line:\n%s", b.stderr)
	}
	if _, err := os.Stat(b.dataDir); !os.IsNotExist(err) {
		t.Errorf("the temporary dev data dir %s survived exit: %v", b.dataDir, err)
	}
}

func TestServeConfigErrors(t *testing.T) {
	cfgPath := filepath.Join(t.TempDir(), "cloudmux.yaml")
	if err := os.WriteFile(cfgPath, []byte("listen: 0.0.0.0:80\nlog: {level: chatty}\nstore: {backend: etcd}\nlocal_cloud: {object_quota_bytes: -1}\ntracing: {otlp_endpoint: 'collector:4318', sample_ratio: 2}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	typo := filepath.Join(t.TempDir(), "typo.yaml")
	if err := os.WriteFile(typo, []byte("lisen: 127.0.0.1:1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"every problem at once", []string{"serve", "-config", cfgPath}, []string{"listen:", "log.level:", "store.backend:", "local_cloud.object_quota_bytes:", "data_dir:", "credentials_key_file:", "tracing.otlp_endpoint:", "tracing.sample_ratio:"}},
		{"unknown key", []string{"serve", "-config", typo}, []string{"lisen"}},
		{"bad consul address", []string{"serve", "-config", "/dev/null", "-data-dir", t.TempDir()}, []string{"store.consul.address"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, cloudmuxBin, tc.args...)
			cmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR=not a host:port")
			out, err := cmd.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() == 0 {
				t.Fatalf("serve %v: err %v; want a non-zero exit\n%s", tc.args, err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(string(out), w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestDevLocalPeerComesUp follows the whole loop: -dev registers the local
// cloud, the pool connects it, the prober probes it and writes status and
// capacity to the registry, and the API shows it.
func TestDevLocalPeerComesUp(t *testing.T) {
	b := startDev(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		stdout, stderr, code := b.cli(t, nil, "peer", "show", "local", "-o", "json")
		if code != 0 {
			t.Fatalf("peer show local: exit %d\n%s%s", code, stdout, stderr)
		}
		var p struct {
			Status    string `json:"status"`
			Connected bool   `json:"connected"`
			Driver    string `json:"driver"`
			Kind      string `json:"kind"`
			Capacity  struct {
				VCPUs       struct{ Total int }   `json:"vcpus"`
				ObjectBytes struct{ Total int64 } `json:"object_bytes"`
			} `json:"capacity"`
			LastHeartbeat string `json:"last_heartbeat"`
		}
		if err := json.Unmarshal([]byte(stdout), &p); err != nil {
			t.Fatalf("peer show -o json: %v\n%s", err, stdout)
		}
		if p.Status == "up" {
			if !p.Connected || p.Driver != "fake" || p.Kind != "local" || p.Capacity.VCPUs.Total == 0 || p.Capacity.ObjectBytes.Total == 0 || p.LastHeartbeat == "" {
				t.Fatalf("local peer up but %+v; want connected, driver fake, capacity (object storage's too) and a heartbeat", p)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("local peer never came up; last: %s", stdout)
		}
		time.Sleep(100 * time.Millisecond) // polling interval, not a correctness gate
	}
}

// TestServeOnLibvirt runs the broker's local cloud on the real libvirt
// driver (libvirtd's test driver, which needs no guest) and follows the
// peer until the prober reports it up with driver=libvirt.
func TestServeOnLibvirt(t *testing.T) {
	if testing.Short() {
		t.Skip("needs libvirtd")
	}
	libvirttest.Ensure(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cloudmux.yaml")
	content := "prober: {interval: 1s, timeout: 1s}\nlocal_cloud: {driver: libvirt, hosts: [{name: testhost, uri: \"" + libvirttest.TestURI +
		"\"}], pool: cmxserve" + strconv.Itoa(os.Getpid()) + ", pool_path: " + filepath.Join(dir, "pool") + "}\n"
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, []string{"serve", "-dev", "-config", cfg, "-listen", "127.0.0.1:0", "-log-format", "json"},
		[]string{"CLOUDMUX_ADMIN_PASSWORD=" + testAdminPassword})
	waitFor(t, "the libvirt-backed local peer up", func() (bool, string) {
		out, _, _ := b.cli(t, nil, "peer", "show", "local", "-o", "json")
		var p struct {
			Status string `json:"status"`
			Driver string `json:"driver"`
		}
		_ = json.Unmarshal([]byte(out), &p)
		return p.Status == "up" && p.Driver == "libvirt", out
	})
}

// TestServeDevFreshDataDir: -data-dir may name a directory that does not
// exist yet; the broker creates it (the credentials key first).
func TestServeDevFreshDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "data")
	b := startBroker(t, []string{"serve", "-dev", "-listen", "127.0.0.1:0", "-data-dir", dir},
		[]string{"CLOUDMUX_ADMIN_PASSWORD=" + testAdminPassword})
	if _, err := os.Stat(filepath.Join(dir, "credentials.key")); err != nil {
		t.Fatalf("credentials key in the fresh data dir: %v (broker at %s)", err, b.addr)
	}
}
