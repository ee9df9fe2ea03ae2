package compute_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/volumeattach"
	"github.com/gophercloud/gophercloud/v2/pagination"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

func TestServerLifecycle(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	if _, err := keypairs.Create(ctx, c, keypairs.CreateOpts{Name: "mykey"}).Extract(); err != nil {
		t.Fatal(err)
	}
	img := se.Seeded["local-a"].ImageID
	created := create(t, c, keypairs.CreateOptsExt{KeyName: "mykey", CreateOptsBuilder: servers.CreateOpts{
		Name: "web-1", FlavorRef: "1", ImageRef: img, Metadata: map[string]string{"app": "web"},
		UserData: []byte("#cloud-config\n"), Networks: "auto",
	}})
	if created.AdminPass == "" || created.ID == "" || created.ID == img {
		t.Fatalf("create answered %+v; want a broker ID and an adminPass", created)
	}
	s := waitStatus(t, c, created.ID, "ACTIVE")
	if s.Name != "web-1" || s.Flavor["id"] != "1" || s.Image["id"] != img || s.KeyName != "mykey" ||
		s.AvailabilityZone != "local-a" || s.PowerState != servers.RUNNING || s.VmState != "active" || s.TenantID != se.Boot.Project.ID {
		t.Fatalf("server = %+v", s)
	}
	if len(s.Metadata) != 1 || s.Metadata["app"] != "web" {
		t.Fatalf("metadata = %v; want only the user's (no cloudmux_ keys)", s.Metadata)
	}
	if _, ok := s.Addresses[localcloud.SeedNetworkName]; !ok {
		t.Fatalf("addresses = %v; want one on the shared network %q (networks auto)", s.Addresses, localcloud.SeedNetworkName)
	}
	// The peer holds the server under its own ID, marked with the broker's.
	e, err := se.Index.Get(ctx, compute.KindServer, s.ID, se.Boot.Project.ID)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := se.Pool.Get(e.PeerID)
	ps, err := m.Cloud.GetServer(ctx, e.PeerResourceID)
	if err != nil || ps.Metadata[peers.MetaID] != s.ID || ps.Metadata[peers.MetaProject] != se.Boot.Project.ID || ps.Metadata[peers.MetaBrokerID] != testBroker {
		t.Fatalf("peer server = %+v, %v; want the broker's marks", ps, err)
	}
	if ps.KeyName == "mykey" || !strings.HasPrefix(ps.KeyName, "cloudmux-") {
		t.Fatalf("peer keypair name = %q; want the user's key imported under a namespaced name", ps.KeyName)
	}

	// Rename and metadata.
	if u, err := servers.Update(ctx, c, s.ID, servers.UpdateOpts{Name: "web-renamed"}).Extract(); err != nil || u.Name != "web-renamed" {
		t.Fatalf("update = %+v, %v", u, err)
	}
	if md, err := servers.UpdateMetadata(ctx, c, s.ID, servers.MetadataOpts{"tier": "front"}).Extract(); err != nil || md["tier"] != "front" || md["app"] != "web" {
		t.Fatalf("update metadata = %v, %v", md, err)
	}
	if err := servers.DeleteMetadatum(ctx, c, s.ID, "app").ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if err := servers.DeleteMetadatum(ctx, c, s.ID, "app").ExtractErr(); !is404(err) {
		t.Fatalf("deleting a missing metadata key = %v; want 404", err)
	}
	got, err := servers.Get(ctx, c, s.ID).Extract()
	if err != nil || got.Name != "web-renamed" || len(got.Metadata) != 1 || got.Metadata["tier"] != "front" {
		t.Fatalf("after updates = %+v, %v", got, err)
	}

	// Power actions.
	if err := servers.Stop(ctx, c, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if off := waitStatus(t, c, s.ID, "SHUTOFF"); off.PowerState != servers.SHUTDOWN || off.VmState != "stopped" {
		t.Fatalf("stopped = %+v", off)
	}
	if err := servers.Stop(ctx, c, s.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusConflict) {
		t.Fatalf("stopping a stopped server = %v; want 409", err)
	}
	if err := servers.Start(ctx, c, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, c, s.ID, "ACTIVE")
	for _, typ := range []servers.RebootMethod{servers.SoftReboot, servers.HardReboot} {
		if err := servers.Reboot(ctx, c, s.ID, servers.RebootOpts{Type: typ}).ExtractErr(); err != nil {
			t.Fatalf("%s reboot: %v", typ, err)
		}
		waitStatus(t, c, s.ID, "ACTIVE")
	}
	if _, err := servers.ShowConsoleOutput(ctx, c, s.ID, servers.ShowConsoleOutputOpts{Length: 10}).Extract(); err != nil {
		t.Fatalf("console output: %v", err)
	}

	lim, err := limits.Get(ctx, c, nil).Extract()
	if err != nil || lim.Absolute.TotalInstancesUsed != 1 || lim.Absolute.TotalCoresUsed != 1 || lim.Absolute.TotalRAMUsed != 512 {
		t.Fatalf("limits = %+v, %v; want one m1.tiny in use", lim, err)
	}

	if err := servers.Delete(ctx, c, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := servers.Get(ctx, c, s.ID).Extract(); !is404(err) {
		t.Fatalf("get after delete = %v; want 404", err)
	}
	if err := servers.Delete(ctx, c, s.ID).ExtractErr(); !is404(err) {
		t.Fatalf("second delete = %v; want 404", err)
	}
}

func TestServerListFiltersAndPaging(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	// Alternate peers, so the list merges two fan-out answers.
	var ids []string
	for i, n := range []string{"pg-0", "pg-1", "pg-2", "pg-3", "pg-4"} {
		peer := []string{"local-a", "local-b"}[i%2]
		s := create(t, c, servers.CreateOpts{Name: n, FlavorRef: "m1.nano", ImageRef: se.Seeded[peer].ImageID, Networks: "none"})
		ids = append(ids, s.ID)
	}
	for _, id := range ids {
		waitStatus(t, c, id, "ACTIVE")
	}

	all := listAll(t, c, servers.ListOpts{})
	if len(all) != 5 {
		t.Fatalf("listed %d servers; want 5", len(all))
	}
	for i := 1; i < len(all); i++ {
		if all[i].Created.After(all[i-1].Created) {
			t.Fatalf("not newest first: %v before %v", all[i-1].Created, all[i].Created)
		}
	}
	zones := map[string]bool{}
	for _, s := range all {
		zones[s.AvailabilityZone] = true
		if s.Flavor["id"] != "42" {
			t.Fatalf("flavor of %s = %v; want the broker's m1.nano, 42", s.Name, s.Flavor)
		}
	}
	if len(zones) != 2 {
		t.Fatalf("zones = %v; want both peers", zones)
	}

	// Pages of two, followed by their next links, give the same servers in
	// the same order.
	pages := 0
	var paged []servers.Server
	err := servers.List(c, servers.ListOpts{Limit: 2}).EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		ss, err := servers.ExtractServers(p)
		pages++
		paged = append(paged, ss...)
		return err == nil, err
	})
	if err != nil || pages != 3 || len(paged) != 5 {
		t.Fatalf("paging: %d pages, %d servers, %v; want 3 pages of 5 servers", pages, len(paged), err)
	}
	for i := range paged {
		if paged[i].ID != all[i].ID {
			t.Fatalf("paged order differs at %d: %s vs %s", i, paged[i].ID, all[i].ID)
		}
	}

	for _, tc := range []struct {
		name string
		opts servers.ListOpts
		want []string
	}{
		{"name regex", servers.ListOpts{Name: "pg-[13]"}, []string{"pg-1", "pg-3"}},
		{"name substring", servers.ListOpts{Name: "pg-4"}, []string{"pg-4"}},
		{"status active", servers.ListOpts{Status: "ACTIVE"}, []string{"pg-0", "pg-1", "pg-2", "pg-3", "pg-4"}},
		{"status shutoff", servers.ListOpts{Status: "SHUTOFF"}, nil},
		{"changes-since future", servers.ListOpts{ChangesSince: time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, nil},
		{"changes-since past", servers.ListOpts{ChangesSince: "2020-01-01T00:00:00Z"}, []string{"pg-0", "pg-1", "pg-2", "pg-3", "pg-4"}},
		{"image", servers.ListOpts{Image: se.Seeded["local-b"].ImageID}, []string{"pg-1", "pg-3"}},
		{"flavor", servers.ListOpts{Flavor: "42"}, []string{"pg-0", "pg-1", "pg-2", "pg-3", "pg-4"}},
		{"other flavor", servers.ListOpts{Flavor: "1"}, nil},
		{"zone", servers.ListOpts{AvailabilityZone: "local-a"}, []string{"pg-0", "pg-2", "pg-4"}},
		{"no ip (networks none)", servers.ListOpts{IP: "10\\."}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := names(listAll(t, c, tc.opts)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v; want %v", got, tc.want)
			}
		})
	}
	if _, err := servers.List(c, servers.ListOpts{Marker: "no-such-server"}).AllPages(ctx); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("unknown marker = %v; want 400", err)
	}
	// The compact list has only id, name and links.
	pagesSimple, err := servers.ListSimple(c, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ss, _ := servers.ExtractServers(pagesSimple); len(ss) != 5 || ss[0].Status != "" {
		t.Fatalf("compact list = %+v", ss)
	}
}

