package compute_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/attachinterfaces"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/staging"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/registry"
)

// slowLister is a peer whose server list never answers in time, nor its
// show of a server named "hang".
type slowLister struct{ *localcloud.Cloud }

func (slowLister) ListServers(ctx context.Context, _ peers.ListOptions) ([]peers.Server, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (sl slowLister) GetServer(ctx context.Context, id string) (peers.Server, error) {
	s, err := sl.Cloud.GetServer(ctx, id)
	if err == nil && s.Name == "hang" {
		<-ctx.Done()
		return peers.Server{}, ctx.Err()
	}
	return s, err
}

func TestServerListPartialAndZonePin(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t, brokertest.Peer{Name: "local-a"}, brokertest.Peer{Name: "local-slow", Wrap: func(c *localcloud.Cloud) peers.Cloud { return slowLister{c} }})
	c := se.admin(t)
	// The zone pins the peer: both zones hold a seeded image of their own.
	for _, zone := range []string{"local-a", "local-slow"} {
		s := create(t, c, servers.CreateOpts{Name: "on-" + zone, FlavorRef: "1", ImageRef: se.Seeded[zone].ImageID, AvailabilityZone: zone})
		if got := waitStatus(t, c, s.ID, "ACTIVE"); got.AvailabilityZone != zone {
			t.Fatalf("server pinned to %s landed in %s", zone, got.AvailabilityZone)
		}
	}
	var body struct {
		Servers []servers.Server `json:"servers"`
	}
	resp, err := c.Get(ctx, c.ServiceURL("servers", "detail"), &body, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get(osapi.PartialHeader); got != "local-slow" {
		t.Fatalf("partial header = %q; want local-slow", got)
	}
	if len(body.Servers) != 1 || body.Servers[0].Name != "on-local-a" {
		t.Fatalf("partial list = %v; want the answering peer's server", names(body.Servers))
	}
	// A show the peer never answers ends at the per-peer deadline, 503.
	hang := create(t, c, servers.CreateOpts{Name: "hang", FlavorRef: "1", ImageRef: se.Seeded["local-slow"].ImageID, AvailabilityZone: "local-slow"})
	if _, err := servers.Get(ctx, c, hang.ID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusServiceUnavailable) {
		t.Fatalf("show on a stuck peer = %v; want 503", err)
	}
	// From 2.69 the stuck peer's servers are shown as Nova shows a down
	// cell's: UNKNOWN, with what the broker keeps, unless the list is
	// filtered or paged.
	mv := at(c, "2.69")
	code, list, _ := call(t, mv, http.MethodGet, "servers/detail", nil)
	byID := map[string]map[string]any{}
	for _, s := range list["servers"].([]any) {
		byID[s.(map[string]any)["id"].(string)] = s.(map[string]any)
	}
	if st := byID[hang.ID]; code != 200 || len(byID) != 3 || st["status"] != "UNKNOWN" || st["tenant_id"] != se.Boot.Project.ID || st["name"] != nil {
		t.Fatalf("2.69 list = %d %v; want the stuck peer's two servers as minimal UNKNOWN ones", code, list)
	}
	if _, list, _ = call(t, mv, http.MethodGet, "servers/detail?name=on-", nil); len(list["servers"].([]any)) != 1 {
		t.Fatalf("a filtered 2.69 list = %v; want only what matched", list)
	}
	code, show, msg := call(t, mv, http.MethodGet, "servers/"+hang.ID, nil)
	if code != 200 {
		t.Fatalf("2.69 show on a stuck peer = %d %s", code, msg)
	}
	if s := show["server"].(map[string]any); s["status"] != "UNKNOWN" || s["OS-EXT-AZ:availability_zone"] != "local-slow" ||
		s["flavor"].(map[string]any)["original_name"] != "m1.tiny" || s["user_id"] == "UNKNOWN" || s["image"] == "" {
		t.Fatalf("2.69 show = %v", s)
	}
}

func TestServerNetworks(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	project := se.Boot.Project.ID
	a, b := se.Pool.Members()[0], se.Pool.Members()[1] // local-a, local-b
	marks := func(id string) map[string]string {
		return map[string]string{peers.MetaID: id, peers.MetaProject: project, peers.MetaBrokerID: testBroker}
	}
	// A network of the project on local-b, as the network API makes one.
	netID := "6e7a0000-0000-4000-8000-00000000ae70"
	pn, err := b.Cloud.CreateNetwork(ctx, peers.NetworkSpec{Name: "team-net", Project: project, Metadata: marks(netID)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Cloud.CreateSubnet(ctx, peers.SubnetSpec{Name: "team-sub", Project: project, NetworkID: pn.ID, CIDR: "192.168.7.0/24", IPVersion: 4, EnableDHCP: true}); err != nil {
		t.Fatal(err)
	}
	if err := se.Index.Put(ctx, index.Entry{Kind: "network", ID: netID, Project: project, PeerID: b.Peer.ID, PeerResourceID: pn.ID}); err != nil {
		t.Fatal(err)
	}
	// A port of the project on local-a's shared network.
	portID := "6e7a0000-0000-4000-8000-0000000000b0"
	pp, err := a.Cloud.CreatePort(ctx, peers.PortSpec{Project: project, NetworkID: se.Seeded["local-a"].NetworkID, Metadata: marks(portID)})
	if err != nil {
		t.Fatal(err)
	}
	if err := se.Index.Put(ctx, index.Entry{Kind: "port", ID: portID, Project: project, PeerID: a.Peer.ID, PeerResourceID: pp.ID}); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		image    string
		networks any
		wantNet  string
		wantAddr string
	}{
		{"shared network by its broker ID", "local-a", []servers.Network{{UUID: se.Nets["local-a"]}}, localcloud.SeedNetworkName, ""},
		{"fixed IP", "local-a", []servers.Network{{UUID: se.Nets["local-a"], FixedIP: "10.0.0.77"}}, localcloud.SeedNetworkName, "10.0.0.77"},
		{"project network by broker ID", "local-b", []servers.Network{{UUID: netID}}, "team-net", ""},
		{"port by broker ID", "local-a", []servers.Network{{Port: portID}}, localcloud.SeedNetworkName, pp.FixedIPs[0].IPAddress},
		{"auto prefers the project's network", "local-b", "auto", "team-net", ""},
		{"auto falls back to a shared one", "local-a", "auto", localcloud.SeedNetworkName, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := create(t, c, servers.CreateOpts{Name: tc.name, FlavorRef: "1", ImageRef: se.Seeded[tc.image].ImageID, Networks: tc.networks})
			got := waitStatus(t, c, s.ID, "ACTIVE")
			addrs, ok := got.Addresses[tc.wantNet].([]any)
			if !ok || len(got.Addresses) != 1 || len(addrs) != 1 {
				t.Fatalf("addresses = %v; want one on %s", got.Addresses, tc.wantNet)
			}
			if addr := addrs[0].(map[string]any)["addr"]; tc.wantAddr != "" && addr != tc.wantAddr {
				t.Fatalf("address = %v; want %s", addr, tc.wantAddr)
			}
			// os-interface names the network (and a port given by the
			// project) by broker ID.
			pages, err := attachinterfaces.List(c, s.ID).AllPages(ctx)
			if err != nil {
				t.Fatal(err)
			}
			nics, err := attachinterfaces.ExtractInterfaces(pages)
			wantNet := se.Nets[tc.image]
			if tc.wantNet == "team-net" {
				wantNet = netID
			}
			if err != nil || len(nics) != 1 || nics[0].NetID != wantNet || len(nics[0].FixedIPs) != 1 {
				t.Fatalf("interfaces = %+v, %v; want one on %s", nics, err, wantNet)
			}
			if ports, ok := tc.networks.([]servers.Network); ok && ports[0].Port != "" && nics[0].PortID != portID {
				t.Fatalf("interface port = %s; want %s", nics[0].PortID, portID)
			}
		})
	}
	if got := names(listAll(t, c, servers.ListOpts{IP: `^10\.0\.0\.77$`})); !slices.Equal(got, []string{"fixed IP"}) {
		t.Fatalf("ip filter = %v", got)
	}
	// The port is on local-a, the network on local-b: no peer holds both.
	code, msg := post(t, c, "servers", map[string]any{"server": map[string]any{"name": "split", "flavorRef": "1",
		"imageRef": se.Seeded["local-a"].ImageID, "networks": []map[string]string{{"uuid": netID}, {"port": portID}}}})
	if code != http.StatusBadRequest || !strings.Contains(msg, "local-a: does not hold network or port "+netID) ||
		!strings.Contains(msg, "local-b: does not hold network or port "+portID) {
		t.Fatalf("split references = %d %q; want 400 with each peer's reason", code, msg)
	}
	// The image is on local-a, the network on local-b: the image is copied.
	s := create(t, c, servers.CreateOpts{Name: "staged", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID, Networks: []servers.Network{{UUID: netID}}})
	if got := waitStatus(t, c, s.ID, "ACTIVE"); got.AvailabilityZone != "local-b" || got.Image["id"] != se.Seeded["local-a"].ImageID {
		t.Fatalf("server = %+v; want it on local-b, showing the broker's image ID", got)
	}
	// Another project sees neither the private network nor the port.
	pw := se.Member(t, "eve", "eve-project", identity.RoleMember)
	eve := se.compute(t, "eve", pw, "eve-project")
	for _, nw := range []map[string]string{{"uuid": netID}, {"port": portID}} {
		code, msg := post(t, eve, "servers", map[string]any{"server": map[string]any{"name": "steal", "flavorRef": "1",
			"imageRef": se.Seeded["local-b"].ImageID, "networks": []map[string]string{nw}}})
		if code != http.StatusBadRequest || !strings.Contains(msg, "could not be found") {
			t.Fatalf("another project's %v = %d %q; want 400 not found", nw, code, msg)
		}
	}
}

func TestServerImageStaging(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	c := se.admin(t)
	imgA := se.Seeded["local-a"].ImageID
	b := se.Pool.Members()[1] // local-b
	caller := compute.Caller{Project: se.Boot.Project.ID, User: se.Boot.User.ID}
	copiesOnB := func() int {
		t.Helper()
		copies, err := b.Cloud.ListImages(ctx, peers.ListOptions{Metadata: map[string]string{staging.MetaReplicaOf: imgA}})
		if err != nil {
			t.Fatal(err)
		}
		return len(copies)
	}
	// Between peers the policy scores alike, the one holding the image
	// wins: no copy is made to break a tie.
	near, err := se.Servers.Create(ctx, caller, compute.CreateSpec{Name: "near", FlavorRef: "1", ImageRef: se.Seeded["local-b"].ImageID, NetworksMode: compute.NetworksNone})
	if err != nil || near.Zone != "local-b" {
		t.Fatalf("unpinned server in %q (%v); want local-b, which holds its image", near.Zone, err)
	}
	// The policy decides: ranking local-b first sends local-a's image there.
	preferB := *se.Servers
	preferB.Placer = rankFirst{"local-b"}
	far, err := preferB.Create(ctx, caller, compute.CreateSpec{Name: "far", FlavorRef: "1", ImageRef: imgA, NetworksMode: compute.NetworksNone})
	if err != nil || far.Zone != "local-b" || copiesOnB() != 1 {
		t.Fatalf("server in %q (%v), %d copies; want local-b and one copy", far.Zone, err, copiesOnB())
	}
	for i := range 2 {
		s := create(t, c, servers.CreateOpts{Name: fmt.Sprintf("far-%d", i), FlavorRef: "1", ImageRef: imgA, AvailabilityZone: "local-b", Networks: "none"})
		if got := waitStatus(t, c, s.ID, "ACTIVE"); got.AvailabilityZone != "local-b" || got.Image["id"] != imgA {
			t.Fatalf("server = %+v; want it on local-b with image %s", got, imgA)
		}
	}
	// One copy, reused by the second boot.
	if n := copiesOnB(); n != 1 {
		t.Fatalf("copies on local-b = %d; want 1", n)
	}

	// Without a stager, a server stays with its image: pinning it elsewhere
	// is refused with the reason.
	noCopy := *se.Servers
	noCopy.Stager = nil
	_, err = noCopy.Create(ctx, caller, compute.CreateSpec{Name: "x", FlavorRef: "1", ImageRef: se.Seeded["local-b"].ImageID, AvailabilityZone: "local-a", NetworksMode: compute.NetworksNone})
	if !errors.Is(err, compute.ErrNoValidHost) || !strings.Contains(err.Error(), "local-a: does not hold image "+se.Seeded["local-b"].ImageID) {
		t.Fatalf("pinned away from the image without a stager: %v", err)
	}
}

// rankFirst is the default policy, with one peer moved to the front and
// scored above the others.
type rankFirst struct{ name string }

func (r rankFirst) Place(ctx context.Context, req policy.Request, candidates []registry.Peer) (policy.Decision, error) {
	d, err := policy.Default{}.Place(ctx, req, candidates)
	for i := range d.Verdicts {
		if d.Verdicts[i].Peer.Name == r.name {
			d.Verdicts[i].Score = 100
		}
	}
	slices.SortStableFunc(d.Verdicts, func(a, b policy.Verdict) int {
		switch {
		case a.Peer.Name == r.name:
			return -1
		case b.Peer.Name == r.name:
			return 1
		}
		return 0
	})
	return d, err
}

// TestServerQuota: the quota ledger refuses a server over the project's
// quota across every peer with Nova's 403 (the stock OPA policy, which
// sees the same usage, would too); GET /limits and os-quota-sets show
// the quota and the usage.
func TestServerQuota(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t)
	engine, err := policy.NewEngine(ctx, policy.EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	se.Servers.Placer = engine // before any request: the HTTP API uses it too
	if _, err := se.Servers.QuotaAdmin.Set(ctx, se.Boot.Project.ID, quota.Amounts{quota.Instances: 2, quota.Cores: -1, quota.RAM: -1}); err != nil {
		t.Fatal(err)
	}
	c := se.admin(t)
	for i, zone := range []string{"local-a", "local-b"} {
		create(t, c, servers.CreateOpts{Name: fmt.Sprintf("q-%d", i), FlavorRef: "1", ImageRef: se.Seeded[zone].ImageID})
	}
	code, msg := post(t, c, "servers", map[string]any{"server": map[string]any{"name": "one-too-many", "flavorRef": "1", "imageRef": se.Seeded["local-a"].ImageID}})
	if code != http.StatusForbidden || msg != "Quota exceeded for instances: Requested 1, but already used 2 of 2 instances" { // Nova's TooManyInstances (compute.QuotaRefusal)
		t.Fatalf("over quota = %d %q", code, msg)
	}
	lim, err := limits.Get(ctx, c, nil).Extract()
	if err != nil || lim.Absolute.MaxTotalInstances != 2 || lim.Absolute.TotalInstancesUsed != 2 || lim.Absolute.MaxTotalCores != -1 {
		t.Fatalf("limits = %+v, %v", lim.Absolute, err)
	}
	project := se.Boot.Project.ID
	if qs, err := quotasets.Get(ctx, c, project).Extract(); err != nil || qs.Instances != 2 || qs.Cores != -1 || qs.ID != project {
		t.Fatalf("quota set = %+v, %v", qs, err)
	}
	if qd, err := quotasets.GetDetail(ctx, c, project).Extract(); err != nil || qd.Instances.InUse != 2 || qd.Instances.Limit != 2 || qd.Cores.InUse != 2 {
		t.Fatalf("quota detail = %+v, %v", qd, err)
	}
	pw := se.Member(t, "quinn", "other", identity.RoleMember)
	if _, err := quotasets.Get(ctx, se.compute(t, "quinn", pw, "other"), project).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("another project's quota: %v; want 403", err)
	}
}

