package templates

import "sort"

// HOTProperty describes one property of a HOT resource type as Heat's
// resource-type schema shows it.
type HOTProperty struct {
	// Type is Heat's property type: string, integer, boolean, list, map
	// or any (a value of any type).
	Type     string
	Required bool
}

// HOTType is what a HOT resource type takes and gives.
type HOTType struct {
	Name       string
	Kind       Kind
	Properties map[string]HOTProperty
	Attributes []string
	// Group: OS::Heat::ResourceGroup, whose count and resource_def
	// become a counted resource of resource_def's type.
	Group bool
}

// HOTTypeNames lists the HOT resource types templates may use, sorted:
// those mapped to a kind and OS::Heat::ResourceGroup.
func HOTTypeNames() []string {
	names := append(sortedKeys(hotKinds), hotResourceGroup)
	sort.Strings(names)
	return names
}

// heatTypes maps the schema's literal types to Heat's names.
var heatTypes = map[string]string{"string": "string", "int": "integer", "bool": "boolean", "list": "list", "map": "map", "any": "any"}

// HOTTypeOf returns the schema of a HOT resource type under its HOT
// property names (network_id, instance_uuid ... where HOT's differ from
// Eve's).
func HOTTypeOf(name string) (HOTType, bool) {
	if name == hotResourceGroup {
		return HOTType{Name: name, Group: true, Properties: map[string]HOTProperty{
			"count": {Type: "integer"}, "resource_def": {Type: "map", Required: true},
		}, Attributes: []string{"refs"}}, true
	}
	k, ok := hotKinds[name]
	if !ok {
		return HOTType{}, false
	}
	hotName := map[string]string{}
	for from, to := range hotRenames[k] {
		hotName[to] = from
	}
	out := HOTType{Name: name, Kind: k, Properties: map[string]HOTProperty{}, Attributes: Attributes(k)}
	for prop, spec := range kindSchemas[k].props {
		if n, ok := hotName[prop]; ok {
			prop = n
		}
		out.Properties[prop] = HOTProperty{Type: heatTypes[spec.typ], Required: spec.required}
	}
	if k == KindServer {
		// Read as one boot volume (boot_volume in Eve's words).
		out.Properties["block_device_mapping"] = HOTProperty{Type: "list"}
		out.Properties["block_device_mapping_v2"] = HOTProperty{Type: "list"}
	}
	return out, true
}

// DecodeTree reads a template document (YAML or JSON) into plain values
// (map[string]any, []any, scalars) with the limits Parse applies.
func DecodeTree(src []byte) (any, error) { return decodeYAML(src) }
