package ec2_test

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/broker/image"
)

// uploadImage makes an active private image of the project through the
// image service (what Glance's create and upload do) and returns it.
func (te *testEnv) uploadImage(t *testing.T, project, name string) image.Image {
	t.Helper()
	p, err := te.Dir.FindProject(te.Ctx, identity.DefaultDomainID, project)
	if err != nil {
		t.Fatal(err)
	}
	c := image.Caller{Project: p.ID}
	img, err := te.images.Create(te.Ctx, c, image.CreateSpec{Name: name, DiskFormat: "raw", ContainerFormat: "bare", Visibility: "private"})
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("cloudmux-test-image "), 512)
	if err := te.images.Upload(te.Ctx, c, img.ID, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	if img, err = te.images.Get(te.Ctx, c, img.ID); err != nil {
		t.Fatal(err)
	}
	return img
}

type instance struct {
	ID          string `xml:"instanceId"`
	ImageID     string `xml:"imageId"`
	State       string `xml:"instanceState>name"`
	Code        int    `xml:"instanceState>code"`
	KeyName     string `xml:"keyName"`
	Type        string `xml:"instanceType"`
	Zone        string `xml:"placement>availabilityZone"`
	LaunchIndex int    `xml:"amiLaunchIndex"`
	Tags        []struct {
		Key   string `xml:"key"`
		Value string `xml:"value"`
	} `xml:"tagSet>item"`
	Volumes []string `xml:"blockDeviceMapping>item>ebs>volumeId"`
}

type reservations struct {
	Reservations []struct {
		ID        string     `xml:"reservationId"`
		Owner     string     `xml:"ownerId"`
		Instances []instance `xml:"instancesSet>item"`
	} `xml:"reservationSet>item"`
}

func (r reservations) instances() []instance {
	var out []instance
	for _, res := range r.Reservations {
		out = append(out, res.Instances...)
	}
	return out
}

// describe returns the instances an ID list and filters select.
func (c *client) describe(params url.Values) []instance {
	c.t.Helper()
	var r reservations
	c.must("DescribeInstances", params, &r)
	return r.instances()
}

// waitState polls DescribeInstances until every instance is in state.
func (c *client) waitState(ctx context.Context, want string, ids ...string) {
	c.t.Helper()
	params := url.Values{}
	for i, id := range ids {
		params.Set("InstanceId."+strconv.Itoa(i+1), id)
	}
	for {
		got := c.describe(params)
		done := len(got) == len(ids)
		var states []string
		for _, it := range got {
			done = done && it.State == want
			states = append(states, it.ID+"="+it.State)
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("instances never became %s: %v", want, states)
		case <-time.After(20 * time.Millisecond): // polling a peer's boot, not synchronising
		}
	}
}

