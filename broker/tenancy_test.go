package broker_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// openstackProbes are B's requests against A's resources through Nova,
// Glance, Neutron and Cinder.
func openstackProbes(te *tenancyEnv, a aResources) []probe {
	const nova, glance, neutron, cinder = "/compute/v2.1", "/image/v2", "/network/v2.0", "/volume/v3"
	srv, img, net, sn, port, sg, rule, vol := a.server, a.image, a.network, a.subnet, a.port, a.group, a.rule, a.volume
	bSrv := a.bServer.id
	kp := owned{kind: "keypair", id: a.keypair}
	ps := []probe{
		// Nova: servers, their actions, metadata, interfaces, attachments.
		{"show server", srv, "GET", nova + "/servers/{X}", "", 404},
		{"rename server", srv, "PUT", nova + "/servers/{X}", `{"server": {"name": "b-was-here"}}`, 404},
		{"delete server", srv, "DELETE", nova + "/servers/{X}", "", 404},
		{"stop server", srv, "POST", nova + "/servers/{X}/action", `{"os-stop": null}`, 404},
		{"start server", srv, "POST", nova + "/servers/{X}/action", `{"os-start": null}`, 404},
		{"reboot server", srv, "POST", nova + "/servers/{X}/action", `{"reboot": {"type": "HARD"}}`, 404},
		{"console output", srv, "POST", nova + "/servers/{X}/action", `{"os-getConsoleOutput": {}}`, 404},
		{"server ips", srv, "GET", nova + "/servers/{X}/ips", "", 404},
		{"server interfaces", srv, "GET", nova + "/servers/{X}/os-interface", "", 404},
		{"server's interface", srv, "GET", nova + "/servers/{X}/os-interface/" + port.id, "", 404},
		{"A's port as B's server's interface", port, "GET", nova + "/servers/" + bSrv + "/os-interface/{X}", "", 404},
		{"server metadata", srv, "GET", nova + "/servers/{X}/metadata", "", 404},
		{"replace metadata", srv, "PUT", nova + "/servers/{X}/metadata", `{"metadata": {"owner": "b"}}`, 404},
		{"add metadata", srv, "POST", nova + "/servers/{X}/metadata", `{"metadata": {"b": "b"}}`, 404},
		{"metadata item", srv, "GET", nova + "/servers/{X}/metadata/owner", "", 404},
		{"set metadata item", srv, "PUT", nova + "/servers/{X}/metadata/owner", `{"meta": {"owner": "b"}}`, 404},
		{"delete metadata item", srv, "DELETE", nova + "/servers/{X}/metadata/owner", "", 404},
		{"volume attachments", srv, "GET", nova + "/servers/{X}/os-volume_attachments", "", 404},
		{"attachment", srv, "GET", nova + "/servers/{X}/os-volume_attachments/" + vol.id, "", 404},
		{"detach", srv, "DELETE", nova + "/servers/{X}/os-volume_attachments/" + vol.id, "", 404},
		{"attach to A's server", srv, "POST", nova + "/servers/{X}/os-volume_attachments", `{"volumeAttachment": {"volumeId": "` + a.bVolume.id + `"}}`, 404},
		{"attach A's volume", vol, "POST", nova + "/servers/" + bSrv + "/os-volume_attachments", `{"volumeAttachment": {"volumeId": "{X}"}}`, 404},
		{"A's volume as B's attachment", vol, "GET", nova + "/servers/" + bSrv + "/os-volume_attachments/{X}", "", 404},
		{"boot from A's image", img, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "imageRef": "{X}", "networks": "none"}}`, 400},
		{"boot on A's network", net, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "imageRef": "` + te.seeded.ImageID + `", "networks": [{"uuid": "{X}"}]}}`, 400},
		{"boot with A's port", port, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "imageRef": "` + te.seeded.ImageID + `", "networks": [{"port": "{X}"}]}}`, 400},
		{"boot from A's volume", vol, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "networks": "none", "block_device_mapping_v2": [{"boot_index": 0, "uuid": "{X}", "source_type": "volume", "destination_type": "volume"}]}}`, 400},
		{"boot in A's group", sg, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "imageRef": "` + te.seeded.ImageID + `", "networks": "none", "security_groups": [{"name": "{X}"}]}}`, 400},
		{"boot with A's keypair", kp, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "imageRef": "` + te.seeded.ImageID + `", "networks": "none", "key_name": "{X}"}}`, 400},
		{"show keypair", kp, "GET", nova + "/os-keypairs/{X}", "", 404},
		{"delete keypair", kp, "DELETE", nova + "/os-keypairs/{X}", "", 404},
		{"list servers by name", srv, "GET", nova + "/servers/detail?name={X}", "", 200},
		// Glance.
		{"show image", img, "GET", glance + "/images/{X}", "", 404},
		{"update image", img, "PATCH", glance + "/images/{X}", `[{"op": "replace", "path": "/name", "value": "b-was-here"}]`, 404},
		{"delete image", img, "DELETE", glance + "/images/{X}", "", 404},
		{"download image", img, "GET", glance + "/images/{X}/file", "", 404},
		{"head image file", img, "HEAD", glance + "/images/{X}/file", "", 404},
		{"upload image", img, "PUT", glance + "/images/{X}/file", "BBBB", 404},
		{"add tag", img, "PUT", glance + "/images/{X}/tags/b-tag", "", 404},
		{"remove tag", img, "DELETE", glance + "/images/{X}/tags/a-tag", "", 404},
		{"deactivate", img, "POST", glance + "/images/{X}/actions/deactivate", "", 403},
		{"reactivate", img, "POST", glance + "/images/{X}/actions/reactivate", "", 403},
		{"list images by name", img, "GET", glance + "/images?name={X}", "", 200},
		{"list images by id", img, "GET", glance + "/images?id={X}", "", 200},
		// Neutron.
		{"show network", net, "GET", neutron + "/networks/{X}", "", 404},
		{"update network", net, "PUT", neutron + "/networks/{X}", `{"network": {"name": "b-was-here"}}`, 404},
		{"delete network", net, "DELETE", neutron + "/networks/{X}", "", 404},
		{"list networks by id", net, "GET", neutron + "/networks?id={X}", "", 200},
		{"list networks by name", net, "GET", neutron + "/networks?name={X}", "", 200},
		{"subnet on A's network", net, "POST", neutron + "/subnets", `{"subnet": {"network_id": "{X}", "cidr": "10.99.0.0/24", "ip_version": 4}}`, 404},
		{"port on A's network", net, "POST", neutron + "/ports", `{"port": {"network_id": "{X}"}}`, 404},
		{"show subnet", sn, "GET", neutron + "/subnets/{X}", "", 404},
		{"update subnet", sn, "PUT", neutron + "/subnets/{X}", `{"subnet": {"name": "b-was-here"}}`, 404},
		{"delete subnet", sn, "DELETE", neutron + "/subnets/{X}", "", 404},
		{"list subnets of A's network", net, "GET", neutron + "/subnets?network_id={X}", "", 200},
		{"port on A's subnet", sn, "POST", neutron + "/ports", `{"port": {"network_id": "` + a.bNetwork.id + `", "fixed_ips": [{"subnet_id": "{X}"}]}}`, 400},
		{"show port", port, "GET", neutron + "/ports/{X}", "", 404},
		{"update port", port, "PUT", neutron + "/ports/{X}", `{"port": {"name": "b-was-here"}}`, 404},
		{"delete port", port, "DELETE", neutron + "/ports/{X}", "", 404},
		{"show server's port", a.serverPort, "GET", neutron + "/ports/{X}", "", 404},
		{"update server's port", a.serverPort, "PUT", neutron + "/ports/{X}", `{"port": {"name": "b-was-here"}}`, 404},
		{"delete server's port", a.serverPort, "DELETE", neutron + "/ports/{X}", "", 404},
		{"boot with A's server's port", a.serverPort, "POST", nova + "/servers", `{"server": {"name": "b", "flavorRef": "1", "imageRef": "` + te.seeded.ImageID + `", "networks": [{"port": "{X}"}]}}`, 400},
		{"A's server's port as B's server's interface", a.serverPort, "GET", nova + "/servers/" + bSrv + "/os-interface/{X}", "", 404},
		{"list ports of A's network", net, "GET", neutron + "/ports?network_id={X}", "", 200},
		{"list ports of A's server", srv, "GET", neutron + "/ports?device_id={X}", "", 200},
		{"show group", sg, "GET", neutron + "/security-groups/{X}", "", 404},
		{"update group", sg, "PUT", neutron + "/security-groups/{X}", `{"security_group": {"name": "b-was-here"}}`, 404},
		{"delete group", sg, "DELETE", neutron + "/security-groups/{X}", "", 404},
		{"list groups by name", sg, "GET", neutron + "/security-groups?name={X}", "", 200},
		{"rule in A's group", sg, "POST", neutron + "/security-group-rules", `{"security_group_rule": {"security_group_id": "{X}", "direction": "ingress"}}`, 404},
		{"rule naming A's group", sg, "POST", neutron + "/security-group-rules", `{"security_group_rule": {"security_group_id": "` + a.bGroup.id + `", "direction": "ingress", "remote_group_id": "{X}"}}`, 404},
		{"port in A's group", sg, "POST", neutron + "/ports", `{"port": {"network_id": "` + a.bNetwork.id + `", "security_groups": ["{X}"]}}`, 404},
		{"show rule", rule, "GET", neutron + "/security-group-rules/{X}", "", 404},
		{"delete rule", rule, "DELETE", neutron + "/security-group-rules/{X}", "", 404},
		{"list rules of A's group", sg, "GET", neutron + "/security-group-rules?security_group_id={X}", "", 200},
		// Cinder, with and without the project in the path.
		{"show volume", vol, "GET", cinder + "/volumes/{X}", "", 404},
		{"show volume in B's path", vol, "GET", cinder + "/" + te.bProject + "/volumes/{X}", "", 404},
		{"delete volume", vol, "DELETE", cinder + "/volumes/{X}", "", 404},
		{"extend volume", vol, "POST", cinder + "/volumes/{X}/action", `{"os-extend": {"new_size": 2}}`, 404},
		{"update volume", vol, "PUT", cinder + "/volumes/{X}", `{"volume": {"name": "b-was-here"}}`, 404},
		{"volume metadata", vol, "GET", cinder + "/volumes/{X}/metadata", "", 404},
		{"add volume metadata", vol, "POST", cinder + "/volumes/{X}/metadata", `{"metadata": {"b": "b"}}`, 404},
		{"replace volume metadata", vol, "PUT", cinder + "/volumes/{X}/metadata", `{"metadata": {"b": "b"}}`, 404},
		{"delete volume metadata", vol, "DELETE", cinder + "/volumes/{X}/metadata/owner", "", 404},
		{"list volumes by name", vol, "GET", cinder + "/volumes/detail?name={X}", "", 200},
		{"volume from A's image", img, "POST", cinder + "/volumes", `{"volume": {"size": 1, "imageRef": "{X}"}}`, 400},
	}
	return ps
}

