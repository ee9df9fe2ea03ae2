package compute_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/availabilityzones"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/keypairs"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// stuckCloud is a peer that never answers a flavor list in time.
type stuckCloud struct{ *localcloud.Cloud }

func (stuckCloud) ListFlavors(ctx context.Context) ([]peers.Flavor, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// newEnv serves Keystone and Nova with peers local-a and local-b and, with
// stuck, a third that never answers.
func newEnv(t *testing.T, stuck bool) *brokertest.Env {
	t.Helper()
	ps := []brokertest.Peer{{Name: "local-a"}, {Name: "local-b"}}
	if stuck {
		ps = append(ps, brokertest.Peer{Name: "local-stuck", Wrap: func(c *localcloud.Cloud) peers.Cloud { return stuckCloud{c} }})
	}
	return brokertest.New(t, ps, func(e *brokertest.Env, r chi.Router) {
		// Healthy in-process peers answer in microseconds; 2s leaves room
		// for a loaded CI machine, and the stuck peer never answers at all.
		nova := &compute.Nova{Pool: e.Pool, Keypairs: compute.NewKeypairStore(e.Store), Auth: e.Keystone.Authenticate, Log: e.Log, PeerTimeout: 2 * time.Second}
		r.Route("/compute", nova.Routes)
	})
}

func client(t *testing.T, e *brokertest.Env) *gophercloud.ServiceClient {
	t.Helper()
	c, err := openstack.NewComputeV2(e.Provider(t, "admin", brokertest.AdminPassword, "admin"), gophercloud.EndpointOpts{Region: identity.Region})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFlavorsAndZones(t *testing.T) {
	ctx := context.Background()
	c := client(t, newEnv(t, false))
	pages, err := flavors.ListDetail(c, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := flavors.ExtractFlavors(pages)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range fs {
		names = append(names, f.Name)
	}
	// Two peers offer the same four sizes: each once, in Nova's ID order.
	if strings.Join(names, ",") != "m1.tiny,m1.small,m1.medium,m1.nano" {
		t.Fatalf("flavors = %v", names)
	}
	f, err := flavors.Get(ctx, c, "42").Extract()
	if err != nil || f.Name != "m1.nano" || f.RAM != 128 || f.VCPUs != 1 {
		t.Fatalf("flavor 42 = %+v, %v", f, err)
	}
	if _, err := flavors.Get(ctx, c, "nope").Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("unknown flavor = %v, want 404", err)
	}
	zpages, err := availabilityzones.List(c).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	zones, _ := availabilityzones.ExtractAvailabilityZones(zpages)
	if len(zones) != 2 || zones[0].ZoneName != "local-a" || !zones[0].ZoneState.Available {
		t.Fatalf("zones = %+v", zones)
	}
}

func TestPartialFlavorList(t *testing.T) {
	c := client(t, newEnv(t, true))
	start := time.Now()
	resp, err := c.Get(context.Background(), c.ServiceURL("flavors"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Header.Get(osapi.PartialHeader); got != "local-stuck" {
		t.Fatalf("%s = %q, want local-stuck", osapi.PartialHeader, got)
	}
	if waited := time.Since(start); waited > 10*time.Second {
		t.Fatalf("a stuck peer held the list for %v", waited)
	}
}

func TestKeypairs(t *testing.T) {
	ctx := context.Background()
	c := client(t, newEnv(t, false))
	gen, err := keypairs.Create(ctx, c, keypairs.CreateOpts{Name: "generated"}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(gen.PrivateKey, "PRIVATE KEY") || !strings.HasPrefix(gen.PublicKey, "ssh-rsa ") || gen.Fingerprint == "" {
		t.Fatalf("generated keypair = %+v", gen)
	}
	imported, err := keypairs.Create(ctx, c, keypairs.CreateOpts{Name: "imported", PublicKey: gen.PublicKey}).Extract()
	if err != nil || imported.PrivateKey != "" || imported.Fingerprint != gen.Fingerprint {
		t.Fatalf("imported = %+v, %v", imported, err)
	}
	refusals := []struct {
		name string
		opts keypairs.CreateOpts
		code int
	}{
		{"duplicate", keypairs.CreateOpts{Name: "generated"}, http.StatusConflict},
		{"bad key", keypairs.CreateOpts{Name: "bad", PublicKey: "ssh-rsa not-base64"}, http.StatusBadRequest},
		{"bad name", keypairs.CreateOpts{Name: "no/slashes"}, http.StatusBadRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := keypairs.Create(ctx, c, tc.opts).Extract(); !gophercloud.ResponseCodeIs(err, tc.code) {
				t.Fatalf("create = %v, want %d", err, tc.code)
			}
		})
	}
	got, err := keypairs.Get(ctx, c, "generated", nil).Extract()
	if err != nil || got.PrivateKey != "" || got.PublicKey != gen.PublicKey {
		t.Fatalf("get = %+v, %v; want the public key and never the private one", got, err)
	}
	pages, err := keypairs.List(c, nil).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if all, _ := keypairs.ExtractKeyPairs(pages); len(all) != 2 {
		t.Fatalf("list = %+v", all)
	}
	if err := keypairs.Delete(ctx, c, "generated", nil).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	if _, err := keypairs.Get(ctx, c, "generated", nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("get after delete = %v, want 404", err)
	}
}

func TestMicroversions(t *testing.T) {
	e := newEnv(t, false)
	tests := []struct {
		name, header, value string
		code                int
	}{
		{"none", "", "", 200},
		{"2.1", "OpenStack-API-Version", "compute 2.1", 200},
		{"latest", "X-OpenStack-Nova-API-Version", "latest", 200},
		{"2.60", "OpenStack-API-Version", "compute 2.60", 200},
		{"newest implemented", "OpenStack-API-Version", "compute " + compute.MaxVersion, 200},
		{"newer than implemented", "OpenStack-API-Version", "compute 2.93", 406},
		{"garbage", "X-OpenStack-Nova-API-Version", "banana", 406},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, e.Server.URL+"/compute/v2.1/", nil)
			if tc.header != "" {
				req.Header.Set(tc.header, tc.value)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("= %d %s, want %d", resp.StatusCode, body, tc.code)
			}
			if tc.code == 406 && !strings.Contains(string(body), `"computeFault"`) {
				t.Fatalf("406 body %s lacks Nova's fault shape", body)
			}
			want := map[string]string{"none": "2.1", "2.1": "2.1", "latest": compute.MaxVersion, "2.60": "2.60", "newest implemented": compute.MaxVersion}[tc.name]
			if tc.code == 200 && resp.Header.Get("OpenStack-API-Version") != "compute "+want {
				t.Fatalf("negotiated version header = %q", resp.Header.Get("OpenStack-API-Version"))
			}
		})
	}
}
