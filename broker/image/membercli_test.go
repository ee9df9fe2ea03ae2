package image_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/oscli"
)

// oscAs runs the openstack CLI as user on project.
func oscAs(t *testing.T, bin string, te *testEnv, user, password, project string, args ...string) string {
	t.Helper()
	out, code := oscli.Run(t, bin, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"OS_AUTH_URL=" + te.Server.URL + "/v3", "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=" + user,
		"OS_PASSWORD=" + password, "OS_PROJECT_NAME=" + project, "OS_USER_DOMAIN_NAME=Default",
		"OS_PROJECT_DOMAIN_NAME=Default", "OS_REGION_NAME=RegionOne", "OS_INTERFACE=public"}, args...)
	if code != 0 {
		t.Fatalf("openstack %s (as %s): exit %d\n%s", strings.Join(args, " "), user, code, out)
	}
	return out
}

func cliNames(t *testing.T, js string) []string {
	t.Helper()
	var list []map[string]any
	if err := json.Unmarshal([]byte(js), &list); err != nil {
		t.Fatalf("%q: %v", js, err)
	}
	var out []string
	for _, r := range list {
		if n, ok := r["Name"].(string); ok {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenStackCLIMembers shares an image with the real openstack CLI:
// `image add project`, the member's `image set --accept`, `image member
// list`, `image list --shared`, and another project's view.
func TestOpenStackCLIMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("drives the real openstack CLI")
	}
	bin := oscli.Path(t)
	te := newEnv(t, envOpts{}, "alpha")
	aPW := te.Member(t, "alice", "team-a", identity.RoleMember)
	bPW := te.Member(t, "bob", "team-b", identity.RoleMember)
	cPW := te.Member(t, "carol", "team-c", identity.RoleMember)
	teamB := te.projectID(t, "team-b")
	alice := func(args ...string) string { return oscAs(t, bin, te, "alice", aPW, "team-a", args...) }
	bob := func(args ...string) string { return oscAs(t, bin, te, "bob", bPW, "team-b", args...) }
	carol := func(args ...string) string { return oscAs(t, bin, te, "carol", cPW, "team-c", args...) }

	alice("image", "create", "--disk-format", "raw", "--container-format", "bare", "--shared", "cli-shared")
	alice("image", "add", "project", "cli-shared", teamB) // a member cannot look project names up

	var members []map[string]any
	if err := json.Unmarshal([]byte(alice("image", "member", "list", "cli-shared", "-f", "json")), &members); err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0]["Member ID"] != teamB || members[0]["Status"] != "pending" {
		t.Fatalf("image member list = %v", members)
	}
	if got := cliNames(t, bob("image", "list", "--shared", "-f", "json")); len(got) != 0 {
		t.Fatalf("bob's shared list while pending = %v", got)
	}
	var shown map[string]any
	id := strings.TrimSpace(alice("image", "show", "cli-shared", "-f", "value", "-c", "id"))
	bob("image", "set", "--accept", id)
	if err := json.Unmarshal([]byte(alice("image", "member", "list", "cli-shared", "-f", "json")), &members); err != nil {
		t.Fatal(err)
	}
	if len(members) != 1 || members[0]["Status"] != "accepted" {
		t.Fatalf("image member list after accept = %v", members)
	}
	if got := cliNames(t, bob("image", "list", "--shared", "-f", "json")); !slices.Equal(got, []string{"cli-shared"}) {
		t.Fatalf("bob's shared list once accepted = %v", got)
	}
	if err := json.Unmarshal([]byte(bob("image", "show", id, "-f", "json")), &shown); err != nil || shown["visibility"] != "shared" {
		t.Fatalf("bob's image show = %v %v", shown, err)
	}
	if got := cliNames(t, carol("image", "list", "--shared", "-f", "json")); len(got) != 0 {
		t.Fatalf("carol's shared list = %v", got)
	}
	if out, code := oscli.Run(t, bin, []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"OS_AUTH_URL=" + te.Server.URL + "/v3", "OS_IDENTITY_API_VERSION=3", "OS_USERNAME=carol", "OS_PASSWORD=" + cPW,
		"OS_PROJECT_NAME=team-c", "OS_USER_DOMAIN_NAME=Default", "OS_PROJECT_DOMAIN_NAME=Default"}, "image", "show", id); code == 0 {
		t.Fatalf("carol's image show succeeded: %s", out)
	}
	bob("image", "set", "--reject", id)
	if got := cliNames(t, bob("image", "list", "--shared", "-f", "json")); len(got) != 0 {
		t.Fatalf("bob's shared list once rejected = %v", got)
	}
	alice("image", "remove", "project", "cli-shared", teamB)
	if err := json.Unmarshal([]byte(alice("image", "member", "list", "cli-shared", "-f", "json")), &members); err != nil || len(members) != 0 {
		t.Fatalf("image member list after remove = %v %v", members, err)
	}
}