// TestCrossTenantMatrix: project B, a member of its own project with
// resources of its own, gets for every OpenStack, EC2 and /v1 policy
// endpoint the answer it gets for a resource that does not exist when it
// names one of A's, by broker ID, name, the peer's own ID and (for EC2)
// the EC2 ID, and A's resources are untouched afterwards.
// /v1 templates, bindings and deployments have their own matrix
// (templatesapi.TestCrossTenantMatrix).
func TestCrossTenantMatrix(t *testing.T) {
	te := newTenancyEnv(t)
	a := te.makeResources(t)
	before := te.aView(t, a)

	t.Run("openstack", func(t *testing.T) {
		for _, p := range openstackProbes(te, a) {
			t.Run(p.name, func(t *testing.T) { te.checkProbe(t, p) })
		}
	})
	t.Run("ec2", func(t *testing.T) {
		for _, p := range ec2Probes(a) {
			t.Run(p.name, func(t *testing.T) { te.checkEC2Probe(t, p) })
		}
	})
	t.Run("lists", func(t *testing.T) {
		te.checkLists(t, a)
	})
	t.Run("v1", func(t *testing.T) {
		te.checkV1(t, a)
	})
	t.Run("quotas", func(t *testing.T) {
		te.checkQuotas(t)
	})
	t.Run("swift", func(t *testing.T) {
		te.checkSwift(t)
	})
	t.Run("A's resources untouched", func(t *testing.T) {
		after := te.aView(t, a)
		for path, b := range before {
			if after[path] != b {
				t.Errorf("GET %s changed under B's requests:\nbefore %s\nafter  %s", path, b, after[path])
			}
		}
	})
}

