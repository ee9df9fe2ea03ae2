package ec2_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	cinderv3 "github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// TestVolumesSharedWithCinder: EC2 and Cinder are front ends over one
// volume service: they count against one quota (EC2 says
// VolumeLimitExceeded, Cinder 413), see each other's volumes, and another
// project reaches none of them through either, by any ID.
func TestVolumesSharedWithCinder(t *testing.T) {
	te := newTestEnv(t)
	ctx := te.Ctx
	p, err := te.Dir.FindProject(ctx, identity.DefaultDomainID, "admin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := te.ledger.Limits.(*quota.Limits).Set(ctx, p.ID, quota.Amounts{quota.Volumes: 2}); err != nil {
		t.Fatal(err)
	}
	cinder := func(user, password, project string) *gophercloud.ServiceClient {
		c, err := openstack.NewBlockStorageV3(te.Provider(t, user, password, project), gophercloud.EndpointOpts{Region: identity.Region})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	adminCinder := cinder("admin", brokertest.AdminPassword, "admin")
	admin := te.client(t, te.keysFor(t, "admin", "admin"))

	fromCinder, err := cinderv3.Create(ctx, adminCinder, cinderv3.CreateOpts{Size: 1, Name: "from-cinder"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	var fromEC2 struct {
		ID string `xml:"volumeId"`
	}
	admin.must("CreateVolume", url.Values{"Size": {"1"}}, &fromEC2)
	e := admin.do("CreateVolume", url.Values{"Size": {"1"}}, nil)
	wantCode(t, e, "VolumeLimitExceeded")
	if !strings.Contains(e.Message, "Maximum number of volumes allowed (2) exceeded for quota 'volumes'.") {
		t.Fatalf("EC2's refusal %q does not name the volumes quota", e.Message)
	}
	if _, err := cinderv3.Create(ctx, adminCinder, cinderv3.CreateOpts{Size: 1}, nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusRequestEntityTooLarge) {
		t.Fatalf("Cinder's third create = %v, want 413", err)
	}
	var vols volumes
	admin.must("DescribeVolumes", nil, &vols)
	if len(vols.Items) != 2 {
		t.Fatalf("EC2 sees %d volumes, want Cinder's and its own", len(vols.Items))
	}
	all, err := cinderv3.List(adminCinder, cinderv3.ListOpts{}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if vs, _ := cinderv3.ExtractVolumes(all); len(vs) != 2 {
		t.Fatalf("Cinder sees %d volumes, want EC2's and its own", len(vs))
	}

	t.Run("another project reaches none", func(t *testing.T) {
		pw := te.Member(t, "bob", "team-b", identity.RoleMember)
		bob, bobCinder := te.client(t, te.keysFor(t, "bob", "team-b")), cinder("bob", pw, "team-b")
		for _, action := range []string{"DeleteVolume", "DetachVolume"} {
			wantCode(t, bob.do(action, url.Values{"VolumeId": {fromEC2.ID}}, nil), "InvalidVolume.NotFound")
		}
		wantCode(t, bob.do("DescribeVolumes", url.Values{"VolumeId.1": {fromEC2.ID}}, nil), "InvalidVolume.NotFound")
		entry, err := te.index.Get(ctx, "volume", fromCinder.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{fromCinder.ID, entry.PeerResourceID} {
			if _, err := cinderv3.Get(ctx, bobCinder, id).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Fatalf("bob reading %s through Cinder = %v, want 404", id, err)
			}
			if err := cinderv3.Delete(ctx, bobCinder, id, nil).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
				t.Fatalf("bob deleting %s through Cinder = %v, want 404", id, err)
			}
		}
		// The owner cannot name a volume by its peer's ID either.
		if entry.PeerResourceID == fromCinder.ID {
			t.Fatal("the peer's ID is the broker's: the test cannot tell them apart")
		}
		if _, err := cinderv3.Get(ctx, adminCinder, entry.PeerResourceID).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			t.Fatalf("the peer's raw ID through Cinder = %v, want 404", err)
		}
	})

	admin.must("DeleteVolume", url.Values{"VolumeId": {fromEC2.ID}}, nil)
	if _, err := cinderv3.Create(ctx, adminCinder, cinderv3.CreateOpts{Size: 1}, nil).Extract(); err != nil {
		t.Fatalf("after EC2's delete freed a volume, Cinder's create = %v", err)
	}
}
