package compute_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/policy"
)

// put sends a raw PUT body and returns the status and the fault message.
func put(t *testing.T, c *gophercloud.ServiceClient, path string, body any) (int, string) {
	t.Helper()
	var fault map[string]struct {
		Message string `json:"message"`
	}
	resp, err := c.Put(context.Background(), c.ServiceURL(path), body, &fault, &gophercloud.RequestOpts{OkCodes: []int{200, 400, 403}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fault {
		return resp.StatusCode, f.Message
	}
	return resp.StatusCode, ""
}

func intp(n int) *int { return &n }

// TestQuotaSets: a cloud admin sets a project's quota through Nova's
// os-quota-sets; the quota ledger then refuses the project's server
// over quota with Nova's 403, /limits shows the quota and the usage, a
// member cannot change quotas, bad input is refused naming the field, and
// DELETE brings the defaults back.
func TestQuotaSets(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	engine, err := policy.NewEngine(ctx, policy.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	se.Servers.Placer = engine // before any request: the HTTP API uses them
	admin := se.admin(t)
	pw := se.Member(t, "quinn", "quota-p", identity.RoleMember)
	member := se.compute(t, "quinn", pw, "quota-p")
	project, err := se.Dir.FindProject(ctx, identity.DefaultDomainID, "quota-p")
	if err != nil {
		t.Fatal(err)
	}

	// Defaults before anything is set: Nova's and Cinder's.
	var d struct {
		QuotaSet quotasets.QuotaSet `json:"quota_set"`
	}
	// gophercloud has no call for .../defaults; the openstack CLI's
	// "quota show --default" reads it.
	if _, err := member.Get(ctx, member.ServiceURL("os-quota-sets", project.ID, "defaults"), &d, nil); err != nil ||
		d.QuotaSet.Instances != 10 || d.QuotaSet.Cores != 20 || d.QuotaSet.RAM != 51200 {
		t.Fatalf("defaults = %+v, %v", d.QuotaSet, err)
	}
	if qs, err := quotasets.Get(ctx, member, project.ID).Extract(); err != nil || qs.Instances != 10 || qs.ID != project.ID {
		t.Fatalf("own quota before a set = %+v, %v", qs, err)
	}

	// A member cannot set quotas, not even its own project's.
	if _, err := quotasets.Update(ctx, member, project.ID, quotasets.UpdateOpts{Instances: intp(100)}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("member PUT: %v; want 403", err)
	}
	if err := quotasets.Delete(ctx, member, project.ID).Err; !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("member DELETE: %v; want 403", err)
	}

	for _, tc := range []struct {
		name string
		set  map[string]any
		want string // in the fault message
	}{
		{name: "below -1", set: map[string]any{"instances": -2}, want: "instances. Value: -2"},
		{name: "fraction", set: map[string]any{"cores": 1.5}, want: "cores. Value: 1.5"},
		{name: "not a number", set: map[string]any{"ram": "lots"}, want: `ram. Value: "lots"`},
		{name: "boolean", set: map[string]any{"instances": true}, want: "instances. Value: true"},
		{name: "unknown key", set: map[string]any{"instances": 2, "bogus": 1}, want: `"bogus" was unexpected`},
		{name: "force not a boolean", set: map[string]any{"instances": 2, "force": "maybe"}, want: `force. Value: "maybe"`},
		{name: "fixed key changed", set: map[string]any{"metadata_items": 5}, want: "metadata_items is fixed at 128"},
		{name: "every problem", set: map[string]any{"instances": -5, "cores": "x"}, want: `cores. Value: "x". It must be an integer from -1 (unlimited) to 2147483647; Invalid input for field/attribute instances. Value: -5`},
		{name: "no quota_set", set: nil, want: "quota_set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any = map[string]any{"quota_set": tc.set}
			if tc.set == nil {
				body = map[string]any{"quotas": map[string]any{"instances": 1}}
			}
			code, msg := put(t, admin, "os-quota-sets/"+project.ID, body)
			if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
				t.Fatalf("PUT %v = %d %q; want 400 naming %q", tc.set, code, msg, tc.want)
			}
		})
	}
	if qs, err := quotasets.Get(ctx, admin, project.ID).Extract(); err != nil || qs.Instances != 10 || qs.Cores != 20 {
		t.Fatalf("after refused PUTs = %+v, %v; want the defaults untouched", qs, err)
	}

	// The admin sets the project's instances to 2 (a fixed key sent back
	// at its value is fine).
	qs, err := quotasets.Update(ctx, admin, project.ID, quotasets.UpdateOpts{Instances: intp(2), MetadataItems: intp(128)}).Extract()
	if err != nil || qs.Instances != 2 || qs.Cores != 20 || qs.RAM != 51200 {
		t.Fatalf("admin PUT = %+v, %v", qs, err)
	}
	if qs, err := quotasets.Get(ctx, member, project.ID).Extract(); err != nil || qs.Instances != 2 {
		t.Fatalf("member reads its quota = %+v, %v", qs, err)
	}

	for i, zone := range []string{"local-a", "local-b"} { // over both peers: the quota spans the pool
		create(t, member, servers.CreateOpts{Name: fmt.Sprintf("q-%d", i), FlavorRef: "1", ImageRef: se.Seeded[zone].ImageID, AvailabilityZone: zone})
	}
	code, msg := post(t, member, "servers", map[string]any{"server": map[string]any{"name": "third", "flavorRef": "1", "imageRef": se.Seeded["local-a"].ImageID}})
	if want := "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"; code != http.StatusForbidden || msg != want {
		t.Fatalf("third server = %d %q; want 403 %q", code, msg, want)
	}
	lim, err := limits.Get(ctx, member, nil).Extract()
	if err != nil || lim.Absolute.MaxTotalInstances != 2 || lim.Absolute.TotalInstancesUsed != 2 || lim.Absolute.MaxTotalCores != 20 || lim.Absolute.MaxTotalRAMSize != 51200 {
		t.Fatalf("limits = %+v, %v", lim.Absolute, err)
	}
	if qd, err := quotasets.GetDetail(ctx, admin, project.ID).Extract(); err != nil || qd.Instances.InUse != 2 || qd.Instances.Limit != 2 {
		t.Fatalf("quota detail = %+v, %v", qd, err)
	}

	// Below usage only with force, as Nova.
	code, msg = put(t, admin, "os-quota-sets/"+project.ID, map[string]any{"quota_set": map[string]any{"instances": 1}})
	if want := "Quota limit 1 for instances must be greater than or equal to already used and reserved 2."; code != http.StatusBadRequest || msg != want {
		t.Fatalf("PUT below usage = %d %q; want 400 %q", code, msg, want)
	}
	if qs, err := quotasets.Update(ctx, admin, project.ID, quotasets.UpdateOpts{Instances: intp(1), Force: true}).Extract(); err != nil || qs.Instances != 1 {
		t.Fatalf("forced PUT below usage = %+v, %v", qs, err)
	}

	// -1 is unlimited: the third server goes.
	if _, err := quotasets.Update(ctx, admin, project.ID, quotasets.UpdateOpts{Instances: intp(-1)}).Extract(); err != nil {
		t.Fatal(err)
	}
	create(t, member, servers.CreateOpts{Name: "third", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})

	// DELETE resets to the defaults.
	if err := quotasets.Delete(ctx, admin, project.ID).Err; err != nil {
		t.Fatal(err)
	}
	if qs, err := quotasets.Get(ctx, admin, project.ID).Extract(); err != nil || qs.Instances != 10 {
		t.Fatalf("after DELETE = %+v, %v; want the defaults", qs, err)
	}
}

