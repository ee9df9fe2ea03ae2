package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestEC2EndpointFromCatalog: the catalog lists the EC2 API (type ec2),
// `cloudmux ec2 endpoint` prints it from there, and Debian's aws CLI
// (2.9, which predates AWS_ENDPOINT_URL_EC2) reaches the API at it.
func TestEC2EndpointFromCatalog(t *testing.T) {
	b := startDev(t)
	out, errOut, code := b.cli(t, nil, "ec2", "endpoint")
	if code != 0 || strings.TrimSpace(out) != b.addr+"/ec2/" {
		t.Fatalf("ec2 endpoint: exit %d: %q %s, want %s/ec2/", code, out, errOut, b.addr)
	}
	env, errOut, code := b.cli(t, nil, "ec2", "endpoint", "-o", "env")
	if code != 0 || strings.TrimSpace(env) != "export AWS_ENDPOINT_URL_EC2='"+b.addr+"/ec2/'" {
		t.Fatalf("ec2 endpoint -o env: exit %d: %q %s", code, env, errOut)
	}
	if _, _, code := b.cli(t, nil, "ec2", "endpoint", "-o", "yaml"); code != 2 {
		t.Errorf("a bad -o: exit %d, want 2", code)
	}
	if _, err := os.Stat("/usr/bin/aws"); err != nil {
		if os.Getenv("CLOUDMUX_REQUIRE_AWSCLI") == "1" {
			t.Fatal("/usr/bin/aws is missing and CLOUDMUX_REQUIRE_AWSCLI=1: run scripts/install-awscli.sh")
		}
		t.Skip("/usr/bin/aws is not installed (scripts/install-awscli.sh)")
	}
	keys := map[string]string{}
	creds, _, _ := b.cli(t, nil, "ec2", "credentials", "create", "-o", "env")
	for _, line := range strings.Split(creds, "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok {
			keys[k] = strings.Trim(v, "'")
		}
	}
	home := t.TempDir()
	cmd := exec.Command("/usr/bin/aws", "--endpoint-url", strings.TrimSpace(out), "--region", "RegionOne", "--output", "text",
		"ec2", "describe-availability-zones", "--query", "AvailabilityZones[].ZoneName")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "AWS_ACCESS_KEY_ID=" + keys["AWS_ACCESS_KEY_ID"],
		"AWS_SECRET_ACCESS_KEY=" + keys["AWS_SECRET_ACCESS_KEY"],
		"AWS_CONFIG_FILE=" + filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "credentials"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1"}
	raw, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(raw), "local") {
		t.Fatalf("aws ec2 describe-availability-zones at the catalog's endpoint %s: %v: %s", out, err, raw)
	}
}
