package deployres_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/deployres"
	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/network"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/internal/deploytest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
	"github.com/cloudmux/cloudmux/templates/deploy"
	"github.com/cloudmux/cloudmux/templates/deploy/resource"
)

var (
	_ deploy.Resources = (*deployres.Adapter)(nil)
	_ deploy.Peers     = (*deployres.Adapter)(nil)
)

type env struct {
	*brokertest.Env
	svc    *deploytest.Services
	engine *deploy.Engine
}

// newEnv is two seeded fake-driver local clouds with the broker's
// services over them and an engine over the services.
func newEnv(t *testing.T) *env {
	e := &env{Env: brokertest.New(t, brokertest.Seeded(t, "local", "remote"), nil)}
	e.svc = deploytest.New(e.Store, e.Pool, policy.Default{}, "test-broker", e.Log)
	e.engine = &deploy.Engine{Store: e.Store, Resources: e.svc.Adapter, Peers: e.svc.Adapter, Placer: policy.Default{},
		Holder: "b1", PollInterval: 10 * time.Millisecond, SettleTimeout: time.Minute}
	return e
}

func (e *env) peerID(t *testing.T, kind, id string) string {
	t.Helper()
	en, err := e.svc.Index.Get(e.Ctx, kind, id, "")
	if err != nil {
		t.Fatal(err)
	}
	return en.PeerResourceID
}

