package compute_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/tags"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// at returns c asking for microversion v.
func at(c *gophercloud.ServiceClient, v string) *gophercloud.ServiceClient {
	cc := *c
	cc.Microversion = v
	return &cc
}

// call sends a raw request and returns the status, the JSON body, and a
// fault's message.
func call(t *testing.T, c *gophercloud.ServiceClient, method, path string, body any) (int, map[string]any, string) {
	t.Helper()
	var out map[string]any
	opts := &gophercloud.RequestOpts{KeepResponseBody: true, OkCodes: []int{200, 201, 202, 204, 400, 403, 404, 405, 406, 409}}
	if body != nil {
		opts.JSONBody = body
	}
	resp, err := c.Request(context.Background(), method, c.ServiceURL(strings.Split(path, "/")...), opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("%s %s answered %d %q: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	for _, v := range out {
		if f, ok := v.(map[string]any); ok && len(out) == 1 {
			if msg, ok := f["message"].(string); ok && resp.StatusCode >= 400 {
				return resp.StatusCode, out, msg
			}
		}
	}
	return resp.StatusCode, out, ""
}

// TestServerMicroversionViews: one server shown at each microversion has
// exactly the fields Nova shows at it.
func TestServerMicroversionViews(t *testing.T) {
	se := newServersEnv(t)
	admin := se.admin(t)
	// A member of the admin project sees the same server as the cloud
	// admin, without the admin's fields.
	pw := se.Member(t, "dora", "admin", identity.RoleMember)
	member := se.compute(t, "dora", pw, "admin")
	img := se.Seeded["local-a"].ImageID
	code, body, msg := call(t, at(member, "2.90"), http.MethodPost, "servers", map[string]any{"server": map[string]any{
		"name": "Web One", "flavorRef": "1", "imageRef": img, "networks": "none", "description": "the front",
		"tags": []string{"web", "prod"}, "hostname": "web-one", "accessIPv4": "192.0.2.7",
	}})
	if code != http.StatusAccepted {
		t.Fatalf("create = %d %s", code, msg)
	}
	id := body["server"].(map[string]any)["id"].(string)
	waitStatus(t, member, id, "ACTIVE")

	tests := []struct {
		name, version string
		admin         bool
		has, lacks    []string
		values        map[string]any
	}{
		{"2.1", "2.1", false, []string{"OS-EXT-AZ:availability_zone", "accessIPv4"},
			[]string{"locked", "description", "tags", "OS-EXT-SRV-ATTR:hostname", "host_status", "trusted_image_certificates"},
			map[string]any{"accessIPv4": "192.0.2.7"}},
		{"2.3 admin", "2.3", true, []string{"OS-EXT-SRV-ATTR:reservation_id", "OS-EXT-SRV-ATTR:launch_index", "OS-EXT-SRV-ATTR:user_data", "OS-EXT-SRV-ATTR:hostname"},
			[]string{"host_status"}, map[string]any{"OS-EXT-SRV-ATTR:hostname": "web-one", "OS-EXT-SRV-ATTR:launch_index": 0.0}},
		{"2.3 member", "2.3", false, nil, []string{"OS-EXT-SRV-ATTR:reservation_id", "OS-EXT-SRV-ATTR:host"}, nil},
		{"2.9", "2.9", false, []string{"locked"}, []string{"description"}, map[string]any{"locked": false}},
		{"2.16 admin", "2.16", true, []string{"host_status"}, nil, map[string]any{"host_status": "UP"}},
		{"2.19", "2.19", false, []string{"description"}, []string{"tags"}, map[string]any{"description": "the front"}},
		{"2.26", "2.26", false, []string{"tags"}, nil, nil},
		{"2.63", "2.63", false, []string{"trusted_image_certificates"}, []string{"server_groups"}, map[string]any{"trusted_image_certificates": nil}},
		{"2.71", "2.71", false, []string{"server_groups"}, []string{"locked_reason"}, nil},
		{"2.73", "2.73", false, []string{"locked_reason"}, []string{"OS-EXT-SRV-ATTR:hostname"}, map[string]any{"locked_reason": nil}},
		{"2.90 member", "2.90", false, []string{"OS-EXT-SRV-ATTR:hostname"}, []string{"OS-EXT-SRV-ATTR:host", "host_status"},
			map[string]any{"OS-EXT-SRV-ATTR:hostname": "web-one"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := member
			if tc.admin {
				c = admin
			}
			code, body, msg := call(t, at(c, tc.version), http.MethodGet, "servers/"+id, nil)
			if code != 200 {
				t.Fatalf("show = %d %s", code, msg)
			}
			s := body["server"].(map[string]any)
			for _, k := range tc.has {
				if _, ok := s[k]; !ok {
					t.Errorf("lacks %s", k)
				}
			}
			for _, k := range tc.lacks {
				if _, ok := s[k]; ok {
					t.Errorf("has %s = %v", k, s[k])
				}
			}
			for k, want := range tc.values {
				if fmt.Sprint(s[k]) != fmt.Sprint(want) {
					t.Errorf("%s = %#v, want %#v", k, s[k], want)
				}
			}
		})
	}
	t.Run("2.47 embeds the flavor", func(t *testing.T) {
		_, body, _ := call(t, at(member, "2.47"), http.MethodGet, "servers/"+id, nil)
		f := body["server"].(map[string]any)["flavor"].(map[string]any)
		if f["original_name"] != "m1.tiny" || f["vcpus"] == nil || f["ram"] == nil || f["id"] != nil || f["extra_specs"] == nil {
			t.Fatalf("flavor = %v", f)
		}
		_, body, _ = call(t, at(member, "2.46"), http.MethodGet, "servers/"+id, nil)
		if f := body["server"].(map[string]any)["flavor"].(map[string]any); f["id"] != "1" {
			t.Fatalf("2.46 flavor = %v, want the link", f)
		}
	})
	t.Run("2.26 tags", func(t *testing.T) {
		c := at(member, "2.26")
		if got, err := tags.List(context.Background(), c, id).Extract(); err != nil || !slices.Equal(got, []string{"web", "prod"}) {
			t.Fatalf("tags = %v, %v", got, err)
		}
		if err := tags.Add(context.Background(), c, id, "blue").ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if ok, err := tags.Check(context.Background(), c, id, "blue").Extract(); err != nil || !ok {
			t.Fatalf("check blue = %v, %v", ok, err)
		}
		if err := tags.Delete(context.Background(), c, id, "prod").ExtractErr(); err != nil {
			t.Fatal(err)
		}
		if err := tags.Delete(context.Background(), c, id, "prod").ExtractErr(); !is404(err) {
			t.Fatalf("deleting a missing tag = %v, want 404", err)
		}
		got, err := tags.ReplaceAll(context.Background(), c, id, tags.ReplaceAllOpts{Tags: []string{"a", "b", "a"}}).Extract()
		if err != nil || !slices.Equal(got, []string{"a", "b"}) {
			t.Fatalf("replace = %v, %v", got, err)
		}
		if code, _, _ := call(t, c, http.MethodPut, "servers/"+id+"/tags/bad,tag", nil); code != 400 {
			t.Fatalf("a tag with a comma = %d, want 400", code)
		}
		if _, err := tags.List(context.Background(), at(member, "2.25"), id).Extract(); !is404(err) {
			t.Fatalf("tags at 2.25 = %v, want 404", err)
		}
		other := se.compute(t, "erin", se.Member(t, "erin", "epsilon", identity.RoleMember), "epsilon")
		if _, err := tags.List(context.Background(), at(other, "2.26"), id).Extract(); !is404(err) {
			t.Fatalf("another project's tags = %v, want 404", err)
		}
	})
	t.Run("update", func(t *testing.T) {
		code, body, msg := call(t, at(member, "2.90"), http.MethodPut, "servers/"+id, map[string]any{"server": map[string]any{
			"description": nil, "hostname": "web-two", "name": "Web Two"}})
		if code != 200 {
			t.Fatalf("update = %d %s", code, msg)
		}
		s := body["server"].(map[string]any)
		if s["description"] != nil || s["OS-EXT-SRV-ATTR:hostname"] != "web-two" || s["name"] != "Web Two" {
			t.Fatalf("updated = %v", s)
		}
		if _, ok := s["OS-EXT-AZ:availability_zone"]; !ok {
			t.Fatalf("from 2.75 an update answers as show: %v", s)
		}
		_, body, _ = call(t, at(member, "2.74"), http.MethodPut, "servers/"+id, map[string]any{"server": map[string]any{"name": "Web Two"}})
		if _, ok := body["server"].(map[string]any)["OS-EXT-AZ:availability_zone"]; ok {
			t.Fatalf("2.74's update has show's fields: %v", body)
		}
		if code, _, msg := call(t, at(member, "2.18"), http.MethodPut, "servers/"+id, map[string]any{"server": map[string]any{"description": "x"}}); code != 400 || !strings.Contains(msg, "description") {
			t.Fatalf("description at 2.18 = %d %s, want 400", code, msg)
		}
	})
	t.Run("locked", func(t *testing.T) {
		if code, _, msg := call(t, at(member, "2.73"), http.MethodPost, "servers/"+id+"/action", map[string]any{"lock": map[string]any{"locked_reason": "maintenance"}}); code != 202 {
			t.Fatalf("lock = %d %s", code, msg)
		}
		_, body, _ := call(t, at(member, "2.73"), http.MethodGet, "servers/"+id, nil)
		if s := body["server"].(map[string]any); s["locked"] != true || s["locked_reason"] != "maintenance" {
			t.Fatalf("locked server shows %v, %v", s["locked"], s["locked_reason"])
		}
		for q, want := range map[string]int{"locked_by=owner": 1, "locked_by=admin": 0} {
			if _, body, _ := call(t, at(admin, "2.73"), http.MethodGet, "servers?"+q, nil); len(body["servers"].([]any)) != want {
				t.Fatalf("admin's %s = %v, want %d", q, body["servers"], want)
			}
		}
		if _, body, _ := call(t, at(member, "2.73"), http.MethodGet, "servers?locked=true", nil); len(body["servers"].([]any)) != 1 {
			t.Fatalf("locked=true = %v", body["servers"])
		}
		if code, _, msg := call(t, at(member, "2.73"), http.MethodPost, "servers/"+id+"/action", map[string]any{"unlock": nil}); code != 202 {
			t.Fatalf("unlock = %d %s", code, msg)
		}
	})
	t.Run("list filters", func(t *testing.T) {
		tests := []struct {
			name, version, query string
			code                 int
			want                 int
		}{
			{"tags", "2.26", "tags=a,b", 200, 1},
			{"tags-any none", "2.26", "tags-any=x,y", 200, 0},
			{"not-tags", "2.26", "not-tags=a", 200, 0},
			{"tags before 2.26 ignored", "2.25", "tags=zzz", 200, 1},
			{"bad status before 2.38", "2.37", "status=BANANA", 200, 0},
			{"bad status from 2.38", "2.38", "status=BANANA", 400, 0},
			{"unknown filter before 2.75", "2.74", "color=red", 200, 1},
			{"unknown filter from 2.75", "2.75", "color=red", 400, 0},
			{"key_name for members from 2.83", "2.83", "key_name=nope", 200, 0},
			{"key_name ignored for members before", "2.82", "key_name=nope", 200, 1},
			{"hostname", "2.90", "hostname=web-t", 200, 1},
			{"changes-before past", "2.66", "changes-before=2000-01-01T00:00:00Z", 200, 0},
			{"sort", "2.75", "sort_key=display_name&sort_dir=asc", 200, 1},
			{"bad sort key", "2.75", "sort_key=vcpus", 400, 0},
			{"internal field", "2.1", "_secret=1", 400, 0},
			{"locked_by (an admin's filter) ignored for members", "2.1", "locked_by=admin", 200, 1},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				code, body, msg := call(t, at(member, tc.version), http.MethodGet, "servers?"+tc.query, nil)
				if code != tc.code {
					t.Fatalf("= %d %s, want %d", code, msg, tc.code)
				}
				if code == 200 && len(body["servers"].([]any)) != tc.want {
					t.Fatalf("= %v, want %d servers", body["servers"], tc.want)
				}
			})
		}
	})
	if err := servers.Delete(context.Background(), member, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
}

