package swift_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/oscli"
)

// cli runs a client command as alice of project alpha, with the
// environment an openrc would set, in dir.
func cli(t *testing.T, e *env, dir, password, bin string, args ...string) string {
	t.Helper()
	return cliAs(t, e, dir, "alice", "alpha", password, bin, args...)
}

// cliAs is cli as name of project.
func cliAs(t *testing.T, e *env, dir, name, project, password, bin string, args ...string) string {
	t.Helper()
	out, code := runAs(t, e, dir, name, project, password, bin, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d\n%s", filepath.Base(bin), strings.Join(args, " "), code, out)
	}
	return out
}

// runAs runs the client (the openstack or the swift CLI) as cliAs does,
// and returns its combined output and exit code.
func runAs(t *testing.T, e *env, dir, name, project, password, bin string, args ...string) (string, int) {
	t.Helper()
	return oscli.RunIn(t, bin, dir, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"OS_AUTH_URL=" + e.Server.URL + "/v3", "OS_IDENTITY_API_VERSION=3", "OS_AUTH_VERSION=3", "OS_USERNAME=" + name,
		"OS_PASSWORD=" + password, "OS_PROJECT_NAME=" + project, "OS_USER_DOMAIN_NAME=Default",
		"OS_PROJECT_DOMAIN_NAME=Default", "OS_REGION_NAME=RegionOne", "OS_INTERFACE=public"}, args...)
}

