package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/cloudmux/cloudmux/internal/consultest"
)

// TestStateBackupRestoreIntoFreshConsul is the documented disaster
// recovery: a broker on Consul A serves a project's image, server, volume,
// keypair, Swift object and a remote peer; `cloudmux state backup` runs
// while it serves; Consul A and the broker are lost; `cloudmux state
// restore` fills a fresh Consul B; a broker started on B over the same
// data directory and credentials key serves the same resources under the
// same IDs, and the token issued before the loss still works.
func TestStateBackupRestoreIntoFreshConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two Consul agents and the broker twice")
	}
	a := consultest.Start(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cloudmux.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
log: {format: json}
store: {backend: consul, consul: {key_prefix: cloudmux/}}
prober: {interval: 1s, timeout: 1s}
local_cloud: {enabled: true, name: local, driver: fake}
credentials_key_file: %s
`, dir, filepath.Join(dir, "credentials.key"))), 0o600); err != nil {
		t.Fatal(err)
	}
	envFor := func(agent *consultest.Agent) []string {
		return []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CLOUDMUX_ADMIN_PASSWORD=" + testAdminPassword}
	}
	b := startBroker(t, []string{"serve", "-config", cfg}, envFor(a))
	out, errOut, code := b.cli(t, []string{"CLOUDMUX_TOKEN=", "CLOUDMUX_PASSWORD=" + testAdminPassword}, "login", "-u", "admin")
	if code != 0 {
		t.Fatalf("login: %s%s", out, errOut)
	}
	token := strings.TrimPrefix(strings.TrimSpace(out), "export CLOUDMUX_TOKEN=")
	b.token = token
	api := stateAPI{t: t, token: token}

	// The project's resources.
	api.addr = b.addr
	waitFor(t, "the local cloud up", func() (bool, string) {
		_, raw := api.call(http.MethodGet, "/compute/v2.1/os-availability-zone", nil)
		return strings.Contains(string(raw), "local"), string(raw)
	})
	project := api.project()
	img := api.id(http.StatusCreated, http.MethodPost, "/image/v2/images", map[string]any{"name": "img", "disk_format": "raw", "container_format": "bare"}, "")
	api.must(http.StatusNoContent, http.MethodPut, "/image/v2/images/"+img+"/file", []byte(strings.Repeat("x", 4096)))
	srv := api.id(http.StatusAccepted, http.MethodPost, "/compute/v2.1/servers", map[string]any{"server": map[string]any{
		"name": "web", "flavorRef": "1", "imageRef": img, "networks": "none"}}, "server")
	vol := api.id(http.StatusAccepted, http.MethodPost, "/volume/v3/"+project+"/volumes", map[string]any{"volume": map[string]any{"name": "data", "size": 1}}, "volume")
	api.must(http.StatusOK, http.MethodPost, "/compute/v2.1/os-keypairs", map[string]any{"keypair": map[string]any{"name": "ops"}})
	api.must(http.StatusCreated, http.MethodPut, "/swift/v1/AUTH_"+project+"/ctr", nil)
	api.must(http.StatusCreated, http.MethodPut, "/swift/v1/AUTH_"+project+"/ctr/obj", []byte("object bytes"))
	if out, errOut, code := b.cli(t, []string{"PW=eu-secret"}, "peer", "add", "-name", "eu", "-auth-url", "http://127.0.0.1:1/v3",
		"-username", "svc", "-password-env", "PW", "-label", "tier=public"); code != 0 {
		t.Fatalf("peer add: %s%s", out, errOut)
	}
	waitFor(t, "the server ACTIVE", func() (bool, string) {
		_, raw := api.call(http.MethodGet, "/compute/v2.1/servers/"+srv, nil)
		return strings.Contains(string(raw), `"ACTIVE"`), string(raw)
	})
	before := api.inventory(project)

	// The backup, taken while the broker serves.
	backupFile := filepath.Join(t.TempDir(), "cloudmux-state.gz")
	state := func(agent *consultest.Agent, args ...string) (string, int) {
		cmd := exec.Command(cloudmuxBin, append([]string{"state"}, args...)...)
		cmd.Env = append(os.Environ(), envFor(agent)...)
		raw, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return string(raw), ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(raw), 0
	}
	if out, code := state(a, "backup", "-config", cfg, "-o", backupFile); code != 0 || !strings.Contains(out, "backed up") {
		t.Fatalf("state backup: exit %d: %s", code, out)
	}
	if out, code := state(a, "verify", "-i", backupFile); code != 0 || !strings.Contains(out, "verified") {
		t.Fatalf("state verify: exit %d: %s", code, out)
	}
	// A memory store has nothing to back up: refused, not an empty file.
	memCfg := filepath.Join(t.TempDir(), "memory.yaml")
	if err := os.WriteFile(memCfg, []byte("store: {backend: memory}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code := state(a, "backup", "-config", memCfg, "-o", filepath.Join(t.TempDir(), "x")); code != 2 || !strings.Contains(out, "not Consul") {
		t.Fatalf("backup without a Consul config: exit %d: %s", code, out)
	}

	// The loss: the broker and Consul A die.
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-b.exited
	b.exited <- nil
	if err := a.Stop(); err != nil {
		t.Fatal(err)
	}

	c := consultest.Start(t)
	if out, code := state(c, "restore", "-config", cfg, "-i", backupFile); code != 0 || !strings.Contains(out, "restored") {
		t.Fatalf("state restore: exit %d: %s", code, out)
	}
	// A second restore would merge over live records: refused.
	if out, code := state(c, "restore", "-config", cfg, "-i", backupFile); code != 1 || !strings.Contains(out, "not empty") {
		t.Fatalf("a second restore: exit %d: %s", code, out)
	}

	b = startBroker(t, []string{"serve", "-config", cfg}, envFor(c))
	api.addr = b.addr // the token issued before the loss
	// The server's record comes back under its ID. (The fake driver's
	// "hypervisor" lives in the killed process, so the local cloud reports
	// the guest gone and the server ERROR; libvirt's domains outlive it.)
	waitFor(t, "the local cloud up after the restore", func() (bool, string) {
		code, raw := api.call(http.MethodGet, "/compute/v2.1/servers/"+srv, nil)
		return code == http.StatusOK && strings.Contains(string(raw), `"web"`), fmt.Sprintf("%d %s", code, raw)
	})
	after := api.inventory(project)
	for kind, ids := range before {
		if !slices.Equal(ids, after[kind]) {
			t.Errorf("%s after the restore: %q, before: %q", kind, after[kind], ids)
		}
	}
	b.token = token
	if out, errOut, code := b.cli(t, nil, "peer", "show", "eu", "-o", "json"); code != 0 || !strings.Contains(out, `"tier": "public"`) {
		t.Errorf("the remote peer after the restore: %s%s", out, errOut)
	}
	if _, raw := api.call(http.MethodGet, "/swift/v1/AUTH_"+project+"/ctr/obj", nil); string(raw) != "object bytes" {
		t.Errorf("the object after the restore: %q", raw)
	}
	if _, raw := api.call(http.MethodGet, "/volume/v3/"+project+"/volumes/"+vol, nil); !strings.Contains(string(raw), `"data"`) {
		t.Errorf("the volume after the restore: %s", raw)
	}
}

// stateAPI is a small authenticated HTTP client for the test above.
type stateAPI struct {
	t           *testing.T
	addr, token string
}

func (a stateAPI) call(method, path string, body any) (int, []byte) {
	a.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(v)
	default:
		raw, _ := json.Marshal(v)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, a.addr+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("X-Auth-Token", a.token)
	if _, raw := body.([]byte); raw {
		req.Header.Set("Content-Type", "application/octet-stream")
	} else {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func (a stateAPI) must(want int, method, path string, body any) []byte {
	a.t.Helper()
	code, raw := a.call(method, path, body)
	if code != want {
		a.t.Fatalf("%s %s: %d %s, want %d", method, path, code, raw, want)
	}
	return raw
}

// id makes a resource and returns its ID, read from the body's wrapper
// (or the body itself when wrapper is "").
func (a stateAPI) id(want int, method, path string, body any, wrapper string) string {
	a.t.Helper()
	raw := a.must(want, method, path, body)
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(raw, &doc); err != nil {
		a.t.Fatal(err)
	}
	if wrapper != "" {
		if err := json.Unmarshal(doc[wrapper], &doc); err != nil {
			a.t.Fatal(err)
		}
	}
	var id string
	_ = json.Unmarshal(doc["id"], &id)
	if id == "" {
		a.t.Fatalf("%s %s: no id in %s", method, path, raw)
	}
	return id
}

func (a stateAPI) project() string {
	a.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.addr+"/v3/auth/tokens", nil)
	req.Header.Set("X-Auth-Token", a.token)
	req.Header.Set("X-Subject-Token", a.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tok struct {
		Token struct {
			Project struct{ ID string } `json:"project"`
		} `json:"token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil || tok.Token.Project.ID == "" {
		a.t.Fatalf("token validation: %v", err)
	}
	return tok.Token.Project.ID
}