// TestServerCreateMicroversions: what each microversion takes on create,
// and what the broker refuses by name rather than drop.
func TestServerCreateMicroversions(t *testing.T) {
	se := newServersEnv(t)
	c := se.admin(t)
	img := se.Seeded["local-a"].ImageID
	base := func(extra map[string]any) map[string]any {
		s := map[string]any{"name": "mv", "flavorRef": "1", "imageRef": img, "networks": "none"}
		for k, v := range extra {
			if v == nil {
				delete(s, k)
				continue
			}
			s[k] = v
		}
		return map[string]any{"server": s}
	}
	tests := []struct {
		name, version string
		body          map[string]any
		code          int
		msg           string
	}{
		{"description before 2.19", "2.18", base(map[string]any{"description": "d"}), 400, "'description' was unexpected"},
		{"networks required from 2.37", "2.37", base(map[string]any{"networks": nil}), 400, "'networks' is a required property"},
		{"network uuid format from 2.37", "2.37", base(map[string]any{"networks": []map[string]any{{"uuid": "not-a-uuid"}}}), 400, "It is not a UUID"},
		{"network tag at 2.37", "2.37", base(map[string]any{"networks": []map[string]any{{"uuid": se.Nets["local-a"], "tag": "n"}}}), 400, "'tag' was unexpected"},
		{"tags before 2.52", "2.51", base(map[string]any{"tags": []string{"x"}}), 400, "'tags' was unexpected"},
		{"too many tags", "2.52", base(map[string]any{"tags": slices.Repeat([]string{"t"}, 0)}), 202, ""},
		{"personality before 2.57", "2.56", base(map[string]any{"personality": []map[string]string{{"path": "/etc/x", "contents": "eA=="}}}), 400, "file injection is not offered"},
		{"personality from 2.57", "2.57", base(map[string]any{"personality": []any{}}), 400, "'personality' was unexpected"},
		{"trusted certificates", "2.63", base(map[string]any{"trusted_image_certificates": []string{"c1"}}), 400, "signature verification is not offered"},
		{"hypervisor", "2.74", base(map[string]any{"hypervisor_hostname": "h1"}), 400, "hypervisor cannot be chosen"},
		{"host is a peer", "2.74", base(map[string]any{"host": "local-b"}), 202, ""},
		{"hostname before 2.90", "2.89", base(map[string]any{"hostname": "h"}), 400, "'hostname' was unexpected"},
		{"bad hostname", "2.90", base(map[string]any{"hostname": "-bad-"}), 400, "hostname"},
		{"unknown attribute", "2.90", base(map[string]any{"colour": "red"}), 400, "colour"},
		{"admin password", "2.1", base(map[string]any{"adminPass": "secret"}), 400, "adminPass"},
		{"config drive", "2.1", base(map[string]any{"config_drive": true}), 400, "config_drive"},
		{"extra block device", "2.1", base(map[string]any{"block_device_mapping_v2": []map[string]any{
			{"boot_index": "0", "uuid": img, "source_type": "image", "destination_type": "local"},
			{"boot_index": "-1", "uuid": "x", "source_type": "volume", "destination_type": "volume"}}}), 400, "only the boot disk"},
		{"block device tag at 2.33", "2.33", base(map[string]any{"block_device_mapping_v2": []map[string]any{
			{"boot_index": "0", "uuid": img, "source_type": "image", "destination_type": "local", "tag": "root"}}}), 400, "'tag' was unexpected"},
		{"image on the local disk", "2.42", base(map[string]any{"imageRef": "", "block_device_mapping_v2": []map[string]any{
			{"boot_index": 0, "uuid": img, "source_type": "image", "destination_type": "local", "tag": "root"}}}), 202, ""},
		{"reservation id", "2.1", base(map[string]any{"return_reservation_id": true, "networks": nil}), 202, ""},
		{"hostname reaches the peer", "2.90", base(map[string]any{"hostname": "custom-host"}), 202, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body, msg := call(t, at(c, tc.version), http.MethodPost, "servers", tc.body)
			if code != tc.code || !strings.Contains(msg, tc.msg) {
				t.Fatalf("= %d %q, want %d %q", code, msg, tc.code, tc.msg)
			}
			if code != 202 {
				return
			}
			if tc.name == "reservation id" {
				rid, _ := body["reservation_id"].(string)
				if !strings.HasPrefix(rid, "r-") || body["server"] != nil {
					t.Fatalf("return_reservation_id answered %v", body)
				}
				_, list, _ := call(t, at(c, "2.1"), http.MethodGet, "servers/detail?reservation_id="+rid, nil)
				if ss := list["servers"].([]any); len(ss) != 1 {
					t.Fatalf("servers of reservation %s = %v", rid, ss)
				}
				return
			}
			id := body["server"].(map[string]any)["id"].(string)
			s := waitStatus(t, c, id, "ACTIVE")
			if tc.name == "host is a peer" && s.AvailabilityZone != "local-b" {
				t.Fatalf("host local-b placed the server in %s", s.AvailabilityZone)
			}
			if tc.name == "hostname reaches the peer" {
				e, err := se.Index.Get(context.Background(), compute.KindServer, id, se.Boot.Project.ID)
				if err != nil {
					t.Fatal(err)
				}
				m, _ := se.Pool.Get(e.PeerID)
				if ps, err := m.Cloud.GetServer(context.Background(), e.PeerResourceID); err != nil || ps.Hostname != "custom-host" {
					t.Fatalf("the peer's server = %+v, %v; want hostname custom-host for its config drive", ps, err)
				}
			}
		})
	}
	member := se.compute(t, "fay", se.Member(t, "fay", "phi", identity.RoleMember), "phi")
	if code, _, msg := call(t, at(member, "2.74"), http.MethodPost, "servers", base(map[string]any{"host": "local-b"})); code != 403 {
		t.Fatalf("a member naming a host = %d %s, want 403", code, msg)
	}
}