// TestSwiftCLI drives Debian's swift client (python3-swiftclient):
// upload and download with byte comparison, list, stat, post, delete.
func TestSwiftCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the real swift CLI")
	}
	bin, err := exec.LookPath("swift")
	if err != nil {
		t.Skip("the swift CLI (python3-swiftclient) is not installed")
	}
	e := newEnv(t)
	password := e.Member(t, "alice", "alpha", "member")
	dir := t.TempDir()
	data := noise(4<<20+3, 3)
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string { return cli(t, e, dir, password, bin, args...) }

	run("post", "-m", "team:blue", "backups")
	run("upload", "backups", "big.bin", "-H", "X-Object-Meta-Kind: test")
	if got := run("list", "backups"); got != "big.bin\n" {
		t.Fatalf("swift list = %q", got)
	}
	stat := run("stat", "backups", "big.bin")
	for _, want := range []string{"Content Length: 4194307", "ETag: " + md5hex(data), "Meta Kind: test"} {
		if !strings.Contains(stat, want) {
			t.Fatalf("swift stat object lacks %q:\n%s", want, stat)
		}
	}
	run("download", "backups", "big.bin", "-o", "got.bin")
	got, err := os.ReadFile(filepath.Join(dir, "got.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes (%v); want the %d uploaded", len(got), err, len(data))
	}
	run("post", "-m", "color:red", "backups", "big.bin")
	if stat := run("stat", "backups", "big.bin"); !strings.Contains(stat, "Meta Color: red") || strings.Contains(stat, "Meta Kind") {
		t.Fatalf("swift stat after post:\n%s", stat)
	}
	if stat := run("stat", "backups"); !strings.Contains(stat, "Objects: 1") || !strings.Contains(stat, "Bytes: 4194307") ||
		!strings.Contains(stat, "Meta Team: blue") {
		t.Fatalf("swift stat container:\n%s", stat)
	}
	if stat := run("stat"); !strings.Contains(stat, "Containers: 1") || !strings.Contains(stat, "Objects: 1") {
		t.Fatalf("swift stat account:\n%s", stat)
	}
	if caps := run("capabilities"); !strings.Contains(caps, "container_quotas") || !strings.Contains(caps, "tempurl") || !strings.Contains(caps, "bulk_delete") || !strings.Contains(caps, "slo") || !strings.Contains(caps, "versioned_writes") {
		t.Fatalf("swift capabilities:\n%s", caps)
	}
	// A static large object of 1 MiB segments, in a segments container
	// the CLI makes.
	run("upload", "--use-slo", "-S", "1048576", "--object-name", "slo.bin", "backups", "big.bin")
	if stat := run("stat", "backups", "slo.bin"); !strings.Contains(stat, "Content Length: 4194307") {
		t.Fatalf("swift stat of the SLO:\n%s", stat)
	}
	run("download", "backups", "slo.bin", "-o", "slo-got.bin")
	if got, err := os.ReadFile(filepath.Join(dir, "slo-got.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded SLO of %d bytes (%v); want the %d uploaded", len(got), err, len(data))
	}
	run("delete", "backups", "slo.bin")
	if got := run("list", "backups_segments"); got != "" {
		t.Fatalf("segments left after deleting the SLO: %q", got)
	}
	run("delete", "backups_segments")

	// A dynamic large object (the CLI's -S without --use-slo).
	run("upload", "-S", "1048576", "--object-name", "dlo.bin", "backups", "big.bin")
	run("download", "backups", "dlo.bin", "-o", "dlo-got.bin")
	if got, err := os.ReadFile(filepath.Join(dir, "dlo-got.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded DLO of %d bytes (%v); want the %d uploaded", len(got), err, len(data))
	}
	if stat := run("stat", "backups", "dlo.bin"); !strings.Contains(stat, "Manifest: backups_segments/dlo.bin/") {
		t.Fatalf("swift stat of the DLO:\n%s", stat)
	}
	// A POST re-pointing the manifest keeps it a DLO; one without
	// X-Object-Manifest makes it a plain (empty) object, as Swift does.
	run("post", "-H", "X-Object-Manifest: backups_segments/dlo.bin/", "-m", "k:v", "backups", "dlo.bin")
	run("download", "backups", "dlo.bin", "-o", "dlo-got2.bin")
	if got, err := os.ReadFile(filepath.Join(dir, "dlo-got2.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded DLO after a POST of its manifest: %d bytes (%v); want the %d uploaded", len(got), err, len(data))
	}
	run("post", "-m", "k:w", "backups", "dlo.bin")
	if stat := run("stat", "backups", "dlo.bin"); strings.Contains(stat, "Manifest:") || !strings.Contains(stat, "Content Length: 0") {
		t.Fatalf("swift stat of the DLO after a POST without its manifest:\n%s", stat)
	}
	run("delete", "backups", "dlo.bin")
	run("delete", "backups_segments")

	// A temp URL the CLI signs, fetched by curl without a token.
	run("post", "-m", "Temp-URL-Key:cli-secret")
	signed := strings.TrimSpace(run("tempurl", "--digest", "sha256", "GET", "3600", "/swift/v1/AUTH_"+alphaID(t, e)+"/backups/big.bin", "cli-secret"))
	if curl, err := exec.LookPath("curl"); err == nil {
		out, err := exec.Command(curl, "-sf", "-o", filepath.Join(dir, "curl.bin"), e.Server.URL+signed).CombinedOutput()
		if err != nil {
			t.Fatalf("curl %s: %v %s", signed, err, out)
		}
		if got, err := os.ReadFile(filepath.Join(dir, "curl.bin")); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("curl fetched %d bytes (%v); want the %d uploaded", len(got), err, len(data))
		}
	}

	// An ACL lets beta read this container, and nothing else of alpha's.
	bobPassword := e.Member(t, "bob", "beta", "member")
	beta, err := e.Dir.FindProject(e.Ctx, identity.DefaultDomainID, "beta")
	if err != nil {
		t.Fatal(err)
	}
	run("post", "backups-private")
	run("post", "-r", beta.ID+":*", "backups")
	alphaURL := e.Server.URL + "/swift/v1/AUTH_" + alphaID(t, e)
	asBob := func(args ...string) string {
		return cliAs(t, e, dir, "bob", "beta", bobPassword, bin, append([]string{"--os-storage-url", alphaURL}, args...)...)
	}
	asBob("download", "backups", "big.bin", "-o", "bob.bin")
	if got, err := os.ReadFile(filepath.Join(dir, "bob.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("beta downloaded %d bytes (%v); want the %d uploaded", len(got), err, len(data))
	}
	if got := asBob("list", "backups"); got != "big.bin\n" {
		t.Fatalf("beta's listing of the shared container = %q", got)
	}
	for _, args := range [][]string{{"list", "backups-private"}, {"list"}, {"upload", "backups", "got.bin"}, {"delete", "backups", "big.bin"}} {
		out, code := runAs(t, e, dir, "bob", "beta", bobPassword, bin, append([]string{"--os-storage-url", alphaURL}, args...)...)
		if code == 0 || !strings.Contains(out, "403") {
			t.Fatalf("beta's swift %s = exit %d %s; want a 403 failure", strings.Join(args, " "), code, out)
		}
	}
	run("delete", "backups-private")

	// Public: read with a token that is no token (keystoneauth's invalid
	// identity reads as anonymous), and still nothing else.
	run("post", "-r", ".r:*", "backups")
	bogus := func(args ...string) (string, int) {
		return oscli.RunIn(t, bin, dir, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()},
			append([]string{"--os-auth-token", "not-a-token", "--os-storage-url", alphaURL}, args...)...)
	}
	if out, code := bogus("download", "backups", "big.bin", "-o", "public.bin"); code != 0 {
		t.Fatalf("swift download of a public object with an invalid token: exit %d %s", code, out)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "public.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("public download of %d bytes (%v); want the %d uploaded", len(got), err, len(data))
	}
	if out, code := bogus("list", "backups"); code == 0 || !strings.Contains(out, "401") {
		t.Fatalf("swift list of a public container without .rlistings, invalid token = exit %d %s; want a 401 failure", code, out)
	}
	run("post", "-r", beta.ID+":*", "backups")

	// Versioning set by the CLI: an overwrite keeps the old bytes.
	run("post", "backups_versions")
	run("post", "-H", "X-History-Location: backups_versions", "backups")
	if stat := run("stat", "backups"); !strings.Contains(stat, "X-History-Location: backups_versions") {
		t.Fatalf("swift stat of the versioned container:\n%s", stat)
	}
	run("upload", "--object-name", "v.txt", "backups", "got.bin")
	run("upload", "--object-name", "v.txt", "backups", "bob.bin")
	archived := strings.TrimSpace(run("list", "backups_versions"))
	if !strings.HasPrefix(archived, "005v.txt/") || strings.Contains(archived, "\n") {
		t.Fatalf("swift list of the versions = %q; want one 005v.txt/<timestamp>", archived)
	}
	run("download", "backups_versions", archived, "-o", "v-got.bin")
	if got, err := os.ReadFile(filepath.Join(dir, "v-got.bin")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("archived version of %d bytes (%v); want the %d first uploaded", len(got), err, len(data))
	}
	// A DELETE archives the object and leaves a delete marker.
	run("delete", "backups", "v.txt")
	versions := strings.Fields(run("list", "backups_versions"))
	if len(versions) != 3 {
		t.Fatalf("swift list of the versions after a delete = %q; want two versions and a marker", versions)
	}
	if stat := run("stat", "backups_versions", versions[2]); !strings.Contains(stat, "Content Type: application/x-deleted;swift_versions_deleted=1") {
		t.Fatalf("swift stat of the delete marker:\n%s", stat)
	}
	run("post", "-H", "X-Remove-History-Location: x", "backups")
	run("delete", "backups_versions")
	run("copy", "-d", "/backups/copy.bin", "backups", "big.bin")
	run("delete", "backups", "big.bin")
	if got := run("list", "backups"); got != "copy.bin\n" {
		t.Fatalf("swift list after delete = %q", got)
	}
	// Deleting a container with objects: the CLI bulk-deletes them.
	run("upload", "backups", "got.bin")
	run("delete", "backups")
	if got := run("list"); got != "" {
		t.Fatalf("swift list after deleting the container = %q", got)
	}
}

