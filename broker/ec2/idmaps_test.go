package ec2_test

import (
	"context"
	"net/url"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/compute"
)

// pairs counts the EC2 ID pairs in the Store.
func (te *testEnv) pairs(t *testing.T) int {
	t.Helper()
	kvs, _, err := te.Store.List(te.Ctx, "ec2/ids/")
	if err != nil {
		t.Fatal(err)
	}
	return len(kvs)
}

// TestDescribeRecordsNoIDs: a Describe writes no EC2 ID pair, even for
// resources made through Nova that have none; the ID it shows is the one
// a later action names the resource by and records, and stays the same.
func TestDescribeRecordsNoIDs(t *testing.T) {
	te := newTestEnv(t)
	ctx, cancel := context.WithTimeout(te.Ctx, time.Minute)
	defer cancel()
	admin := te.client(t, te.keysFor(t, "admin", "admin"))
	img := te.uploadImage(t, "admin", "nova.qcow2")
	caller := compute.Caller{Project: te.Boot.Project.ID, User: te.Boot.User.ID, Admin: true}
	srv, err := te.servers.Create(ctx, caller, compute.CreateSpec{Name: "from-nova", FlavorRef: "m1.nano", ImageRef: img.ID, AvailabilityZone: img.PeerName})
	if err != nil {
		t.Fatal(err)
	}
	if n := te.pairs(t); n != 0 {
		t.Fatalf("%d pairs before any EC2 call", n)
	}
	described := admin.describe(nil)
	if len(described) != 1 {
		t.Fatalf("described %+v", described)
	}
	id := described[0].ID
	admin.describe(url.Values{"InstanceId.1": {srv.ID}})
	admin.describe(url.Values{"InstanceId.1": {id}})
	admin.must("DescribeImages", nil, nil)
	if n := te.pairs(t); n != 0 {
		t.Fatalf("describes recorded %d EC2 ID pairs", n)
	}
	admin.waitState(ctx, "running", id)
	admin.must("StopInstances", url.Values{"InstanceId.1": {id}}, nil)
	if n := te.pairs(t); n != 1 {
		t.Fatalf("acting on the instance recorded %d pairs; want 1", n)
	}
	if again := admin.describe(url.Values{"InstanceId.1": {id}}); len(again) != 1 || again[0].ID != id {
		t.Fatalf("the instance's ID changed once recorded: %+v", again)
	}
	// Another project cannot find it by that ID either way.
	te.Member(t, "bob", "team-b", "member")
	bob := te.client(t, te.keysFor(t, "bob", "team-b"))
	wantCode(t, bob.do("DescribeInstances", url.Values{"InstanceId.1": {id}}, nil), "InvalidInstanceID.NotFound")
}

// TestIDCollector: the pair of a deleted resource goes once it has been
// gone for the retention, not before; pairs of resources that exist stay,
// so their EC2 IDs do not change.
func TestIDCollector(t *testing.T) {
	te := newTestEnv(t)
	admin := te.client(t, te.keysFor(t, "admin", "admin"))
	var kept, deleted struct {
		ID string `xml:"volumeId"`
	}
	admin.must("CreateVolume", url.Values{"Size": {"1"}}, &kept)
	admin.must("CreateVolume", url.Values{"Size": {"1"}}, &deleted)
	admin.must("DeleteVolume", url.Values{"VolumeId": {deleted.ID}}, nil)
	if n := te.pairs(t); n != 2 {
		t.Fatalf("%d pairs; want one per created volume", n)
	}
	te.api.IDRetention = time.Hour
	gc := te.api.IDCollector()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	passes := []struct {
		name        string
		at          time.Time
		wantRemoved int
		wantPairs   int
	}{
		{"first seen gone", t0, 0, 2},
		{"within the retention", t0.Add(time.Hour - time.Second), 0, 2},
		{"past the retention", t0.Add(time.Hour), 1, 1},
		{"nothing left to remove", t0.Add(2 * time.Hour), 0, 1},
	}
	for _, p := range passes {
		t.Run(p.name, func(t *testing.T) {
			n, err := gc.Collect(te.Ctx, p.at)
			if err != nil || n != p.wantRemoved {
				t.Fatalf("Collect = %d, %v; want %d removed", n, err, p.wantRemoved)
			}
			if got := te.pairs(t); got != p.wantPairs {
				t.Fatalf("%d pairs left; want %d", got, p.wantPairs)
			}
		})
	}
	var vols volumes
	admin.must("DescribeVolumes", url.Values{"VolumeId.1": {kept.ID}}, &vols)
	if len(vols.Items) != 1 || vols.Items[0].ID != kept.ID {
		t.Fatalf("the kept volume = %+v", vols)
	}
	wantCode(t, admin.do("DescribeVolumes", url.Values{"VolumeId.1": {deleted.ID}}, nil), "InvalidVolume.NotFound")
}