// run drives a deployment until it settles.
func (e *env) run(t *testing.T, id string) *deploy.Deployment {
	t.Helper()
	if err := e.engine.Run(e.Ctx, id); err != nil {
		t.Fatal(err)
	}
	d, err := e.engine.Get(e.Ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// onPeers counts project's servers, volumes, networks, subnets and ports
// on every peer.
func (e *env) onPeers(t *testing.T, project string) int {
	t.Helper()
	n := 0
	opts := peers.ListOptions{Project: project}
	for _, m := range e.Pool.Members() {
		s, err1 := m.Cloud.ListServers(e.Ctx, opts)
		v, err2 := m.Cloud.ListVolumes(e.Ctx, opts)
		ns, err3 := m.Cloud.ListNetworks(e.Ctx, opts)
		sn, err4 := m.Cloud.ListSubnets(e.Ctx, opts)
		p, err5 := m.Cloud.ListPorts(e.Ctx, opts)
		if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
			t.Fatal(err)
		}
		n += len(s) + len(v) + len(ns) + len(sn) + len(p)
	}
	return n
}

// TestAnotherProjectsResourcesAreNotFound: project B names project A's
// private image, port, volume and network in its templates, by broker
// ID, by name and by the peer's own ID. Every plan fails with not found
// (the references are resolved by the services at plan, as the creates
// will), nothing is recorded or made, and A's resources are exactly as
// they were.
func TestAnotherProjectsResourcesAreNotFound(t *testing.T) {
	e := newEnv(t)
	ctx := e.Ctx
	a := resource.Caller{Project: "project-a", User: "alice"}
	img, err := e.svc.Images.Create(ctx, image.Caller{Project: a.Project}, image.CreateSpec{Name: "a-private-image",
		DiskFormat: "raw", ContainerFormat: "bare", Visibility: "private"})
	if err != nil {
		t.Fatal(err)
	}
	net, err := e.svc.Networks.CreateNetwork(ctx, a.Project, network.NetworkCreate{Name: "a-net", ZoneHints: []string{"local"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Networks.CreateSubnet(ctx, a.Project, network.SubnetCreate{Name: "a-subnet", NetworkID: net.Ref.ID,
		CIDR: "10.99.0.0/24", IPVersion: 4, EnableDHCP: true}); err != nil {
		t.Fatal(err)
	}
	port, err := e.svc.Networks.CreatePort(ctx, a.Project, network.PortCreate{Name: "a-port", NetworkID: net.Ref.ID})
	if err != nil {
		t.Fatal(err)
	}
	vol, err := e.svc.Volumes.Create(ctx, volume.Caller{Project: a.Project, User: a.User}, volume.CreateSpec{Name: "a-vol", SizeGiB: 1,
		AvailabilityZone: "local"})
	if err != nil {
		t.Fatal(err)
	}
	refs := map[string][3]string{ // kind -> broker ID, name, peer ID
		"image":   {img.ID, img.Name, img.PeerImageID},
		"network": {net.Ref.ID, "a-net", e.peerID(t, "network", net.Ref.ID)},
		"port":    {port.Ref.ID, "a-port", e.peerID(t, "port", port.Ref.ID)},
		"volume":  {vol.ID, "a-vol", e.peerID(t, "volume", vol.ID)},
	}
	server := func(extra string) string {
		return "eve_template_version: 1\nresources:\n  web:\n    type: Server\n    placement: {peer: local}\n    properties:\n" +
			"      flavor: m1.nano\n" + extra
	}
	templates := map[string]func(ref string) string{
		"image": func(ref string) string { return server("      image: " + ref + "\n") },
		"network": func(ref string) string {
			return server("      image: " + localcloud.SeedImageName + "\n      networks: [{network: " + ref + "}]\n")
		},
		"port": func(ref string) string {
			return server("      image: " + localcloud.SeedImageName + "\n      networks: [{port: " + ref + "}]\n")
		},
		"volume": func(ref string) string {
			return server("      image: "+localcloud.SeedImageName+"\n") +
				"  attach:\n    type: VolumeAttachment\n    properties: {server: {get_resource: web}, volume: " + ref + "}\n"
		},
	}
	// A itself may use every one of them: the refusals below are tenancy.
	for kind, ids := range refs {
		if _, err := e.engine.Plan(ctx, &deploy.Deployment{Project: a.Project, User: a.User}, deploy.Spec{Source: templates[kind](ids[0])}); err != nil {
			t.Fatalf("A's own %s: %v", kind, err)
		}
	}
	b := resource.Caller{Project: "project-b", User: "bob"}
	for kind, ids := range refs {
		for i, form := range []string{"broker ID", "name", "peer ID"} {
			t.Run(kind+" by "+form, func(t *testing.T) {
				ref := ids[i]
				// Refused at plan, by every ID form, like a missing one:
				// nothing is recorded, nothing reaches a peer.
				_, _, err := e.engine.Create(ctx, "steal", b, deploy.Spec{Source: templates[kind](ref)})
				if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("unknown %s %q", kind, ref)) {
					t.Fatalf("planning with A's %s: %v", kind, err)
				}
				for _, id := range []string{ids[0], ids[2]} {
					if id != ref && strings.Contains(err.Error(), id) {
						t.Fatalf("the error names A's %s %s: %v", kind, id, err)
					}
				}
				if n := e.onPeers(t, b.Project); n != 0 {
					t.Fatalf("%d resources on the peers", n)
				}
			})
		}
	}
	// Nothing of A's was touched.
	if p, err := e.svc.Networks.GetPort(ctx, a.Project, port.Ref.ID); err != nil || p.Peer.DeviceID != "" {
		t.Fatalf("A's port: %+v %v", p, err)
	}
	if v, err := e.svc.Volumes.Get(ctx, volume.Caller{Project: a.Project}, vol.ID); err != nil || v.Status != peers.VolumeAvailable || len(v.Attachments) != 0 {
		t.Fatalf("A's volume: %+v %v", v, err)
	}
	local, _ := e.Pool.Lookup("local")
	ports, err := local.Cloud.ListPorts(ctx, peers.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ports {
		if p.NetworkID == refs["network"][2] && p.ID != refs["port"][2] {
			t.Fatalf("a port on A's network: %+v", p)
		}
	}
	if got, err := e.svc.Images.Get(ctx, image.Caller{Project: a.Project}, img.ID); err != nil || got.Status != img.Status {
		t.Fatalf("A's image: %+v %v", got, err)
	}
}

// TestCountOverQuotaFailsAtPlan: a template asking for five servers in a
// project allowed two fails at plan, naming the resource and the
// numbers, and records nothing.
func TestCountOverQuotaFailsAtPlan(t *testing.T) {
	e := newEnv(t)
	ctx := e.Ctx
	p := resource.Caller{Project: "project-q", User: "quinn"}
	if _, err := e.svc.Limits.Set(ctx, p.Project, quota.Amounts{quota.Instances: 2, quota.Ports: 3}); err != nil {
		t.Fatal(err)
	}
	src := func(n int) string {
		return fmt.Sprintf("eve_template_version: 1\nresources:\n  web:\n    type: Server\n    count: %d\n    properties: {flavor: m1.nano, image: %s}\n",
			n, localcloud.SeedImageName)
	}
	tests := []struct {
		name string
		src  string
		want string
	}{
		{"five servers", src(5), "Quota exceeded for instances: Requested 5, but already used 0 of 2 instances"},
		{"four servers, 8 keypairs", src(4) + keypairs(8), "Quota exceeded for instances: Requested 4, but already used 0 of 2 instances"},
		{"a server with four NICs on networks", "eve_template_version: 1\nresources:\n  web:\n    type: Server\n    placement: {peer: local}\n" +
			"    properties:\n      flavor: m1.nano\n      image: " + localcloud.SeedImageName + "\n" +
			"      networks: [{network: private}, {network: private}, {network: private}, {network: private}]\n",
			"Requested 4, but already used 0 of 3 ports"},
		{"six 180 GiB volumes", "eve_template_version: 1\nresources:\n  data: {type: Volume, count: 6, properties: {size: 180}}\n",
			"Quota exceeded for gigabytes: Requested 1080, but already used 0 of 1000 gigabytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.engine.Create(ctx, "big", p, deploy.Spec{Source: tc.src})
			if !errors.Is(err, deploy.ErrQuota) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
	if ds, err := e.engine.List(ctx, p.Project); err != nil || len(ds) != 0 {
		t.Fatalf("recorded %d deployments (%v)", len(ds), err)
	}

	// Two deployments that each fit, racing: the services' reservations
	// never let both have their servers. Which wins, or whether each
	// takes one and both roll back, is the race's.
	var ids []string
	for range 2 {
		d, _, err := e.engine.Create(ctx, "half", p, deploy.Spec{Source: src(2)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, d.ID)
	}
	done := make(chan error, len(ids))
	for _, id := range ids {
		go func() { done <- e.engine.Run(ctx, id) }()
	}
	for range ids {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	statuses := map[deploy.Status]int{}
	for _, id := range ids {
		d, err := e.engine.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		statuses[d.Status]++
		if d.Status == deploy.StatusFailed && !strings.Contains(d.Error, "Quota exceeded for instances") {
			t.Fatalf("failed for another reason: %s", d.Error)
		}
	}
	used, _, err := e.svc.Ledger.Usage(ctx, quota.Scope{Project: p.Project})
	if err != nil {
		t.Fatal(err)
	}
	if statuses[deploy.StatusFailed] == 0 || used[quota.Instances] != 2*statuses[deploy.StatusComplete] {
		t.Fatalf("statuses %v, %d instances in use", statuses, used[quota.Instances])
	}
}

// keypairs is template text for n keypairs.
func keypairs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "  key%d: {type: Keypair, properties: {name: k%d}}\n", i, i)
	}
	return b.String()
}

// TestOwnResourcesByName: a template names the project's own port,
// network and volume by name, as the OpenStack CLI does; deleting the
// deployment leaves them, as they are not its.
func TestOwnResourcesByName(t *testing.T) {
	e := newEnv(t)
	ctx := e.Ctx
	a := resource.Caller{Project: "project-a", User: "alice"}
	net, err := e.svc.Networks.CreateNetwork(ctx, a.Project, network.NetworkCreate{Name: "a-net", ZoneHints: []string{"local"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Networks.CreateSubnet(ctx, a.Project, network.SubnetCreate{Name: "a-subnet", NetworkID: net.Ref.ID,
		CIDR: "10.98.0.0/24", IPVersion: 4, EnableDHCP: true}); err != nil {
		t.Fatal(err)
	}
	port, err := e.svc.Networks.CreatePort(ctx, a.Project, network.PortCreate{Name: "a-port", NetworkID: net.Ref.ID})
	if err != nil {
		t.Fatal(err)
	}
	vol, err := e.svc.Volumes.Create(ctx, volume.Caller{Project: a.Project, User: a.User}, volume.CreateSpec{Name: "a-vol", SizeGiB: 1,
		AvailabilityZone: "local"})
	if err != nil {
		t.Fatal(err)
	}
	src := `eve_template_version: 1
resources:
  web:
    type: Server
    placement: {peer: local}
    properties:
      flavor: m1.nano
      image: ` + localcloud.SeedImageName + `
      networks: [{port: a-port}, {network: a-net}]
  attach:
    type: VolumeAttachment
    properties: {server: {get_resource: web}, volume: a-vol}
outputs:
  volume: {value: {get_resource: attach}}
`
	d, _, err := e.engine.Create(ctx, "mine", a, deploy.Spec{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if d = e.run(t, d.ID); d.Status != deploy.StatusComplete {
		t.Fatalf("%s: %s", d.Status, d.Error)
	}
	if d.Resources["attach"].ID != vol.ID || d.Outputs["volume"] != vol.ID {
		t.Fatalf("attachment %s, output %v: want the volume's broker ID %s", d.Resources["attach"].ID, d.Outputs["volume"], vol.ID)
	}
	if p, err := e.svc.Networks.GetPort(ctx, a.Project, port.Ref.ID); err != nil || p.DeviceID != d.Resources["web"].ID {
		t.Fatalf("port %+v %v: not the server's", p, err)
	}
	if _, err := e.engine.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if d = e.run(t, d.ID); d.Status != deploy.StatusDeleted {
		t.Fatalf("%s: %s", d.Status, d.Error)
	}
	if v, err := e.svc.Volumes.Get(ctx, volume.Caller{Project: a.Project}, vol.ID); err != nil || len(v.Attachments) != 0 {
		t.Fatalf("volume after delete %+v %v", v, err)
	}
	if _, err := e.svc.Networks.GetPort(ctx, a.Project, port.Ref.ID); err != nil {
		t.Fatalf("the project's port went with the deployment: %v", err)
	}
}

// TestLiteralReferencesCheckedAtPlan: a literal that names nothing the
// project may use fails the plan with every such problem at its path; a
// literal naming one of the template's own resources is left to the
// apply, which makes that resource first.
func TestLiteralReferencesCheckedAtPlan(t *testing.T) {
	e := newEnv(t)
	a := resource.Caller{Project: "project-a", User: "alice"}
	tests := []struct {
		name  string
		src   string
		wants []string // problems, "" for a plan that passes
	}{
		{"missing everything", `eve_template_version: 1
resources:
  web:
    type: Server
    properties:
      flavor: m1.nano
      image: ` + localcloud.SeedImageName + `
      key_name: no-key
      networks: [{network: no-net}, {port: no-port}]
  db: {type: Server, properties: {flavor: m1.nano, boot_volume: no-volume}}
  sub: {type: Subnet, properties: {network: no-net-2, cidr: 10.1.0.0/24}}
  attach: {type: VolumeAttachment, properties: {server: no-server, volume: {get_resource: vol}}}
  vol: {type: Volume, properties: {size: 1}}
`, []string{
			`resources.web.properties.key_name: unknown keypair "no-key"`,
			`resources.db.properties.boot_volume: unknown volume "no-volume"`,
			`resources.web.properties.networks[0].network: unknown network "no-net"`,
			`resources.web.properties.networks[1].port: unknown port "no-port"`,
			`resources.sub.properties.network: unknown network "no-net-2"`,
			`resources.attach.properties.server: unknown server "no-server"`,
		}},
		{"the template's own names", `eve_template_version: 1
resources:
  key: {type: Keypair, properties: {name: own-key}}
  net: {type: Network, properties: {name: own-net}}
  sub: {type: Subnet, properties: {network: own-net, cidr: 10.2.0.0/24}}
  web:
    type: Server
    depends_on: [key, sub]
    properties:
      flavor: m1.nano
      image: ` + localcloud.SeedImageName + `
      key_name: own-key
      networks: [{network: own-net}]
`, nil},
	}
	// A name on both peers (each seeded cloud's shared "private", and the
	// project's own "dup" on each) is the referring server's peer's; two
	// of the project's networks named "twin" on one peer are ambiguous.
	for _, n := range []struct{ name, peer string }{{"dup", "local"}, {"dup", "remote"}, {"twin", "local"}, {"twin", "local"}} {
		if _, err := e.svc.Networks.CreateNetwork(e.Ctx, a.Project, network.NetworkCreate{Name: n.name, ZoneHints: []string{n.peer}}); err != nil {
			t.Fatal(err)
		}
	}
	onPeer := func(peer, net string) string {
		return "eve_template_version: 1\nresources:\n  web:\n    type: Server\n    placement: {peer: " + peer + "}\n    properties:\n" +
			"      flavor: m1.nano\n      image: " + localcloud.SeedImageName + "\n      networks: [{network: " + net + "}]\n"
	}
	tests = append(tests, []struct {
		name  string
		src   string
		wants []string
	}{
		{"a name on every peer, on local", onPeer("local", "private"), nil},
		{"a name on every peer, on remote", onPeer("remote", "private"), nil},
		{"the project's name on both peers", onPeer("remote", "dup"), nil},
		{"two of the project's networks named alike", onPeer("local", "twin"),
			[]string{"resources.web.properties.networks[0].network: more than one network is named twin: name it by ID"}},
	}...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.engine.Plan(e.Ctx, &deploy.Deployment{Project: a.Project, User: a.User}, deploy.Spec{Source: tc.src})
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("plan: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("the plan passed")
			}
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the plan's error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestNamedNetworkOnThePlansPeer: a Port and a Subnet naming a network
// every peer has (each seeded cloud's "private") by name are made on the
// one on their planned peer, as the plan checked it: plan and apply agree.
func TestNamedNetworkOnThePlansPeer(t *testing.T) {
	e := newEnv(t)
	a := resource.Caller{Project: "project-a", User: "alice"}
	if _, err := e.svc.Networks.CreateNetwork(e.Ctx, a.Project, network.NetworkCreate{Name: "mine", ZoneHints: []string{"remote"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Networks.CreateNetwork(e.Ctx, a.Project, network.NetworkCreate{Name: "mine", ZoneHints: []string{"local"}}); err != nil {
		t.Fatal(err)
	}
	src := "eve_template_version: 1\nresources:\n" +
		"  p: {type: Port, placement: {peer: local}, properties: {network: private}}\n" +
		"  s: {type: Subnet, placement: {peer: remote}, properties: {network: mine, cidr: 10.77.0.0/24}}\n"
	d, _, err := e.engine.Create(e.Ctx, "named", a, deploy.Spec{Source: src})
	if err != nil {
		t.Fatal(err)
	}
	if d = e.run(t, d.ID); d.Status != deploy.StatusComplete {
		t.Fatalf("planned, then apply: %s: %s", d.Status, d.Error)
	}
	want := map[string]string{"p": "local", "s": "remote"}
	for key, r := range d.Resources {
		if r.PeerName != want[r.Resource] {
			t.Errorf("%s made on %q, want %q", key, r.PeerName, want[r.Resource])
		}
	}
	if len(d.Resources) != 2 {
		t.Errorf("resources %v, want p and s", d.Resources)
	}
}
