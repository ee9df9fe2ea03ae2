package main

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/cloudmux/cloudmux/internal/consultest"
)

// swiftClient is an admin's view of a broker's Swift API: its storage
// URL from the Keystone catalog and a token.
type swiftClient struct {
	url, token string
}

func newSwiftClient(t *testing.T, b *devBroker) swiftClient {
	t.Helper()
	provider, err := openstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: b.addr + "/v3", Username: "admin", Password: testAdminPassword, DomainName: "Default", TenantName: "admin",
	})
	if err != nil {
		t.Fatal(err)
	}
	sc, err := openstack.NewObjectStorageV1(provider, gophercloud.EndpointOpts{Region: "RegionOne"})
	if err != nil {
		t.Fatal(err)
	}
	return swiftClient{url: strings.TrimSuffix(sc.Endpoint, "/"), token: provider.Token()}
}

// do sends one request and returns its response with the body read.
func (c swiftClient) do(method, path string, body io.Reader, size int64) (*http.Response, []byte, error) {
	req, err := http.NewRequest(method, c.url+path, body)
	if err != nil {
		return nil, nil, err
	}
	req.ContentLength = size
	req.Header.Set("X-Auth-Token", c.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp, raw, err
}

func (c swiftClient) must(t *testing.T, want int, method, path string, body []byte) (*http.Response, []byte) {
	t.Helper()
	resp, raw, err := c.do(method, path, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("%s %s = %d %q; want %d", method, path, resp.StatusCode, raw, want)
	}
	return resp, raw
}

// objectFiles lists the local cloud's object store files under the
// broker's data directory, relative to it.
func objectFiles(t *testing.T, dataDir string) []string {
	t.Helper()
	root := filepath.Join(dataDir, "localcloud", "objects")
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root {
			rel, _ := filepath.Rel(root, p)
			files = append(files, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// countFiles counts files whose base name has prefix and suffix, with
// the size of the largest.
func countFiles(t *testing.T, dataDir, prefix, suffix string) (n int, largest int64) {
	t.Helper()
	root := filepath.Join(dataDir, "localcloud", "objects")
	for _, f := range objectFiles(t, dataDir) {
		base := filepath.Base(f)
		if strings.HasPrefix(base, prefix) && strings.HasSuffix(base, suffix) {
			n++
			if st, err := os.Stat(filepath.Join(root, f)); err == nil {
				largest = max(largest, st.Size())
			}
		}
	}
	return n, largest
}

// TestSwiftCrashMidPut kills (SIGKILL) a broker (`cloudmux serve -config`
// on Consul, hosting a fake-driver local cloud) while a PUT through its
// Swift API replaces an object: half of the new 8 MiB body is on the
// local cloud's disk and the client holds back the rest. The broker
// restarted over the same data directory and Consul serves the previous
// object byte-exact (HEAD's ETag and size, GET's bytes), the container's
// listing and stats count one object of the previous size, and its
// object store holds one record and one data file, no temporary or
// half-written one.
func TestSwiftCrashMidPut(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Consul agent and the broker twice")
	}
	agent := consultest.Start(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "cloudmux.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`listen: 127.0.0.1:0
data_dir: %s
log: {format: json}
store:
  backend: consul
  consul: {key_prefix: swift-crash-%d/}
prober: {interval: 1s, timeout: 1s}
local_cloud: {enabled: true, name: local, driver: fake}
credentials_key_file: %s
`, dir, time.Now().UnixNano(), filepath.Join(dir, "credentials.key"))), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"CONSUL_HTTP_ADDR=" + agent.Addr, "CLOUDMUX_ADMIN_PASSWORD=" + testAdminPassword}
	b := startBroker(t, []string{"serve", "-config", cfg}, env)
	sw := newSwiftClient(t, b)

	old := bytes.Repeat([]byte("previous version "), 200_000) // 3.4 MB
	sum := md5.Sum(old)
	oldETag := hex.EncodeToString(sum[:])
	sw.must(t, http.StatusCreated, http.MethodPut, "/ctr", nil)
	sw.must(t, http.StatusCreated, http.MethodPut, "/ctr/obj", old)
	if n, _ := countFiles(t, dir, "", ".data"); n != 1 {
		t.Fatalf("%d data files after the first PUT: %q", n, objectFiles(t, dir))
	}

	// The replacing PUT: its first half sent, then the client waits
	// until the broker is killed.
	const newSize = 8 << 20
	half := bytes.Repeat([]byte("NEW "), newSize/8)
	pr, pw := io.Pipe()
	putDone := make(chan error, 1)
	go func() {
		resp, _, err := sw.do(http.MethodPut, "/ctr/obj", pr, newSize)
		if err == nil {
			err = fmt.Errorf("the PUT answered %d", resp.StatusCode)
		}
		putDone <- err
	}()
	if _, err := pw.Write(half); err != nil {
		t.Fatal(err)
	}
	// The new data file is on disk with (most of) that half in it.
	waitFor(t, "the new upload's data file", func() (bool, string) {
		n, largest := countFiles(t, dir, "", ".data")
		return n == 2 && largest >= int64(len(half))/2, fmt.Sprintf("%d data files, largest %d bytes", n, largest)
	})
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-b.exited; err == nil {
		t.Fatal("the broker exited cleanly after SIGKILL")
	}
	b.exited <- nil
	_ = pw.CloseWithError(io.ErrClosedPipe)
	if err := <-putDone; err == nil {
		t.Fatal("the interrupted PUT succeeded")
	}

	b = startBroker(t, []string{"serve", "-config", cfg}, env)
	sw = newSwiftClient(t, b)
	// The local peer is probed up again before objects are served.
	var resp *http.Response
	waitFor(t, "HEAD of the object after the restart", func() (bool, string) {
		r, raw, err := sw.do(http.MethodHead, "/ctr/obj", nil, 0)
		if err != nil {
			return false, err.Error()
		}
		resp = r
		return r.StatusCode == http.StatusOK, fmt.Sprintf("%d %q", r.StatusCode, raw)
	})
	if got := resp.Header.Get("Etag"); got != oldETag || resp.ContentLength != int64(len(old)) {
		t.Fatalf("HEAD after the crash: ETag %q, %d bytes; want the previous version's %q, %d bytes", got, resp.ContentLength, oldETag, len(old))
	}
	_, got := sw.must(t, http.StatusOK, http.MethodGet, "/ctr/obj", nil)
	if !bytes.Equal(got, old) {
		t.Fatalf("GET after the crash: %d bytes (%.20q...); want the previous version's %d bytes", len(got), got, len(old))
	}

	resp, raw := sw.must(t, http.StatusOK, http.MethodGet, "/ctr?format=json", nil)
	var listing []struct {
		Name  string `json:"name"`
		Bytes int64  `json:"bytes"`
		Hash  string `json:"hash"`
	}
	if err := json.Unmarshal(raw, &listing); err != nil {
		t.Fatalf("listing %q: %v", raw, err)
	}
	if len(listing) != 1 || listing[0].Name != "obj" || listing[0].Bytes != int64(len(old)) || listing[0].Hash != oldETag {
		t.Fatalf("listing after the crash: %+v; want obj alone, %d bytes, %s", listing, len(old), oldETag)
	}
	if c, n := resp.Header.Get("X-Container-Object-Count"), resp.Header.Get("X-Container-Bytes-Used"); c != "1" || n != fmt.Sprint(len(old)) {
		t.Fatalf("container stats after the crash: %s objects, %s bytes; want 1, %d", c, n, len(old))
	}
	resp, _ = sw.must(t, http.StatusNoContent, http.MethodHead, "/ctr", nil)
	if c, n := resp.Header.Get("X-Container-Object-Count"), resp.Header.Get("X-Container-Bytes-Used"); c != "1" || n != fmt.Sprint(len(old)) {
		t.Fatalf("HEAD of the container after the crash: %s objects, %s bytes; want 1, %d", c, n, len(old))
	}

	// On disk: the start-up removed the half-written upload.
	data, _ := countFiles(t, dir, "", ".data")
	meta, _ := countFiles(t, dir, "", ".meta")
	tmp, _ := countFiles(t, dir, ".tmp-", "")
	if data != 1 || meta != 1 || tmp != 0 {
		t.Fatalf("object store after the restart: %d data files, %d records, %d temporary files:\n%q", data, meta, tmp, objectFiles(t, dir))
	}
}
