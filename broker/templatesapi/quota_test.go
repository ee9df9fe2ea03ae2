package templatesapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/localcloud"
)

// TestDeploymentOverQuotaIsRefused: POST /v1/deployments (and its dry
// run) of five servers in a project allowed two is Nova's 403, naming
// the resource and the numbers, and records nothing.
func TestDeploymentOverQuotaIsRefused(t *testing.T) {
	ae := newAPIEnv(t)
	token := ae.token(t, "quinn", "quota-project", identity.RoleMember)
	p, err := ae.Dir.FindProject(ae.Ctx, identity.DefaultDomainID, "quota-project")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ae.svc.Limits.Set(ae.Ctx, p.ID, quota.Amounts{quota.Instances: 2}); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf("eve_template_version: 1\nresources:\n  web:\n    type: Server\n    count: 5\n    properties: {flavor: m1.nano, image: %s}\n",
		localcloud.SeedImageName)
	body := fmt.Sprintf(`{"name": "big", "source": %q}`, src)
	for _, dry := range []bool{true, false} {
		t.Run(fmt.Sprintf("dry_run=%v", dry), func(t *testing.T) {
			b := body
			if dry {
				b = strings.Replace(body, "{", `{"dry_run": true, `, 1)
			}
			var out struct{ Forbidden struct{ Message string } }
			if code := ae.do(t, token, "POST", "/v1/deployments", b, &out); code != 403 ||
				!strings.Contains(out.Forbidden.Message, "Quota exceeded for instances: Requested 5, but already used 0 of 2 instances") {
				t.Fatalf("%d %+v", code, out)
			}
		})
	}
	var list struct{ Deployments []deploymentView }
	if code := ae.do(t, token, "GET", "/v1/deployments", "", &list); code != 200 || len(list.Deployments) != 0 {
		t.Fatalf("%d %+v", code, list)
	}
}
