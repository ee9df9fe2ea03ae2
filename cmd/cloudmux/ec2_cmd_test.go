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