func alphaID(t *testing.T, e *env) string {
	t.Helper()
	p, err := e.Dir.FindProject(e.Ctx, identity.DefaultDomainID, "alpha")
	if err != nil {
		t.Fatal(err)
	}
	return p.ID
}

// TestOpenStackCLI drives `openstack container` and `openstack object`.
func TestOpenStackCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the real openstack CLI")
	}
	bin := oscli.Path(t)
	e := newEnv(t)
	password := e.Member(t, "alice", "alpha", "member")
	dir := t.TempDir()
	data := noise(3<<20, 4)
	if err := os.WriteFile(filepath.Join(dir, "report.bin"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string { return cli(t, e, dir, password, bin, args...) }
	js := func(v any, args ...string) {
		t.Helper()
		out := run(append(args, "-f", "json")...)
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("openstack %s: %q: %v", strings.Join(args, " "), out, err)
		}
	}

	var created []map[string]any
	js(&created, "container", "create", "docs")
	if len(created) != 1 || created[0]["container"] != "docs" {
		t.Fatalf("container create = %v", created)
	}
	var containers []map[string]any
	js(&containers, "container", "list")
	if len(containers) != 1 || containers[0]["Name"] != "docs" {
		t.Fatalf("container list = %v", containers)
	}
	var obj []map[string]any
	js(&obj, "object", "create", "docs", "report.bin")
	if len(obj) != 1 || obj[0]["object"] != "report.bin" || obj[0]["etag"] != md5hex(data) {
		t.Fatalf("object create = %v", obj)
	}
	var objects []map[string]any
	js(&objects, "object", "list", "docs")
	if len(objects) != 1 || objects[0]["Name"] != "report.bin" {
		t.Fatalf("object list = %v", objects)
	}
	var shown map[string]any
	js(&shown, "object", "show", "docs", "report.bin")
	if shown["etag"] != md5hex(data) || shown["content-length"] != "3145728" {
		t.Fatalf("object show = %v", shown)
	}
	run("object", "set", "--property", "stage=final", "docs", "report.bin")
	js(&shown, "object", "show", "docs", "report.bin")
	if props, _ := shown["properties"].(map[string]any); props["Stage"] != "final" && props["stage"] != "final" {
		t.Fatalf("object show after set = %v", shown)
	}
	var cshown map[string]any
	js(&cshown, "container", "show", "docs")
	if cshown["object_count"] != "1" || cshown["bytes_used"] != "3145728" {
		t.Fatalf("container show = %v", cshown)
	}
	run("object", "save", "--file", "saved.bin", "docs", "report.bin")
	got, err := os.ReadFile(filepath.Join(dir, "saved.bin"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("saved %d bytes (%v); want the %d uploaded", len(got), err, len(data))
	}
	run("object", "delete", "docs", "report.bin")
	run("container", "delete", "docs")
	js(&containers, "container", "list")
	if len(containers) != 0 {
		t.Fatalf("container list after delete = %v", containers)
	}
}