// checkProbe sends p with each ID form of its target and with a lookalike
// that names nothing, and wants both answers the same, with status want.
func (te *tenancyEnv) checkProbe(t *testing.T, p probe) {
	forms := p.target.forms()
	delete(forms, "EC2 ID")
	for _, form := range slices.Sorted(mapsKeys(forms)) {
		x := forms[form]
		t.Run(form, func(t *testing.T) {
			absent := lookalike(x)
			fill := func(s, v string) string { return strings.ReplaceAll(s, "{X}", url.PathEscape(v)) }
			fillBody := func(s, v string) string { return strings.ReplaceAll(s, "{X}", v) }
			want := p.want
			if form == "name" && strings.Contains(p.body, "{X}") && strings.HasPrefix(p.path, "/network/") {
				want = http.StatusBadRequest // Neutron takes IDs in bodies, and says a name is not one
			}
			status, body := te.send(t, p.method, fill(p.path, x), te.bToken, fillBody(p.body, x))
			aStatus, aBody := te.send(t, p.method, fill(p.path, absent), te.bToken, fillBody(p.body, absent))
			if status != want {
				t.Errorf("%s %s = %d %s; want %d", p.method, fill(p.path, x), status, body, want)
			}
			if p.method == http.MethodGet && want == http.StatusNotFound && form == "broker ID" &&
				!slices.ContainsFunc(te.bIDs, func(b string) bool { return strings.Contains(p.path, b) }) {
				if own, body := te.send(t, p.method, fill(p.path, x), te.aToken, ""); own != http.StatusOK {
					t.Errorf("A's own %s %s = %d %s; want 200", p.method, fill(p.path, x), own, body)
				}
			}
			if status != aStatus || normal(body, x) != normal(aBody, absent) {
				t.Errorf("%s %s tells A's resource from none:\nA's:  %d %s\nnone: %d %s", p.method, p.path, status, body, aStatus, aBody)
			}
		})
	}
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// aView is what A reads of its resources, by path.
func (te *tenancyEnv) aView(t *testing.T, a aResources) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, path := range []string{
		"/compute/v2.1/servers/" + a.server.id + "/metadata",
		"/compute/v2.1/servers/" + a.server.id + "/os-volume_attachments",
		"/compute/v2.1/servers/" + a.server.id + "/os-interface",
		"/compute/v2.1/os-keypairs/" + a.keypair,
		"/image/v2/images/" + a.image.id,
		"/network/v2.0/networks/" + a.network.id,
		"/network/v2.0/subnets/" + a.subnet.id,
		"/network/v2.0/ports/" + a.port.id,
		"/network/v2.0/ports/" + a.serverPort.id,
		"/network/v2.0/security-groups/" + a.group.id,
		"/volume/v3/volumes/" + a.volume.id,
	} {
		status, body := te.send(t, http.MethodGet, path, te.aToken, "")
		if status != http.StatusOK {
			t.Fatalf("A's GET %s = %d %s", path, status, body)
		}
		out[path] = body
	}
	status, body := te.send(t, http.MethodGet, "/compute/v2.1/servers/"+a.server.id, te.aToken, "")
	if status != http.StatusOK || !strings.Contains(body, `"status":"ACTIVE"`) || !strings.Contains(body, `"name":"a-server"`) {
		t.Fatalf("A's server = %d %s; want it ACTIVE and named a-server", status, body)
	}
	status, body = te.send(t, http.MethodGet, "/image/v2/images/"+a.image.id+"/file", te.aToken, "")
	if status != http.StatusOK || body != strings.Repeat("A", 4096) {
		t.Fatalf("A's image data = %d (%d bytes)", status, len(body))
	}
	return out
}