func TestServerTenantIsolation(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	a := se.admin(t)
	s := create(t, a, servers.CreateOpts{Name: "secret", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	waitStatus(t, a, s.ID, "ACTIVE")
	pw := se.Member(t, "bob", "beta", identity.RoleMember)
	b := se.compute(t, "bob", pw, "beta")

	if ss := listAll(t, b, servers.ListOpts{}); len(ss) != 0 {
		t.Fatalf("project beta lists %v", names(ss))
	}
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"get", func() error { return servers.Get(ctx, b, s.ID).Err }},
		{"update", func() error { return servers.Update(ctx, b, s.ID, servers.UpdateOpts{Name: "mine"}).Err }},
		{"delete", func() error { return servers.Delete(ctx, b, s.ID).ExtractErr() }},
		{"stop", func() error { return servers.Stop(ctx, b, s.ID).ExtractErr() }},
		{"console", func() error { return servers.ShowConsoleOutput(ctx, b, s.ID, servers.ShowConsoleOutputOpts{}).Err }},
		{"metadata", func() error { return servers.Metadata(ctx, b, s.ID).Err }},
		{"attachments", func() error { _, err := volumeattach.List(b, s.ID).AllPages(ctx); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !is404(err) {
				t.Fatalf("project beta: %v; want 404", err)
			}
		})
	}
	// Beta boots from the same public image; admin never sees it.
	mine := create(t, b, servers.CreateOpts{Name: "bobs", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	if got := names(listAll(t, a, servers.ListOpts{})); !slices.Equal(got, []string{"secret"}) {
		t.Fatalf("admin lists %v", got)
	}
	// A reader of beta sees beta's servers but changes nothing.
	rpw := se.Member(t, "rita", "beta", identity.RoleReader)
	rd := se.compute(t, "rita", rpw, "beta")
	if got := names(listAll(t, rd, servers.ListOpts{})); !slices.Equal(got, []string{"bobs"}) {
		t.Fatalf("reader lists %v", got)
	}
	if err := servers.Stop(ctx, rd, mine.ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("reader stops a server: %v; want 403", err)
	}
	if _, err := servers.Create(ctx, rd, servers.CreateOpts{Name: "r", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID}, nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("reader creates a server: %v; want 403", err)
	}
	// A cloud admin lists every project's servers when asking; a member
	// may not.
	if got := names(listAll(t, a, servers.ListOpts{AllTenants: true})); !slices.Equal(got, []string{"bobs", "secret"}) {
		t.Fatalf("admin lists all projects: %v", got)
	}
	if _, err := servers.List(b, servers.ListOpts{AllTenants: true}).AllPages(ctx); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("member lists all projects: %v; want 403", err)
	}
	// all_tenants is read as Nova reads it (oslo's strict boolean): a
	// false spelled any way is the caller's own project, and a value that
	// is no boolean is refused.
	for _, tc := range []struct {
		name, value string
		want        []string
		status      int
	}{
		{name: "True", value: "True", want: []string{"bobs", "secret"}},
		{name: "yes", value: "yes", want: []string{"bobs", "secret"}},
		{name: "False", value: "False", want: []string{"secret"}},
		{name: "0", value: "0", want: []string{"secret"}},
		{name: "no", value: "NO", want: []string{"secret"}},
		{name: "not a boolean", value: "everyone", status: http.StatusBadRequest},
	} {
		t.Run("all_tenants="+tc.name, func(t *testing.T) {
			var got struct {
				Servers []struct {
					Name string `json:"name"`
				} `json:"servers"`
			}
			resp, err := a.Get(ctx, a.ServiceURL("servers")+"?all_tenants="+tc.value, &got, &gophercloud.RequestOpts{OkCodes: []int{200}})
			if tc.status != 0 {
				if !gophercloud.ResponseCodeIs(err, tc.status) {
					t.Fatalf("GET /servers?all_tenants=%s: %v; want %d", tc.value, err, tc.status)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			var names []string
			for _, s := range got.Servers {
				names = append(names, s.Name)
			}
			slices.Sort(names)
			if !slices.Equal(names, tc.want) {
				t.Errorf("GET /servers?all_tenants=%s lists %v; want %v", tc.value, names, tc.want)
			}
		})
	}
	if _, err := servers.Get(ctx, a, mine.ID).Extract(); !is404(err) {
		t.Fatalf("admin gets beta's server: %v; want 404 (no all_tenants)", err)
	}
	if _, err := servers.Get(ctx, a, s.ID).Extract(); err != nil {
		t.Fatalf("the owner lost its server: %v", err)
	}
}

func TestServerCreateRefusals(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	imgA, imgB := se.Seeded["local-a"].ImageID, se.Seeded["local-b"].ImageID
	// The image on local-b now needs more memory than m1.tiny has.
	mb := se.Pool.Members()[1] // by name: local-b
	big := 100000
	if _, err := mb.Cloud.UpdateImage(ctx, imgB, peers.ImagePatch{MinRAMMiB: &big}); err != nil {
		t.Fatal(err)
	}
	good := func(edit func(m map[string]any)) map[string]any {
		m := map[string]any{"name": "x", "flavorRef": "1", "imageRef": imgA}
		edit(m)
		return map[string]any{"server": m}
	}
	for _, tc := range []struct {
		name string
		body any
		want string // in the message
	}{
		{"no server", map[string]any{"srv": 1}, "server"},
		{"unknown flavor", good(func(m map[string]any) { m["flavorRef"] = "m9.huge" }), "flavorRef"},
		{"unknown image", good(func(m map[string]any) { m["imageRef"] = "4f1e9fa8-0000-4000-8000-000000000000" }), "imageRef"},
		{"unknown network", good(func(m map[string]any) {
			m["networks"] = []map[string]string{{"uuid": "4f1e9fa8-0000-4000-8000-000000000001"}}
		}), "networks"},
		{"bad networks", good(func(m map[string]any) { m["networks"] = "some" }), "networks"},
		{"bad user_data", good(func(m map[string]any) { m["user_data"] = "!!! not base64 !!!" }), "user_data"},
		{"unknown key", good(func(m map[string]any) { m["key_name"] = "nokey" }), "key_name"},
		{"unknown zone", good(func(m map[string]any) { m["availability_zone"] = "mars" }), "Availability zone 'mars' is invalid"},
		{"reserved metadata", good(func(m map[string]any) { m["metadata"] = map[string]string{"cloudmux_id": "x"} }), "metadata"},
		{"no name", good(func(m map[string]any) { m["name"] = "" }), "name"},
		{"min_ram", good(func(m map[string]any) { m["imageRef"] = imgB }), "min_ram"},
		{"unknown group", good(func(m map[string]any) { m["security_groups"] = []map[string]string{{"name": "web"}} }), "Security group web not found"},
		{"bad security_groups", good(func(m map[string]any) { m["security_groups"] = "default" }), "security_groups"},
		{"bfv from image", good(func(m map[string]any) {
			m["block_device_mapping_v2"] = []map[string]any{{"boot_index": 0, "uuid": imgA, "source_type": "image", "destination_type": "volume"}}
		}), "block_device_mapping_v2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := post(t, c, "servers", tc.body)
			if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
				t.Fatalf("got %d %q; want 400 naming %q", code, msg, tc.want)
			}
		})
	}
	if ss := listAll(t, c, servers.ListOpts{}); len(ss) != 0 {
		t.Fatalf("refused creates left servers: %v", names(ss))
	}

	// The default group, by name or ID, is what every server gets.
	for _, g := range []string{"default", network.DefaultSecurityGroupID(se.Boot.Project.ID)} {
		code, msg := post(t, c, "servers", good(func(m map[string]any) { m["security_groups"] = []map[string]string{{"name": g}} }))
		if code != http.StatusAccepted {
			t.Fatalf("security group %s: %d %q; want 202", g, code, msg)
		}
	}
	s := create(t, c, servers.CreateOpts{Name: "act", FlavorRef: "1", ImageRef: imgA})
	waitStatus(t, c, s.ID, "ACTIVE")
	for _, tc := range []struct {
		name string
		body any
		want string
	}{
		{"unknown action", map[string]any{"os-explode": nil}, "no such action"},
		{"two actions", map[string]any{"os-start": nil, "os-stop": nil}, "exactly one"},
		{"bad reboot type", map[string]any{"reboot": map[string]string{"type": "GENTLE"}}, "SOFT, HARD"},
		{"bad console length", map[string]any{"os-getConsoleOutput": map[string]any{"length": "many"}}, "length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := post(t, c, "servers/"+s.ID+"/action", tc.body)
			if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
				t.Fatalf("got %d %q; want 400 naming %q", code, msg, tc.want)
			}
		})
	}
}

