// Package templates owns Eve templates: parsing (Eve's own YAML dialect
// and Heat's HOT, mapped to one model), validation that reports every
// problem at its path, intrinsic functions, the resource DAG, diffs
// between templates and the composition of templates (extends, nesting).
// The Focus catalog is templates/focus; the deployment engine that plans,
// applies, rolls back and resumes deployments across peers is
// templates/deploy.
//
// An Eve template:
//
//	eve_template_version: 1
//	description: text
//	extends: base@2                  # inherit base@2's sections, entries here win
//	parameters:
//	  NAME:
//	    type: string|number|boolean|list|map
//	    default: VALUE
//	    hidden: true
//	    constraints:
//	      - allowed_values: [a, b]
//	      - range: {min: 1, max: 10}     # numbers
//	      - length: {min: 1, max: 20}    # strings, lists, maps
//	      - pattern: "[a-z]+"            # the whole string matches
//	conditions:
//	  NAME: {equals: [{get_param: env}, prod]}   # also not, and, or, get_param
//	resources:
//	  NAME:
//	    type: Server|Network|Subnet|Port|Volume|VolumeAttachment|Keypair|Image|template:NAME@VERSION
//	    properties: {...}                # Heat's property names
//	    depends_on: [OTHER]
//	    count: 3                         # replicas; "%index%" in strings is the index
//	    condition: NAME
//	    placement: {required_labels: {k: v}, preferred_labels: {k: v}, peer: NAME, spread: true}
//	outputs:
//	  NAME: {description: text, value: EXPR, condition: NAME}
//
// Functions: get_param (with a path), get_resource, get_attr (with a
// path; a counted resource gives a list), join and list_join, str_replace,
// if. get_resource and get_attr are implicit dependencies.
//
// HOT templates (heat_template_version) use OS::Nova::Server,
// OS::Neutron::Net/Subnet/Port, OS::Cinder::Volume/VolumeAttachment,
// OS::Nova::KeyPair and OS::Glance::Image with their common properties,
// and OS::Heat::ResourceGroup (count and resource_def, as Eve's count);
// HOT names (network_id, instance_uuid, volume_id, subnet_id, uuid,
// block_device_mapping) map to Eve's, and single-cloud tuning (scheduler
// hints, tenant_id, QoS) is ignored.
package templates
