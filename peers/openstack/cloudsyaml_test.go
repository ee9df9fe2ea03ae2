package openstack_test

import (
	"fmt"
	"testing"

	"github.com/cloudmux/cloudmux/peers/openstack"
	"github.com/cloudmux/cloudmux/registry"
)

const goodClouds = `
clouds:
  eu-public:
    auth:
      auth_url: https://keystone.eu.example.test:5000/v3
      username: svc
      password: s3cret
      project_name: cloudmux
      user_domain_name: Default
      project_domain_name: Default
    region_name: RegionOne
    interface: public
  lab:
    auth_type: v3applicationcredential
    auth:
      auth_url: http://127.0.0.1:5000/v3
      application_credential_id: abc
      application_credential_secret: xyz
    region_name: lab1
    interface: internalURL
`

func TestImportCloudsYAML(t *testing.T) {
	got, err := openstack.ImportCloudsYAML([]byte(goodClouds), openstack.ImportOptions{Labels: map[string]string{"tier": "public"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Peer.Name != "eu-public" || got[1].Peer.Name != "lab" {
		t.Fatalf("imported %d peers: %+v", len(got), got)
	}
	eu, lab := got[0], got[1]
	if eu.Peer.Endpoint.AuthURL != "https://keystone.eu.example.test:5000/v3" || eu.Peer.Endpoint.Region != "RegionOne" ||
		eu.Peer.Labels["tier"] != "public" || eu.Credentials.Password != "s3cret" || eu.Credentials.ProjectName != "cloudmux" {
		t.Fatalf("eu-public imported as %+v", eu.Peer)
	}
	if lab.Credentials.AuthType != registry.AuthApplicationCredential || lab.Peer.Endpoint.Interface != "internal" {
		t.Fatalf("lab imported as %+v / auth %s", lab.Peer, lab.Credentials.AuthType)
	}
	only, err := openstack.ImportCloudsYAML([]byte(goodClouds), openstack.ImportOptions{Only: []string{"lab"}})
	if err != nil || len(only) != 1 || only[0].Peer.Name != "lab" {
		t.Fatalf("Only=lab: %v %v", only, err)
	}
}

func TestImportCloudsYAMLErrors(t *testing.T) {
	tests := []struct {
		name   string
		yaml   string
		opts   openstack.ImportOptions
		fields []string
	}{
		{"not yaml", "clouds: [unclosed", openstack.ImportOptions{}, []string{"clouds.yaml"}},
		{"no clouds", "foo: bar\n", openstack.ImportOptions{}, []string{"clouds"}},
		{"missing cloud", goodClouds, openstack.ImportOptions{Only: []string{"nope"}}, []string{"clouds.nope"}},
		{"every problem in every entry", `
clouds:
  a:
    auth:
      auth_url: "keystone:5000"
      username: u
    interface: private
  b:
    auth_type: kerberos
    auth:
      auth_url: http://127.0.0.1:5000/v3
  c:
    region_name: x
`, openstack.ImportOptions{}, []string{
			"clouds.a.auth.auth_url", "clouds.a.interface", "clouds.a.auth.password", "clouds.a.auth.user_domain_name",
			"clouds.b.auth_type", "clouds.b.auth.username", "clouds.b.auth.password",
			"clouds.c.auth", "clouds.c.auth.auth_url", "clouds.c.auth.username", "clouds.c.auth.password",
		}},
		{"unreadable cacert", `
clouds:
  a:
    cacert: /nonexistent/ca.pem
    auth: {auth_url: "https://k:5000/v3", username: u, password: p, user_domain_name: Default}
`, openstack.ImportOptions{}, []string{"clouds.a.cacert"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openstack.ImportCloudsYAML([]byte(tc.yaml), tc.opts)
			var got []string
			for _, fe := range registry.FieldErrors(err) {
				got = append(got, fe.Field)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.fields) {
				t.Fatalf("fields = %v\nwant     %v\nerr: %v", got, tc.fields, err)
			}
		})
	}
}
