package deploy

import (
	"os"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/localcloud"
)

// TestHOTFromHeatDocsDeploysUnchanged deploys the HOT template built from
// Heat's guides (templates/testdata/hot_guide_server.yaml) as it is: only
// its declared parameters are given.
func TestHOTFromHeatDocsDeploysUnchanged(t *testing.T) {
	src, err := os.ReadFile("../testdata/hot_guide_server.yaml")
	if err != nil {
		t.Fatal(err)
	}
	env := newEnv(t)
	ctx := env.Ctx
	e := env.engine("broker-1")
	spec := Spec{Source: string(src), Parameters: map[string]any{"image_id": localcloud.SeedImageName}}
	d, plan, err := e.Create(ctx, "hot", owner("p1"), spec)
	if err != nil {
		t.Fatal(err)
	}
	// Everything sits with the one server: key, network and subnet copies
	// where it is, the volume attached to it.
	peer := ""
	for _, s := range plan.Steps {
		if peer == "" {
			peer = s.PeerName
		}
		if s.PeerName != peer {
			t.Fatalf("%s on %s, others on %s", s.Key, s.PeerName, peer)
		}
	}
	d = runToEnd(t, e, ctx, d.ID)
	if d.Status != StatusComplete {
		t.Fatalf("%s: %s", d.Status, d.Error)
	}
	ip, _ := d.Outputs["instance_ip"].(string)
	key, _ := d.Outputs["private_key"].(string)
	if !strings.HasPrefix(ip, "10.8.1.") || !strings.Contains(key, "PRIVATE KEY") {
		t.Fatalf("outputs %v", d.Outputs)
	}
	s, err := env.svc.Servers.Get(ctx, compute.Caller{Project: "p1"}, d.Resources["my_instance"].ID)
	if err != nil || s.KeyName != "my_key" || len(s.Volumes) != 1 || s.Volumes[0] != d.Resources["new_volume"].ID {
		t.Fatalf("server %+v %v", s, err)
	}
	if _, err := e.Delete(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	if d = runToEnd(t, e, ctx, d.ID); d.Status != StatusDeleted {
		t.Fatalf("%s: %s", d.Status, d.Error)
	}
	if got := env.projectResources(t, "p1"); got["local"]+got["remote"] != 0 {
		t.Fatalf("left behind %v", got)
	}
}
