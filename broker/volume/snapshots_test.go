package volume_test

import (
	"context"
	"maps"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/limits"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/quotasets"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/snapshots"
	"github.com/gophercloud/gophercloud/v2/openstack/blockstorage/v3/volumes"

	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/brokertest"
)

// waitStatus polls get until it reports want (or fails the test after a
// minute).
func waitStatus(t *testing.T, what, want string, get func() (string, error)) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := get()
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q (%v), want %q", what, got, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func waitVolumeStatus(t *testing.T, c *gophercloud.ServiceClient, id, want string) {
	t.Helper()
	waitStatus(t, "volume "+id, want, func() (string, error) {
		v, err := volumes.Get(context.Background(), c, id).Extract()
		if err != nil {
			return "", err
		}
		return v.Status, nil
	})
}

func waitSnapshotStatus(t *testing.T, c *gophercloud.ServiceClient, id, want string) {
	t.Helper()
	waitStatus(t, "snapshot "+id, want, func() (string, error) {
		s, err := snapshots.Get(context.Background(), c, id).Extract()
		if err != nil {
			return "", err
		}
		return s.Status, nil
	})
}

// TestSnapshots: a snapshot of a volume on "big" (a 10 GiB volume fits
// nowhere else), its metadata and rename, a volume made from it and a
// clone of the volume (both on big, pinned by their source, even when the
// request asks for no zone), Cinder's refusals, and another project seeing
// none of it (404, by every path).
func TestSnapshots(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	admin := client(t, e, "admin", brokertest.AdminPassword, "admin")
	v, err := volumes.Create(ctx, admin, volumes.CreateOpts{Size: 10, Name: "data"}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolumeStatus(t, admin, v.ID, "available")
	sn, err := snapshots.Create(ctx, admin, snapshots.CreateOpts{VolumeID: v.ID, Name: "nightly", Description: "before the upgrade",
		Metadata: map[string]string{"kind": "backup"}}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	if sn.VolumeID != v.ID || sn.Size != 10 || sn.Name != "nightly" || sn.Metadata["kind"] != "backup" {
		t.Fatalf("created snapshot = %+v", sn)
	}
	waitSnapshotStatus(t, admin, sn.ID, "available")

	// Metadata and rename.
	if _, err := snapshots.UpdateMetadata(ctx, admin, sn.ID, snapshots.UpdateMetadataOpts{Metadata: map[string]any{"owner": "ops"}}).Extract(); err != nil {
		t.Fatal(err)
	}
	name := "weekly"
	if _, err := snapshots.Update(ctx, admin, sn.ID, snapshots.UpdateOpts{Name: &name}).Extract(); err != nil {
		t.Fatal(err)
	}
	got, err := snapshots.Get(ctx, admin, sn.ID).Extract()
	if err != nil || got.Name != "weekly" || !maps.Equal(got.Metadata, map[string]string{"owner": "ops"}) {
		t.Fatalf("after the update = %+v, %v; want named weekly with metadata {owner: ops}", got, err)
	}
	pages, err := snapshots.List(admin, snapshots.ListOpts{VolumeID: v.ID}).AllPages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l, _ := snapshots.ExtractSnapshots(pages); len(l) != 1 || l[0].ID != sn.ID {
		t.Fatalf("snapshots of the volume = %+v", l)
	}
	// 3.22 filters by metadata; 3.41 shows who took it.
	admin.Microversion = "3.41"
	for _, tc := range []struct {
		filter string
		want   int
	}{{"{'owner': 'ops'}", 1}, {"{'owner': 'dev'}", 0}} {
		var body struct {
			Snapshots []map[string]any `json:"snapshots"`
		}
		if _, err := admin.Get(ctx, admin.ServiceURL("snapshots")+"?metadata="+url.QueryEscape(tc.filter), &body, nil); err != nil {
			t.Fatal(err)
		}
		if len(body.Snapshots) != tc.want || tc.want == 1 && (body.Snapshots[0]["user_id"] == nil || body.Snapshots[0]["user_id"] == "") {
			t.Fatalf("snapshots with metadata %s = %+v, want %d with user_id", tc.filter, body.Snapshots, tc.want)
		}
	}
	admin.Microversion = ""

	// Copies land on big, with their source named.
	copies := []struct {
		name string
		opts volumes.CreateOpts
		want func(*volumes.Volume) bool
	}{
		{"from the snapshot", volumes.CreateOpts{SnapshotID: sn.ID}, func(x *volumes.Volume) bool { return x.SnapshotID == sn.ID && x.Size == 10 }},
		{"from the snapshot, larger", volumes.CreateOpts{SnapshotID: sn.ID, Size: 12}, func(x *volumes.Volume) bool { return x.SnapshotID == sn.ID && x.Size == 12 }},
		{"clone", volumes.CreateOpts{SourceVolID: v.ID}, func(x *volumes.Volume) bool { return x.SourceVolID == v.ID && x.Size == 10 }},
	}
	for _, tc := range copies {
		t.Run(tc.name, func(t *testing.T) {
			c, err := volumes.Create(ctx, admin, tc.opts, nil).Extract()
			if err != nil {
				t.Fatal(err)
			}
			waitVolumeStatus(t, admin, c.ID, "available")
			c, err = volumes.Get(ctx, admin, c.ID).Extract()
			if err != nil || c.AvailabilityZone != "big" || !tc.want(c) {
				t.Fatalf("copy = %+v, %v; want on big", c, err)
			}
			if err := volumes.Delete(ctx, admin, c.ID, nil).ExtractErr(); err != nil {
				t.Fatal(err)
			}
		})
	}

	refusals := []struct {
		name string
		opts volumes.CreateOpts
		code int
	}{
		{"smaller than the snapshot", volumes.CreateOpts{SnapshotID: sn.ID, Size: 5}, http.StatusBadRequest},
		{"in another zone", volumes.CreateOpts{SnapshotID: sn.ID, AvailabilityZone: "small"}, http.StatusBadRequest},
		{"unknown snapshot", volumes.CreateOpts{SnapshotID: "00000000-0000-4000-8000-000000000001", Size: 1}, http.StatusNotFound},
		{"snapshot and source", volumes.CreateOpts{SnapshotID: sn.ID, SourceVolID: v.ID}, http.StatusBadRequest},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			_, err := volumes.Create(ctx, admin, tc.opts, nil).Extract()
			if !gophercloud.ResponseCodeIs(err, tc.code) {
				t.Fatalf("create = %v, want %d", err, tc.code)
			}
		})
	}
	if err := volumes.Delete(ctx, admin, v.ID, nil).ExtractErr(); !gophercloud.ResponseCodeIs(err, http.StatusBadRequest) {
		t.Fatalf("deleting a volume with a snapshot = %v, want 400", err)
	}

	t.Run("another project", func(t *testing.T) {
		pw := e.Member(t, "eve", "other", identity.RoleMember)
		eve := client(t, e, "eve", pw, "other")
		checks := []struct {
			name string
			err  func() error
		}{
			{"show", func() error { return snapshots.Get(ctx, eve, sn.ID).Err }},
			{"delete", func() error { return snapshots.Delete(ctx, eve, sn.ID).ExtractErr() }},
			{"metadata", func() error {
				return snapshots.UpdateMetadata(ctx, eve, sn.ID, snapshots.UpdateMetadataOpts{Metadata: map[string]any{"x": "y"}}).Err
			}},
			{"snapshot the volume", func() error { return snapshots.Create(ctx, eve, snapshots.CreateOpts{VolumeID: v.ID}).Err }},
			{"volume from the snapshot", func() error { return volumes.Create(ctx, eve, volumes.CreateOpts{SnapshotID: sn.ID}, nil).Err }},
			{"clone the volume", func() error { return volumes.Create(ctx, eve, volumes.CreateOpts{SourceVolID: v.ID}, nil).Err }},
		}
		for _, tc := range checks {
			t.Run(tc.name, func(t *testing.T) {
				if err := tc.err(); !gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
					t.Fatalf("= %v, want 404", err)
				}
			})
		}
		pages, err := snapshots.List(eve, snapshots.ListOpts{}).AllPages(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if l, _ := snapshots.ExtractSnapshots(pages); len(l) != 0 {
			t.Fatalf("another project lists %+v", l)
		}
	})

	if err := snapshots.Delete(ctx, admin, sn.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, "snapshot gone", "404", func() (string, error) {
		if err := snapshots.Get(ctx, admin, sn.ID).Err; gophercloud.ResponseCodeIs(err, http.StatusNotFound) {
			return "404", nil
		}
		return "there", nil
	})
	if err := volumes.Delete(ctx, admin, v.ID, nil).ExtractErr(); err != nil {
		t.Fatalf("deleting the volume once its snapshot is gone: %v", err)
	}
	if kvs, _, err := e.Store.List(ctx, "volume/attrs/"); err != nil || len(kvs) != 0 {
		t.Fatalf("attrs outlive the snapshot and volume: %d records, %v", len(kvs), err)
	}
}

