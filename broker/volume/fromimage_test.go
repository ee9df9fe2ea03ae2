package volume_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cloudmux/cloudmux/broker/image"
	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/broker/quota"
	"github.com/cloudmux/cloudmux/broker/volume"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
	"github.com/cloudmux/cloudmux/policy"
)

// TestVolumeFromImage: a volume made from an image goes to the peer
// holding the image and is bootable; references that cannot work are 400
// with the field.
func TestVolumeFromImage(t *testing.T) {
	ctx := context.Background()
	e := brokertest.New(t, []brokertest.Peer{{Name: "east"}, {Name: "west"}}, func(e *brokertest.Env, r chi.Router) {
		idx := index.New(e.Store)
		images := &image.Service{Pool: e.Pool, Index: idx, Placer: policy.Default{}, Store: e.Store, Log: e.Log, BrokerID: "test-broker"}
		svc := &volume.Service{Pool: e.Pool, Index: idx, Placer: policy.Default{}, Images: images, Store: e.Store, Log: e.Log, BrokerID: "test-broker",
			Quota: quota.NewLedger(e.Store, "test-broker", e.Log)}
		cinder := &volume.Cinder{Volumes: svc, Auth: e.Keystone.Authenticate, Log: e.Log}
		r.Route("/volume", cinder.Routes)
	})
	west, _ := e.Pool.Lookup("west")
	seeded, err := west.Cloud.(*localcloud.Cloud).Seed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")

	v, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1, Name: "boot", ImageID: seeded.ImageID}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if v.AvailabilityZone != "west" {
		t.Fatalf("volume from west's image made in %q", v.AvailabilityZone)
	}
	waitFor(t, func() bool {
		got, err := volumes.Get(ctx, admin, v.ID).Extract()
		return err == nil && got.Status == string(peers.VolumeAvailable) && got.Bootable == "true"
	})
	if got, err := volumes.Get(ctx, admin, v.ID).Extract(); err != nil || got.VolumeImageMetadata["image_id"] != seeded.ImageID {
		t.Fatalf("volume_image_metadata = %v (%v), want image_id %s", got.VolumeImageMetadata, err, seeded.ImageID)
	}

	tests := []struct {
		name string
		opts volumes.CreateOpts
	}{
		{"unknown image", volumes.CreateOpts{Size: 1, ImageID: "7d7b5a4e-0000-4000-8000-000000000000"}},
		{"zone without the image", volumes.CreateOpts{Size: 1, ImageID: seeded.ImageID, AvailabilityZone: "east"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := volumes.Create(ctx, admin, tc.opts, nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
				t.Fatalf("create = %v, want 400", err)
			}
		})
	}
}
