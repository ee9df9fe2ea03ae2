package openstack_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/applicationcredentials"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/peers/openstack"
	"github.com/cloudmux/cloudmux/registry"
)

// tenantConfig is the testcloud tenant entry of the clouds.yaml.
func tenantConfig(t *testing.T) openstack.Config {
	t.Helper()
	return entryConfig(t, cloudsYAML(t), "testcloud")
}

// gopherClient authenticates with gophercloud directly, as the tenant.
func gopherClient(t testing.TB, cfg openstack.Config) *gophercloud.ProviderClient {
	t.Helper()
	cr := cfg.Credentials
	pc, err := gopenstack.AuthenticatedClient(context.Background(), gophercloud.AuthOptions{
		IdentityEndpoint: cfg.Endpoint.AuthURL, Username: cr.Username, Password: cr.Password, DomainName: cr.UserDomainName,
		Scope: &gophercloud.AuthScope{ProjectName: cr.ProjectName, DomainName: cr.ProjectDomainName},
	})
	if err != nil {
		t.Fatalf("gophercloud authenticate: %v", err)
	}
	return pc
}

// TestAuthMethods connects to the real Keystone with each kind of
// credentials a peer record may hold, and with endpoint selection.
func TestAuthMethods(t *testing.T) {
	base := tenantConfig(t)
	pc := gopherClient(t, base)
	identity, err := gopenstack.NewIdentityV3(pc, gophercloud.EndpointOpts{})
	if err != nil {
		t.Fatal(err)
	}
	auth := pc.GetAuthResult().(tokens.CreateResult)
	user, err := auth.ExtractUser()
	if err != nil {
		t.Fatal(err)
	}
	project, err := auth.ExtractProject()
	if err != nil {
		t.Fatal(err)
	}
	appCred, err := applicationcredentials.Create(t.Context(), identity, user.ID, applicationcredentials.CreateOpts{
		Name: "cloudmux-authtest-" + time.Now().Format("150405.000000"),
	}).Extract()
	if err != nil {
		t.Fatalf("creating an application credential: %v", err)
	}
	t.Cleanup(func() {
		_ = applicationcredentials.Delete(context.Background(), identity, user.ID, appCred.ID).ExtractErr()
	})

	with := func(mut func(*openstack.Config)) openstack.Config {
		cfg := base
		mut(&cfg)
		return cfg
	}
	tests := []struct {
		name string
		cfg  openstack.Config
		want error // nil: connects and works
	}{
		{"password", base, nil},
		{"application credential", with(func(c *openstack.Config) {
			c.Credentials = registry.Credentials{AuthType: registry.AuthApplicationCredential,
				ApplicationCredentialID: appCred.ID, ApplicationCredentialSecret: appCred.Secret}
		}), nil},
		{"token scoped to the project", with(func(c *openstack.Config) {
			c.Credentials = registry.Credentials{AuthType: registry.AuthToken, Token: pc.Token(),
				ProjectName: base.Credentials.ProjectName, ProjectDomainName: base.Credentials.ProjectDomainName}
		}), nil},
		{"token passed through", with(func(c *openstack.Config) {
			c.Credentials = registry.Credentials{AuthType: registry.AuthToken, Token: pc.Token()}
		}), nil},
		{"internal interface", with(func(c *openstack.Config) { c.Endpoint.Interface = "internal" }), nil},
		{"wrong password", with(func(c *openstack.Config) { c.Credentials.Password = "not-the-password" }), peers.ErrUnauthorized},
		{"unknown region", with(func(c *openstack.Config) { c.Endpoint.Region = "Nowhere" }), peers.ErrNotSupported},
		{"nothing listening", with(func(c *openstack.Config) { c.Endpoint.AuthURL = "http://127.0.0.1:1/v3" }), peers.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := openstack.New(t.Context(), tc.cfg)
			if tc.want != nil {
				if err == nil {
					_ = c.Close()
				}
				if !errors.Is(err, tc.want) {
					t.Fatalf("New: %v, want errors.Is %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			defer c.Close()
			if c.ProjectID() != project.ID {
				t.Fatalf("ProjectID() = %q, want the tenant's %q", c.ProjectID(), project.ID)
			}
			if _, err := c.GetFlavor(t.Context(), testFlavor); err != nil {
				t.Fatalf("GetFlavor: %v", err)
			}
			if err := c.Probe(t.Context()); err != nil {
				t.Fatalf("Probe: %v", err)
			}
		})
	}
}

// TestConnector builds the peer the way the pool does, from a registry
// record and its credentials.
func TestConnector(t *testing.T) {
	data := cloudsYAML(t)
	entryConfig(t, data, "testcloud")
	imported, err := openstack.ImportCloudsYAML(data, openstack.ImportOptions{Only: []string{"testcloud"}})
	if err != nil {
		t.Fatal(err)
	}
	var connector peers.Connector = openstack.Connect
	cloud, err := connector(t.Context(), imported[0].Peer, imported[0].Credentials)
	if err != nil {
		t.Fatalf("Connect: %v", err)
	}
	defer cloud.(interface{ Close() error }).Close()
	if info := cloud.Info(); info.Kind != registry.KindOpenStack || info.Driver != openstack.Driver || info.Region != "RegionOne" {
		t.Fatalf("Info() = %+v", info)
	}
	// The pool's cloud has peers.Objects exactly when the catalog lists an
	// object store (the testcloud's Swift, unless ENABLE_SWIFT=0).
	if _, ok := cloud.(peers.Objects); ok != connect(t, "testcloud").HasObjectStore() {
		t.Fatalf("Connect returned %T: peers.Objects %v, but the catalog's object store says otherwise", cloud, ok)
	}
	zones, err := cloud.(interface {
		AvailabilityZones(context.Context) ([]string, error)
	}).AvailabilityZones(t.Context())
	if err != nil || len(zones) == 0 {
		t.Fatalf("AvailabilityZones = %v, %v; want at least Nova's default zone", zones, err)
	}
	bad := imported[0]
	bad.Credentials.Password = "wrong"
	if c, err := connector(t.Context(), bad.Peer, bad.Credentials); c != nil || !errors.Is(err, peers.ErrUnauthorized) {
		t.Fatalf("Connect with a wrong password = %v, %v; want a nil Cloud and ErrUnauthorized", c, err)
	}
}