// TestSnapshotQuota: snapshots count in the snapshots and gigabytes
// quotas (reserved first: over the limit is Cinder's 413), show in
// /limits and os-quota-sets usage, and a delete gives them back.
func TestSnapshotQuota(t *testing.T) {
	ctx := context.Background()
	qe := newQuotaEnv(t)
	pw := qe.Member(t, "sam", "snap-p", identity.RoleMember)
	project := qe.project(t, "snap-p")
	admin, sam := client(t, qe.Env, "admin", brokertest.AdminPassword, "admin"), client(t, qe.Env, "sam", pw, "snap-p")
	if _, err := quotasets.Update(ctx, admin, project, quotasets.UpdateOpts{Snapshots: intp(1), Gigabytes: intp(5)}).Extract(); err != nil {
		t.Fatal(err)
	}
	v, err := volumes.Create(ctx, sam, volumes.CreateOpts{Size: 2}, nil).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitVolumeStatus(t, sam, v.ID, "available")
	sn, err := snapshots.Create(ctx, sam, snapshots.CreateOpts{VolumeID: v.ID}).Extract()
	if err != nil {
		t.Fatal(err)
	}
	waitSnapshotStatus(t, sam, sn.ID, "available")
	if _, err := snapshots.Create(ctx, sam, snapshots.CreateOpts{VolumeID: v.ID}).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusRequestEntityTooLarge) {
		t.Fatalf("a second snapshot over a limit of 1 = %v, want 413", err)
	}
	// 2 (volume) + 2 (snapshot) of 5 GiB: a 2 GiB copy does not fit.
	if _, err := volumes.Create(ctx, sam, volumes.CreateOpts{SnapshotID: sn.ID}, nil).Extract(); !gophercloud.ResponseCodeIs(err, http.StatusRequestEntityTooLarge) {
		t.Fatalf("a volume from the snapshot over the gigabytes = %v, want 413", err)
	}
	lim, err := limits.Get(ctx, sam).Extract()
	if err != nil || lim.Absolute.TotalSnapshotsUsed != 1 || lim.Absolute.TotalGigabytesUsed != 4 || lim.Absolute.MaxTotalSnapshots != 1 {
		t.Fatalf("limits = %+v, %v; want 1 snapshot of 1, 4 GiB used", lim.Absolute, err)
	}
	use, err := quotasets.GetUsage(ctx, sam, project).Extract()
	if err != nil || use.Snapshots.InUse != 1 || use.Gigabytes.InUse != 4 {
		t.Fatalf("usage = %+v, %v", use, err)
	}
	if err := snapshots.Delete(ctx, sam, sn.ID).ExtractErr(); err != nil {
		t.Fatal(err)
	}
	use, err = quotasets.GetUsage(ctx, sam, project).Extract()
	if err != nil || use.Snapshots.InUse != 0 || use.Gigabytes.InUse != 2 {
		t.Fatalf("usage after the delete = %+v, %v", use, err)
	}
}
