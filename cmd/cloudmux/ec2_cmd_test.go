package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudmux/cloudmux/internal/oscli"
)

// TestEC2Credentials drives `cloudmux ec2 credentials` against serve -dev,
// and, where the broker serves /ec2/, the real aws CLI with the keys.
func TestEC2Credentials(t *testing.T) {
	b := startDev(t)
	stdout, stderr, code := b.cli(t, nil, "ec2", "credentials", "create", "-o", "json")
	if code != 0 {
		t.Fatalf("create: exit %d: %s", code, stderr)
	}
	var cred ec2Credential
	if err := json.Unmarshal([]byte(stdout), &cred); err != nil || len(cred.Access) != 32 || cred.Secret == "" || cred.TenantID == "" {
		t.Fatalf("create = %q (%v)", stdout, err)
	}
	steps := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"list", []string{"ec2", "credentials", "list"}, 0, []string{"ACCESS", cred.Access, cred.TenantID}},
		{"create for a named project", []string{"ec2", "credentials", "create", "-project", "admin", "-o", "env"}, 0, []string{"export AWS_ACCESS_KEY_ID='", "export AWS_SECRET_ACCESS_KEY='"}},
		{"a project without a role", []string{"ec2", "credentials", "create", "-project", "nope"}, 1, []string{"no role on a project named"}},
		{"bad output", []string{"ec2", "credentials", "create", "-o", "yaml"}, 2, []string{"-o must be table, json or env"}},
		{"no subcommand", []string{"ec2"}, 2, []string{"cloudmux ec2 credentials create"}},
		{"delete", []string{"ec2", "credentials", "delete", cred.Access}, 0, nil},
		{"delete again", []string{"ec2", "credentials", "delete", cred.Access}, 1, []string{"404"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out, errOut, code := b.cli(t, nil, st.args...)
			if code != st.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, st.wantCode, out, errOut)
			}
			for _, w := range st.want {
				if !strings.Contains(out+errOut, w) {
					t.Fatalf("output lacks %q:\n%s%s", w, out, errOut)
				}
			}
		})
	}
	out, _, _ := b.cli(t, nil, "ec2", "credentials", "list", "-o", "json")
	var left []ec2Credential
	if err := json.Unmarshal([]byte(out), &left); err != nil || len(left) != 1 || left[0].Access == cred.Access {
		t.Fatalf("after delete: %q (%v)", out, err)
	}

	t.Run("openstack ec2 credentials", func(t *testing.T) {
		if testing.Short() {
			t.Skip("installs and runs the openstack CLI")
		}
		out, code := osc(t, b, nil, "ec2", "credentials", "create", "-f", "json")
		var made map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &made) != nil || made["access"] == nil || made["secret"] == nil {
			t.Fatalf("openstack ec2 credentials create: exit %d: %s", code, out)
		}
		access := made["access"].(string)
		if out, code := osc(t, b, nil, "ec2", "credentials", "list", "-f", "value", "-c", "Access"); code != 0 || !strings.Contains(out, access) {
			t.Fatalf("openstack ec2 credentials list: exit %d: %s", code, out)
		}
		if out, code := osc(t, b, nil, "ec2", "credentials", "show", access, "-f", "value", "-c", "secret"); code != 0 || strings.TrimSpace(out) != made["secret"] {
			t.Fatalf("openstack ec2 credentials show: exit %d: %s", code, out)
		}
		if out, code := osc(t, b, nil, "ec2", "credentials", "delete", access); code != 0 {
			t.Fatalf("openstack ec2 credentials delete: exit %d: %s", code, out)
		}
	})

	t.Run("aws CLI with the keys", func(t *testing.T) {
		resp, err := http.Get(b.addr + "/ec2/")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), "<Code>MissingAuthenticationToken</Code>") {
			t.Skip("this broker does not serve the EC2 API at /ec2/ yet")
		}
		if _, err := os.Stat("/usr/bin/aws"); err != nil {
			if os.Getenv("CLOUDMUX_REQUIRE_AWSCLI") == "1" {
				t.Fatal("/usr/bin/aws is missing and CLOUDMUX_REQUIRE_AWSCLI=1: run scripts/install-awscli.sh")
			}
			t.Skip("/usr/bin/aws is not installed (scripts/install-awscli.sh)")
		}
		out, _, _ := b.cli(t, nil, "ec2", "credentials", "create", "-o", "json")
		var keys ec2Credential
		if err := json.Unmarshal([]byte(out), &keys); err != nil {
			t.Fatal(err)
		}
		home := t.TempDir()
		cmd := exec.Command("/usr/bin/aws", "--endpoint-url", b.addr+"/ec2/", "--region", "RegionOne", "--output", "text",
			"ec2", "describe-availability-zones", "--query", "AvailabilityZones[].ZoneName")
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_ACCESS_KEY_ID=" + keys.Access,
			"AWS_SECRET_ACCESS_KEY=" + keys.Secret, "AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
			"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"), "AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER="}
		raw, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(raw), "local") {
			t.Fatalf("aws ec2 describe-availability-zones: %v: %s", err, raw)
		}
	})
}

