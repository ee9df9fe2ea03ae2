package identity_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/registeredlimits"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/registry"
)

// TestUnifiedLimits drives /v3/registered_limits and /v3/limits with
// gophercloud as an admin and as members: registered limits are the
// ledger's defaults, limits a project's own, the same records the quota
// APIs read and write (e.limits is what Nova, Cinder and Neutron use).
func TestUnifiedLimits(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())
	code := func(err error) int {
		var e gophercloud.ErrUnexpectedResponseCode
		if errors.As(err, &e) {
			return e.Actual
		}
		if err != nil {
			return -1
		}
		return 200
	}
	quotaOf := func(t *testing.T, project string, dim quota.Resource) int {
		t.Helper()
		q, err := e.limits.Get(ctx, project)
		mustOK(t, "quota", err)
		return q[dim]
	}
	other, err := e.dir.CreateProject(ctx, identity.Project{Name: "other", DomainID: identity.DefaultDomainID, Enabled: true})
	mustOK(t, "project", err)

	t.Run("registered limits are every enforced default", func(t *testing.T) {
		pages, err := registeredlimits.List(e.aliceC, registeredlimits.ListOpts{ServiceID: "nova"}).AllPages(ctx)
		mustOK(t, "list as a member", err)
		rls, err := registeredlimits.ExtractRegisteredLimits(pages)
		mustOK(t, "extract", err)
		got := map[string]int{}
		for _, rl := range rls {
			got[rl.ResourceName] = rl.DefaultLimit
		}
		want := map[string]int{"servers": 10, "class:VCPU": 20, "class:MEMORY_MB": 51200, "server_key_pairs": 100, "server_groups": 10, "server_group_members": 10}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("nova's registered limits = %v, want %v", got, want)
		}
		rl, err := registeredlimits.Get(ctx, e.aliceC, rls[0].ID).Extract()
		mustOK(t, "show as a member", err)
		if rl.ServiceID != "nova" || rl.ResourceName != rls[0].ResourceName {
			t.Fatalf("show = %+v", rl)
		}
	})

	var networkDefault string
	t.Run("registered limits: create, update, delete", func(t *testing.T) {
		created, err := registeredlimits.BatchCreate(ctx, e.adminC, registeredlimits.BatchCreateOpts{
			{ServiceID: "neutron", ResourceName: "network", DefaultLimit: 5, Description: "five nets"}}).Extract()
		mustOK(t, "create", err)
		networkDefault = created[0].ID
		if created[0].DefaultLimit != 5 || created[0].Description != "five nets" {
			t.Fatalf("created = %+v", created[0])
		}
		if n := quotaOf(t, other.ID, quota.Networks); n != 5 {
			t.Fatalf("a project's network quota = %d, want the new default 5", n)
		}
		five := 7
		desc := "seven"
		rl, err := registeredlimits.Update(ctx, e.adminC, networkDefault, registeredlimits.UpdateOpts{DefaultLimit: &five, Description: &desc}).Extract()
		mustOK(t, "update", err)
		if rl.DefaultLimit != 7 || quotaOf(t, other.ID, quota.Networks) != 7 {
			t.Fatalf("after update: %+v, quota %d", rl, quotaOf(t, other.ID, quota.Networks))
		}
		mustOK(t, "delete", registeredlimits.Delete(ctx, e.adminC, networkDefault).ExtractErr())
		if n := quotaOf(t, other.ID, quota.Networks); n != 100 {
			t.Fatalf("after delete the built-in 100 holds, not %d", n)
		}
	})

	t.Run("registered limits refused", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			client *gophercloud.ServiceClient
			opts   registeredlimits.CreateOpts
			want   int
		}{
			{"a member", e.aliceC, registeredlimits.CreateOpts{ServiceID: "nova", ResourceName: "servers", DefaultLimit: 1}, http.StatusForbidden},
			{"a resource nothing enforces", e.adminC, registeredlimits.CreateOpts{ServiceID: "cinderv3", ResourceName: "backups", DefaultLimit: 1}, http.StatusBadRequest},
			{"a fixed one", e.adminC, registeredlimits.CreateOpts{ServiceID: "nova", ResourceName: "server_metadata_items", DefaultLimit: 1}, http.StatusBadRequest},
			{"a region", e.adminC, registeredlimits.CreateOpts{ServiceID: "nova", ResourceName: "servers", RegionID: "RegionOne", DefaultLimit: 1}, http.StatusBadRequest},
			{"a service without quotas", e.adminC, registeredlimits.CreateOpts{ServiceID: "glance", ResourceName: "images", DefaultLimit: 1}, http.StatusBadRequest},
			{"no such service", e.adminC, registeredlimits.CreateOpts{ServiceID: "nope", ResourceName: "servers", DefaultLimit: 1}, http.StatusBadRequest},
			{"out of range", e.adminC, registeredlimits.CreateOpts{ServiceID: "nova", ResourceName: "servers", DefaultLimit: -2}, http.StatusBadRequest},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := registeredlimits.BatchCreate(ctx, c.client, registeredlimits.BatchCreateOpts{c.opts}).Extract()
				if code(err) != c.want {
					t.Fatalf("create = %v, want %d", err, c.want)
				}
			})
		}
		_, err := registeredlimits.BatchCreate(ctx, e.adminC, registeredlimits.BatchCreateOpts{{ServiceID: "nova", ResourceName: "servers", DefaultLimit: 8}}).Extract()
		mustOK(t, "create servers", err)
		_, err = registeredlimits.BatchCreate(ctx, e.adminC, registeredlimits.BatchCreateOpts{{ServiceID: "nova", ResourceName: "servers", DefaultLimit: 9}}).Extract()
		if code(err) != http.StatusConflict {
			t.Fatalf("second create = %v, want 409", err)
		}
		id := registeredID(t, e, "servers")
		mustOK(t, "delete the set one", registeredlimits.Delete(ctx, e.adminC, id).ExtractErr())
		if err := registeredlimits.Delete(ctx, e.adminC, id).ExtractErr(); code(err) != http.StatusForbidden {
			t.Fatalf("deleting a built-in default = %v, want 403", err)
		}
		if err := registeredlimits.Delete(ctx, e.aliceC, id).ExtractErr(); code(err) != http.StatusForbidden {
			t.Fatalf("a member's delete = %v, want 403", err)
		}
	})

	var serversLimit string
	t.Run("limits: create, show, list, update, delete", func(t *testing.T) {
		created, err := limits.BatchCreate(ctx, e.adminC, limits.BatchCreateOpts{
			{ServiceID: "nova", ProjectID: e.proj.ID, ResourceName: "servers", ResourceLimit: 3, Description: "three"},
			{ServiceID: "neutron", ProjectID: other.ID, ResourceName: "port", ResourceLimit: 9}}).Extract()
		mustOK(t, "create", err)
		serversLimit = created[0].ID
		if n := quotaOf(t, e.proj.ID, quota.Instances); n != 3 {
			t.Fatalf("team-a's instances quota = %d, want the limit 3", n)
		}
		l, err := limits.Get(ctx, e.aliceC, serversLimit).Extract()
		mustOK(t, "show as the project's member", err)
		if l.ProjectID != e.proj.ID || l.ResourceLimit != 3 || l.Description != "three" || l.ServiceID != "nova" {
			t.Fatalf("show = %+v", l)
		}
		if _, err := limits.Get(ctx, e.aliceC, created[1].ID).Extract(); code(err) != http.StatusForbidden {
			t.Fatalf("another project's limit = %v, want 403", err)
		}
		// os-quota-sets writes the same record: the limit list shows it.
		_, err = e.limits.Set(ctx, e.proj.ID, quota.Amounts{quota.Volumes: 4})
		mustOK(t, "quota set", err)
		for _, c := range []struct {
			name   string
			client *gophercloud.ServiceClient
			opts   limits.ListOpts
			want   string
		}{
			{"admin, all", e.adminC, limits.ListOpts{}, "port=9 servers=3 volumes=4"},
			{"admin, by project", e.adminC, limits.ListOpts{ProjectID: other.ID}, "port=9"},
			{"admin, by service", e.adminC, limits.ListOpts{ServiceID: "cinderv3"}, "volumes=4"},
			{"admin, by resource", e.adminC, limits.ListOpts{ResourceName: "servers"}, "servers=3"},
			{"a member sees its project's", e.aliceC, limits.ListOpts{}, "servers=3 volumes=4"},
			{"a member asking for another project", e.aliceC, limits.ListOpts{ProjectID: other.ID}, ""},
			{"domain limits: none", e.adminC, limits.ListOpts{DomainID: "default"}, ""},
		} {
			t.Run(c.name, func(t *testing.T) {
				pages, err := limits.List(c.client, c.opts).AllPages(ctx)
				mustOK(t, "list", err)
				ls, err := limits.ExtractLimits(pages)
				mustOK(t, "extract", err)
				var got []string
				for _, l := range ls {
					got = append(got, fmt.Sprintf("%s=%d", l.ResourceName, l.ResourceLimit))
				}
				slices.Sort(got)
				if s := strings.Join(got, " "); s != c.want {
					t.Fatalf("limits = %q, want %q", s, c.want)
				}
			})
		}
		four := 4
		l, err = limits.Update(ctx, e.adminC, serversLimit, limits.UpdateOpts{ResourceLimit: &four}).Extract()
		mustOK(t, "update", err)
		if l.ResourceLimit != 4 || l.Description != "three" || quotaOf(t, e.proj.ID, quota.Instances) != 4 {
			t.Fatalf("after update %+v, quota %d", l, quotaOf(t, e.proj.ID, quota.Instances))
		}
		if _, err := limits.Update(ctx, e.aliceC, serversLimit, limits.UpdateOpts{ResourceLimit: &four}).Extract(); code(err) != http.StatusForbidden {
			t.Fatalf("a member's update = %v, want 403", err)
		}
		if err := limits.Delete(ctx, e.malC, serversLimit).ExtractErr(); code(err) != http.StatusForbidden {
			t.Fatalf("a member's delete = %v, want 403", err)
		}
		mustOK(t, "delete", limits.Delete(ctx, e.adminC, serversLimit).ExtractErr())
		if n := quotaOf(t, e.proj.ID, quota.Instances); n != 10 {
			t.Fatalf("after delete team-a's instances quota = %d, want the default 10", n)
		}
		if err := limits.Delete(ctx, e.adminC, serversLimit).ExtractErr(); code(err) != http.StatusNotFound {
			t.Fatalf("delete again = %v, want 404", err)
		}
	})

	t.Run("limits refused", func(t *testing.T) {
		for _, c := range []struct {
			name   string
			client *gophercloud.ServiceClient
			opts   limits.CreateOpts
			want   int
		}{
			{"a member", e.aliceC, limits.CreateOpts{ServiceID: "nova", ProjectID: e.proj.ID, ResourceName: "servers", ResourceLimit: 50}, http.StatusForbidden},
			{"a domain limit", e.adminC, limits.CreateOpts{ServiceID: "nova", DomainID: "default", ResourceName: "servers", ResourceLimit: 5}, http.StatusBadRequest},
			{"no such project", e.adminC, limits.CreateOpts{ServiceID: "nova", ProjectID: "nope", ResourceName: "servers", ResourceLimit: 5}, http.StatusBadRequest},
			{"a resource nothing enforces", e.adminC, limits.CreateOpts{ServiceID: "nova", ProjectID: e.proj.ID, ResourceName: "class:DISK_GB", ResourceLimit: 5}, http.StatusBadRequest},
			{"another service's resource", e.adminC, limits.CreateOpts{ServiceID: "nova", ProjectID: e.proj.ID, ResourceName: "volumes", ResourceLimit: 5}, http.StatusBadRequest},
			{"already set", e.adminC, limits.CreateOpts{ServiceID: "cinderv3", ProjectID: e.proj.ID, ResourceName: "volumes", ResourceLimit: 5}, http.StatusConflict},
		} {
			t.Run(c.name, func(t *testing.T) {
				_, err := limits.BatchCreate(ctx, c.client, limits.BatchCreateOpts{c.opts}).Extract()
				if code(err) != c.want {
					t.Fatalf("create = %v, want %d", err, c.want)
				}
			})
		}
		_, body := e.call(t, http.MethodPost, "/v3/limits", e.adminC.Token(), map[string]any{"limits": []any{map[string]any{
			"service_id": "cinderv3", "project_id": e.proj.ID, "resource_name": "backups", "resource_limit": 1}}})
		if msg := fmt.Sprint(body); !strings.Contains(msg, "backups are not built") || !strings.Contains(msg, "volumes, gigabytes, snapshots") {
			t.Errorf("refusal %s says neither why nor what is enforced", msg)
		}
	})

	t.Run("model", func(t *testing.T) {
		m, err := limits.GetEnforcementModel(ctx, e.aliceC).Extract()
		mustOK(t, "model", err)
		if m.Name != "flat" {
			t.Fatalf("model = %+v", m)
		}
	})
}