// ec2Probe is one EC2 action B sends with X standing for an ID of A's.
type ec2Probe struct {
	name   string
	target owned
	action string
	params url.Values // values "{X}" are replaced
	want   int
}

func ec2Probes(a aResources) []ec2Probe {
	x := func(kv ...string) url.Values {
		out := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}
	srv, img, vol, net, sn, sg := a.server, a.image, a.volume, a.network, a.subnet, a.group
	return []ec2Probe{
		{"describe instances", srv, "DescribeInstances", x("InstanceId.1", "{X}"), 400},
		{"describe instance status", srv, "DescribeInstanceStatus", x("InstanceId.1", "{X}"), 400},
		{"console output", srv, "GetConsoleOutput", x("InstanceId", "{X}"), 400},
		{"start", srv, "StartInstances", x("InstanceId.1", "{X}"), 400},
		{"stop", srv, "StopInstances", x("InstanceId.1", "{X}"), 400},
		{"reboot", srv, "RebootInstances", x("InstanceId.1", "{X}"), 400},
		{"terminate", srv, "TerminateInstances", x("InstanceId.1", "{X}"), 400},
		{"tag instance", srv, "CreateTags", x("ResourceId.1", "{X}", "Tag.1.Key", "k", "Tag.1.Value", "v"), 400},
		{"untag instance", srv, "DeleteTags", x("ResourceId.1", "{X}", "Tag.1.Key", "k"), 400},
		{"describe images", img, "DescribeImages", x("ImageId.1", "{X}"), 400},
		{"deregister image", img, "DeregisterImage", x("ImageId", "{X}"), 400},
		{"run in A's group", sg, "RunInstances", x("ImageId", a.publicAMI, "MinCount", "1", "MaxCount", "1", "SecurityGroupId.1", "{X}"), 400},
		{"run A's image", img, "RunInstances", x("ImageId", "{X}", "MinCount", "1", "MaxCount", "1", "InstanceType", "m1.tiny"), 400},
		{"describe volumes", vol, "DescribeVolumes", x("VolumeId.1", "{X}"), 400},
		{"delete volume", vol, "DeleteVolume", x("VolumeId", "{X}"), 400},
		{"attach A's volume", vol, "AttachVolume", x("VolumeId", "{X}", "InstanceId", a.bServer.ec2ID, "Device", "/dev/vdb"), 400},
		{"attach to A's instance", srv, "AttachVolume", x("VolumeId", a.bVolume.ec2ID, "InstanceId", "{X}", "Device", "/dev/vdb"), 400},
		{"detach A's volume", vol, "DetachVolume", x("VolumeId", "{X}"), 400},
		{"describe vpcs", net, "DescribeVpcs", x("VpcId.1", "{X}"), 400},
		{"delete vpc", net, "DeleteVpc", x("VpcId", "{X}"), 400},
		{"subnet in A's vpc", net, "CreateSubnet", x("VpcId", "{X}", "CidrBlock", "10.98.0.0/24"), 400},
		{"describe subnets", sn, "DescribeSubnets", x("SubnetId.1", "{X}"), 400},
		{"delete subnet", sn, "DeleteSubnet", x("SubnetId", "{X}"), 400},
		{"describe groups", sg, "DescribeSecurityGroups", x("GroupId.1", "{X}"), 400},
		{"delete group", sg, "DeleteSecurityGroup", x("GroupId", "{X}"), 400},
		{"authorize ingress", sg, "AuthorizeSecurityGroupIngress", x("GroupId", "{X}", "IpProtocol", "tcp", "FromPort", "80", "ToPort", "80", "CidrIp", "0.0.0.0/0"), 400},
		{"revoke ingress", sg, "RevokeSecurityGroupIngress", x("GroupId", "{X}", "IpProtocol", "tcp", "FromPort", "22", "ToPort", "22", "CidrIp", "0.0.0.0/0"), 400},
		{"describe keypairs", owned{kind: "keypair", id: a.keypair}, "DescribeKeyPairs", x("KeyName.1", "{X}"), 400},
		{"delete keypair", owned{kind: "keypair", id: a.keypair}, "DeleteKeyPair", x("KeyName", "{X}"), 200},
		{"describe tags", srv, "DescribeTags", x("Filter.1.Name", "resource-id", "Filter.1.Value.1", "{X}"), 200},
	}
}

