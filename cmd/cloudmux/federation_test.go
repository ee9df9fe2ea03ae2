package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/peers/openstack"
	"github.com/cloudmux/cloudmux/peers/peertest"
)

// connectFederated connects the OpenStack peer driver to a running
// `cloudmux serve -dev`, as another broker would, from the clouds.yaml the
// dev broker writes (cloud "cloudmux", its admin in project admin).
func connectFederated(t testing.TB, b *devBroker) *openstack.Cloud {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.dataDir, "clouds.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := openstack.FromCloudsYAML(data, "cloudmux", nil)
	if err != nil {
		t.Fatalf("the dev broker's clouds.yaml: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background()) // no deadline: go test -timeout stops a hang
	defer cancel()
	c, err := openstack.New(ctx, cfg)
	if err != nil {
		t.Fatalf("the OpenStack driver against serve -dev: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// federatedImage is the dev broker's seeded image, as the driver sees it.
func federatedImage(t testing.TB, c *openstack.Cloud) string {
	t.Helper()
	imgs, err := c.ListImages(context.Background(), peers.ListOptions{})
	if err != nil {
		t.Fatalf("ListImages through the federated broker: %v", err)
	}
	for _, img := range imgs {
		if img.Name == localcloud.SeedImageName && img.Status == peers.ImageActive {
			return img.ID
		}
	}
	t.Fatalf("the federated broker lists no active %s among %d images", localcloud.SeedImageName, len(imgs))
	return ""
}

// TestFederationConformance is issue 5's "federation for free": another
// cloudmux broker, reached through the OpenStack peer driver like any
// OpenStack cloud, passes the peers conformance suite.
func TestFederationConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole peers conformance suite against a second broker")
	}
	b := startDev(t)
	c := connectFederated(t, b)
	peertest.Exercise(t, c.Peer(), peertest.Fixture{
		FlavorID: "42", ImageID: federatedImage(t, c), Project: c.ProjectID(),
		PollTimeout: time.Minute, MaxPollInterval: 500 * time.Millisecond,
		Gaps: map[string]string{
			"Routers": "the federated broker serves routers over its peers' external networks, but the dev broker's " +
				"local cloud has none and the broker's Neutron makes no external networks (router:external is the peers' admins' own)",
		},
	})
	if t.Failed() {
		t.Logf("federated broker log (last lines):\n%s", lastLines(b.stderr.String(), 20))
	}
}
