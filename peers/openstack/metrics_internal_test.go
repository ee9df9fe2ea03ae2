package openstack

import (
	"net/url"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
)

// TestClassifyKeepsLabelsBounded: no ID, user-chosen name or container
// ever reaches a label; API words stay.
func TestClassifyKeepsLabelsBounded(t *testing.T) {
	tr := &meteredTransport{authURL: "https://cloud.example/identity/v3"}
	sc := func(base string) *gophercloud.ServiceClient {
		return &gophercloud.ServiceClient{Endpoint: base, ResourceBase: base}
	}
	tr.setBases(clientBases(map[string]*gophercloud.ServiceClient{
		"compute":      sc("https://cloud.example/compute/v2.1/"),
		"image":        sc("https://cloud.example/image/v2/"),
		"volume":       sc("https://cloud.example/volume/v3/4f1c0b9e3f0e4c7a9c1d2e3f4a5b6c7d/"),
		"object-store": sc("https://cloud.example/swift/v1/AUTH_4f1c0b9e/"),
		"network":      sc("https://cloud.example/network/v2.0/"),
	}))
	tests := []struct {
		name, url, service, route string
	}{
		{"token", "https://cloud.example/identity/v3/auth/tokens", "identity", "/auth/tokens"},
		{"server detail", "https://cloud.example/compute/v2.1/servers/detail", "compute", "/servers/detail"},
		{"server action", "https://cloud.example/compute/v2.1/servers/0c5e9a52-3b1f-4d59-9f1e-6c2b8a9d1e11/action", "compute", "/servers/{id}/action"},
		{"keypair by a user's name", "https://cloud.example/compute/v2.1/os-keypairs/my-laptop", "compute", "/os-keypairs/{id}"},
		{"flavor extra specs", "https://cloud.example/compute/v2.1/flavors/42/os-extra_specs", "compute", "/flavors/{id}/os-extra_specs"},
		{"image data", "https://cloud.example/image/v2/images/6b5c7d8e-1111-4222-8333-944455556666/file", "image", "/images/{id}/file"},
		{"volume under a project base", "https://cloud.example/volume/v3/4f1c0b9e3f0e4c7a9c1d2e3f4a5b6c7d/volumes/v1/action", "volume", "/volumes/{id}/action"},
		{"a port", "https://cloud.example/network/v2.0/ports/p1", "network", "/ports/{id}"},
		{"swift account", "https://cloud.example/swift/v1/AUTH_4f1c0b9e/", "object-store", "/"},
		{"swift container", "https://cloud.example/swift/v1/AUTH_4f1c0b9e/holiday-photos", "object-store", "/{container}"},
		{"swift object", "https://cloud.example/swift/v1/AUTH_4f1c0b9e/holiday-photos/2026/beach.jpg", "object-store", "/{container}/{object}"},
		{"deep path", "https://cloud.example/compute/v2.1/servers/s1/os-interface/p1/extra/x", "compute", "/servers/{id}/os-interface/{id}/..."},
		{"elsewhere", "https://other.example/x/y", "other", "/x/{id}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			service, route := tr.classify(u)
			if service != tc.service || route != tc.route {
				t.Fatalf("classify(%s) = %s %s, want %s %s", tc.url, service, route, tc.service, tc.route)
			}
		})
	}
}
