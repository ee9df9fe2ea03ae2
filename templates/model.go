package templates

import "strings"

// Format says which dialect a template was written in. Both decode to the
// same model; HOT names and properties are mapped to Eve's.
type Format string

// The accepted dialects.
const (
	FormatEve Format = "eve"
	FormatHOT Format = "hot"
)

// EveVersions are the accepted values of eve_template_version.
var EveVersions = []string{"1"}

// HOTVersions are the heat_template_version values Heat documents, dates
// and release names; cloudmux reads the subset of HOT they share.
var HOTVersions = []string{
	"2013-05-23", "2014-10-16", "2015-04-30", "2015-10-15", "2016-04-08",
	"2016-10-14", "2017-02-24", "2017-09-01", "2018-03-02", "2018-08-31",
	"2021-04-16", "newton", "ocata", "pike", "queens", "rocky", "wallaby",
}

// Kind is a resource type.
type Kind string

// The resource kinds a template may declare.
const (
	KindServer           Kind = "Server"
	KindNetwork          Kind = "Network"
	KindSubnet           Kind = "Subnet"
	KindPort             Kind = "Port"
	KindVolume           Kind = "Volume"
	KindVolumeAttachment Kind = "VolumeAttachment"
	KindKeypair          Kind = "Keypair"
	KindImage            Kind = "Image"
	// KindTemplate is a nested template, typed "template:NAME@VERSION".
	KindTemplate Kind = "template"
)

// NestedPrefix starts the type of a resource that nests a template.
const NestedPrefix = "template:"

// ParamType is a parameter's type.
type ParamType string

// The parameter types. HOT's comma_delimited_list is a list, json a map.
const (
	TypeString  ParamType = "string"
	TypeNumber  ParamType = "number"
	TypeBoolean ParamType = "boolean"
	TypeList    ParamType = "list"
	TypeMap     ParamType = "map"
)

// Template is a decoded Eve (or HOT) template. Property values, output
// values, conditions and counts are plain trees (map[string]any, []any,
// scalars) in which a single-key map naming an intrinsic function is a
// call: {get_param: flavor}.
type Template struct {
	Format      Format
	Version     string
	Description string
	// Extends names the template this one builds on, "NAME@VERSION": its
	// parameters, conditions, resources and outputs are inherited, and
	// this template's entries of the same name replace them.
	Extends    string
	Parameters map[string]*Parameter
	// Conditions are named boolean expressions (equals, not, and, or,
	// get_param) resources and if refer to.
	Conditions map[string]any
	Resources  map[string]*Resource
	Outputs    map[string]*Output

	// decodeProblems are the structural problems found while decoding;
	// Validate reports them with the semantic ones.
	decodeProblems problems
}

// Parameter is a typed input.
type Parameter struct {
	Type        ParamType
	Label       string
	Description string
	Default     any
	HasDefault  bool
	Hidden      bool
	Constraints []Constraint
}

// Constraint restricts a parameter's value. Exactly one field is set.
type Constraint struct {
	AllowedValues []any
	Range         *Bounds // numbers
	Length        *Bounds // strings (characters), lists and maps (items)
	Pattern       string  // a regular expression the whole string matches
	// Custom is a HOT custom_constraint (nova.flavor, glance.image); it is
	// kept but checked by the peers when the resource is created.
	Custom      string
	Description string
}

// Bounds is an inclusive range; a nil end is open.
type Bounds struct {
	Min, Max *float64
}

// Resource is one declared resource.
type Resource struct {
	Name string
	// Type is the declared type as written ("Server", "OS::Nova::Server",
	// "template:db@3"); Kind is what it maps to.
	Type       string
	Kind       Kind
	Properties map[string]any
	DependsOn  []string
	// Count, when set, makes Count replicas (an integer or an expression
	// such as {get_param: replicas}); "%index%" in their string
	// properties becomes the replica's index.
	Count     any
	Condition any // a condition name or an inline expression
	Placement *Placement
	// Metadata is a HOT resource's metadata section, as written (Heat's
	// resource metadata; the engine deploys nothing from it).
	Metadata map[string]any
}

// Nested returns the template a "template:NAME@VERSION" resource nests.
func (r *Resource) Nested() (name, version string, ok bool) {
	ref, found := strings.CutPrefix(r.Type, NestedPrefix)
	if !found {
		return "", "", false
	}
	name, version, ok = strings.Cut(ref, "@")
	return name, version, ok && name != "" && version != ""
}

// Placement says where a resource may and should go.
type Placement struct {
	RequiredLabels  map[string]string `json:"required_labels,omitempty" yaml:"required_labels,omitempty"`
	PreferredLabels map[string]string `json:"preferred_labels,omitempty" yaml:"preferred_labels,omitempty"`
	// Peer pins a peer by name.
	Peer string `json:"peer,omitempty" yaml:"peer,omitempty"`
	// Spread puts the replicas of a counted resource on different peers
	// when enough are allowed.
	Spread bool `json:"spread,omitempty" yaml:"spread,omitempty"`
}

