package ec2_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/broker/compute"
	"github.com/cloudmux/cloudmux/broker/ec2"
	"github.com/cloudmux/cloudmux/broker/identity"
	"github.com/cloudmux/cloudmux/internal/oscli"
)

// awsCLI is Debian's aws CLI (scripts/install-awscli.sh installs it).
const awsCLI = "/usr/bin/aws"

// awsRunner runs the real aws CLI against the broker's /ec2/ endpoint with
// one project's keys, in a clean environment (no config or credential
// files, no instance metadata lookups, no pager).
type awsRunner struct {
	t        *testing.T
	endpoint string
	keys     ec2.Keys
	home     string
}

func (a *awsRunner) run(args ...string) (stdout, stderr string, code int) {
	a.t.Helper()
	full := append([]string{"--endpoint-url", a.endpoint, "--region", identity.Region, "--output", "json", "ec2"}, args...)
	return oscli.RunSplit(a.t, awsCLI, []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + a.home, "LANG=C.UTF-8",
		"AWS_ACCESS_KEY_ID=" + a.keys.AccessKey, "AWS_SECRET_ACCESS_KEY=" + a.keys.SecretKey,
		"AWS_CONFIG_FILE=" + filepath.Join(a.home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(a.home, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
	}, full...)
}

// ok runs a command that must succeed and decodes its JSON output.
func (a *awsRunner) ok(out any, args ...string) {
	a.t.Helper()
	stdout, stderr, code := a.run(args...)
	if code != 0 {
		a.t.Fatalf("aws ec2 %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(stdout), out); err != nil {
			a.t.Fatalf("aws ec2 %s: %v in %q", strings.Join(args, " "), err, stdout)
		}
	}
}

// fails runs a command that must fail with an EC2 error code.
func (a *awsRunner) fails(code string, args ...string) {
	a.t.Helper()
	_, stderr, exit := a.run(args...)
	if exit == 0 || !strings.Contains(stderr, "("+code+")") {
		a.t.Fatalf("aws ec2 %s: exit %d, stderr %q; want a failure with %s", strings.Join(args, " "), exit, stderr, code)
	}
}

type cliInstances struct {
	Reservations []struct {
		Instances []struct {
			InstanceID string
			ImageID    string `json:"ImageId"`
			State      struct{ Name string }
			Placement  struct{ AvailabilityZone string }
			KeyName    string
			Tags       []struct{ Key, Value string }
		}
	}
}

func (c cliInstances) states() map[string]string {
	out := map[string]string{}
	for _, r := range c.Reservations {
		for _, i := range r.Instances {
			out[i.InstanceID] = i.State.Name
		}
	}
	return out
}

// waitCLI polls describe-instances until every instance is in state.
func (a *awsRunner) waitCLI(ctx context.Context, state string, ids ...string) {
	a.t.Helper()
	for {
		var got cliInstances
		a.ok(&got, append([]string{"describe-instances", "--instance-ids"}, ids...)...)
		states := got.states()
		done := len(states) == len(ids)
		for _, s := range states {
			done = done && s == state
		}
		if done {
			return
		}
		select {
		case <-ctx.Done():
			a.t.Fatalf("instances never became %s: %v", state, states)
		case <-time.After(100 * time.Millisecond): // polling a peer's boot, not synchronising
		}
	}
}

// TestAWSCLI drives the real aws CLI through the EC2 workflow: describe,
// register an uploaded image, run instances, wait for them, tag, stop,
// start, terminate; a bad signature and a second project are refused.
func TestAWSCLI(t *testing.T) {
	if _, err := os.Stat(awsCLI); err != nil {
		if os.Getenv("CLOUDMUX_REQUIRE_AWSCLI") == "1" {
			t.Fatalf("%s is missing and CLOUDMUX_REQUIRE_AWSCLI=1: run scripts/install-awscli.sh", awsCLI)
		}
		t.Skipf("%s is not installed (scripts/install-awscli.sh installs it; CLOUDMUX_REQUIRE_AWSCLI=1 makes this a failure)", awsCLI)
	}
	te := newTestEnv(t)
	// Not under te.Ctx (2 minutes): ~50 aws CLI runs on a loaded machine
	// may take longer, and the environment serves on regardless.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	te.Member(t, "bob", "team-b", identity.RoleMember)
	cli := &awsRunner{t: t, endpoint: te.Server.URL + "/ec2/", keys: te.keysFor(t, "admin", "admin"), home: t.TempDir()}
	bob := &awsRunner{t: t, endpoint: cli.endpoint, keys: te.keysFor(t, "bob", "team-b"), home: t.TempDir()}

	var zones struct {
		AvailabilityZones []struct{ ZoneName, State string }
	}
	cli.ok(&zones, "describe-availability-zones")
	if len(zones.AvailabilityZones) != 2 || zones.AvailabilityZones[0].ZoneName != "alpha" || zones.AvailabilityZones[0].State != "available" {
		t.Fatalf("zones = %+v", zones)
	}

	img := te.uploadImage(t, "admin", "cli-upload.raw")
	var reg struct {
		ImageID string `json:"ImageId"`
	}
	cli.ok(&reg, "register-image", "--image-location", "cloudmux/"+img.ID, "--name", "cli-image", "--description", "registered by the aws CLI")
	var images struct {
		Images []struct {
			ImageID string `json:"ImageId"`
			OwnerID string `json:"OwnerId"`
		}
	}
	cli.ok(&images, "describe-images", "--owners", "self")
	if len(images.Images) != 1 || images.Images[0].ImageID != reg.ImageID || images.Images[0].OwnerID != te.Boot.Project.ID {
		t.Fatalf("describe-images = %+v; want %s", images, reg.ImageID)
	}
	var named struct {
		Images []struct{ Name, State string }
	}
	cli.ok(&named, "describe-images", "--image-ids", reg.ImageID)
	if len(named.Images) != 1 || named.Images[0].Name != "cli-image" || named.Images[0].State != "available" {
		t.Fatalf("describe-images by ID = %+v", named)
	}

	var key struct{ KeyName, KeyMaterial string }
	cli.ok(&key, "create-key-pair", "--key-name", "cli-key")
	if !strings.Contains(key.KeyMaterial, "PRIVATE KEY") {
		t.Fatalf("create-key-pair = %+v", key)
	}

	var run struct {
		ReservationID string `json:"ReservationId"`
		Instances     []struct {
			InstanceID string `json:"InstanceId"`
		}
	}
	cli.ok(&run, "run-instances", "--image-id", reg.ImageID, "--instance-type", "t2.micro", "--count", "2",
		"--key-name", "cli-key", "--user-data", "#!/bin/sh\necho hello from ec2\n", "--placement", "AvailabilityZone="+img.PeerName,
		"--tag-specifications", "ResourceType=instance,Tags=[{Key=Name,Value=cli-web}]")
	if len(run.Instances) != 2 {
		t.Fatalf("run-instances = %+v", run)
	}
	ids := []string{run.Instances[0].InstanceID, run.Instances[1].InstanceID}
	cli.waitCLI(ctx, "running", ids...)

	// The same servers through the OpenStack side.
	page, err := te.servers.List(ctx, compute.Caller{Project: te.Boot.Project.ID, User: te.Boot.User.ID, Admin: true}, compute.Query{})
	if err != nil || len(page.Servers) != 2 || page.Servers[0].Name != "cli-web" || page.Servers[0].KeyName != "cli-key" {
		t.Fatalf("nova's servers = %+v, %v", page.Servers, err)
	}

	cli.ok(nil, "create-tags", "--resources", ids[0], "--tags", "Key=env,Value=test")
	var tags struct {
		Tags []struct{ ResourceID, ResourceType, Key, Value string }
	}
	cli.ok(&tags, "describe-tags", "--filters", "Name=resource-id,Values="+ids[0])
	if len(tags.Tags) != 2 || tags.Tags[0].Key != "Name" || tags.Tags[1].Key != "env" || tags.Tags[1].Value != "test" {
		t.Fatalf("describe-tags = %+v", tags)
	}
	var filtered cliInstances
	cli.ok(&filtered, "describe-instances", "--filters", "Name=tag:env,Values=test", "Name=instance-state-name,Values=running")
	if st := filtered.states(); len(st) != 1 || st[ids[0]] != "running" {
		t.Fatalf("filtered describe-instances = %v", st)
	}

	cli.ok(nil, "stop-instances", "--instance-ids", ids[0])
	cli.waitCLI(ctx, "stopped", ids[0])
	cli.ok(nil, "start-instances", "--instance-ids", ids[0])
	cli.waitCLI(ctx, "running", ids[0])
	var status struct {
		InstanceStatuses []struct {
			InstanceID    string `json:"InstanceId"`
			InstanceState struct{ Name string }
		}
	}
	cli.ok(&status, "describe-instance-status", "--instance-ids", ids[1])
	if len(status.InstanceStatuses) != 1 || status.InstanceStatuses[0].InstanceState.Name != "running" {
		t.Fatalf("describe-instance-status = %+v", status)
	}
	var types struct {
		InstanceTypes []struct {
			InstanceType string
			MemoryInfo   struct{ SizeInMiB int }
		}
	}
	cli.ok(&types, "describe-instance-types", "--instance-types", "t2.micro")
	if len(types.InstanceTypes) != 1 || types.InstanceTypes[0].MemoryInfo.SizeInMiB != 512 {
		t.Fatalf("describe-instance-types = %+v", types)
	}
	cli.ok(nil, "reboot-instances", "--instance-ids", ids[1])
	var console struct{ InstanceID, Output string }
	cli.ok(&console, "get-console-output", "--instance-id", ids[1])

	// Key pairs and volumes: every answer must parse in botocore.
	pub := filepath.Join(t.TempDir(), "id.pub")
	if err := os.WriteFile(pub, []byte("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBQ8hcY4pYWVuXmjrwD59bRUptCSy8JWm4ogrBG1bCHB cli@test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cli.ok(nil, "import-key-pair", "--key-name", "imported", "--public-key-material", "fileb://"+pub)
	var kps struct {
		KeyPairs []struct{ KeyName, KeyFingerprint, KeyPairID string }
	}
	cli.ok(&kps, "describe-key-pairs")
	if len(kps.KeyPairs) != 2 || kps.KeyPairs[0].KeyName != "cli-key" || kps.KeyPairs[1].KeyName != "imported" {
		t.Fatalf("describe-key-pairs = %+v", kps)
	}
	cli.ok(nil, "delete-key-pair", "--key-name", "imported")
	var vol struct{ VolumeID, State, AvailabilityZone string }
	cli.ok(&vol, "create-volume", "--size", "1", "--availability-zone", img.PeerName,
		"--tag-specifications", "ResourceType=volume,Tags=[{Key=Name,Value=cli-vol}]")
	if !strings.HasPrefix(vol.VolumeID, "vol-") || vol.AvailabilityZone != img.PeerName {
		t.Fatalf("create-volume = %+v", vol)
	}
	cli.ok(nil, "attach-volume", "--volume-id", vol.VolumeID, "--instance-id", ids[1], "--device", "/dev/vdb")
	for {
		var vols struct {
			Volumes []struct {
				State       string
				Attachments []struct{ InstanceID, State string }
			}
		}
		cli.ok(&vols, "describe-volumes", "--volume-ids", vol.VolumeID)
		if len(vols.Volumes) == 1 && vols.Volumes[0].State == "in-use" && len(vols.Volumes[0].Attachments) == 1 && vols.Volumes[0].Attachments[0].InstanceID == ids[1] {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the volume never showed attached: %+v", vols)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cli.ok(nil, "detach-volume", "--volume-id", vol.VolumeID)
	cli.ok(nil, "delete-tags", "--resources", vol.VolumeID, "--tags", "Key=Name")
	var sg struct {
		GroupID string `json:"GroupId"`
	}
	cli.ok(&sg, "create-security-group", "--group-name", "cli-web", "--description", "from the aws CLI")
	cli.ok(nil, "authorize-security-group-ingress", "--group-id", sg.GroupID, "--protocol", "tcp", "--port", "22", "--cidr", "0.0.0.0/0")
	var sgs struct {
		SecurityGroups []struct {
			GroupName     string
			IPPermissions []struct {
				IPProtocol string `json:"IpProtocol"`
				FromPort   int
			} `json:"IpPermissions"`
		}
	}
	cli.ok(&sgs, "describe-security-groups", "--group-ids", sg.GroupID)
	if len(sgs.SecurityGroups) != 1 || len(sgs.SecurityGroups[0].IPPermissions) != 1 || sgs.SecurityGroups[0].IPPermissions[0].FromPort != 22 {
		t.Fatalf("describe-security-groups = %+v", sgs)
	}
	// An instance launched in the group: shown in it, the group kept.
	var inSG struct {
		Instances []struct {
			InstanceID     string                                `json:"InstanceId"`
			SecurityGroups []struct{ GroupID, GroupName string } `json:"SecurityGroups"`
		}
	}
	cli.ok(&inSG, "run-instances", "--image-id", reg.ImageID, "--instance-type", "t2.micro", "--security-group-ids", sg.GroupID)
	if len(inSG.Instances) != 1 || len(inSG.Instances[0].SecurityGroups) != 1 || inSG.Instances[0].SecurityGroups[0].GroupName != "cli-web" {
		t.Fatalf("run-instances --security-group-ids = %+v", inSG)
	}
	sgInstance := inSG.Instances[0].InstanceID
	cli.waitCLI(ctx, "running", sgInstance)
	cli.fails("DependencyViolation", "delete-security-group", "--group-id", sg.GroupID)
	cli.ok(nil, "terminate-instances", "--instance-ids", sgInstance)
	cli.waitCLI(ctx, "terminated", sgInstance)
	cli.ok(nil, "revoke-security-group-ingress", "--group-id", sg.GroupID, "--protocol", "tcp", "--port", "22", "--cidr", "0.0.0.0/0")
	cli.ok(nil, "delete-security-group", "--group-id", sg.GroupID)
	cli.ok(nil, "describe-vpcs")
	cli.ok(nil, "describe-subnets")

	var attrs struct {
		AccountAttributes []struct {
			AttributeName   string
			AttributeValues []struct{ AttributeValue string }
		}
	}
	cli.ok(&attrs, "describe-account-attributes", "--attribute-names", "supported-platforms")
	if len(attrs.AccountAttributes) != 1 || attrs.AccountAttributes[0].AttributeValues[0].AttributeValue != "VPC" {
		t.Fatalf("describe-account-attributes = %+v", attrs)
	}

	var regions struct {
		Regions []struct{ RegionName, Endpoint string }
	}
	cli.ok(&regions, "describe-regions")
	if len(regions.Regions) != 1 || regions.Regions[0].RegionName != identity.Region {
		t.Fatalf("describe-regions = %+v", regions)
	}

	// Refusals: a wrong secret, and another project's keys.
	forged := &awsRunner{t: t, endpoint: cli.endpoint, keys: ec2.Keys{AccessKey: cli.keys.AccessKey, SecretKey: "forged-secret"}, home: t.TempDir()}
	forged.fails("AuthFailure", "describe-instances")
	var none cliInstances
	bob.ok(&none, "describe-instances")
	if len(none.states()) != 0 {
		t.Fatalf("bob sees %v", none.states())
	}
	bob.fails("InvalidInstanceID.NotFound", "describe-instances", "--instance-ids", ids[0])
	bob.fails("InvalidInstanceID.NotFound", "terminate-instances", "--instance-ids", ids[0])

	cli.ok(nil, append([]string{"terminate-instances", "--instance-ids"}, ids...)...)
	cli.waitCLI(ctx, "terminated", ids...)
	for {
		var vols struct{ Volumes []struct{ State string } }
		cli.ok(&vols, "describe-volumes", "--volume-ids", vol.VolumeID)
		if len(vols.Volumes) == 1 && vols.Volumes[0].State == "available" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the volume never came back available: %+v", vols)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cli.ok(nil, "delete-volume", "--volume-id", vol.VolumeID)
	cli.ok(nil, "deregister-image", "--image-id", reg.ImageID)
	cli.fails("InvalidAMIID.NotFound", "describe-images", "--image-ids", reg.ImageID)
}