// checkEC2Probe sends p with each ID form of its target and a lookalike
// naming nothing: the answers must be the same, with status want.
func (te *tenancyEnv) checkEC2Probe(t *testing.T, p ec2Probe) {
	forms := p.target.forms()
	for _, form := range slices.Sorted(mapsKeys(forms)) {
		x := forms[form]
		t.Run(form, func(t *testing.T) {
			absent := lookalike(x)
			fill := func(v string) url.Values {
				out := url.Values{}
				for k, vs := range p.params {
					for _, s := range vs {
						out.Add(k, strings.ReplaceAll(s, "{X}", v))
					}
				}
				return out
			}
			status, body := te.ec2(t, te.bKeys, p.action, fill(x))
			aStatus, aBody := te.ec2(t, te.bKeys, p.action, fill(absent))
			if status != p.want {
				t.Errorf("%s with %s = %d %s; want %d", p.action, x, status, body, p.want)
			}
			if strings.HasPrefix(p.action, "Describe") && p.want != http.StatusOK && (form == "EC2 ID" || p.target.kind == "keypair") {
				if own, body := te.ec2(t, te.aKeys, p.action, fill(x)); own != http.StatusOK {
					t.Errorf("A's own %s with %s = %d %s; want 200", p.action, x, own, body)
				}
			}
			ec2Normal := func(body, probed string) string { return ec2IDs.ReplaceAllString(normal(body, probed), "{ec2-id}") }
			if status != aStatus || ec2Normal(body, x) != ec2Normal(aBody, absent) {
				t.Errorf("%s tells A's resource from none:\nA's:  %d %s\nnone: %d %s", p.action, status, body, aStatus, aBody)
			}
		})
	}
}

