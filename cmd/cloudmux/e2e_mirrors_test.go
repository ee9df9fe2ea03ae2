package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcos "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/extensions/security/groups"
)

// dropTestcloudMirrors removes, at cleanup, the security groups a test
// broker mirrored on the testcloud for its projects (each project's
// default group lands there with the first server the broker boots on
// it). The testcloud outlives the test run, on a developer's machine and
// on a CI machine that keeps it up between runs, and its tenant has
// Neutron's quota of security groups: mirrors left by every run would
// fill it, and a later run's peer conformance suite could not make a
// group. A running broker drops them itself when a project is deleted
// (the security-group reaper); a test broker is stopped before its gc
// would run. Register it right after the testcloud joins the broker, so
// it runs after the test's own cleanups (its servers' deletes) and before
// the broker stops.
func dropTestcloudMirrors(tb testing.TB, cloudsPath, brokerAddr, token string) {
	tb.Helper()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		projects, err := brokerProjectIDs(ctx, brokerAddr, token)
		if err != nil {
			tb.Logf("cleanup: listing the broker's projects to drop their mirrors on the testcloud: %v", err)
			return
		}
		ao, eo, _, err := clouds.Parse(clouds.WithLocations(cloudsPath), clouds.WithCloudName(testcloudEntry))
		if err != nil {
			tb.Logf("cleanup: %v", err)
			return
		}
		pc, err := gcos.AuthenticatedClient(ctx, ao)
		if err != nil {
			tb.Logf("cleanup: authenticating to the testcloud: %v", err)
			return
		}
		nc, err := gcos.NewNetworkV2(pc, eo)
		if err != nil {
			tb.Logf("cleanup: %v", err)
			return
		}
		pages, err := groups.List(nc, groups.ListOpts{}).AllPages(ctx)
		if err != nil {
			tb.Logf("cleanup: listing the testcloud's security groups: %v", err)
			return
		}
		all, err := groups.ExtractGroups(pages)
		if err != nil {
			tb.Logf("cleanup: %v", err)
			return
		}
		for _, g := range all {
			if !strings.HasPrefix(g.Name, "cloudmux-sg-") || !mirrorOfAny(g.Description, projects) {
				continue
			}
			// A port of a server just deleted may hold the group a while
			// longer: Neutron answers 409 until it is gone.
			for {
				err := groups.Delete(ctx, nc, g.ID).ExtractErr()
				if err == nil || gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
					break
				}
				if !gophercloud.ResponseCodeIs(err, http.StatusConflict) || ctx.Err() != nil {
					tb.Logf("cleanup: deleting mirror %s (%s) on the testcloud: %v", g.Name, g.Description, err)
					break
				}
				select {
				case <-ctx.Done():
				case <-time.After(time.Second): // poll interval
				}
			}
		}
	})
}

// mirrorOfAny tells whether a mirror's description (written by the
// OpenStack peer driver: `cloudmux: security group "x" of broker project
// <id>`) names one of projects.
func mirrorOfAny(description string, projects map[string]bool) bool {
	_, id, ok := strings.Cut(description, " of broker project ")
	return ok && projects[strings.TrimSpace(id)]
}

// brokerProjectIDs lists the broker's projects through its Keystone.
func brokerProjectIDs(ctx context.Context, addr, token string) (map[string]bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr+"/v3/projects", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New("GET /v3/projects: " + resp.Status)
	}
	var body struct {
		Projects []struct {
			ID string `json:"id"`
		} `json:"projects"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(body.Projects))
	for _, p := range body.Projects {
		out[p.ID] = true
	}
	return out, nil
}