// lostAnswer is a peer that creates a server but never says so.
type lostAnswer struct{ *localcloud.Cloud }

func (l lostAnswer) CreateServer(ctx context.Context, spec peers.ServerSpec) (peers.Server, error) {
	if _, err := l.Cloud.CreateServer(ctx, spec); err != nil {
		return peers.Server{}, err
	}
	<-ctx.Done()
	return peers.Server{}, ctx.Err()
}

// TestServerCreateLostAnswer: a peer that does not answer a create in
// time hands over to the next, and the server it may have made is removed.
func TestServerCreateLostAnswer(t *testing.T) {
	ctx := context.Background()
	se := newServersEnv(t, brokertest.Peer{Name: "local-a", Wrap: func(c *localcloud.Cloud) peers.Cloud { return lostAnswer{c} }}, brokertest.Peer{Name: "local-b"})
	c := se.admin(t)
	// The image is on local-a, so local-a is tried first.
	s := create(t, c, servers.CreateOpts{Name: "survivor", FlavorRef: "1", ImageRef: se.Seeded["local-a"].ImageID, Networks: "none"})
	if got := waitStatus(t, c, s.ID, "ACTIVE"); got.AvailabilityZone != "local-b" {
		t.Fatalf("server in %s; want local-b after local-a lost its answer", got.AvailabilityZone)
	}
	a := se.Pool.Members()[0]
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		left, err := a.Cloud.ListServers(ctx, peers.ListOptions{Metadata: map[string]string{peers.MetaID: s.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			break
		}
		select {
		case <-tick.C:
		case <-se.Ctx.Done():
			t.Fatalf("local-a still holds %+v", left)
		}
	}
}

// recordingPlacer is the default policy, remembering the last request.
type recordingPlacer struct {
	mu   sync.Mutex
	last policy.Request
}

func (r *recordingPlacer) Place(ctx context.Context, req policy.Request, candidates []registry.Peer) (policy.Decision, error) {
	r.mu.Lock()
	r.last = req
	r.mu.Unlock()
	return policy.Default{}.Place(ctx, req, candidates)
}

// TestServerPlacementRequest: what the policy is asked. Scheduler hints
// reach it under either of Nova's names, with the flavor's sizes, the
// image and the peers holding it, and the broker ID of the server.
func TestServerPlacementRequest(t *testing.T) {
	se := newServersEnv(t)
	rec := &recordingPlacer{}
	se.Servers.Placer = rec
	c := se.admin(t)
	img := se.Seeded["local-b"].ImageID
	for _, key := range []string{"os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"} {
		var created struct {
			Server struct {
				ID string `json:"id"`
			} `json:"server"`
		}
		_, err := c.Post(se.Ctx, c.ServiceURL("servers"), map[string]any{
			"server": map[string]any{"name": "hinted", "flavorRef": "2", "imageRef": img, "networks": "none"},
			key:      map[string]any{"tier": "gold"},
		}, &created, &gophercloud.RequestOpts{OkCodes: []int{http.StatusAccepted}})
		if err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		got := rec.last
		rec.mu.Unlock()
		b := se.Pool.Members()[1]
		if got.Kind != "server" || got.ResourceID != created.Server.ID || got.Hints["tier"] != "gold" || got.Flavor != "m1.small" ||
			got.RAMMiB != 2048 || got.VCPUs != 1 || got.Image == nil || got.Image.ID != img || !slices.Equal(got.Image.Peers, []string{b.Peer.ID}) ||
			got.Project != se.Boot.Project.ID || got.User != se.Boot.User.ID {
			t.Fatalf("%s: placement request = %+v (image %+v)", key, got, got.Image)
		}
	}
}