// inventory lists what the project sees, kind by kind, as sorted names
// and IDs.
func (a stateAPI) inventory(project string) map[string][]string {
	a.t.Helper()
	lists := map[string]struct{ path, key, field string }{
		"servers":    {"/compute/v2.1/servers", "servers", "id"},
		"images":     {"/image/v2/images", "images", "id"},
		"volumes":    {"/volume/v3/" + project + "/volumes", "volumes", "id"},
		"keypairs":   {"/compute/v2.1/os-keypairs", "keypairs", "keypair"},
		"containers": {"/swift/v1/AUTH_" + project + "?format=json", "", "name"},
		"zones":      {"/compute/v2.1/os-availability-zone", "availabilityZoneInfo", "zoneName"},
	}
	inv := map[string][]string{}
	for kind, l := range lists {
		raw := a.must(http.StatusOK, http.MethodGet, l.path, nil)
		var items []map[string]any
		if l.key == "" {
			_ = json.Unmarshal(raw, &items)
		} else {
			var doc map[string][]map[string]any
			_ = json.Unmarshal(raw, &doc)
			items = doc[l.key]
		}
		var ids []string
		for _, it := range items {
			switch v := it[l.field].(type) {
			case string:
				ids = append(ids, v)
			case map[string]any: // keypairs: {"keypair": {"name": ...}}
				ids = append(ids, fmt.Sprint(v["name"]))
			}
		}
		slices.Sort(ids)
		if len(ids) == 0 && kind != "zones" {
			a.t.Fatalf("%s: the project has none: %s", kind, raw)
		}
		inv[kind] = ids
	}
	return inv
}
