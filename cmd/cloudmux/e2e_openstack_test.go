package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcos "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/imagedata"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	"github.com/cloudmux/cloudmux/internal/consultest"
	"github.com/cloudmux/cloudmux/internal/oscli"
)

// The real OpenStack (scripts/openstack-testcloud.sh exports these).
const (
	envTestcloudClouds = "CLOUDMUX_OPENSTACK_CLOUDS"
	testcloudEntry     = "testcloud" // a member of project cloudmux-test
	testcloudFlavor    = "42"        // m1.nano, on the testcloud and the dev local cloud alike
)

// testcloudClouds returns the testcloud's clouds.yaml path, or skips.
func testcloudClouds(t testing.TB) string {
	t.Helper()
	path := os.Getenv(envTestcloudClouds)
	if path == "" {
		t.Skipf("no real OpenStack: %s is unset; run `eval \"$(scripts/openstack-testcloud.sh)\"` (needs ../shared beside the repository, as in CI)", envTestcloudClouds)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("%s=%s: %v", envTestcloudClouds, path, err)
	}
	return path
}

// oscTestcloud runs the openstack CLI directly against the testcloud, as
// its tenant: what the broker did there, seen without the broker.
func oscTestcloud(t *testing.T, clouds string, args ...string) (string, int) {
	t.Helper()
	return oscli.Run(t, oscli.Path(t), []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"OS_CLIENT_CONFIG_FILE=" + clouds, "OS_CLOUD=" + testcloudEntry}, args...)
}

// hybridBroker is a broker on a real Consul agent whose pool holds its dev
// local cloud (tier=private) and the real testcloud (tier=public).
type hybridBroker struct {
	*devBroker
	agent   *consultest.Agent
	clouds  string
	compute *gophercloud.ServiceClient
	image   *gophercloud.ServiceClient
	network *gophercloud.ServiceClient
}