// registeredID finds a registered limit's ID by resource name.
func registeredID(t *testing.T, e *appEnv, name string) string {
	t.Helper()
	pages, err := registeredlimits.List(e.adminC, registeredlimits.ListOpts{ResourceName: name}).AllPages(context.Background())
	mustOK(t, "list", err)
	rls, err := registeredlimits.ExtractRegisteredLimits(pages)
	if err != nil || len(rls) != 1 {
		t.Fatalf("registered limits named %s = %+v, %v", name, rls, err)
	}
	return rls[0].ID
}

// TestUnifiedLimitsCLI drives registered limits and limits with the
// openstack CLI, as an admin and as a member (403 on writes), and shows
// them acting on the quota the ledger enforces.
func TestUnifiedLimitsCLI(t *testing.T) {
	e := newAppEnv(t, registry.NewMemory())
	c := newCLI(t, e.env)
	admin := passwordLogin("admin", adminPassword, "admin")
	alice := passwordLogin("alice", "alice-password", "team-a")
	servers, network := quota.DefaultID(quota.Instances), quota.LimitID(e.proj.ID, quota.Networks)
	value := []string{"-f", "value", "-c", "resource_name", "-c", "default_limit"}
	c.runSteps(t, []cliStep{
		{"registered limit list as a member", alice, []string{"registered", "limit", "list", "--service", "nova", "-f", "value", "-c", "Resource Name", "-c", "Default Limit"}, 0, []string{"servers 10", "class:VCPU 20"}, "network"},
		{"registered limit show", alice, append([]string{"registered", "limit", "show", servers}, value...), 0, []string{"10\nservers"}, ""},
		{"registered limit create as a member", alice, []string{"registered", "limit", "create", "--service", "nova", "--default-limit", "12", "servers"}, 1, []string{"403"}, ""},
		{"registered limit create", admin, []string{"registered", "limit", "create", "--service", "nova", "--default-limit", "12", "--description", "twelve", "servers"}, 0, []string{"twelve", "12"}, ""},
		{"registered limit create again", admin, []string{"registered", "limit", "create", "--service", "nova", "--default-limit", "12", "servers"}, 1, []string{"409"}, ""},
		{"registered limit create, unenforced", admin, []string{"registered", "limit", "create", "--service", "cinderv3", "--default-limit", "2", "backups"}, 1, []string{"400", "backups are not built"}, ""},
		{"registered limit create, a region", admin, []string{"registered", "limit", "create", "--service", "nova", "--region", "RegionOne", "--default-limit", "2", "class:VCPU"}, 1, []string{"400", "region"}, ""},
		{"registered limit set", admin, append([]string{"registered", "limit", "set", "--default-limit", "14", servers}, value...), 0, []string{"14\nservers"}, ""},
		{"the default reaches nova's quota", admin, []string{"registered", "limit", "show", servers, "-f", "value", "-c", "default_limit"}, 0, []string{"14"}, ""},
		{"registered limit set as a member", alice, []string{"registered", "limit", "set", "--default-limit", "1", servers}, 1, []string{"403"}, ""},
		{"registered limit delete as a member", alice, []string{"registered", "limit", "delete", servers}, 1, nil, ""},
		{"registered limit delete", admin, []string{"registered", "limit", "delete", servers}, 0, nil, ""},
		{"the built-in default again", admin, append([]string{"registered", "limit", "show", servers}, value...), 0, []string{"10\nservers"}, ""},
		{"limit create as a member", alice, []string{"limit", "create", "--project", e.proj.ID, "--service", "neutron", "--resource-limit", "50", "network"}, 1, []string{"403"}, ""},
		{"limit create", admin, []string{"limit", "create", "--project", "team-a", "--service", "neutron", "--resource-limit", "2", "--description", "two nets", "network"}, 0, []string{network, "two nets"}, ""},
		{"limit create, unenforced", admin, []string{"limit", "create", "--project", "team-a", "--service", "nova", "--resource-limit", "2", "server_metadata_items"}, 1, []string{"400", "128 items"}, ""},
		{"limit list as admin", admin, []string{"limit", "list", "--project", "team-a", "-f", "value", "-c", "Resource Name", "-c", "Resource Limit"}, 0, []string{"network 2"}, ""},
		{"limit list as the project's member", alice, []string{"limit", "list", "-f", "value", "-c", "ID", "-c", "Resource Limit"}, 0, []string{network + " 2"}, ""},
		{"limit show as the project's member", alice, []string{"limit", "show", network, "-f", "value", "-c", "resource_limit"}, 0, []string{"2"}, ""},
		{"limit set", admin, []string{"limit", "set", "--resource-limit", "3", network, "-f", "value", "-c", "resource_limit"}, 0, []string{"3"}, ""},
		{"limit set as a member", alice, []string{"limit", "set", "--resource-limit", "30", network}, 1, []string{"403"}, ""},
		{"limit delete as a member", alice, []string{"limit", "delete", network}, 1, nil, ""},
	})
	if q, err := e.limits.Get(context.Background(), e.proj.ID); err != nil || q[quota.Networks] != 3 {
		t.Fatalf("team-a's network quota = %v, %v; want the limit 3", q[quota.Networks], err)
	}
	c.runSteps(t, []cliStep{
		{"limit delete", admin, []string{"limit", "delete", network}, 0, nil, ""},
		{"limit list: none", admin, []string{"limit", "list", "-f", "value", "-c", "ID"}, 0, nil, network},
	})
	if q, err := e.limits.Get(context.Background(), e.proj.ID); err != nil || q[quota.Networks] != 100 {
		t.Fatalf("team-a's network quota after delete = %v, %v; want the default 100", q[quota.Networks], err)
	}
}