// TestQuotaRefusal: only a stock-policy quota reason becomes Nova's quota
// refusal; several dimensions are named together, each once.
func TestQuotaRefusal(t *testing.T) {
	noHost := func(reasons string) error {
		return &compute.Error{Message: "No valid host was found. " + reasons, Err: compute.ErrNoValidHost}
	}
	for _, tc := range []struct {
		name string
		err  error
		want string // "" = unchanged
	}{
		{name: "instances", err: noHost("; a: [project quota for instances exceeded: 2 used + 1 requested > 2 allowed]; b: [project quota for instances exceeded: 2 used + 1 requested > 2 allowed]"),
			want: "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances"},
		{name: "cores and ram", err: noHost("; a: [project quota for ram_mib exceeded: 1024 used + 2048 requested > 2048 allowed project quota for vcpus exceeded: 1 used + 2 requested > 2 allowed]"),
			want: "Quota exceeded for ram, cores: Requested 2048, 2, but already used 1024, 1 of 2048, 2 ram, cores"},
		{name: "capacity", err: noHost("; a: [not enough vcpus]")},
		{name: "not placement", err: compute.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := compute.QuotaRefusal(tc.err)
			if tc.want == "" {
				if got != tc.err {
					t.Fatalf("got %v; want the error unchanged", got)
				}
				return
			}
			if got.Error() != tc.want || !errors.Is(got, compute.ErrQuotaExceeded) || errors.Is(got, compute.ErrNoValidHost) {
				t.Fatalf("got %q; want %q wrapping ErrQuotaExceeded only", got, tc.want)
			}
		})
	}
}

// TestOpenStackCLIQuotas drives the real openstack CLI: an admin sets a
// project's quota, the project's member sees it in its limits.
func TestOpenStackCLIQuotas(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the openstack CLI")
	}
	se := newServersEnv(t)
	pw := se.Member(t, "cora", "quota-cli", identity.RoleMember)
	steps := []struct {
		name     string
		admin    bool
		args     []string
		wantCode int
		want     string
	}{
		{name: "admin sets", admin: true, args: []string{"quota", "set", "--instances", "3", "--cores", "-1", "quota-cli"}},
		// limits show and quota show also ask Cinder (and Neutron), whose
		// limits and quotas the broker does not serve yet: quota list
		// --compute asks Nova alone.
		{name: "admin lists", admin: true, args: []string{"quota", "list", "--compute", "--project", "quota-cli", "-f", "json"}, want: `"Instances": 3`},
		{name: "member cannot set", args: []string{"quota", "set", "--instances", "100", "quota-cli"}, wantCode: 1, want: "(HTTP 403)"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			user, password, project := "cora", pw, "quota-cli"
			if s.admin {
				user, password, project = "admin", brokertest.AdminPassword, "admin"
			}
			out, code := se.osc(t, user, password, project, s.args...)
			if code != s.wantCode || !strings.Contains(out, s.want) {
				t.Fatalf("openstack %v = %d %s; want %d and %q", s.args, code, out, s.wantCode, s.want)
			}
		})
	}
}
