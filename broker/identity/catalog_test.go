package identity_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/endpoints"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/regions"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/services"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/registry"
)

// catalogEntry returns the token catalog's entry of a service type.
func catalogEntry(t *testing.T, c *gophercloud.ServiceClient, token, typ string) *tokens.CatalogEntry {
	t.Helper()
	cat, err := tokens.Get(context.Background(), c, token).ExtractServiceCatalog()
	mustOK(t, "token catalog", err)
	for _, s := range cat.Entries {
		if s.Type == typ {
			return &s
		}
	}
	return nil
}

// TestCatalogAsData: regions, services and endpoints through gophercloud;
// the broker's own services are the seeded rows; an admin adds a service
// the broker does not serve and its endpoint reaches new tokens' catalogs;
// members read but do not write.
func TestCatalogAsData(t *testing.T) {
	ctx := context.Background()
	e := newAppEnv(t, registry.NewMemory())

	t.Run("the broker's services are seeded rows", func(t *testing.T) {
		pages, err := services.List(e.aliceC, services.ListOpts{ServiceType: "compute"}).AllPages(ctx)
		mustOK(t, "member lists services", err)
		ss, _ := services.ExtractServices(pages)
		if len(ss) != 1 || ss[0].Extra["name"] != nil && ss[0].Extra["name"] != "nova" {
			t.Fatalf("compute services = %+v", ss)
		}
		pages, err = endpoints.List(e.aliceC, endpoints.ListOpts{ServiceID: ss[0].ID, Availability: gophercloud.AvailabilityPublic}).AllPages(ctx)
		mustOK(t, "member lists endpoints", err)
		eps, _ := endpoints.ExtractEndpoints(pages)
		if len(eps) != 1 || eps[0].URL != e.srv.URL+"/compute/v2.1" || eps[0].Region != identity.Region {
			t.Fatalf("compute endpoints = %+v", eps)
		}
	})
	region, err := regions.Create(ctx, e.adminC, regions.CreateOpts{ID: "RegionTwo", Description: "second site"}).Extract()
	mustOK(t, "create region", err)
	svc, err := services.Create(ctx, e.adminC, services.CreateOpts{Type: "dns", Extra: map[string]any{"name": "designate", "description": "DNS"}}).Extract()
	mustOK(t, "create service", err)
	ep, err := endpoints.Create(ctx, e.adminC, endpoints.CreateOpts{Availability: gophercloud.AvailabilityPublic, Region: region.ID,
		URL: "http://dns.example.test:9001", ServiceID: svc.ID, Name: "dns-public"}).Extract()
	mustOK(t, "create endpoint", err)
	if ep.Name != "dns-public" || ep.Region != "RegionTwo" {
		t.Fatalf("endpoint = %+v", ep)
	}

	t.Run("new tokens list the added service", func(t *testing.T) {
		entry := catalogEntry(t, e.adminC, e.aliceC.TokenID, "dns")
		if entry == nil || len(entry.Endpoints) != 1 || entry.Endpoints[0].URL != "http://dns.example.test:9001" || entry.Name != "designate" {
			t.Fatalf("dns entry = %+v", entry)
		}
	})
	t.Run("a disabled endpoint leaves the catalog", func(t *testing.T) {
		off := false
		_, err := endpoints.Update(ctx, e.adminC, ep.ID, endpoints.UpdateOpts{Enabled: &off}).Extract()
		mustOK(t, "disable", err)
		if entry := catalogEntry(t, e.adminC, e.aliceC.TokenID, "dns"); entry != nil {
			t.Fatalf("dns entry = %+v, want none", entry)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		cases := []struct {
			name string
			err  error
			code int
		}{
			{"member creates a service", services.Create(ctx, e.aliceC, services.CreateOpts{Type: "x"}).Err, http.StatusForbidden},
			{"member deletes an endpoint", endpoints.Delete(ctx, e.aliceC, ep.ID).Err, http.StatusForbidden},
			{"member creates a region", regions.Create(ctx, e.aliceC, regions.CreateOpts{ID: "R3"}).Err, http.StatusForbidden},
			{"an endpoint of no service", endpoints.Create(ctx, e.adminC, endpoints.CreateOpts{Availability: gophercloud.AvailabilityPublic,
				URL: "http://x.test", ServiceID: "nope"}).Err, http.StatusBadRequest},
			{"a relative URL", endpoints.Create(ctx, e.adminC, endpoints.CreateOpts{Availability: gophercloud.AvailabilityPublic,
				URL: "/x", ServiceID: svc.ID}).Err, http.StatusBadRequest},
			{"a region with endpoints", regions.Delete(ctx, e.adminC, region.ID).Err, http.StatusConflict},
			{"a region ID taken", regions.Create(ctx, e.adminC, regions.CreateOpts{ID: "RegionTwo"}).Err, http.StatusConflict},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				if !gophercloud.ResponseCodeIs(c.err, c.code) {
					t.Fatalf("err = %v, want %d", c.err, c.code)
				}
			})
		}
	})
	t.Run("deleting a service deletes its endpoints", func(t *testing.T) {
		mustOK(t, "delete service", services.Delete(ctx, e.adminC, svc.ID).ExtractErr())
		if err := endpoints.Delete(ctx, e.adminC, ep.ID).Err; !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("endpoint after its service = %v, want 404", err)
		}
		mustOK(t, "delete region", regions.Delete(ctx, e.adminC, region.ID).ExtractErr())
	})
	t.Run("an admin may move the broker's own endpoint", func(t *testing.T) {
		_, err := endpoints.Update(ctx, e.adminC, "glance-public", endpoints.UpdateOpts{URL: "https://images.example.test"}).Extract()
		mustOK(t, "update", err)
		entry := catalogEntry(t, e.adminC, e.aliceC.TokenID, "image")
		found := false
		for _, x := range entry.Endpoints {
			found = found || (x.Interface == "public" && strings.HasPrefix(x.URL, "https://images.example.test"))
		}
		if !found {
			t.Fatalf("image entry = %+v", entry)
		}
	})
}

// TestForProjectTemplates: both spellings of the project in an endpoint
// template are the token's project; without one, such endpoints go.
func TestForProjectTemplates(t *testing.T) {
	cat := []identity.Service{{Type: "object-store", Endpoints: []identity.Endpoint{
		{Interface: "public", URL: "http://x/v1/AUTH_" + identity.ProjectIDVar},
		{Interface: "internal", URL: "http://x/v1/AUTH_" + identity.TenantIDVar},
		{Interface: "admin", URL: "http://x/v1"},
	}}}
	cases := []struct {
		name, project string
		want          []string
	}{
		{"scoped", "p1", []string{"http://x/v1/AUTH_p1", "http://x/v1/AUTH_p1", "http://x/v1"}},
		{"unscoped", "", []string{"http://x/v1"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []string
			for _, s := range identity.ForProject(cat, c.project) {
				for _, ep := range s.Endpoints {
					got = append(got, ep.URL)
				}
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Fatalf("URLs %v, want %v", got, c.want)
			}
		})
	}
}
