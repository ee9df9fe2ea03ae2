package compute_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestOpenStackCLIServerGroups drives os-server-groups with the real
// openstack CLI at compute API 2.latest over two peers: anti-affinity
// members land on different peers and a third finds none, affinity
// members share their first's peer, the group's members and the
// servers' server_groups show it, and the server_groups and
// server_group_members quotas hold.
func TestOpenStackCLIServerGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	se := newServersEnv(t)
	img := se.Seeded["local-a"].ImageID
	epw := se.Member(t, "erin", "epsilon", identity.RoleMember)
	osc := func(user, pw, project, version string) func(args ...string) (string, int) {
		return func(args ...string) (string, int) {
			return se.osc(t, user, pw, project, append([]string{"--os-compute-api-version", version}, args...)...)
		}
	}
	admin, erin := osc("admin", brokertest.AdminPassword, "admin", "2.latest"), osc("erin", epw, "epsilon", "2.latest")
	admin21 := osc("admin", brokertest.AdminPassword, "admin", "2.1")
	groups := map[string]string{} // name -> ID
	zones := map[string]string{}  // server name -> zone
	ids := map[string]string{}    // server name -> ID
	createGroup := func(name string, args ...string) func() (string, int) {
		return func() (string, int) {
			out, code := admin(append(append([]string{"server", "group", "create"}, args...), name, "-f", "value", "-c", "id")...)
			groups[name] = strings.TrimSpace(out)
			return out, code
		}
	}
	// Servers go without networks: placement is what is tested, and
	// either peer can hold them.
	boot := func(name, group string) func() (string, int) {
		return func() (string, int) {
			out, code := admin("server", "create", "--flavor", "m1.tiny", "--image", img, "--nic", "none", "--hint", "group="+groups[group],
				"--wait", name, "-f", "value", "-c", "OS-EXT-AZ:availability_zone", "-c", "id")
			zone, id, _ := strings.Cut(strings.TrimSpace(out), "\n")
			zones[name], ids[name] = zone, id
			return out, code
		}
	}
	differ := func(a, b string, same bool) func() {
		return func() {
			if (zones[a] == zones[b]) != same || zones[a] == "" {
				t.Fatalf("%s runs on %q, %s on %q; want the same peer: %v", a, zones[a], b, zones[b], same)
			}
		}
	}
	steps := []cliStep{
		{"create anti-affinity", createGroup("anti", "--policy", "anti-affinity"), 0, nil, nil},
		{"create affinity", createGroup("aff", "--policy", "affinity"), 0, nil, nil},
		{"create with a rule", createGroup("anti2", "--policy", "anti-affinity", "--rule", "max_server_per_host=2"), 0, nil, nil},
		{"show the rule", func() (string, int) {
			return admin("server", "group", "show", "anti2", "-f", "shell", "-c", "policy", "-c", "rules")
		}, 0,
			[]string{`policy="anti-affinity"`, "'max_server_per_host': 2"}, nil},
		{"a rule needs anti-affinity", func() (string, int) {
			return admin("server", "group", "create", "--policy", "affinity", "--rule", "max_server_per_host=2", "bad")
		}, 1, []string{"400", "anti-affinity policy only"}, nil},
		{"soft policies need 2.15", func() (string, int) {
			return admin21("server", "group", "create", "--policy", "soft-anti-affinity", "soft")
		}, 1, []string{"2.15"}, nil},
		{"anti 1", boot("anti-1", "anti"), 0, nil, nil},
		{"anti 2", boot("anti-2", "anti"), 0, nil, differ("anti-1", "anti-2", false)},
		{"anti 3 finds no peer", func() (string, int) {
			return admin("server", "create", "--flavor", "m1.tiny", "--image", img, "--nic", "none", "--hint", "group="+groups["anti"], "anti-3")
		}, 1, []string{"No valid host", "anti-affinity"}, nil},
		{"aff 1", boot("aff-1", "aff"), 0, nil, nil},
		{"aff 2", boot("aff-2", "aff"), 0, nil, differ("aff-1", "aff-2", true)},
		{"members", func() (string, int) {
			return wantAll(t, []string{ids["anti-1"], ids["anti-2"]})(admin("server", "group", "show", "anti", "-f", "value", "-c", "members"))
		}, 0, nil, nil},
		{"server_groups of a member", func() (string, int) {
			return wantAll(t, []string{groups["aff"]})(admin("server", "show", "aff-1", "-f", "value", "-c", "server_groups"))
		}, 0, nil, nil},
		{"list", func() (string, int) { return admin("server", "group", "list", "-f", "value", "-c", "Name") }, 0, []string{"anti", "aff", "anti2"}, nil},
		{"another project sees none", printsNothing(t, func() (string, int) { return erin("server", "group", "list", "-f", "value") }), 0, nil, nil},
		{"nor shows one", func() (string, int) {
			_, err := servergroups.Get(t.Context(), se.compute(t, "erin", epw, "epsilon"), groups["anti"]).Extract()
			if !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Fatalf("another project's group: %v, want 404", err)
			}
			return erin("server", "group", "show", groups["anti"])
		}, 1, nil, nil},
		{"nor boots into one", func() (string, int) {
			// The group hint names a group of the caller's project only:
			// another project's group is not found, and nothing is made.
			return erin("server", "create", "--flavor", "m1.tiny", "--image", img, "--nic", "none", "--hint", "group="+groups["anti"], "intruder")
		}, 1, []string{"could not be found"}, nil},
		{"and made no server", printsNothing(t, func() (string, int) { return erin("server", "list", "-f", "value") }), 0, nil, nil},
		{"an admin lists all projects'", func() (string, int) {
			return admin("server", "group", "list", "--all-projects", "-f", "value", "-c", "Name")
		}, 0, []string{"anti2"}, nil},
		{"member quota", func() (string, int) { return admin("quota", "set", "--server-group-members", "2", "admin") }, 0, nil, nil},
		{"a third affinity member is over it", func() (string, int) {
			return admin("server", "create", "--flavor", "m1.tiny", "--image", img, "--nic", "none", "--hint", "group="+groups["aff"], "aff-3")
		}, 1, []string{"403", "too many servers in group"}, nil},
		{"group quota", func() (string, int) { return admin("quota", "set", "--server-groups", "3", "admin") }, 0, nil, nil},
		{"a fourth group is over it", func() (string, int) { return admin("server", "group", "create", "--policy", "affinity", "fourth") }, 1,
			[]string{"403", "server_groups"}, nil},
		{"quota show", func() (string, int) {
			q, err := quotasets.GetDetail(t.Context(), se.admin(t), se.Boot.Project.ID).Extract()
			if err != nil || q.ServerGroups.Limit != 3 || q.ServerGroups.InUse != 3 || q.ServerGroupMembers.Limit != 2 {
				t.Fatalf("quota set detail = %+v, %v; want server_groups 3 of 3, server_group_members 2", q, err)
			}
			return admin("quota", "show", "admin", "-f", "value")
		}, 0, nil, nil},
		{"delete a member", func() (string, int) { return admin("server", "delete", "--wait", "anti-2") }, 0, nil, nil},
		{"it left the group", func() (string, int) {
			out, code := admin("server", "group", "show", "anti", "-f", "value", "-c", "members")
			if strings.Contains(out, "anti-2") {
				t.Fatalf("members after the delete: %s", out)
			}
			return out, code
		}, 0, nil, nil},
		{"group delete", func() (string, int) { return admin("server", "group", "delete", "anti2") }, 0, nil, nil},
		{"room for a group again", createGroup("fourth", "--policy", "soft-affinity"), 0, nil, nil},
		{"cleanup", func() (string, int) { return admin("server", "delete", "--wait", "anti-1", "aff-1", "aff-2") }, 0, nil, nil},
		{"groups delete", func() (string, int) { return admin("server", "group", "delete", "anti", "aff", "fourth") }, 0, nil, nil},
	}
	runCLI(t, steps)

	t.Run("gophercloud", func(t *testing.T) {
		gc := se.admin(t)
		for _, tc := range []struct{ version, policy string }{{"2.1", "anti-affinity"}, {"2.64", "soft-anti-affinity"}} {
			c := *gc
			c.Microversion = tc.version
			opts := servergroups.CreateOpts{Name: "gc-" + tc.version, Policies: []string{tc.policy}}
			if tc.version == "2.64" {
				opts = servergroups.CreateOpts{Name: "gc-" + tc.version, Policy: tc.policy}
			}
			g, err := servergroups.Create(t.Context(), &c, opts).Extract()
			if err != nil {
				t.Fatalf("create at %s: %v", tc.version, err)
			}
			got, err := servergroups.Get(t.Context(), &c, g.ID).Extract()
			if err != nil || got.Name != opts.Name || (tc.version == "2.1" && (len(got.Policies) != 1 || got.Policies[0] != tc.policy)) ||
				(tc.version == "2.64" && (got.Policy == nil || *got.Policy != tc.policy)) {
				t.Fatalf("get at %s = %+v, %v", tc.version, got, err)
			}
			if err := servergroups.Delete(t.Context(), &c, g.ID).ExtractErr(); err != nil {
				t.Fatalf("delete at %s: %v", tc.version, err)
			}
		}
	})
}

// wantAll fails t unless out holds every one of want (values known only
// once earlier steps ran).
func wantAll(t *testing.T, want []string) func(out string, code int) (string, int) {
	return func(out string, code int) (string, int) {
		for _, w := range want {
			if w == "" || !strings.Contains(out, w) {
				t.Fatalf("output lacks %q:\n%s", w, out)
			}
		}
		return out, code
	}
}