// checkLists: none of B's lists, through any API, names any of A's
// resources by any of their IDs or names.
func (te *tenancyEnv) checkLists(t *testing.T, a aResources) {
	var secrets []string
	for _, r := range []owned{a.server, a.image, a.network, a.subnet, a.port, a.serverPort, a.group, a.rule, a.volume, {id: a.keypair}} {
		for _, v := range r.forms() {
			secrets = append(secrets, v)
		}
	}
	leaks := func(t *testing.T, what, body string) {
		for _, sec := range secrets {
			if strings.Contains(body, sec) {
				t.Errorf("B's %s names A's %q: %s", what, sec, body)
			}
		}
	}
	for _, path := range []string{
		"/compute/v2.1/servers/detail", "/compute/v2.1/servers/detail?all_tenants=1", "/compute/v2.1/os-keypairs",
		"/image/v2/images", "/network/v2.0/networks", "/network/v2.0/subnets", "/network/v2.0/ports",
		"/network/v2.0/security-groups", "/network/v2.0/security-group-rules", "/volume/v3/volumes/detail",
		"/v1/decisions",
	} {
		t.Run(path, func(t *testing.T) {
			status, body := te.send(t, http.MethodGet, path, te.bToken, "")
			if status != http.StatusOK && status != http.StatusForbidden {
				t.Errorf("B's GET %s = %d %s", path, status, body)
			}
			leaks(t, path, body)
		})
	}
	for _, action := range []string{"DescribeInstances", "DescribeInstanceStatus", "DescribeImages", "DescribeVolumes", "DescribeVpcs",
		"DescribeSubnets", "DescribeSecurityGroups", "DescribeKeyPairs", "DescribeTags"} {
		t.Run(action, func(t *testing.T) {
			status, body := te.ec2(t, te.bKeys, action, nil)
			if status != http.StatusOK {
				t.Errorf("B's %s = %d %s", action, status, body)
			}
			leaks(t, action, body)
		})
	}
}

// checkV1: B's decisions about A's server are those about no server, and
// B may not explain placements for A's project.
func (te *tenancyEnv) checkV1(t *testing.T, a aResources) {
	status, body := te.send(t, http.MethodGet, "/v1/decisions?resource="+a.server.id, te.aToken, "")
	if status != http.StatusOK || !strings.Contains(body, a.server.id) {
		t.Fatalf("A's decisions about its server = %d %s; want the server's placement", status, body)
	}
	for form, x := range a.server.forms() {
		t.Run("decisions "+form, func(t *testing.T) {
			absent := lookalike(x)
			status, body := te.send(t, http.MethodGet, "/v1/decisions?resource="+url.QueryEscape(x), te.bToken, "")
			aStatus, aBody := te.send(t, http.MethodGet, "/v1/decisions?resource="+url.QueryEscape(absent), te.bToken, "")
			if status != http.StatusOK || status != aStatus || normal(body, x) != normal(aBody, absent) {
				t.Errorf("B's decisions about A's server: %d %s; about none: %d %s", status, body, aStatus, aBody)
			}
		})
	}
	t.Run("explain for A's project", func(t *testing.T) {
		req := func(project string) string {
			return `{"request": {"kind": "server", "project": "` + project + `", "flavor": "m1.tiny", "resources": {"vcpus": 1, "ram_mib": 512, "disk_gib": 1}}}`
		}
		absent := lookalike(te.aProject)
		status, body := te.send(t, http.MethodPost, "/v1/placement/explain", te.bToken, req(te.aProject))
		aStatus, aBody := te.send(t, http.MethodPost, "/v1/placement/explain", te.bToken, req(absent))
		if status != http.StatusForbidden || status != aStatus || normal(body, te.aProject) != normal(aBody, absent) {
			t.Errorf("B explaining for A's project: %d %s; for none: %d %s", status, body, aStatus, aBody)
		}
	})
}

