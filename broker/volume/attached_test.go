package volume_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cloudmux/cloudmux/broker/index"
	"github.com/cloudmux/cloudmux/internal/brokertest"
	"github.com/cloudmux/cloudmux/localcloud"
	"github.com/cloudmux/cloudmux/peers"
)

// TestAttachedVolume: an attached volume names its server by the broker's
// ID, and extending it while in use takes microversion 3.42, as in Cinder.
func TestAttachedVolume(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	v, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 1, Name: "data", AvailabilityZone: "big"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	entry, err := index.New(e.Store).Get(ctx, "volume", v.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := e.Pool.Get(entry.PeerID)
	cloud := m.Cloud.(*localcloud.Cloud)
	seeded, err := cloud.Seed(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A server as the servers service makes it: on the peer, and indexed
	// under a broker ID.
	srv, err := cloud.CreateServer(ctx, peers.ServerSpec{Name: "vm", Project: entry.Project, FlavorID: "1", ImageID: seeded.ImageID})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		s, err := cloud.GetServer(ctx, srv.ID)
		return err == nil && s.Status == peers.ServerActive
	})
	if err := index.New(e.Store).Put(ctx, index.Entry{Kind: "server", ID: "broker-server-1", Project: entry.Project, PeerID: entry.PeerID, PeerResourceID: srv.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := cloud.AttachVolume(ctx, srv.ID, entry.PeerResourceID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		got, err := cloud.GetVolume(ctx, entry.PeerResourceID)
		return err == nil && got.Status == peers.VolumeInUse
	})

	t.Run("attachments name the broker's server ID", func(t *testing.T) {
		for _, get := range []func() (*volumes.Volume, error){
			func() (*volumes.Volume, error) { return volumes.Get(ctx, admin, v.ID).Extract() },
			func() (*volumes.Volume, error) {
				pages, err := volumes.List(admin, volumes.ListOpts{}).AllPages(ctx)
				if err != nil {
					return nil, err
				}
				all, err := volumes.ExtractVolumes(pages)
				for i := range all {
					if all[i].ID == v.ID {
						return &all[i], err
					}
				}
				return nil, err
			},
		} {
			got, err := get()
			if err != nil || got == nil || len(got.Attachments) != 1 {
				t.Fatalf("volume = %+v, %v", got, err)
			}
			if a := got.Attachments[0]; a.ServerID != "broker-server-1" || a.VolumeID != v.ID {
				t.Fatalf("attachment = %+v, want server broker-server-1 and volume %s", a, v.ID)
			}
		}
	})
	t.Run("in-use extend takes 3.42", func(t *testing.T) {
		err := volumes.ExtendSize(ctx, admin, v.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr()
		if !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
			t.Fatalf("in-use extend at 3.0 = %v, want 400", err)
		}
		admin.Microversion = "3.42"
		defer func() { admin.Microversion = "" }()
		if err := volumes.ExtendSize(ctx, admin, v.ID, volumes.ExtendSizeOpts{NewSize: 2}).ExtractErr(); err != nil {
			t.Fatalf("in-use extend at 3.42 = %v", err)
		}
		waitFor(t, func() bool {
			got, err := cloud.GetVolume(ctx, entry.PeerResourceID)
			return err == nil && got.SizeGiB == 2 && got.Status == peers.VolumeInUse
		})
	})
	t.Run("microversions", func(t *testing.T) {
		tests := []struct {
			name, asked, wantHeader string
			wantCode                int
		}{
			{"none is the minimum", "", "volume 3.0", http.StatusOK},
			{"latest is the maximum", "volume latest", "volume 3.42", http.StatusOK},
			{"one in range is echoed", "volume 3.27", "volume 3.27", http.StatusOK},
			{"beyond the maximum", "volume 3.70", "", http.StatusNotAcceptable},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, admin.ResourceBaseURL()+"volumes", nil)
				req.Header.Set("X-Auth-Token", admin.Token())
				if tc.asked != "" {
					req.Header.Set("OpenStack-API-Version", tc.asked)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.wantCode || (tc.wantHeader != "" && resp.Header.Get("OpenStack-API-Version") != tc.wantHeader) {
					t.Fatalf("= %d %q, want %d %q", resp.StatusCode, resp.Header.Get("OpenStack-API-Version"), tc.wantCode, tc.wantHeader)
				}
			})
		}
	})
}

// waitFor polls cond until it holds, failing after a minute.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