// startHybridBroker starts `cloudmux serve -dev` with its store on a real
// Consul agent, uploads the image servers will need (before the testcloud
// joins, so its home is the local cloud), imports the testcloud from its
// clouds.yaml, and waits until both peers are up.
func startHybridBroker(t *testing.T, probe time.Duration) *hybridBroker {
	t.Helper()
	clouds := testcloudClouds(t)
	agent := consultest.Start(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cloudmux.yaml")
	content := fmt.Sprintf(`store:
  backend: consul
  consul: {key_prefix: e2e-%d/}
prober: {interval: %s, timeout: %s}
local_cloud: {labels: {tier: private}}
`, time.Now().UnixNano(), probe, probe)
	if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, []string{"serve", "-dev", "-config", cfg, "-listen", "127.0.0.1:0", "-log-format", "json"},
		[]string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CLOUDMUX_ADMIN_PASSWORD=" + testAdminPassword})
	provider, err := gcos.AuthenticatedClient(t.Context(), gophercloud.AuthOptions{
		IdentityEndpoint: b.addr + "/v3", Username: "admin", Password: testAdminPassword, DomainName: "Default", TenantName: "admin",
	})
	if err != nil {
		t.Fatalf("gophercloud against the broker: %v", err)
	}
	h := &hybridBroker{devBroker: b, agent: agent, clouds: clouds}
	eo := gophercloud.EndpointOpts{Region: "RegionOne"}
	if h.compute, err = gcos.NewComputeV2(provider, eo); err != nil {
		t.Fatal(err)
	}
	if h.image, err = gcos.NewImageV2(provider, eo); err != nil {
		t.Fatal(err)
	}
	if h.network, err = gcos.NewNetworkV2(provider, eo); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := b.cli(t, nil, "peer", "import", "-cloud", testcloudEntry, "-label", "tier=public", clouds); code != 0 {
		t.Fatalf("peer import: exit %d\n%s%s", code, out, errOut)
	}
	dropTestcloudMirrors(t, clouds, b.addr, b.token)
	for _, name := range []string{"local", testcloudEntry} {
		h.waitPeer(t, name, "up", time.Minute)
	}
	return h
}

// peerStatus is the peer's status in the broker's registry (/v1/peers).
func (h *hybridBroker) peerStatus(t *testing.T, name string) (string, string) {
	out, errOut, _ := h.cli(t, nil, "peer", "show", name, "-o", "json")
	var p struct {
		Status string `json:"status"`
	}
	_ = json.Unmarshal([]byte(out), &p)
	return p.Status, out + errOut
}

func (h *hybridBroker) waitPeer(t *testing.T, name, status string, timeout time.Duration) {
	t.Helper()
	waitFor2(t, timeout, "peer "+name+" "+status, func() (bool, string) {
		st, out := h.peerStatus(t, name)
		return st == status, out
	})
}

// consulStatus is the aggregated status of the peer's service in Consul's
// health API.
func (h *hybridBroker) consulStatus(name string) (string, error) {
	entries, _, err := h.agent.Client().Health().Service("cloudmux-peer", "", false, nil)
	if err != nil {
		return "", err
	}
	for _, e := range entries {
		if e.Service.Meta["peer_name"] == name {
			return e.Checks.AggregatedStatus(), nil
		}
	}
	return "absent", nil
}

// uploadImage creates and uploads a private image through the broker's
// Glance and returns its ID and the MD5 of its bytes.
func (h *hybridBroker) uploadImage(t *testing.T, name string, size int) (string, string) {
	t.Helper()
	data := make([]byte, size)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	img, err := images.Create(t.Context(), h.image, images.CreateOpts{Name: name, DiskFormat: "raw", ContainerFormat: "bare"}).Extract()
	if err != nil {
		t.Fatalf("image create through the broker: %v", err)
	}
	if err := imagedata.Upload(t.Context(), h.image, img.ID, bytes.NewReader(data)).ExtractErr(); err != nil {
		t.Fatalf("image upload through the broker: %v", err)
	}
	sum := md5.Sum(data)
	return img.ID, hex.EncodeToString(sum[:])
}

// createServerWith creates a server through the broker's Nova with these
// options and scheduler hints and waits for ACTIVE. The server is deleted
// at cleanup.
func (h *hybridBroker) createServerWith(t *testing.T, opts servers.CreateOpts, hints map[string]any, timeout time.Duration) *servers.Server {
	t.Helper()
	var hintOpts servers.SchedulerHintOptsBuilder
	if hints != nil {
		hintOpts = servers.SchedulerHintOpts{AdditionalProperties: hints}
	}
	name, zone := opts.Name, opts.AvailabilityZone
	s, err := servers.Create(t.Context(), h.compute, opts, hintOpts).Extract()
	if err != nil {
		t.Fatalf("server create in %s through the broker: %v", zone, err)
	}
	t.Cleanup(func() { _ = h.deleteServer(s.ID) })
	var last *servers.Server
	waitFor2(t, timeout, "server "+name+" ACTIVE", func() (bool, string) {
		got, err := servers.Get(t.Context(), h.compute, s.ID).Extract()
		if err != nil {
			return false, err.Error()
		}
		if got.Status == "ERROR" {
			t.Fatalf("server %s in %s: ERROR %v", name, zone, got.Fault)
		}
		last = got
		return got.Status == "ACTIVE", got.Status
	})
	return last
}

// tierHintRego requires a peer's tier label to match a scheduler hint
// "tier", when one is given: a rule in the stock policy's per-peer form
// (deny is the set of reasons to reject input.peer), as an admin extends it.
const tierHintRego = `package cloudmux.placement

deny contains sprintf("scheduler hint tier=%s, peer has tier=%s", [input.request.hints.other.tier, object.get(input.peer.labels, "tier", "")]) if {
	object.get(input.peer.labels, "tier", "") != input.request.hints.other.tier
}
`

// pushTierHintPolicy activates the stock policy plus tierHintRego, as an
// admin would with the cloudmux CLI.
func (h *hybridBroker) pushTierHintPolicy(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	if out, errOut, code := h.cli(t, nil, "policy", "show", "stock", "-write", dir); code != 0 {
		t.Fatalf("policy show stock -write: exit %d\n%s%s", code, out, errOut)
	}
	if err := os.WriteFile(filepath.Join(dir, "tier_hint.rego"), []byte(tierHintRego), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := h.cli(t, nil, "policy", "push", "-activate", "-comment", "tier hint", dir); code != 0 {
		t.Fatalf("policy push: exit %d\n%s%s", code, out, errOut)
	}
}

// deleteServer deletes a server through the broker and waits until it is
// gone.
func (h *hybridBroker) deleteServer(id string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := servers.Delete(ctx, h.compute, id).ExtractErr(); err != nil && !gophercloud.ResponseCodeIs(err, 404) {
		return err
	}
	for {
		_, err := servers.Get(ctx, h.compute, id).Extract()
		if gophercloud.ResponseCodeIs(err, 404) {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("server %s not gone after a minute: %v", id, err)
		}
		time.Sleep(200 * time.Millisecond) // poll interval
	}
}

// TestHybridBrokerOnTestcloud is issue 5's end-to-end test: one broker on
// a real Consul with its local cloud and the real testcloud as peers. A
// server placed on the testcloud by a label (a scheduler hint tier=public
// the admins' policy requires on the peer) becomes ACTIVE there, seen by
// the openstack CLI straight against the testcloud; the image it needed,
// uploaded to the broker and living on the local cloud, was staged there
// with the same checksum; the broker's list shows servers of both clouds.
func TestHybridBrokerOnTestcloud(t *testing.T) {
	if testing.Short() {
		t.Skip("needs the real OpenStack testcloud and Consul")
	}
	h := startHybridBroker(t, 2*time.Second)
	// Both peers are in Consul's catalog, their TTL checks passing.
	waitFor2(t, 30*time.Second, "both peers passing in Consul's health API", func() (bool, string) {
		l, errL := h.consulStatus("local")
		r, errR := h.consulStatus(testcloudEntry)
		return l == "passing" && r == "passing", fmt.Sprint("local ", l, errL, ", testcloud ", r, errR)
	})
	nonce := fmt.Sprintf("%d", time.Now().UnixNano())
	t.Run("the testcloud's own shared network", func(t *testing.T) { h.checkNativeNetwork(t, "e2e-shared-"+nonce) })
	imgID, imgMD5 := h.uploadImage(t, "e2e-hybrid-"+nonce, 1<<20+777)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = images.Delete(ctx, h.image, imgID).ExtractErr()
	})

	remoteName, localName := "e2e-remote-"+nonce, "e2e-local-"+nonce
	// The admins' policy turns a scheduler hint tier=X into a requirement
	// of label tier=X (the stock policy leaves other hints to policies).
	h.pushTierHintPolicy(t)
	remote := h.createServerWith(t, servers.CreateOpts{Name: remoteName, ImageRef: imgID, FlavorRef: testcloudFlavor},
		map[string]any{"tier": "public"}, 2*time.Minute)
	local := h.createServerWith(t, servers.CreateOpts{Name: localName, ImageRef: imgID, FlavorRef: testcloudFlavor},
		map[string]any{"tier": "private"}, time.Minute)
	if remote.AvailabilityZone != testcloudEntry || local.AvailabilityZone != "local" {
		t.Errorf("zones: remote %q, local %q; want %s and local", remote.AvailabilityZone, local.AvailabilityZone, testcloudEntry)
	}

	// The testcloud itself says the server is ACTIVE there, marked with
	// the broker's ID, and booted from a copy of the broker's image.
	out, code := oscTestcloud(t, h.clouds, "server", "show", remoteName, "-f", "json")
	if code != 0 {
		t.Fatalf("openstack server show %s on the testcloud: exit %d\n%s", remoteName, code, out)
	}
	var onCloud struct {
		ID         string `json:"id"`
		Status     string `json:"status"`
		Properties any    `json:"properties"`
		Image      any    `json:"image"`
	}
	if err := json.Unmarshal([]byte(out), &onCloud); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if onCloud.Status != "ACTIVE" || !strings.Contains(jsonText(onCloud.Properties), remote.ID) {
		t.Errorf("on the testcloud the server is %s with properties %s; want ACTIVE, marked with broker ID %s", onCloud.Status, jsonText(onCloud.Properties), remote.ID)
	}
	stagedID := imageIDOf(onCloud.Image)
	if stagedID == "" {
		t.Fatalf("the testcloud's server boots image %v; want the staged copy", onCloud.Image)
	}
	// The replica, if the broker left it (see the end of the test).
	cli := oscli.Path(t)
	t.Cleanup(func() {
		del := exec.Command(cli, "image", "delete", stagedID)
		del.Env = append(os.Environ(), "OS_CLIENT_CONFIG_FILE="+h.clouds, "OS_CLOUD="+testcloudEntry)
		_ = del.Run()
	})
	out, code = oscTestcloud(t, h.clouds, "image", "show", stagedID, "-f", "json")
	var staged struct {
		Status   string `json:"status"`
		Checksum string `json:"checksum"`
		Size     int64  `json:"size"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &staged) != nil {
		t.Fatalf("openstack image show %s on the testcloud: exit %d\n%s", stagedID, code, out)
	}
	if staged.Status != "active" || staged.Checksum != imgMD5 || staged.Size != 1<<20+777 {
		t.Errorf("the staged image on the testcloud is %+v; want active, checksum %s, %d bytes", staged, imgMD5, 1<<20+777)
	}

	// One list through the broker shows both clouds' servers.
	pages, err := servers.List(h.compute, servers.ListOpts{Name: "e2e-"}).AllPages(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	all, err := servers.ExtractServers(pages)
	if err != nil {
		t.Fatal(err)
	}
	zones := map[string]string{}
	for _, s := range all {
		zones[s.ID] = s.AvailabilityZone
	}
	if zones[remote.ID] != testcloudEntry || zones[local.ID] != "local" {
		t.Errorf("server list through the broker: %v; want %s in %s and %s in local", zones, remote.ID, testcloudEntry, local.ID)
	}

	// Deleting through the broker removes the server on the testcloud, and
	// the image's replica there with the image.
	for _, id := range []string{remote.ID, local.ID} {
		if err := h.deleteServer(id); err != nil {
			t.Fatal(err)
		}
	}
	// Nova shows a server it just deleted as DELETED for a moment.
	waitFor2(t, time.Minute, "the server gone from the testcloud", func() (bool, string) {
		out, code := oscTestcloud(t, h.clouds, "server", "show", onCloud.ID, "-f", "value", "-c", "status")
		return code != 0 || strings.TrimSpace(out) == "DELETED", out
	})
	if err := images.Delete(t.Context(), h.image, imgID).ExtractErr(); err != nil {
		t.Fatalf("image delete through the broker: %v", err)
	}
	if out, code := oscTestcloud(t, h.clouds, "image", "show", stagedID, "-f", "value", "-c", "status"); code == 0 {
		t.Errorf("the image deleted through the broker left its staged replica %s on the testcloud (%s)", stagedID, strings.TrimSpace(out))
	}
}

// imageIDOf reads a server's image reference as the CLI prints it: an
// object with an id, or "name (id)".
func imageIDOf(v any) string {
	switch img := v.(type) {
	case map[string]any:
		id, _ := img["id"].(string)
		return id
	case string:
		if i := strings.LastIndex(img, "("); i >= 0 && strings.HasSuffix(img, ")") {
			return img[i+1 : len(img)-1]
		}
		return img
	}
	return ""
}