func TestServerVolumeAttachments(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	bs, err := openstack.NewBlockStorageV3(se.Provider(t, "admin", brokertest.AdminPassword, "admin"), gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	s := create(t, c, servers.CreateOpts{Name: "db", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	waitStatus(t, c, s.ID, "ACTIVE")
	vol := func(zone string) string {
		v, err := volumes.Create(ctx, bs, volumes.CreateOpts{Size: 1, Name: "data-" + zone, AvailabilityZone: zone}, nil).Extract()
		if err != nil {
			t.Fatal(err)
		}
		waitVolume(t, bs, v.ID, "available")
		return v.ID
	}
	here, there := vol("local-a"), vol("local-b")

	att, err := volumeattach.Create(ctx, c, s.ID, volumeattach.CreateOpts{VolumeID: here}).Extract()
	if err != nil || att.VolumeID != here || att.ServerID != s.ID || att.Device == "" {
		t.Fatalf("attach = %+v, %v", att, err)
	}
	waitVolume(t, bs, here, "in-use")
	got, err := servers.Get(ctx, c, s.ID).Extract()
	if err != nil || len(got.AttachedVolumes) != 1 || got.AttachedVolumes[0].ID != here {
		t.Fatalf("server volumes = %+v, %v; want the broker ID of %s", got.AttachedVolumes, err, here)
	}
	pages, err := volumeattach.List(c, s.ID).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if as, _ := volumeattach.ExtractVolumeAttachments(pages); len(as) != 1 || as[0].VolumeID != here || as[0].Device != att.Device {
		t.Fatalf("attachments = %+v", as)
	}
	if one, err := volumeattach.Get(ctx, c, s.ID, here).Extract(); err != nil || one.VolumeID != here {
		t.Fatalf("show attachment = %+v, %v", one, err)
	}

	code, msg := post(t, c, "servers/"+s.ID+"/os-volume_attachments", map[string]any{"volumeAttachment": map[string]string{"volumeId": there}})
	if code != http.StatusBadRequest || !strings.Contains(msg, "own peer") {
		t.Fatalf("cross-peer attach = %d %q; want 400 saying they are on different peers", code, msg)
	}
	code, _ = post(t, c, "servers/"+s.ID+"/os-volume_attachments", map[string]any{"volumeAttachment": map[string]string{"volumeId": "4f1e9fa8-0000-4000-8000-000000000002"}})
	if code != http.StatusNotFound {
		t.Fatalf("attach of an unknown volume = %d; want 404", code)
	}

	if err := volumeattach.Delete(ctx, c, s.ID, here).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, bs, here, "available")
	if err := volumeattach.Delete(ctx, c, s.ID, here).ExtractErr(); !is404(err) {
		t.Fatalf("detaching a detached volume = %v; want 404", err)
	}
}

func TestServerBootFromVolume(t *testing.T) {
	se := newServersEnv(t)
	c := se.admin(t)
	m := se.Pool.Members()[0]
	id := se.bootableVolume(t, m)
	s := create(t, c, servers.CreateOpts{Name: "bfv", FlavorRef: "1", Networks: "none", BlockDevice: []servers.BlockDevice{
		{BootIndex: 0, UUID: id, SourceType: servers.SourceVolume, DestinationType: servers.DestinationVolume},
	}})
	got := waitStatus(t, c, s.ID, "ACTIVE")
	if len(got.Image) != 0 || got.AvailabilityZone != m.Peer.Name || len(got.AttachedVolumes) != 1 || got.AttachedVolumes[0].ID != id {
		t.Fatalf("boot-from-volume server = %+v", got)
	}
	if len(got.Addresses) != 0 {
		t.Fatalf("networks none gave addresses %v", got.Addresses)
	}
}

// TestServerBootFromNewVolume: a root volume made from an image on the
// chosen peer (the CLI's --boot-from-volume), a volume of the project
// like any other, left when the server goes.
func TestServerBootFromNewVolume(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	bs, err := openstack.NewBlockStorageV3(se.Provider(t, "admin", brokertest.AdminPassword, "admin"), gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	img := se.Seeded["local-b"].ImageID
	s := create(t, c, servers.CreateOpts{Name: "rooted", FlavorRef: "1", Networks: "none", BlockDevice: []servers.BlockDevice{
		{BootIndex: 0, UUID: img, SourceType: servers.SourceImage, DestinationType: servers.DestinationVolume, VolumeSize: 2},
	}})
	got := waitStatus(t, c, s.ID, "ACTIVE")
	if len(got.Image) != 0 || got.AvailabilityZone != "local-b" || len(got.AttachedVolumes) != 1 {
		t.Fatalf("server = %+v", got)
	}
	root, err := volumes.Get(ctx, bs, got.AttachedVolumes[0].ID).Extract()
	if err != nil || root.Size != 2 || root.Bootable != "true" || root.Status != "in-use" || root.AvailabilityZone != "local-b" {
		t.Fatalf("root volume = %+v, %v", root, err)
	}
	if err := servers.Delete(ctx, c, s.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolume(t, bs, root.ID, "available")

	// delete_on_termination: the root volume goes with its server.
	code, body, msg := call(t, at(c, "2.3"), http.MethodPost, "servers", map[string]any{"server": map[string]any{"name": "rooted-2", "flavorRef": "1", "networks": "none",
		"block_device_mapping_v2": []map[string]any{{"boot_index": 0, "uuid": img, "source_type": "image", "destination_type": "volume", "volume_size": 1, "delete_on_termination": true}}}})
	if code != http.StatusAccepted {
		t.Fatalf("create with delete_on_termination = %d %s", code, msg)
	}
	id := body["server"].(map[string]any)["id"].(string)
	waitStatus(t, c, id, "ACTIVE")
	_, body, _ = call(t, at(c, "2.3"), http.MethodGet, "servers/"+id, nil)
	vols := body["server"].(map[string]any)["os-extended-volumes:volumes_attached"].([]any)
	if len(vols) != 1 || vols[0].(map[string]any)["delete_on_termination"] != true {
		t.Fatalf("volumes_attached = %v; want the root volume, deleted with the server", vols)
	}
	if err := servers.Delete(ctx, c, id).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitVolumeGone(t, bs, vols[0].(map[string]any)["id"].(string))

	for _, tc := range []struct {
		name string
		bdm  map[string]any
		want string
	}{
		{"no size", map[string]any{"boot_index": 0, "uuid": img, "source_type": "image", "destination_type": "volume"}, "volume_size"},
		{"too small", map[string]any{"boot_index": 0, "uuid": img, "source_type": "image", "destination_type": "volume", "volume_size": 0}, "volume_size"},
		{"delete on termination not a boolean", map[string]any{"boot_index": 0, "uuid": img, "source_type": "image", "destination_type": "volume", "volume_size": 1, "delete_on_termination": "maybe"}, "delete_on_termination"},
		{"snapshot", map[string]any{"boot_index": 0, "uuid": img, "source_type": "snapshot", "destination_type": "volume"}, "source_type"},
		{"unknown image", map[string]any{"boot_index": 0, "uuid": "4f1e9fa8-0000-4000-8000-000000000009", "source_type": "image", "destination_type": "volume", "volume_size": 1}, "imageRef"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, msg := post(t, c, "servers", map[string]any{"server": map[string]any{"name": "x", "flavorRef": "1", "networks": "none",
				"block_device_mapping_v2": []map[string]any{tc.bdm}}})
			if code != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
				t.Fatalf("got %d %q; want 400 naming %q", code, msg, tc.want)
			}
		})
	}
}

// TestServersServiceErrors checks what the EC2 API relies on: refusals
// carry the field, sentinels and peers sentinels both match.
func TestServersServiceErrors(t *testing.T) {
	se := newServersEnv(t)
	srv := se.Servers
	if err := srv.Validate(); err != nil {
		t.Fatalf("the test's servers: %v", err)
	}
	if err := (&compute.Servers{Pool: se.Pool}).Validate(); err == nil || !strings.Contains(err.Error(), "compute.Servers.Images is not set") || strings.Contains(err.Error(), "Pool") {
		t.Fatalf("an unwired Servers: %v", err)
	}
	caller := compute.Caller{Project: se.Boot.Project.ID, User: se.Boot.User.ID}
	_, err := srv.Create(se.Ctx, caller, compute.CreateSpec{Name: "x", FlavorRef: "1", ImageRef: "no-such-image"})
	if !errors.Is(err, compute.ErrInvalid) || !errors.Is(err, peers.ErrInvalid) || compute.FieldOf(err) != "imageRef" {
		t.Fatalf("unknown image: %v (field %q)", err, compute.FieldOf(err))
	}
	if _, err := srv.Get(se.Ctx, caller, "nope"); !errors.Is(err, compute.ErrNotFound) || !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("unknown server: %v", err)
	}
	s, err := srv.Create(se.Ctx, caller, compute.CreateSpec{Name: "svc", FlavorRef: "m1.tiny", ImageRef: se.Seeded["local-b"].ImageID, NetworksMode: compute.NetworksNone})
	if err != nil || s.Zone != "local-b" || s.FlavorID != "1" || s.FlavorName != "m1.tiny" || s.VCPUs != 1 {
		t.Fatalf("create = %+v, %v", s, err)
	}
	if fs, failed := srv.Flavors(se.Ctx); len(fs) != 4 || len(failed) != 0 || !slices.ContainsFunc(fs, func(f peers.Flavor) bool { return f.Name == s.FlavorName }) {
		t.Fatalf("flavors = %+v, failed %v", fs, failed)
	}
	page, err := srv.List(se.Ctx, caller, compute.Query{IDs: []string{s.ID}})
	if err != nil || len(page.Servers) != 1 || page.Servers[0].ID != s.ID {
		t.Fatalf("list by ID = %+v, %v", page, err)
	}
}

// doomedCloud reports every server named "doomed" failed, as a peer does
// when a boot fails.
type doomedCloud struct{ *localcloud.Cloud }

func (d doomedCloud) GetServer(ctx context.Context, id string) (peers.Server, error) {
	s, err := d.Cloud.GetServer(ctx, id)
	if err == nil && s.Name == "doomed" {
		s.Status, s.Fault = peers.ServerError, "build failed: no bootable device"
	}
	return s, err
}

func TestServerFaultShown(t *testing.T) {
	se := newServersEnv(t, brokertest.Peer{Name: "local-a", Wrap: func(c *localcloud.Cloud) peers.Cloud { return doomedCloud{c} }})
	c := se.admin(t)
	s := create(t, c, servers.CreateOpts{Name: "doomed", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID})
	got := waitStatus(t, c, s.ID, "ERROR")
	if got.Fault.Code != 500 || got.Fault.Message != "build failed: no bootable device" || got.VmState != "error" {
		t.Fatalf("failed server = %+v, fault %+v", got, got.Fault)
	}
}

// TestServerIndexRebuild: the marks on the peer's server are enough to
// rebuild a lost index entry, and the server (its root volume too) comes
// back under the same broker IDs.
func TestServerIndexRebuild(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	s := create(t, c, servers.CreateOpts{Name: "phoenix", FlavorRef: "1", Networks: "none", BlockDevice: []servers.BlockDevice{
		{BootIndex: 0, UUID: se.Seeded["local-a"].ImageID, SourceType: servers.SourceImage, DestinationType: servers.DestinationVolume, VolumeSize: 1},
	}})
	before := waitStatus(t, c, s.ID, "ACTIVE")
	for _, kind := range []string{compute.KindServer, "volume"} {
		id := s.ID
		if kind == "volume" {
			id = before.AttachedVolumes[0].ID
		}
		e, err := se.Index.Get(ctx, kind, id, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := se.Index.Delete(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := servers.Get(ctx, c, s.ID).Extract(); !is404(err) {
		t.Fatalf("without its entry: %v; want 404", err)
	}
	if _, err := se.Index.Rebuild(ctx, se.Pool.Members(), testBroker, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	after, err := servers.Get(ctx, c, s.ID).Extract()
	if err != nil || after.Name != "phoenix" || after.Flavor["id"] != "1" || len(after.AttachedVolumes) != 1 || after.AttachedVolumes[0].ID != before.AttachedVolumes[0].ID {
		t.Fatalf("after the rebuild = %+v, %v; want it back as it was", after, err)
	}
}

// TestServerKeypairImport: a user's keypair is imported onto the peer
// under a name of its own, once; re-created with another key, the next
// server boots with the new key, not the peer's old copy.
func TestServerKeypairImport(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	caller := compute.Caller{Project: se.Boot.Project.ID, User: se.Boot.User.ID}
	kps := compute.NewKeypairStore(se.Store)
	a := se.Pool.Members()[0]
	boot := func(name string) peers.Server {
		t.Helper()
		s, err := se.Servers.Create(ctx, caller, compute.CreateSpec{Name: name, FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID, KeyName: "k", NetworksMode: compute.NetworksNone})
		if err != nil {
			t.Fatal(err)
		}
		ps, err := a.Cloud.GetServer(ctx, s.PeerServerID)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	first, err := kps.Create(ctx, caller.Project, caller.User, peers.KeypairSpec{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	one, two := boot("one"), boot("two")
	if one.KeyName != two.KeyName {
		t.Fatalf("the same keypair imported twice: %s, %s", one.KeyName, two.KeyName)
	}
	if kp, err := a.Cloud.GetKeypair(ctx, one.KeyName); err != nil || kp.PublicKey != first.PublicKey {
		t.Fatalf("peer keypair = %+v, %v; want the user's public key", kp, err)
	}
	if err := kps.Delete(ctx, caller.Project, caller.User, "k"); err != nil {
		t.Fatal(err)
	}
	second, err := kps.Create(ctx, caller.Project, caller.User, peers.KeypairSpec{Name: "k"})
	if err != nil {
		t.Fatal(err)
	}
	three := boot("three")
	if kp, err := a.Cloud.GetKeypair(ctx, three.KeyName); three.KeyName == one.KeyName || err != nil || kp.PublicKey != second.PublicKey {
		t.Fatalf("after re-creating the keypair the server got %s (%+v, %v); want the new key", three.KeyName, kp, err)
	}
}