// Output is a value the deployment reports.
type Output struct {
	Description string
	Value       any
	Condition   any
}

// propSpec describes one property of a kind.
type propSpec struct {
	required bool
	// typ is the literal type checked when the value is not a function
	// call: "string", "int", "bool", "list", "map", "any".
	typ string
}

// kindSchemas lists each kind's properties (Heat's names, so HOT maps
// almost one to one) and the attributes get_attr may read.
var kindSchemas = map[Kind]struct {
	props map[string]propSpec
	attrs []string
}{
	KindServer: {props: map[string]propSpec{
		"name": {typ: "string"}, "image": {typ: "string"}, "flavor": {required: true, typ: "string"},
		"key_name": {typ: "string"}, "networks": {typ: "list"}, "user_data": {typ: "string"},
		"metadata": {typ: "map"}, "availability_zone": {typ: "string"}, "boot_volume": {typ: "string"},
		"security_groups": {typ: "list"}, "user_data_format": {typ: "string"}, "config_drive": {typ: "any"},
	}, attrs: []string{"id", "name", "first_address", "addresses", "networks", "status", "peer", "flavor", "image", "host"}},
	KindNetwork: {props: map[string]propSpec{
		"name": {typ: "string"}, "shared": {typ: "bool"}, "mtu": {typ: "int"}, "admin_state_up": {typ: "bool"},
		"port_security_enabled": {typ: "bool"}, "value_specs": {typ: "map"}, "metadata": {typ: "map"},
	}, attrs: []string{"id", "name", "subnets", "mtu", "status", "peer"}},
	KindSubnet: {props: map[string]propSpec{
		"name": {typ: "string"}, "network": {required: true, typ: "string"}, "cidr": {required: true, typ: "string"},
		"ip_version": {typ: "int"}, "gateway_ip": {typ: "any"}, "enable_dhcp": {typ: "bool"},
		"dns_nameservers": {typ: "list"}, "allocation_pools": {typ: "list"}, "metadata": {typ: "map"},
	}, attrs: []string{"id", "name", "cidr", "gateway_ip", "network_id", "peer"}},
	KindPort: {props: map[string]propSpec{
		"name": {typ: "string"}, "network": {required: true, typ: "string"}, "fixed_ips": {typ: "list"},
		"security_groups": {typ: "list"}, "admin_state_up": {typ: "bool"}, "metadata": {typ: "map"},
	}, attrs: []string{"id", "name", "mac_address", "fixed_ips", "ip_address", "network_id", "status", "peer"}},
	KindVolume: {props: map[string]propSpec{
		"name": {typ: "string"}, "description": {typ: "string"}, "size": {typ: "int"}, "image": {typ: "string"},
		"volume_type": {typ: "string"}, "availability_zone": {typ: "string"}, "metadata": {typ: "map"},
	}, attrs: []string{"id", "name", "size", "status", "peer"}},
	KindVolumeAttachment: {props: map[string]propSpec{
		"server": {required: true, typ: "string"}, "volume": {required: true, typ: "string"}, "mountpoint": {typ: "string"},
	}, attrs: []string{"id", "device", "peer"}},
	KindKeypair: {props: map[string]propSpec{
		"name": {required: true, typ: "string"}, "public_key": {typ: "string"}, "type": {typ: "string"},
		"save_private_key": {typ: "bool"},
	}, attrs: []string{"id", "name", "public_key", "private_key", "fingerprint", "peer"}},
	KindImage: {props: map[string]propSpec{
		"name": {required: true, typ: "string"}, "disk_format": {typ: "string"}, "container_format": {typ: "string"},
		"min_disk": {typ: "int"}, "min_ram": {typ: "int"}, "visibility": {typ: "string"}, "tags": {typ: "list"},
		"properties": {typ: "map"}, "protected": {typ: "bool"},
	}, attrs: []string{"id", "name", "status", "peer"}},
}

// Attributes lists the attributes get_attr may read from a kind.
func Attributes(k Kind) []string { return kindSchemas[k].attrs }

// Kinds lists the concrete resource kinds.
func Kinds() []Kind {
	return []Kind{KindServer, KindNetwork, KindSubnet, KindPort, KindVolume, KindVolumeAttachment, KindKeypair, KindImage}
}

// hotKinds maps HOT resource types to kinds.
var hotKinds = map[string]Kind{
	"OS::Nova::Server":             KindServer,
	"OS::Neutron::Net":             KindNetwork,
	"OS::Neutron::Subnet":          KindSubnet,
	"OS::Neutron::Port":            KindPort,
	"OS::Cinder::Volume":           KindVolume,
	"OS::Cinder::VolumeAttachment": KindVolumeAttachment,
	"OS::Nova::KeyPair":            KindKeypair,
	"OS::Glance::Image":            KindImage,
	"OS::Glance::WebImage":         KindImage,
}
