package image

import "encoding/json"

// The JSON schemas Glance serves at /v2/schemas/image and
// /v2/schemas/images, with the same attributes, types, enums and links, so
// clients that build their models from them (python-glanceclient, the
// openstack CLI through it) see a real Glance. Custom properties are
// strings (additionalProperties).
var imageSchema, imagesSchema = buildSchemas()

const uuidPattern = "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){4}-([0-9a-fA-F]){12}$"

func buildSchemas() (string, string) {
	type m = map[string]any
	nullable := func(t string) []string { return []string{"null", t} }
	str := func(desc string) m { return m{"type": "string", "description": desc} }
	ro := func(s m) m { s["readOnly"] = true; return s }
	enum := func(s m, values ...any) m { s["enum"] = values; return s }
	max := func(s m, n int) m { s["maxLength"] = n; return s }
	extra := func(s m) m { s["is_base"] = false; return s }

	statuses := []any{"queued", "saving", "active", "killed", "deleted", "uploading", "importing", "pending_delete", "deactivated"}
	props := m{
		"id":               m{"type": "string", "description": "An identifier for the image", "pattern": uuidPattern},
		"name":             max(m{"type": nullable("string"), "description": "Descriptive name for the image"}, 255),
		"status":           ro(enum(str("Status of the image"), statuses...)),
		"visibility":       enum(str("Scope of image accessibility"), "community", "public", "private", "shared"),
		"protected":        m{"type": "boolean", "description": "If true, image will not be deletable."},
		"os_hidden":        m{"type": "boolean", "description": "If true, image will not appear in default image list response."},
		"checksum":         ro(max(m{"type": nullable("string"), "description": "md5 hash of image contents."}, 32)),
		"os_hash_algo":     ro(max(m{"type": nullable("string"), "description": "Algorithm to calculate the os_hash_value"}, 64)),
		"os_hash_value":    ro(max(m{"type": nullable("string"), "description": "Hexdigest of the image contents using the algorithm specified by the os_hash_algo"}, 128)),
		"owner":            max(m{"type": nullable("string"), "description": "Owner of the image"}, 255),
		"size":             ro(m{"type": nullable("integer"), "description": "Size of image file in bytes"}),
		"virtual_size":     ro(m{"type": nullable("integer"), "description": "Virtual size of image in bytes"}),
		"container_format": m{"type": nullable("string"), "description": "Format of the container", "enum": append([]any{nil}, toAny(ContainerFormats)...)},
		"disk_format":      m{"type": nullable("string"), "description": "Format of the disk", "enum": append([]any{nil}, toAny(DiskFormats)...)},
		"created_at":       ro(str("Date and time of image registration")),
		"updated_at":       ro(str("Date and time of the last image modification")),
		"tags":             m{"type": "array", "description": "List of strings related to the image", "items": m{"type": "string", "maxLength": 255}},
		"direct_url":       ro(str("URL to access the image file kept in external store")),
		"min_ram":          m{"type": "integer", "description": "Amount of ram (in MB) required to boot image."},
		"min_disk":         m{"type": "integer", "description": "Amount of disk space (in GB) required to boot image."},
		"self":             ro(str("An image self url")),
		"file":             ro(str("An image file url")),
		"stores":           ro(str("Store in which image data resides.  Only present when the operator has enabled multiple stores.  May be a comma-separated list of store identifiers.")),
		"schema":           ro(str("An image schema url")),
		"locations": m{"type": "array", "description": "A set of URLs to access the image file kept in external store",
			"items": m{"type": "object", "required": []string{"url", "metadata"}, "properties": m{
				"url": m{"type": "string", "maxLength": 255}, "metadata": m{"type": "object"}}}},
		"kernel_id": extra(m{"type": nullable("string"), "pattern": uuidPattern,
			"description": "ID of image stored in Glance that should be used as the kernel when booting an AMI-style image."}),
		"ramdisk_id": extra(m{"type": nullable("string"), "pattern": uuidPattern,
			"description": "ID of image stored in Glance that should be used as the ramdisk when booting an AMI-style image."}),
		"instance_uuid": extra(str("Metadata which can be used to record which instance this image is associated with. (Informational only, does not create an instance snapshot.)")),
		"architecture":  extra(str("Operating system architecture as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html")),
		"os_distro":     extra(str("Common name of operating system distribution as specified in https://docs.openstack.org/python-glanceclient/latest/cli/property-keys.html")),
		"os_version":    extra(str("Operating system version as specified by the distributor.")),
		"description":   extra(str("A human-readable string describing this image.")),
	}
	image := m{
		"name": "image", "properties": props, "additionalProperties": m{"type": "string"},
		"links": []m{{"rel": "self", "href": "{self}"}, {"rel": "enclosure", "href": "{file}"}, {"rel": "describedby", "href": "{schema}"}},
	}
	images := m{
		"name": "images",
		"properties": m{
			"images": m{"type": "array", "items": image},
			"schema": m{"type": "string"}, "first": m{"type": "string"}, "next": m{"type": "string"},
		},
		"links": []m{{"rel": "first", "href": "{first}"}, {"rel": "next", "href": "{next}"}, {"rel": "describedby", "href": "{schema}"}},
	}
	a, err := json.Marshal(image)
	if err != nil {
		panic(err)
	}
	b, err := json.Marshal(images)
	if err != nil {
		panic(err)
	}
	return string(a), string(b)
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
