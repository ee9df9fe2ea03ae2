package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/cloudmux/cloudmux/internal/consultest"
)

// TestTwoBrokersOnConsul runs two `cloudmux serve -config` brokers against
// one real Consul agent, each hosting its own local cloud, as two replicas of
// one installation would. What one writes the other serves; each local peer
// is probed by the broker hosting it; Consul's own health API shows the pool.
func TestTwoBrokersOnConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Consul agent")
	}
	agent := consultest.Start(t)
	prefix := fmt.Sprintf("e2e-%d/", time.Now().UnixNano())
	keyFile := filepath.Join(t.TempDir(), "credentials.key") // shared by both replicas; the first creates it
	a, b := startConsulBroker(t, agent, prefix, keyFile, "local-a"), startConsulBroker(t, agent, prefix, keyFile, "local-b")
	// A third broker given an already hosted local cloud name refuses to
	// start rather than fight over the peer.
	clash := filepath.Join(t.TempDir(), "clash.yaml")
	if err := os.WriteFile(clash, []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nbroker_id: other\nstore: {backend: consul, consul: {key_prefix: %s}}\nlocal_cloud: {enabled: true, name: local-a, driver: fake}\ncredentials_key_file: %s\n",
		t.TempDir(), prefix, keyFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	clashCmd := exec.Command(cloudmuxBin, "serve", "-config", clash)
	clashCmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+agent.Addr)
	clashOut, err := clashCmd.CombinedOutput()
	if err == nil || !strings.Contains(string(clashOut), "is hosted by broker") {
		t.Fatalf("a broker claiming another's local cloud started: %v\n%s", err, clashOut)
	}
	// A replica with its own credentials key refuses to start: it could not
	// read the others' sealed credentials.
	wrongKey := filepath.Join(t.TempDir(), "clash2.yaml")
	if err := os.WriteFile(wrongKey, []byte(fmt.Sprintf("listen: 127.0.0.1:0\ndata_dir: %s\nbroker_id: third\nstore: {backend: consul, consul: {key_prefix: %s}}\ncredentials_key_file: %s\n",
		t.TempDir(), prefix, filepath.Join(t.TempDir(), "other.key"))), 0o600); err != nil {
		t.Fatal(err)
	}
	keyCmd := exec.Command(cloudmuxBin, "serve", "-config", wrongKey)
	keyCmd.Env = append(os.Environ(), "CONSUL_HTTP_ADDR="+agent.Addr)
	if out, err := keyCmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "not the installation's credentials key") {
		t.Fatalf("a replica with another credentials key started: %v\n%s", err, out)
	}

	// A token issued by broker A works on broker B: tokens live in Consul.
	out, errOut, code := a.cli(t, []string{"CLOUDMUX_TOKEN=", "CLOUDMUX_PASSWORD=" + testAdminPassword}, "login", "-u", "admin")
	if code != 0 {
		t.Fatalf("login on A: %s%s", out, errOut)
	}
	token := strings.TrimPrefix(strings.TrimSpace(out), "export CLOUDMUX_TOKEN=")
	a.token, b.token = token, token

	// A peer added through A is served by B (its snapshot follows Consul).
	if out, errOut, code := a.cli(t, []string{"PW=eu-secret"}, "peer", "add", "-name", "eu", "-auth-url", "http://127.0.0.1:1/v3",
		"-username", "svc", "-password-env", "PW", "-label", "tier=public"); code != 0 {
		t.Fatalf("peer add on A: %s%s", out, errOut)
	}
	waitFor(t, "B to list eu, local-a and local-b", func() (bool, string) {
		out, _, _ := b.cli(t, nil, "peer", "list")
		return strings.Contains(out, "eu") && strings.Contains(out, "local-a") && strings.Contains(out, "local-b"), out
	})

	// Each local peer comes up, probed by the broker hosting it, and stays
	// up: the other broker, which cannot reach it, does not mark it down.
	for _, name := range []string{"local-a", "local-b"} {
		waitFor(t, name+" up", func() (bool, string) {
			out, _, _ := b.cli(t, nil, "peer", "show", name, "-o", "json")
			var p struct{ Status string }
			_ = json.Unmarshal([]byte(out), &p)
			return p.Status == "up", out
		})
	}

	// Consul's health API shows both local peers passing, and the remote
	// peer (no broker here has a driver for it yet) critical.
	health := agent.Client().Health() // one client: a client per poll would exhaust Consul's per-IP connection limit
	waitFor(t, "Consul health to show the pool", func() (bool, string) {
		entries, _, err := health.Service("cloudmux-peer", "", false, nil)
		if err != nil {
			return false, err.Error()
		}
		states := map[string]string{}
		for _, e := range entries {
			states[e.Service.Meta["peer_name"]] = e.Checks.AggregatedStatus()
		}
		return states["local-a"] == api.HealthPassing && states["local-b"] == api.HealthPassing &&
			states["eu"] == api.HealthCritical, fmt.Sprint(states)
	})

	// No secret reached Consul (records or the sealed credentials) or either log.
	pairs, _, err := agent.Client().KV().List(prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed := 0
	for _, kv := range pairs {
		if strings.HasPrefix(string(kv.Value), "cmxsealed:") {
			sealed++
		}
		if strings.Contains(string(kv.Value), "eu-secret") {
			t.Fatalf("Consul key %s holds the password", kv.Key)
		}
	}
	if sealed != 1 {
		t.Fatalf("%d sealed values in Consul, want 1 (eu's credentials)", sealed)
	}
	// Removal through B reaches A.
	if out, errOut, code := b.cli(t, nil, "peer", "rm", "eu"); code != 0 {
		t.Fatalf("peer rm on B: %s%s", out, errOut)
	}
	waitFor(t, "A to drop eu", func() (bool, string) {
		out, _, _ := a.cli(t, nil, "peer", "list")
		return !strings.Contains(out, "eu "), out
	})

	for _, br := range []*devBroker{a, b} {
		if strings.Contains(br.stderr.String(), "eu-secret") {
			t.Fatal("a broker log holds the peer password")
		}
		if err := br.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := <-br.exited; err != nil {
			t.Fatalf("broker exit after SIGTERM: %v", err)
		}
		br.exited <- nil
	}
}

// startConsulBroker starts `cloudmux serve -config` on the agent's Consul
// under prefix, hosting a fake local cloud called name: one replica of an
// installation whose replicas share keyFile.
func startConsulBroker(t *testing.T, agent *consultest.Agent, prefix, keyFile, name string) *devBroker {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cloudmux.yaml")
	content := fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
log: {format: json}
store:
  backend: consul
  consul: {key_prefix: %s}
prober: {interval: 1s, timeout: 1s}
local_cloud: {enabled: true, name: %s, driver: fake, labels: {tier: private}}
credentials_key_file: %s
`, dir, prefix, name, keyFile)
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return startBroker(t, []string{"serve", "-config", cfg},
		[]string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CLOUDMUX_ADMIN_PASSWORD=" + testAdminPassword})
}

// waitFor polls cond until it holds or 30 s pass; the poll interval is not
// a correctness gate.
func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