// TestFlavorsKeypairsLimitsMicroversions: flavors (2.55 description and
// its PUT, 2.61 extra specs, 2.75 swap), keypairs (2.2, 2.10, 2.35, 2.92)
// and limits (2.36, 2.39, 2.57) at their versions, through gophercloud.
func TestFlavorsKeypairsLimitsMicroversions(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	admin := se.admin(t)
	pw := se.Member(t, "gus", "gamma", identity.RoleMember)
	member := se.compute(t, "gus", pw, "gamma")

	desc := "the smallest"
	if _, err := flavors.Update(ctx, at(admin, "2.55"), "1", flavors.UpdateOpts{Description: desc}).Extract(); err != nil {
		t.Fatal(err)
	}
	if _, err := flavors.Update(ctx, at(member, "2.55"), "1", flavors.UpdateOpts{Description: "mine"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("a member's flavor update = %v, want 403", err)
	}
	f, err := flavors.Get(ctx, at(member, "2.61"), "1").Extract()
	if err != nil || f.Description != desc || f.ExtraSpecs == nil {
		t.Fatalf("flavor at 2.61 = %+v, %v", f, err)
	}
	_, body, _ := call(t, at(member, "2.54"), http.MethodGet, "flavors/1", nil)
	if fl := body["flavor"].(map[string]any); fl["description"] != nil || fl["swap"] != "" || fl["extra_specs"] != nil {
		t.Fatalf("flavor at 2.54 = %v", fl)
	}
	_, body, _ = call(t, at(member, "2.75"), http.MethodGet, "flavors/1", nil)
	if fl := body["flavor"].(map[string]any); fmt.Sprint(fl["swap"]) != "0" || fl["swap"] == "" {
		t.Fatalf("swap at 2.75 = %#v, want 0", fl["swap"])
	}
	if code, _, _ := call(t, at(member, "2.75"), http.MethodGet, "flavors?colour=red", nil); code != 400 {
		t.Fatalf("unknown flavor filter at 2.75 = %d, want 400", code)
	}
	_, body, _ = call(t, at(member, "2.1"), http.MethodGet, "flavors/detail?minRam=100000", nil)
	if fs := body["flavors"].([]any); len(fs) != 0 {
		t.Fatalf("minRam=100000 = %v", fs)
	}

	// Keypairs.
	kc := at(member, "2.2")
	if code, _, msg := call(t, kc, http.MethodPost, "os-keypairs", map[string]any{"keypair": map[string]any{"name": "k1"}}); code != 201 {
		t.Fatalf("create at 2.2 = %d %s, want 201", code, msg)
	}
	if code, _, msg := call(t, at(member, "2.92"), http.MethodPost, "os-keypairs", map[string]any{"keypair": map[string]any{"name": "k2"}}); code != 400 || !strings.Contains(msg, "public_key") {
		t.Fatalf("generating at 2.92 = %d %s, want 400", code, msg)
	}
	kp, err := keypairs.Get(ctx, kc, "k1", nil).Extract()
	if err != nil || kp.Type != "ssh" {
		t.Fatalf("keypair = %+v, %v", kp, err)
	}
	for _, n := range []string{"k3", "k4"} {
		if _, err := keypairs.Create(ctx, at(member, "2.35"), keypairs.CreateOpts{Name: n, PublicKey: kp.PublicKey}).Extract(); err != nil {
			t.Fatal(err)
		}
	}
	_, body, _ = call(t, at(member, "2.35"), http.MethodGet, "os-keypairs?limit=2&marker=k1", nil)
	if kps := body["keypairs"].([]any); len(kps) != 2 || body["keypairs_links"] == nil {
		t.Fatalf("page after k1 = %v", body)
	}
	me := kp.UserID
	if _, err := keypairs.Get(ctx, at(member, "2.10"), "k1", keypairs.GetOpts{UserID: "someone-else"}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("a member reading another's keypair = %v, want 403", err)
	}
	if got, err := keypairs.Get(ctx, at(admin, "2.10"), "k1", keypairs.GetOpts{UserID: me}).Extract(); err != nil || got.UserID != me {
		t.Fatalf("an admin reading gus's keypair = %+v, %v", got, err)
	}
	if code, _, _ := call(t, kc, http.MethodDelete, "os-keypairs/k1", nil); code != 204 {
		t.Fatalf("delete at 2.2 = %d, want 204", code)
	}

	// Limits and quota sets.
	for _, tc := range []struct {
		version    string
		has, lacks []string
	}{
		{"2.1", []string{"maxSecurityGroups", "maxImageMeta", "maxPersonality"}, nil},
		{"2.36", []string{"maxImageMeta", "maxPersonality"}, []string{"maxSecurityGroups", "maxTotalFloatingIps"}},
		{"2.57", []string{"maxTotalCores"}, []string{"maxImageMeta", "maxPersonality", "maxPersonalitySize"}},
	} {
		_, body, _ := call(t, at(member, tc.version), http.MethodGet, "limits", nil)
		abs := body["limits"].(map[string]any)["absolute"].(map[string]any)
		for _, k := range tc.has {
			if _, ok := abs[k]; !ok {
				t.Errorf("limits at %s lack %s", tc.version, k)
			}
		}
		for _, k := range tc.lacks {
			if _, ok := abs[k]; ok {
				t.Errorf("limits at %s have %s", tc.version, k)
			}
		}
	}
	_, body, _ = call(t, at(admin, "2.57"), http.MethodGet, "os-quota-sets/"+se.Boot.Project.ID, nil)
	for _, k := range []string{"security_groups", "injected_files", "floating_ips"} {
		if _, ok := body["quota_set"].(map[string]any)[k]; ok {
			t.Errorf("quota set at 2.57 has %s", k)
		}
	}
	if code, _, _ := call(t, at(admin, "2.36"), http.MethodPut, "os-quota-sets/"+se.Boot.Project.ID, map[string]any{"quota_set": map[string]any{"security_groups": 5}}); code != 400 {
		t.Fatalf("setting security_groups at 2.36 = %d, want 400", code)
	}
}

// TestDeviceTagsAndAttachmentMicroversions: tags on a NIC and the boot
// volume (2.42) and on an attach (2.49) show on os-interface and
// os-volume_attachments (2.70), with delete_on_termination (2.79, changed
// by PUT from 2.85: the volume goes with the server) and the attachment's
// IDs (2.89).
func TestDeviceTagsAndAttachmentMicroversions(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	bs, err := openstack.NewBlockStorageV3(se.Provider(t, "admin", brokertest.AdminPassword, "admin"), gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	root := se.bootableVolume(t, se.Pool.Members()[0])
	code, body, msg := call(t, at(c, "2.42"), http.MethodPost, "servers", map[string]any{"server": map[string]any{
		"name": "tagged", "flavorRef": "1", "networks": []map[string]any{{"uuid": se.Nets["local-a"], "tag": "nic1"}},
		"block_device_mapping_v2": []map[string]any{{"boot_index": 0, "uuid": root, "source_type": "volume", "destination_type": "volume", "tag": "root"}},
	}})
	if code != 202 {
		t.Fatalf("create = %d %s", code, msg)
	}
	id := body["server"].(map[string]any)["id"].(string)
	waitStatus(t, c, id, "ACTIVE")
	v, err := volumes.Create(ctx, bs, volumes.CreateOpts{Size: 1, Name: "data", AvailabilityZone: "local-a"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolume(t, bs, v.ID, "available")
	attach := func(version string, a map[string]any) (int, map[string]any, string) {
		return call(t, at(c, version), http.MethodPost, "servers/"+id+"/os-volume_attachments", map[string]any{"volumeAttachment": a})
	}
	for _, tc := range []struct {
		name, version string
		body          map[string]any
		code          int
	}{
		{"tag before 2.49", "2.48", map[string]any{"volumeId": v.ID, "tag": "data"}, 400},
		{"delete_on_termination before 2.79", "2.78", map[string]any{"volumeId": v.ID, "delete_on_termination": false}, 400},
		{"delete_on_termination not a boolean", "2.79", map[string]any{"volumeId": v.ID, "delete_on_termination": "maybe"}, 400},
		{"tagged", "2.79", map[string]any{"volumeId": v.ID, "tag": "data", "delete_on_termination": true}, 200},
	} {
		if code, _, msg := attach(tc.version, tc.body); code != tc.code {
			t.Fatalf("%s: = %d %s, want %d", tc.name, code, msg, tc.code)
		}
	}
	waitVolume(t, bs, v.ID, "in-use")
	for _, tc := range []struct {
		version    string
		has, lacks []string
	}{
		{"2.69", []string{"id"}, []string{"tag", "delete_on_termination", "attachment_id"}},
		{"2.70", []string{"id", "tag"}, []string{"delete_on_termination"}},
		{"2.79", []string{"id", "tag", "delete_on_termination"}, []string{"bdm_uuid"}},
		{"2.89", []string{"attachment_id", "bdm_uuid", "tag", "delete_on_termination"}, []string{"id"}},
	} {
		_, body, _ := call(t, at(c, tc.version), http.MethodGet, "servers/"+id+"/os-volume_attachments", nil)
		as := body["volumeAttachments"].([]any)
		if len(as) != 2 {
			t.Fatalf("%s: attachments = %v", tc.version, as)
		}
		tagsSeen := map[string]string{}
		for _, a := range as {
			a := a.(map[string]any)
			for _, k := range tc.has {
				if _, ok := a[k]; !ok {
					t.Errorf("%s: attachment lacks %s: %v", tc.version, k, a)
				}
			}
			for _, k := range tc.lacks {
				if _, ok := a[k]; ok {
					t.Errorf("%s: attachment has %s: %v", tc.version, k, a)
				}
			}
			tagsSeen[a["volumeId"].(string)] = fmt.Sprint(a["tag"])
		}
		if at := tc.version; at >= "2.70" && (tagsSeen[root] != "root" || tagsSeen[v.ID] != "data") {
			t.Errorf("%s: tags = %v", tc.version, tagsSeen)
		}
	}
	dot := func() map[string]any {
		out := map[string]any{}
		_, body, _ := call(t, at(c, "2.79"), http.MethodGet, "servers/"+id+"/os-volume_attachments", nil)
		for _, a := range body["volumeAttachments"].([]any) {
			out[a.(map[string]any)["volumeId"].(string)] = a.(map[string]any)["delete_on_termination"]
		}
		return out
	}
	if got := dot(); got[v.ID] != true || got[root] != false {
		t.Fatalf("delete_on_termination = %v; want the data volume's true, the root's false", got)
	}
	for _, del := range []bool{false, true} {
		if code, _, msg := call(t, at(c, "2.85"), http.MethodPut, "servers/"+id+"/os-volume_attachments/"+v.ID,
			map[string]any{"volumeAttachment": map[string]any{"volumeId": v.ID, "delete_on_termination": del}}); code != 202 {
			t.Fatalf("PUT delete_on_termination %v = %d %s, want 202", del, code, msg)
		}
		if got := dot(); got[v.ID] != del {
			t.Fatalf("after PUT %v: delete_on_termination = %v", del, got)
		}
	}
	if code, _, _ := call(t, at(c, "2.84"), http.MethodPut, "servers/"+id+"/os-volume_attachments/"+v.ID,
		map[string]any{"volumeAttachment": map[string]any{"volumeId": v.ID}}); code != 400 {
		t.Fatalf("PUT before 2.85 (a swap) = %d, want 400", code)
	}
	_, body, _ = call(t, at(c, "2.70"), http.MethodGet, "servers/"+id+"/os-interface", nil)
	nics := body["interfaceAttachments"].([]any)
	if len(nics) != 1 || nics[0].(map[string]any)["tag"] != "nic1" {
		t.Fatalf("interfaces at 2.70 = %v; want the NIC tagged nic1", nics)
	}
	_, body, _ = call(t, at(c, "2.69"), http.MethodGet, "servers/"+id+"/os-interface", nil)
	if _, ok := body["interfaceAttachments"].([]any)[0].(map[string]any)["tag"]; ok {
		t.Fatalf("interfaces at 2.69 show a tag: %v", body)
	}
	// The data volume goes with the server; the root volume (not asked
	// to) stays.
	if code, _, msg := call(t, c, http.MethodDelete, "servers/"+id, nil); code != 204 {
		t.Fatalf("delete = %d %s", code, msg)
	}
	waitVolumeGone(t, bs, v.ID)
	waitVolume(t, bs, root, "available")
}
