package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// guideHOT is the single-instance template of Heat's template guide,
// unchanged (its parameters given on the command line).
const guideHOT = `heat_template_version: 2015-04-30

description: Simple template to deploy a single compute instance

parameters:
  key_name:
    type: string
    label: Key Name
    description: Name of key-pair to be used for compute instance
  image_id:
    type: string
    label: Image ID
    description: Image to be used for compute instance
  instance_type:
    type: string
    label: Instance Type
    description: Type of instance (flavor) to be used

resources:
  my_instance:
    type: OS::Nova::Server
    properties:
      key_name: { get_param: key_name }
      image: { get_param: image_id }
      flavor: { get_param: instance_type }
`

// webHOT has a network, a server with user data from a file (get_file,
// which heatclient sends in files) and an output; its flavor comes from
// an environment file.
const webHOT = `heat_template_version: 2018-08-31
description: A web server on its own network
parameters:
  flavor: {type: string, default: m1.nano}
resources:
  net:
    type: OS::Neutron::Net
  sub:
    type: OS::Neutron::Subnet
    properties: {network_id: {get_resource: net}, cidr: 10.70.0.0/24}
  web:
    type: OS::Nova::Server
    depends_on: sub
    properties:
      flavor: {get_param: flavor}
      image: cirros-0.6-x86_64-disk
      networks: [{network: {get_resource: net}}]
      user_data: {get_file: boot.sh}
      user_data_format: RAW
outputs:
  ip:
    description: the server's address
    value: {get_attr: [web, first_address]}
`

// TestOpenStackCLIStacks drives python3-heatclient's `openstack stack`
// commands against serve -dev.
func TestOpenStackCLIStacks(t *testing.T) {
	if testing.Short() {
		t.Skip("installs and runs the openstack CLI")
	}
	b := startDev(t)
	dir := t.TempDir()
	files := map[string]string{"guide.yaml": guideHOT, "web.yaml": webHOT, "boot.sh": "#!/bin/sh\necho hello\n",
		"env.yaml": "parameters:\n  flavor: m1.tiny\n",
		"bad.yaml": "heat_template_version: 2018-08-31\nresources:\n  r: {type: OS::Neutron::Router}\n"}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := func(name string) string { return filepath.Join(dir, name) }
	steps := []struct {
		name     string
		args     []string
		wantCode int
		want     []string
	}{
		{"catalog lists orchestration", []string{"catalog", "list", "-f", "value", "-c", "Type"}, 0, []string{"orchestration"}},
		{"template validate", []string{"orchestration", "template", "validate", "-t", path("web.yaml")}, 0, []string{"A web server on its own network", "flavor"}},
		{"template validate refuses an unknown type", []string{"orchestration", "template", "validate", "-t", path("bad.yaml")}, 1, []string{"unsupported HOT resource type", "OS::Neutron::Router"}},
		{"keypair for the guide", []string{"keypair", "create", "my_key"}, 0, []string{"PRIVATE KEY"}},
		{"create the guide's template", []string{"stack", "create", "-t", path("guide.yaml"), "--parameter", "key_name=my_key",
			"--parameter", "image_id=cirros-0.6-x86_64-disk", "--parameter", "instance_type=m1.tiny", "--wait", "guide"}, 0,
			[]string{"CREATE_COMPLETE", "[guide.my_instance]: CREATE_COMPLETE"}},
		{"create with files and an environment", []string{"stack", "create", "-t", path("web.yaml"), "-e", path("env.yaml"), "--wait", "web"}, 0,
			[]string{"[web]: CREATE_COMPLETE", "Stack CREATE completed successfully"}},
		{"list", []string{"stack", "list", "-f", "value", "-c", "Stack Name", "-c", "Stack Status"}, 0, []string{"guide CREATE_COMPLETE", "web CREATE_COMPLETE"}},
		{"show", []string{"stack", "show", "web", "-f", "value", "-c", "parameters"}, 0, []string{`"flavor": "m1.tiny"`}},
		{"output show", []string{"stack", "output", "show", "web", "ip", "-f", "value", "-c", "output_value"}, 0, []string{"10.70.0."}},
		{"resource list", []string{"stack", "resource", "list", "web", "-f", "value", "-c", "resource_name", "-c", "resource_type", "-c", "resource_status"}, 0,
			[]string{"net OS::Neutron::Net CREATE_COMPLETE", "web OS::Nova::Server CREATE_COMPLETE"}},
		{"event list", []string{"stack", "event", "list", "web"}, 0, []string{"[web]: CREATE_IN_PROGRESS", "[web.sub]: CREATE_COMPLETE", "[web]: CREATE_COMPLETE"}},
		{"update with --existing", []string{"stack", "update", "--existing", "--parameter", "flavor=m1.small", "--wait", "web"}, 0, []string{"UPDATE_COMPLETE"}},
		{"update shows the new parameter", []string{"stack", "show", "web", "-f", "value", "-c", "parameters"}, 0, []string{`"flavor": "m1.small"`}},
		{"duplicate name", []string{"stack", "create", "-t", path("guide.yaml"), "guide"}, 1, []string{"already exists"}},
		// What --wait prints depends on how soon the stack is gone (its
		// events are read by name, not found once it is deleted); the
		// next step checks the outcome.
		{"delete", []string{"stack", "delete", "--yes", "--wait", "web"}, 0, nil},
		{"deleted is gone", []string{"stack", "show", "web"}, 1, []string{"not found"}},
		{"delete the guide's", []string{"stack", "delete", "--yes", "--wait", "guide"}, 0, nil},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			out, code := osc(t, b, nil, st.args...)
			if code != st.wantCode {
				t.Fatalf("openstack %v: exit %d, want %d\n%s", st.args, code, st.wantCode, out)
			}
			for _, w := range st.want {
				if !strings.Contains(out, w) {
					t.Errorf("openstack %v: output lacks %q:\n%s", st.args, w, out)
				}
			}
		})
	}
}