// awsAt runs the real aws CLI against a broker's /ec2/ with keys.
func awsAt(t *testing.T, b *devBroker, keys ec2Credential, args ...string) (string, int) {
	t.Helper()
	home := t.TempDir()
	full := append([]string{"--endpoint-url", b.addr + "/ec2/", "--region", "RegionOne", "--output", "json", "ec2"}, args...)
	return oscli.Run(t, "/usr/bin/aws", []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_ACCESS_KEY_ID=" + keys.Access,
		"AWS_SECRET_ACCESS_KEY=" + keys.Secret, "AWS_CONFIG_FILE=" + filepath.Join(home, "config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"), "AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=", "AWS_MAX_ATTEMPTS=1"}, full...)
}

// TestAWSCLIAgainstServe is the EC2 workflow with the real aws CLI
// against serve -dev: upload (cloudmux ec2 upload) and register an image,
// run an instance, describe it until running, tag it, stop, start and
// terminate it; a forged signature and a second project are refused.
func TestAWSCLIAgainstServe(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the aws CLI")
	}
	b := startDev(t)
	resp, err := http.Get(b.addr + "/ec2/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "<Code>MissingAuthenticationToken</Code>") {
		t.Skip("this broker does not serve the EC2 API at /ec2/ yet")
	}
	if _, err := os.Stat("/usr/bin/aws"); err != nil {
		if os.Getenv("CLOUDMUX_REQUIRE_AWSCLI") == "1" {
			t.Fatal("/usr/bin/aws is missing and CLOUDMUX_REQUIRE_AWSCLI=1: run scripts/install-awscli.sh")
		}
		t.Skip("/usr/bin/aws is not installed (scripts/install-awscli.sh)")
	}
	keysOf := func(env []string) ec2Credential {
		out, errOut, code := b.cli(t, env, "ec2", "credentials", "create", "-o", "json")
		var k ec2Credential
		if code != 0 || json.Unmarshal([]byte(out), &k) != nil {
			t.Fatalf("ec2 credentials create: exit %d: %s%s", code, out, errOut)
		}
		return k
	}
	admin := keysOf(nil)
	ok := func(keys ec2Credential, out any, args ...string) {
		t.Helper()
		raw, code := awsAt(t, b, keys, args...)
		if code != 0 {
			t.Fatalf("aws ec2 %s: exit %d: %s", strings.Join(args, " "), code, raw)
		}
		if out != nil {
			if err := json.Unmarshal([]byte(raw), out); err != nil {
				t.Fatalf("aws ec2 %s: %v in %s", strings.Join(args, " "), err, raw)
			}
		}
	}
	fails := func(keys ec2Credential, code string, args ...string) {
		t.Helper()
		raw, exit := awsAt(t, b, keys, args...)
		if exit == 0 || !strings.Contains(raw, "("+code+")") {
			t.Fatalf("aws ec2 %s: exit %d: %s; want %s", strings.Join(args, " "), exit, raw, code)
		}
	}
	states := func(keys ec2Credential, ids ...string) map[string]string {
		t.Helper()
		var out struct {
			Reservations []struct {
				Instances []struct {
					InstanceID string `json:"InstanceId"`
					State      struct{ Name string }
				}
			}
		}
		ok(keys, &out, append([]string{"describe-instances"}, prefixed("--instance-ids", ids)...)...)
		got := map[string]string{}
		for _, r := range out.Reservations {
			for _, i := range r.Instances {
				got[i.InstanceID] = i.State.Name
			}
		}
		return got
	}
	waitFor := func(state, id string) {
		t.Helper()
		deadline := time.Now().Add(time.Minute)
		for states(admin, id)[id] != state {
			if time.Now().After(deadline) {
				t.Fatalf("instance %s never became %s: %v", id, state, states(admin, id))
			}
			time.Sleep(200 * time.Millisecond) // polling the peer's boot, not synchronising
		}
	}

	var zones struct{ AvailabilityZones []struct{ ZoneName string } }
	ok(admin, &zones, "describe-availability-zones")
	if len(zones.AvailabilityZones) != 1 || zones.AvailabilityZones[0].ZoneName != "local" {
		t.Fatalf("zones = %+v", zones)
	}

	// econe's upload, then register.
	file := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(file, []byte(strings.Repeat("raw disk bytes\n", 4096)), 0o600); err != nil {
		t.Fatal(err)
	}
	awsEnv := []string{"AWS_ACCESS_KEY_ID=" + admin.Access, "AWS_SECRET_ACCESS_KEY=" + admin.Secret}
	out, errOut, code := b.cli(t, awsEnv, "ec2", "upload", "-name", "uploaded.raw", file)
	location, _, _ := strings.Cut(strings.TrimPrefix(out, "IMAGE_LOCATION="), "\n")
	if code != 0 || !strings.HasPrefix(location, "cloudmux/") {
		t.Fatalf("ec2 upload: exit %d: %s%s", code, out, errOut)
	}
	var reg struct {
		ImageID string `json:"ImageId"`
	}
	ok(admin, &reg, "register-image", "--image-location", location, "--name", "econe-style")
	var images struct {
		Images []struct{ ImageID, Name, State string }
	}
	ok(admin, &images, "describe-images", "--image-ids", reg.ImageID)
	if len(images.Images) != 1 || images.Images[0].Name != "econe-style" || images.Images[0].State != "available" {
		t.Fatalf("describe-images = %+v", images)
	}

	var run struct {
		Instances []struct {
			InstanceID string `json:"InstanceId"`
		}
	}
	ok(admin, &run, "run-instances", "--image-id", reg.ImageID, "--instance-type", "m1.nano", "--count", "1",
		"--tag-specifications", "ResourceType=instance,Tags=[{Key=Name,Value=serve-web}]")
	if len(run.Instances) != 1 {
		t.Fatalf("run-instances = %+v", run)
	}
	id := run.Instances[0].InstanceID
	waitFor("running", id)
	ok(admin, nil, "create-tags", "--resources", id, "--tags", "Key=env,Value=dev")
	var tags struct{ Tags []struct{ Key, Value string } }
	ok(admin, &tags, "describe-tags", "--filters", "Name=resource-id,Values="+id, "Name=key,Values=env")
	if len(tags.Tags) != 1 || tags.Tags[0].Value != "dev" {
		t.Fatalf("describe-tags = %+v", tags)
	}
	ok(admin, nil, "stop-instances", "--instance-ids", id)
	waitFor("stopped", id)
	ok(admin, nil, "start-instances", "--instance-ids", id)
	waitFor("running", id)

	fails(ec2Credential{Access: admin.Access, Secret: "forged"}, "AuthFailure", "describe-instances")
	for _, args := range [][]string{
		{"project", "create", "team-ec2"},
		{"user", "create", "--password", "carol-password-1", "--project", "team-ec2", "carol"},
		{"role", "add", "--project", "team-ec2", "--user", "carol", "member"},
	} {
		if out, code := osc(t, b, nil, args...); code != 0 {
			t.Fatalf("openstack %v: exit %d: %s", args, code, out)
		}
	}
	login, errOut, code := b.cli(t, []string{"CLOUDMUX_PASSWORD=carol-password-1"}, "login", "-u", "carol")
	token := strings.TrimSpace(strings.TrimPrefix(login, "export CLOUDMUX_TOKEN="))
	if code != 0 || token == "" {
		t.Fatalf("login carol: exit %d: %s%s", code, login, errOut)
	}
	carol := keysOf([]string{"CLOUDMUX_TOKEN=" + token})
	if seen := states(carol); len(seen) != 0 {
		t.Fatalf("carol sees %v", seen)
	}
	fails(carol, "InvalidInstanceID.NotFound", "describe-instances", "--instance-ids", id)
	fails(carol, "InvalidInstanceID.NotFound", "terminate-instances", "--instance-ids", id)

	ok(admin, nil, "terminate-instances", "--instance-ids", id)
	waitFor("terminated", id)
}

func prefixed(flag string, vals []string) []string {
	if len(vals) == 0 {
		return nil
	}
	return append([]string{flag}, vals...)
}
