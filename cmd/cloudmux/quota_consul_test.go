package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/internal/consultest"
)

// TestQuotaAcrossTwoBrokersOnConsul: two brokers on one Consul share a
// project's quota. With instances set to 3 through one broker, twelve
// concurrent POST /servers split over both make exactly 3 servers; the
// others get Nova's 403 naming the quota, and os-quota-sets shows 3 in use
// and nothing left reserved.
func TestQuotaAcrossTwoBrokersOnConsul(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Consul agent")
	}
	agent := consultest.Start(t)
	prefix := fmt.Sprintf("quota-%d/", time.Now().UnixNano())
	keyFile := filepath.Join(t.TempDir(), "credentials.key")
	a, b := startConsulBroker(t, agent, prefix, keyFile, "local-a"), startConsulBroker(t, agent, prefix, keyFile, "local-b")
	out, errOut, code := a.cli(t, []string{"CLOUDMUX_TOKEN=", "CLOUDMUX_PASSWORD=" + testAdminPassword}, "login", "-u", "admin")
	if code != 0 {
		t.Fatalf("login: %s%s", out, errOut)
	}
	token := strings.TrimPrefix(strings.TrimSpace(out), "export CLOUDMUX_TOKEN=")
	call := func(br *devBroker, method, path string, body any) (int, []byte) {
		t.Helper()
		var rd io.Reader
		if body != nil {
			raw, _ := json.Marshal(body)
			rd = bytes.NewReader(raw)
		}
		req, err := http.NewRequest(method, br.addr+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, raw
	}
	for _, br := range []*devBroker{a, b} {
		waitFor(t, "both local clouds in the pool", func() (bool, string) {
			_, raw := call(br, http.MethodGet, "/compute/v2.1/os-availability-zone", nil)
			return strings.Contains(string(raw), "local-a") && strings.Contains(string(raw), "local-b"), string(raw)
		})
	}
	var tok struct {
		Token struct {
			Project struct{ ID string } `json:"project"`
		} `json:"token"`
	}
	req, _ := http.NewRequest(http.MethodGet, a.addr+"/v3/auth/tokens", nil)
	req.Header.Set("X-Auth-Token", token)
	req.Header.Set("X-Subject-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	project := tok.Token.Project.ID
	// Each broker reaches only the local cloud it hosts: each gets an image
	// there, and its creates boot from it.
	imageOn := map[*devBroker]string{}
	for _, br := range []*devBroker{a, b} {
		var img struct{ ID string }
		if code, raw := call(br, http.MethodPost, "/image/v2/images", map[string]any{"name": "q", "disk_format": "raw", "container_format": "bare"}); code != 201 || json.Unmarshal(raw, &img) != nil {
			t.Fatalf("image create: %d %s", code, raw)
		}
		up, _ := http.NewRequest(http.MethodPut, br.addr+"/image/v2/images/"+img.ID+"/file", bytes.NewReader(bytes.Repeat([]byte("x"), 4096)))
		up.Header.Set("X-Auth-Token", token)
		up.Header.Set("Content-Type", "application/octet-stream")
		resp, err := http.DefaultClient.Do(up)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 204 {
			t.Fatalf("image upload: %s", resp.Status)
		}
		imageOn[br] = img.ID
	}
	if code, raw := call(b, http.MethodPut, "/compute/v2.1/os-quota-sets/"+project, map[string]any{"quota_set": map[string]any{"instances": 3}}); code != 200 {
		t.Fatalf("quota set: %d %s", code, raw)
	}

	var wg sync.WaitGroup
	codes := make(chan string, 12)
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := []*devBroker{a, b}[i%2]
			code, raw := call(br, http.MethodPost, "/compute/v2.1/servers", map[string]any{"server": map[string]any{
				"name": fmt.Sprintf("q%d", i), "flavorRef": "1", "imageRef": imageOn[br], "networks": "none"}})
			codes <- fmt.Sprintf("%d %s", code, raw)
		}()
	}
	wg.Wait()
	close(codes)
	made := 0
	for c := range codes {
		switch {
		case strings.HasPrefix(c, "202 "):
			made++
		case strings.HasPrefix(c, "403 ") && strings.Contains(c, "Quota exceeded for instances"):
		default:
			t.Fatalf("create answered %s", c)
		}
	}
	// Each broker lists the servers of the peer it reaches; together they
	// are every server of the project.
	servers := map[string]*devBroker{}
	for _, br := range []*devBroker{a, b} {
		var list struct{ Servers []struct{ ID string } }
		if code, raw := call(br, http.MethodGet, "/compute/v2.1/servers", nil); code != 200 || json.Unmarshal(raw, &list) != nil {
			t.Fatalf("list: %d %s", code, raw)
		}
		for _, s := range list.Servers {
			servers[s.ID] = br
		}
	}
	if made != 3 || len(servers) != 3 {
		t.Fatalf("%d creates passed and %d servers exist; want 3 and 3 (quota 3)", made, len(servers))
	}
	var detail struct {
		QuotaSet struct {
			Instances struct{ InUse, Limit, Reserved int } `json:"instances"`
		} `json:"quota_set"`
	}
	code, raw := call(b, http.MethodGet, "/compute/v2.1/os-quota-sets/"+project+"/detail", nil)
	if err := json.Unmarshal(bytes.ReplaceAll(bytes.ReplaceAll(raw, []byte(`"in_use"`), []byte(`"InUse"`)), []byte(`"reserved"`), []byte(`"Reserved"`)), &detail); code != 200 || err != nil ||
		detail.QuotaSet.Instances.InUse != 3 || detail.QuotaSet.Instances.Reserved != 0 || detail.QuotaSet.Instances.Limit != 3 {
		t.Fatalf("quota detail: %d %s", code, raw)
	}
	// Deleting one through its broker frees its place for the other.
	var victim string
	var owner, other *devBroker
	for id, br := range servers {
		victim, owner = id, br
	}
	other = map[*devBroker]*devBroker{a: b, b: a}[owner]
	if code, raw := call(owner, http.MethodDelete, "/compute/v2.1/servers/"+victim, nil); code != 204 {
		t.Fatalf("delete: %d %s", code, raw)
	}
	if code, raw := call(other, http.MethodPost, "/compute/v2.1/servers", map[string]any{"server": map[string]any{
		"name": "after-delete", "flavorRef": "1", "imageRef": imageOn[other], "networks": "none"}}); code != 202 {
		t.Fatalf("create after a delete: %d %s", code, raw)
	}
}
