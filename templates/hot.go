package templates

import "fmt"

// hotRenames maps a HOT property name to Eve's, per kind.
var hotRenames = map[Kind]map[string]string{
	KindSubnet:           {"network_id": "network"},
	KindPort:             {"network_id": "network"},
	KindVolumeAttachment: {"instance_uuid": "server", "volume_id": "volume"},
}

// hotIgnored are Heat properties that tune a single OpenStack cloud
// (scheduler hints, tenant override, QoS) and have no cross-cloud meaning;
// a template carrying them still deploys, without them.
var hotIgnored = map[Kind][]string{
	KindServer: {"admin_pass", "scheduler_hints", "software_config_transport", "diskConfig", "reservation_id",
		"personality", "tags", "deployment_swift_data", "admin_user", "flavor_update_policy", "image_update_policy"},
	KindNetwork: {"tenant_id", "dhcp_agent_ids", "qos_policy", "dns_domain", "tags"},
	KindSubnet:  {"tenant_id", "host_routes", "ipv6_ra_mode", "ipv6_address_mode", "tags", "segment"},
	KindPort: {"binding:vnic_type", "device_id", "device_owner", "mac_address", "qos_policy", "dns_name",
		"port_security_enabled", "allowed_address_pairs", "value_specs", "replacement_policy", "tags"},
	KindVolume:  {"scheduler_hints", "read_only", "multiattach"},
	KindKeypair: {"user"},
}

// mapHOTProperties renames HOT properties to Eve's and rewrites the shapes
// that differ (block device mappings, networks' uuid, fixed_ips'
// subnet_id). Function calls inside values are left for evaluation.
func mapHOTProperties(ps *problems, path string, k Kind, props map[string]any) map[string]any {
	out := make(map[string]any, len(props))
	ignored := map[string]bool{}
	for _, name := range hotIgnored[k] {
		ignored[name] = true
	}
	for name, v := range props {
		if ignored[name] {
			continue
		}
		if to, ok := hotRenames[k][name]; ok {
			name = to
		}
		switch {
		case k == KindServer && name == "networks":
			v = renameInList(v, map[string]string{"uuid": "network"})
		case k == KindPort && name == "fixed_ips":
			v = renameInList(v, map[string]string{"subnet_id": "subnet"})
		case k == KindServer && (name == "block_device_mapping" || name == "block_device_mapping_v2"):
			vol, ok := bootVolume(v)
			if !ok {
				ps.add(join(path, name), "only one boot volume (volume_id, device vda or boot_index 0) is supported")
				continue
			}
			name, v = "boot_volume", vol
		}
		if _, dup := out[name]; dup {
			ps.add(join(path, name), "given twice (under its HOT and its Eve name)")
		}
		out[name] = v
	}
	return out
}

func renameInList(v any, renames map[string]string) any {
	list, ok := v.([]any)
	if !ok {
		return v
	}
	out := make([]any, len(list))
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok || isCall(m) {
			out[i] = e
			continue
		}
		nm := make(map[string]any, len(m))
		for k, x := range m {
			if to, ok := renames[k]; ok {
				k = to
			}
			nm[k] = x
		}
		out[i] = nm
	}
	return out
}

// bootVolume reads the volume a HOT block device mapping boots from.
func bootVolume(v any) (any, bool) {
	list, ok := v.([]any)
	if !ok || len(list) != 1 {
		return nil, false
	}
	m, ok := list[0].(map[string]any)
	if !ok {
		return nil, false
	}
	vol, ok := m["volume_id"]
	if !ok {
		return nil, false
	}
	if idx, set := m["boot_index"]; set && fmt.Sprint(idx) != "0" {
		return nil, false
	}
	return vol, true
}

// hotResourceGroup is Heat's replica group; it maps to Eve's count, and
// "%index%" means the same in both.
const hotResourceGroup = "OS::Heat::ResourceGroup"

// decodeResourceGroup turns {count, resource_def: {type, properties}}
// into a counted resource of resource_def's type.
func decodeResourceGroup(ps *problems, path string, r *Resource) {
	props := r.Properties
	for k := range props {
		if k != "count" && k != "resource_def" {
			ps.add(join(path, "properties", k), "not supported on a ResourceGroup (count and resource_def are)")
		}
	}
	r.Count = props["count"]
	if r.Count == nil {
		r.Count = int64(1) // Heat's default
	}
	def, ok := props["resource_def"].(map[string]any)
	if !ok {
		ps.add(join(path, "properties", "resource_def"), "required: a mapping with type and properties")
		r.Properties = map[string]any{}
		return
	}
	dpath := join(path, "properties", "resource_def")
	typ, _ := def["type"].(string)
	kind, ok := hotKinds[typ]
	if !ok {
		ps.add(join(dpath, "type"), "unsupported HOT resource type %q", typ)
	}
	r.Kind = kind
	inner, _ := def["properties"].(map[string]any)
	r.Properties = mapHOTProperties(ps, join(dpath, "properties"), kind, inner)
}