// checkQuotas: B reads and changes neither A's quota nor its usage, by
// any quota API, and its own limits say nothing of A's usage.
func (te *tenancyEnv) checkQuotas(t *testing.T) {
	absent := lookalike(te.aProject)
	for _, p := range []struct{ name, method, path, body string }{
		{"nova quota set", "GET", "/compute/v2.1/os-quota-sets/{X}", ""},
		{"nova quota detail", "GET", "/compute/v2.1/os-quota-sets/{X}/detail", ""},
		{"nova quota update", "PUT", "/compute/v2.1/os-quota-sets/{X}", `{"quota_set": {"instances": 1000}}`},
		{"nova quota reset", "DELETE", "/compute/v2.1/os-quota-sets/{X}", ""},
		{"neutron quota", "GET", "/network/v2.0/quotas/{X}", ""},
		{"neutron quota details", "GET", "/network/v2.0/quotas/{X}/details", ""},
		{"neutron quota update", "PUT", "/network/v2.0/quotas/{X}", `{"quota": {"network": 1000}}`},
		{"neutron quota reset", "DELETE", "/network/v2.0/quotas/{X}", ""},
		{"cinder path project", "GET", "/volume/v3/{X}/volumes", ""},
		{"cinder quota set", "GET", "/volume/v3/os-quota-sets/{X}", ""},
		{"cinder quota usage", "GET", "/volume/v3/os-quota-sets/{X}?usage=true", ""},
		{"cinder quota update", "PUT", "/volume/v3/os-quota-sets/{X}", `{"quota_set": {"volumes": 1000}}`},
		{"cinder quota reset", "DELETE", "/volume/v3/os-quota-sets/{X}", ""},
		{"cinder quota in B's path", "GET", "/volume/v3/{B}/os-quota-sets/{X}", ""},
	} {
		t.Run(p.name, func(t *testing.T) {
			path := strings.ReplaceAll(p.path, "{B}", te.bProject)
			status, body := te.send(t, p.method, strings.ReplaceAll(path, "{X}", te.aProject), te.bToken, p.body)
			aStatus, aBody := te.send(t, p.method, strings.ReplaceAll(path, "{X}", absent), te.bToken, p.body)
			if status != http.StatusForbidden || status != aStatus || normal(body, te.aProject) != normal(aBody, absent) {
				t.Errorf("%s %s for A's project: %d %s; for none: %d %s", p.method, p.path, status, body, aStatus, aBody)
			}
		})
	}
	t.Run("B's limits", func(t *testing.T) {
		status, body := te.send(t, http.MethodGet, "/compute/v2.1/limits", te.bToken, "")
		if status != http.StatusOK || !strings.Contains(body, `"totalInstancesUsed":1`) {
			t.Errorf("B's limits = %d %s; want its own one server", status, body)
		}
		status, body = te.send(t, http.MethodGet, "/volume/v3/limits", te.bToken, "")
		if status != http.StatusOK || !strings.Contains(body, `"totalVolumesUsed":1`) || !strings.Contains(body, `"totalGigabytesUsed":1`) {
			t.Errorf("B's volume limits = %d %s; want its own one 1 GiB volume", status, body)
		}
		status, body = te.send(t, http.MethodGet, "/network/v2.0/quotas/"+te.bProject+"/details", te.bToken, "")
		if status != http.StatusOK || !strings.Contains(body, `"network":{"limit":100,"reserved":0,"used":1}`) {
			t.Errorf("B's network quota = %d %s; want its own one network", status, body)
		}
	})
}
