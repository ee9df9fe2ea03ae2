package deploy

import (
	"errors"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/templates/focus"
)

const fabric = `eve_template_version: 1
parameters:
  cidr: {type: string, default: 10.80.0.0/24}
resources:
  net: {type: Network}
  subnet: {type: Subnet, properties: {network: {get_resource: net}, cidr: {get_param: cidr}}}
outputs:
  net_id: {value: {get_resource: net}}
  subnet_id: {value: {get_resource: subnet}}
`

const appOnFabric = `eve_template_version: 1
resources:
  fabric: {type: "template:fabric@1", properties: {cidr: 10.81.0.0/24}}
  key: {type: Keypair, properties: {name: app-key, save_private_key: true}}
  port:
    type: Port
    properties:
      network: {get_attr: [fabric, net_id]}
      fixed_ips: [{subnet: {get_attr: [fabric, subnet_id]}, ip_address: 10.81.0.50}]
  app:
    type: Server
    placement: {peer: remote}
    properties:
      flavor: m1.nano
      image: ` + localcloud.SeedImageName + `
      key_name: {get_resource: key}
      networks: [{port: {get_resource: port}}]
  img: {type: Image, placement: {peer: local}, properties: {name: app-image, disk_format: raw}}
outputs:
  ip: {value: {get_attr: [port, ip_address]}}
  key: {value: {get_attr: [key, private_key]}}
`

// TestPortsKeypairsImagesAndNesting deploys a nested template's network
// with a port, a keypair and an image around one server.
func TestPortsKeypairsImagesAndNesting(t *testing.T) {
	env := newEnv(t)
	ctx := env.Ctx
	cat := &focus.Catalog{Store: env.Store}
	if _, _, err := cat.Push(ctx, "p1", "fabric", []byte(fabric), ""); err != nil {
		t.Fatal(err)
	}
	v, _, err := cat.Push(ctx, "p1", "app", []byte(appOnFabric), "")
	if err != nil {
		t.Fatal(err)
	}
	e := env.engine("b1")
	e.Resolver = cat
	d, plan, err := e.Create(ctx, "app", owner("p1"), Spec{Template: v.Ref(), Source: v.Source})
	if err != nil {
		t.Fatal(err)
	}
	where := map[string]string{}
	for _, s := range plan.Steps {
		where[s.Key] = s.PeerName
	}
	for key, peer := range map[string]string{"fabric.net@remote": "remote", "fabric.subnet@remote": "remote", "port": "remote",
		"key": "", "app": "remote", "img": "local"} {
		if where[key] != peer {
			t.Fatalf("placement %v: %s not on %s", where, key, peer)
		}
	}
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusComplete || d.Outputs["ip"] != "10.81.0.50" || !strings.Contains(d.Outputs["key"].(string), "PRIVATE KEY") {
		t.Fatalf("%s %s %v", d.Status, d.Error, d.Outputs)
	}
	// The keypair is the user's, as os-keypairs shows it; the server
	// boots with it and on the port, as the compute API shows them.
	if k, err := env.svc.Keypairs.Get(ctx, owner("p1").User, "app-key"); err != nil || d.Resources["key"].ID != "app-key" {
		t.Fatalf("keypair %+v %v", k, err)
	}
	s, err := env.svc.Servers.Get(ctx, compute.Caller{Project: "p1"}, d.Resources["app"].ID)
	if err != nil || s.KeyName != "app-key" || s.Zone != "remote" || len(s.Addresses) != 1 || s.Addresses[0].Addr != "10.81.0.50" {
		t.Fatalf("server %+v %v", s, err)
	}
	local, _ := env.Pool.Lookup("local")
	if img, err := local.Cloud.GetImage(ctx, d.Resources["img"].ID); err != nil || img.Name != "app-image" || img.Status != peers.ImageQueued {
		t.Fatalf("image %+v %v", img, err)
	}
	imgID := d.Resources["img"].ID
	if _, err := e.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if d = runToEnd(t, e, ctx, d.ID); d.Status != StatusDeleted {
		t.Fatalf("%s %s", d.Status, d.Error)
	}
	if got := env.projectResources(t, "p1"); got["local"]+got["remote"] != 0 {
		t.Fatalf("left behind %v", got)
	}
	if _, err := local.Cloud.GetImage(ctx, imgID); err == nil {
		t.Fatal("the image is still there")
	}
	if _, err := env.svc.Keypairs.Get(ctx, owner("p1").User, "app-key"); !errors.Is(err, peers.ErrNotFound) {
		t.Fatalf("the keypair is still there: %v", err)
	}
}