func TestInstancesThroughEC2AndNova(t *testing.T) {
	te := newTestEnv(t)
	ctx, cancel := context.WithTimeout(te.Ctx, time.Minute)
	defer cancel()
	te.Member(t, "bob", "team-b", identity.RoleMember)
	admin := te.client(t, te.keysFor(t, "admin", "admin"))
	bob := te.client(t, te.keysFor(t, "bob", "team-b"))
	img := te.uploadImage(t, "admin", "uploaded.qcow2")

	// The uploaded image is an AMI; registering names it.
	var reg struct {
		ImageID string `xml:"imageId"`
	}
	admin.must("RegisterImage", url.Values{"ImageLocation": {"cloudmux/" + img.ID}, "Name": {"web-image"}, "Description": {"from the test"}}, &reg)
	var imgs struct {
		Items []struct {
			ID    string `xml:"imageId"`
			Name  string `xml:"name"`
			State string `xml:"imageState"`
			Owner string `xml:"imageOwnerId"`
		} `xml:"imagesSet>item"`
	}
	admin.must("DescribeImages", url.Values{"Owner.1": {"self"}}, &imgs)
	if len(imgs.Items) != 1 || imgs.Items[0].ID != reg.ImageID || imgs.Items[0].Name != "web-image" || imgs.Items[0].State != "available" {
		t.Fatalf("images = %+v; want %s named web-image", imgs, reg.ImageID)
	}
	imgs.Items = nil
	bob.must("DescribeImages", nil, &imgs)
	if len(imgs.Items) != 0 {
		t.Fatalf("bob sees the private image: %+v", imgs)
	}
	wantCode(t, bob.do("DescribeImages", url.Values{"ImageId.1": {reg.ImageID}}, nil), "InvalidAMIID.NotFound")

	public := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ8hcY4pYWVuXmjrwD59bRUptCSy8JWm4ogrBG1bCHB test@example"
	admin.must("ImportKeyPair", url.Values{"KeyName": {"k1"}, "PublicKeyMaterial": {encodeB64(public)}}, nil)

	refusals := []struct {
		name   string
		params url.Values
		code   string
	}{
		{"unknown image", url.Values{"ImageId": {"ami-0123456789abcdef0"}}, "InvalidAMIID.NotFound"},
		{"malformed image", url.Values{"ImageId": {"ami-zz"}}, "InvalidParameterValue"},
		{"unknown instance type", url.Values{"ImageId": {reg.ImageID}, "InstanceType": {"x9.huge"}}, "InvalidParameterValue"},
		{"unknown key", url.Values{"ImageId": {reg.ImageID}, "KeyName": {"nope"}}, "InvalidKeyPair.NotFound"},
		{"unknown zone", url.Values{"ImageId": {reg.ImageID}, "Placement.AvailabilityZone": {"gamma"}}, "InvalidParameterValue"},
		{"counts", url.Values{"ImageId": {reg.ImageID}, "MinCount": {"3"}, "MaxCount": {"2"}}, "InvalidParameterValue"},
		{"user data", url.Values{"ImageId": {reg.ImageID}, "UserData": {"%%%"}}, "InvalidParameterValue"},
		{"no image", nil, "MissingParameter"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			admin.t = t
			wantCode(t, admin.do("RunInstances", tc.params, nil), tc.code)
		})
	}
	admin.t = t

	var run struct {
		ReservationID string     `xml:"reservationId"`
		Instances     []instance `xml:"instancesSet>item"`
	}
	admin.must("RunInstances", url.Values{"ImageId": {reg.ImageID}, "InstanceType": {"t2.micro"}, "MinCount": {"2"}, "MaxCount": {"2"},
		"KeyName": {"k1"}, "UserData": {encodeB64("#!/bin/sh\necho hi\n")}, "Placement.AvailabilityZone": {img.PeerName},
		"TagSpecification.1.ResourceType": {"instance"}, "TagSpecification.1.Tag.1.Key": {"Name"}, "TagSpecification.1.Tag.1.Value": {"web"}}, &run)
	if len(run.Instances) != 2 || !strings.HasPrefix(run.ReservationID, "r-") {
		t.Fatalf("run = %+v", run)
	}
	ids := []string{run.Instances[0].ID, run.Instances[1].ID}
	for i, it := range run.Instances {
		if !strings.HasPrefix(it.ID, "i-") || len(it.ID) != 19 || it.State != "pending" || it.ImageID != reg.ImageID ||
			it.Type != "m1.tiny" || it.Zone != img.PeerName || it.KeyName != "k1" || it.LaunchIndex != i || len(it.Tags) != 1 {
			t.Fatalf("launched %d = %+v", i, it)
		}
	}
	admin.waitState(ctx, "running", ids...)

	// Nova's side shows the same servers.
	caller := compute.Caller{Project: te.Boot.Project.ID, User: te.Boot.User.ID, Admin: true}
	page, err := te.servers.List(ctx, caller, compute.Query{})
	if err != nil || len(page.Servers) != 2 {
		t.Fatalf("nova list = %+v, %v", page, err)
	}
	for _, srv := range page.Servers {
		if srv.Name != "web" || srv.KeyName != "k1" || srv.ImageID != img.ID || srv.Zone != img.PeerName || srv.FlavorName != "m1.tiny" {
			t.Fatalf("nova shows %+v", srv)
		}
	}
	// And a server booted through Nova is an instance, by its UUID too.
	novaSrv, err := te.servers.Create(ctx, caller, compute.CreateSpec{Name: "from-nova", FlavorRef: "m1.nano", ImageRef: img.ID, AvailabilityZone: img.PeerName})
	if err != nil {
		t.Fatal(err)
	}
	got := admin.describe(url.Values{"InstanceId.1": {novaSrv.ID}})
	if len(got) != 1 || !strings.HasPrefix(got[0].ID, "i-") || got[0].Type != "m1.nano" {
		t.Fatalf("nova's server through EC2 = %+v", got)
	}
	novaID := got[0].ID
	if all := admin.describe(nil); len(all) != 3 {
		t.Fatalf("all instances = %+v", all)
	}
	if web := admin.describe(url.Values{"Filter.1.Name": {"tag:Name"}, "Filter.1.Value.1": {"web"},
		"Filter.2.Name": {"instance-state-name"}, "Filter.2.Value.1": {"running"}}); len(web) != 2 {
		t.Fatalf("filtered = %+v", web)
	}

	var status struct {
		Items []struct {
			ID     string `xml:"instanceId"`
			State  string `xml:"instanceState>name"`
			System string `xml:"systemStatus>status"`
		} `xml:"instanceStatusSet>item"`
	}
	admin.must("DescribeInstanceStatus", url.Values{"InstanceId.1": {ids[0]}}, &status)
	if len(status.Items) != 1 || status.Items[0].ID != ids[0] || status.Items[0].System != "ok" {
		t.Fatalf("instance status = %+v", status)
	}
	var types struct {
		Items []struct {
			Name   string `xml:"instanceType"`
			VCPUs  int    `xml:"vCpuInfo>defaultVCpus"`
			Memory int    `xml:"memoryInfo>sizeInMiB"`
		} `xml:"instanceTypeSet>item"`
	}
	admin.must("DescribeInstanceTypes", url.Values{"InstanceType.1": {"t2.micro"}, "InstanceType.2": {"m1.small"}}, &types)
	if len(types.Items) != 2 || types.Items[1].Name != "t2.micro" || types.Items[1].Memory != 512 || types.Items[0].Memory != 2048 {
		t.Fatalf("instance types = %+v", types)
	}

	// A Name tag renames the server for Nova too.
	admin.must("CreateTags", url.Values{"ResourceId.1": {ids[1]}, "Tag.1.Key": {"Name"}, "Tag.1.Value": {"web-renamed"}}, nil)
	if page, err := te.servers.List(ctx, caller, compute.Query{Name: "^web-renamed$"}); err != nil || len(page.Servers) != 1 {
		t.Fatalf("renamed through the Name tag: %+v, %v", page, err)
	}

	// The second project sees none of them and cannot touch them.
	if seen := bob.describe(nil); len(seen) != 0 {
		t.Fatalf("bob sees %+v", seen)
	}
	for _, action := range []string{"DescribeInstances", "StopInstances", "TerminateInstances", "RebootInstances"} {
		wantCode(t, bob.do(action, url.Values{"InstanceId.1": {ids[0]}}, nil), "InvalidInstanceID.NotFound")
	}

	// Volumes attach to instances on their peer.
	var vol struct {
		ID string `xml:"volumeId"`
	}
	admin.must("CreateVolume", url.Values{"Size": {"1"}, "AvailabilityZone": {img.PeerName}}, &vol)
	admin.must("AttachVolume", url.Values{"VolumeId": {vol.ID}, "InstanceId": {ids[0]}, "Device": {"/dev/vdb"}}, nil)
	for {
		if it := admin.describe(url.Values{"InstanceId.1": {ids[0]}}); len(it) == 1 && len(it[0].Volumes) == 1 && it[0].Volumes[0] == vol.ID {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("the volume never showed as attached")
		case <-time.After(20 * time.Millisecond):
		}
	}
	wantCode(t, admin.do("DeleteVolume", url.Values{"VolumeId": {vol.ID}}, nil), "VolumeInUse")
	admin.must("DetachVolume", url.Values{"VolumeId": {vol.ID}}, nil)

	// Power actions.
	var changes struct {
		Items []struct {
			ID       string `xml:"instanceId"`
			Current  string `xml:"currentState>name"`
			Previous string `xml:"previousState>name"`
		} `xml:"instancesSet>item"`
	}
	admin.must("StopInstances", url.Values{"InstanceId.1": {ids[0]}}, &changes)
	if len(changes.Items) != 1 || changes.Items[0].Current != "stopping" || changes.Items[0].Previous != "running" {
		t.Fatalf("stop = %+v", changes)
	}
	admin.waitState(ctx, "stopped", ids[0])
	changes.Items = nil
	admin.must("StopInstances", url.Values{"InstanceId.1": {ids[0]}}, &changes) // idempotent
	if changes.Items[0].Current != "stopped" {
		t.Fatalf("second stop = %+v", changes)
	}
	admin.must("StartInstances", url.Values{"InstanceId.1": {ids[0]}}, nil)
	admin.waitState(ctx, "running", ids[0])
	admin.must("RebootInstances", url.Values{"InstanceId.1": {ids[1]}}, nil)
	// Hibernation is Nova's suspend; a start resumes the saved guest.
	wantCode(t, admin.do("StopInstances", url.Values{"InstanceId.1": {ids[0]}, "Hibernate": {"maybe"}}, nil), "InvalidParameterValue")
	changes.Items = nil
	admin.must("StopInstances", url.Values{"InstanceId.1": {ids[0]}, "Hibernate": {"true"}}, &changes)
	if len(changes.Items) != 1 || changes.Items[0].Current != "stopping" || changes.Items[0].Previous != "running" {
		t.Fatalf("hibernate = %+v", changes)
	}
	admin.waitState(ctx, "stopped", ids[0])
	if page, err := te.servers.List(ctx, caller, compute.Query{Status: "SUSPENDED"}); err != nil || len(page.Servers) != 1 {
		t.Fatalf("suspended servers after a hibernate = %+v, %v; want the one", page.Servers, err)
	}
	admin.must("StartInstances", url.Values{"InstanceId.1": {ids[0]}}, nil)
	admin.waitState(ctx, "running", ids[0])

	changes.Items = nil
	admin.must("TerminateInstances", url.Values{"InstanceId.1": {ids[0]}, "InstanceId.2": {ids[1]}, "InstanceId.3": {novaID}}, &changes)
	if len(changes.Items) != 3 || changes.Items[0].Current != "shutting-down" {
		t.Fatalf("terminate = %+v", changes)
	}
	admin.waitState(ctx, "terminated", ids[0], ids[1], novaID)
	if _, err := te.servers.Get(ctx, caller, novaSrv.ID); !errors.Is(err, compute.ErrNotFound) {
		t.Fatalf("nova still has the terminated server: %v", err)
	}
	wantCode(t, admin.do("StartInstances", url.Values{"InstanceId.1": {ids[0]}}, nil), "InvalidInstanceID.NotFound")
	admin.must("DeleteVolume", url.Values{"VolumeId": {vol.ID}}, nil)

	admin.must("DeregisterImage", url.Values{"ImageId": {reg.ImageID}}, nil)
	wantCode(t, admin.do("DescribeImages", url.Values{"ImageId.1": {reg.ImageID}}, nil), "InvalidAMIID.NotFound")
}
