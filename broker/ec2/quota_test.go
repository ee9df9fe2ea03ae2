package ec2_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/policy"
)

// TestRunInstancesOverQuota: a project at its instance quota is told so
// with EC2's InstanceLimitExceeded, not the clouds' capacity code.
func TestRunInstancesOverQuota(t *testing.T) {
	te := newTestEnv(t)
	engine, err := policy.NewEngine(te.Ctx, policy.EngineConfig{}) // the stock policy, which enforces quotas
	if err != nil {
		t.Fatal(err)
	}
	te.servers.Placer = engine
	limits := te.servers.Quota.(*quota.Ledger).Limits.(*quota.Limits)
	p, err := te.Dir.FindProject(te.Ctx, identity.DefaultDomainID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := limits.Set(te.Ctx, p.ID, quota.Amounts{quota.Instances: 1}); err != nil {
		t.Fatal(err)
	}
	admin := te.client(t, te.keysFor(t, "admin", "admin"))
	img := te.uploadImage(t, "admin", "quota.qcow2")
	var reg struct {
		ImageID string `xml:"imageId"`
	}
	admin.must("RegisterImage", url.Values{"ImageLocation": {"cloudmux/" + img.ID}, "Name": {"quota-image"}}, &reg)
	run := url.Values{"ImageId": {reg.ImageID}, "InstanceType": {"t2.micro"}}
	admin.must("RunInstances", run, nil)
	e := admin.do("RunInstances", run, nil)
	wantCode(t, e, "InstanceLimitExceeded")
	if !strings.Contains(e.Message, "instances") {
		t.Fatalf("message %q does not name the instances quota", e.Message)
	}
}
