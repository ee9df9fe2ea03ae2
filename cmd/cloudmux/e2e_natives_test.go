package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/networking/v2/networks"

	"github.com/cloudmux/cloudmux/broker/network"
)

// checkNativeNetwork has the testcloud's admin make a shared network
// (without a subnet, so no server's "auto" picks it) and checks the
// broker shows it by a broker ID only: the testcloud's own ID is 404, the
// broker's ID is shown, and nobody may delete it through the broker.
func (h *hybridBroker) checkNativeNetwork(t *testing.T, name string) {
	out, code := oscTestcloudAs(t, h.clouds, testcloudEntry+"-admin", "network", "create", "--share", name, "-f", "value", "-c", "id")
	if code != 0 {
		t.Skipf("the testcloud's admin cannot make a shared network (exit %d): %s", code, out)
	}
	peerID := strings.TrimSpace(out)
	t.Cleanup(func() { oscTestcloudAs(t, h.clouds, testcloudEntry+"-admin", "network", "delete", peerID) })
	// A project's list reads the peers known to hold shared networks: a
	// peer that had none when last read shows its new one once the
	// broker's background discovery (every 30s) reads it again.
	var found []networks.Network
	waitFor2(t, 2*network.DefaultDiscoveryInterval, "the broker to list "+name, func() (bool, string) {
		pages, err := networks.List(h.network, networks.ListOpts{Name: name}).AllPages(t.Context())
		if err != nil {
			return false, err.Error()
		}
		found, err = networks.ExtractNetworks(pages)
		return err == nil && len(found) > 0, fmt.Sprintf("%+v, %v", found, err)
	})
	if len(found) != 1 || found[0].ID == peerID || !found[0].Shared {
		t.Fatalf("the broker's list of %s = %+v; want it once, shared, by a broker ID (not %s)", name, found, peerID)
	}
	if n, err := networks.Get(t.Context(), h.network, found[0].ID).Extract(); err != nil || n.Name != name {
		t.Fatalf("show by the broker's ID = %+v, %v", n, err)
	}
	if err := networks.Get(t.Context(), h.network, peerID).Err; !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
		t.Fatalf("show by the testcloud's ID = %v; want 404", err)
	}
	if err := networks.Delete(t.Context(), h.network, found[0].ID).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusForbidden) {
		t.Fatalf("delete through the broker = %v; want 403", err)
	}
}

// oscTestcloudAs runs the openstack CLI against the testcloud as the
// clouds.yaml entry cloud.
func oscTestcloudAs(t *testing.T, clouds, cloud string, args ...string) (string, int) {
	t.Helper()
	return oscTestcloud(t, clouds, append([]string{"--os-cloud", cloud}, args...)...)
}
