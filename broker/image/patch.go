package image

import (
	"encoding/json"
	"fmt"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
)

// The JSON-patch media types of image updates: 2.1 is RFC 6902 style
// ({"op": "add", "path": "/name", "value": ...}); 2.0, which older
// clients send, names the op as the key ({"add": "/name", "value": ...}).
const (
	PatchMediaType   = "application/openstack-images-v2.1-json-patch"
	PatchMediaType20 = "application/openstack-images-v2.0-json-patch"
)

// patchOp is one operation of an image patch.
type patchOp struct {
	op    string // add, replace, remove
	attr  string // the top-level attribute or property the path names
	value json.RawMessage
	// v20 is the 2.0 media type, whose add refuses to overwrite (Glance's
	// json_schema_version 4); 2.1's add replaces, as RFC 6902 says.
	v20 bool
}

// update answers PATCH /v2/images/{id}: the operations apply in order to
// the image as it is, and the net change goes to the peer in one update.
func (g *Glance) update(w http.ResponseWriter, r *http.Request) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || (mt != PatchMediaType && mt != PatchMediaType20) {
		fault(w, r, http.StatusUnsupportedMediaType, fmt.Sprintf("Unsupported Content-Type %q: image updates take %s", r.Header.Get("Content-Type"), PatchMediaType))
		return
	}
	var raw []map[string]json.RawMessage
	if !decodeJSON(w, r, &raw, "a JSON array of operation objects") {
		return
	}
	ops, err := parseOps(raw, mt == PatchMediaType20)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	c, id := caller(r), chi.URLParam(r, "id")
	cur, err := g.Images.Get(r.Context(), c, id)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	p, err := applyOps(cur, ops)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	img, err := g.Images.Update(r.Context(), c, id, p)
	if err != nil {
		g.fail(w, r, err)
		return
	}
	osapi.WriteJSON(w, http.StatusOK, view(img))
}

// parseOps checks the operations' shape: op, a one-level JSON pointer,
// and a value for add and replace.
func parseOps(raw []map[string]json.RawMessage, v20 bool) ([]patchOp, error) {
	ops := make([]patchOp, 0, len(raw))
	for i, o := range raw {
		var op, path string
		if v20 {
			for _, k := range []string{"add", "replace", "remove"} {
				if p, ok := o[k]; ok {
					if op != "" {
						return nil, fmt.Errorf("operation %d: give exactly one of add, replace or remove: %w", i, ErrInvalid)
					}
					op = k
					if json.Unmarshal(p, &path) != nil {
						return nil, fmt.Errorf("operation %d: the path must be a string: %w", i, ErrInvalid)
					}
				}
			}
			if op == "" {
				return nil, fmt.Errorf("operation %d: give exactly one of add, replace or remove: %w", i, ErrInvalid)
			}
		} else {
			if json.Unmarshal(o["op"], &op) != nil || (op != "add" && op != "replace" && op != "remove") {
				return nil, fmt.Errorf("operation %d: op must be add, replace or remove: %w", i, ErrInvalid)
			}
			if json.Unmarshal(o["path"], &path) != nil {
				return nil, fmt.Errorf("operation %d: path is required and must be a string: %w", i, ErrInvalid)
			}
		}
		attr, err := pointer(path)
		if err != nil {
			return nil, fmt.Errorf("operation %d: %w", i, err)
		}
		value, has := o["value"]
		if op != "remove" && !has {
			return nil, fmt.Errorf("operation %d: %s needs a value: %w", i, op, ErrInvalid)
		}
		ops = append(ops, patchOp{op: op, attr: attr, value: value, v20: v20})
	}
	return ops, nil
}

// pointer reads a JSON pointer naming a top-level attribute (RFC 6901
// escapes ~0 and ~1 undone); Glance allows no nested paths.
func pointer(path string) (string, error) {
	rest, ok := strings.CutPrefix(path, "/")
	if !ok || rest == "" {
		return "", fmt.Errorf("invalid JSON pointer for this resource: '%s': %w", path, ErrInvalid)
	}
	if strings.Contains(rest, "/") {
		return "", fmt.Errorf("nested paths are not allowed: '%s': %w", path, ErrInvalid)
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] == '~' && (i+1 == len(rest) || (rest[i+1] != '0' && rest[i+1] != '1')) {
			return "", fmt.Errorf("pointer '%s' contains '~' not part of a recognized escape sequence (~0 or ~1): %w", path, ErrInvalid)
		}
	}
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(rest), nil
}

// applyOps plays the operations on the image's current attributes and
// returns the net change.
func applyOps(cur Image, ops []patchOp) (Patch, error) {
	name, vis, prot, hidden := cur.Name, cur.Visibility, cur.Protected, cur.Hidden
	minRAM, minDisk := cur.MinRAMMiB, cur.MinDiskGiB
	tags := slices.Clone(cur.Tags)
	props := maps.Clone(cur.Properties)
	if props == nil {
		props = map[string]string{}
	}
	for _, o := range ops {
		a := o.attr
		switch {
		case slices.Contains(readOnly, a) || a == "id":
			return Patch{}, fmt.Errorf("attribute '%s' is read-only: %w", a, ErrForbidden)
		case slices.Contains(reserved, a):
			return Patch{}, fmt.Errorf("attribute '%s' is reserved: %w", a, ErrForbidden)
		case a == "locations":
			return Patch{}, fmt.Errorf("image locations are not offered: %w", ErrForbidden)
		case o.op == "remove" && slices.Contains(CoreAttributes, a):
			return Patch{}, fmt.Errorf("property %s may not be removed: %w", a, ErrForbidden)
		case o.v20 && o.op == "add" && (slices.Contains(CoreAttributes, a) || hasKey(props, a)):
			return Patch{}, fmt.Errorf("property %s already present: %w", a, ErrConflict)
		}
		var err error
		switch a {
		case "name":
			err = decodeString(o.value, &name)
		case "visibility":
			err = decodeString(o.value, &vis)
		case "protected":
			err = decodeBool(o.value, &prot)
		case "os_hidden":
			err = decodeBool(o.value, &hidden)
		case "min_ram":
			err = decodeInt(o.value, &minRAM)
		case "min_disk":
			err = decodeInt(o.value, &minDisk)
		case "tags":
			var t []string
			if json.Unmarshal(o.value, &t) != nil {
				err = fmt.Errorf("want an array of strings: %w", ErrInvalid)
			}
			tags = t
		case "owner", "disk_format", "container_format":
			var v string
			if err = decodeString(o.value, &v); err == nil && v != map[string]string{"owner": cur.Project, "disk_format": cur.DiskFormat, "container_format": cur.ContainerFormat}[a] {
				return Patch{}, fmt.Errorf("attribute '%s' cannot be changed on this cloud; create a new image instead: %w", a, ErrForbidden)
			}
		default:
			_, exists := props[a]
			if o.op != "add" && !exists {
				return Patch{}, fmt.Errorf("property %s does not exist: %w", a, ErrConflict)
			}
			if o.op == "remove" {
				delete(props, a)
				continue
			}
			var v string
			if json.Unmarshal(o.value, &v) != nil {
				err = fmt.Errorf("want a string value: %w", ErrInvalid)
			}
			props[a] = v
		}
		if err != nil {
			return Patch{}, fmt.Errorf("%s: %w", a, err)
		}
	}
	var p Patch
	if name != cur.Name {
		p.Name = &name
	}
	if vis != cur.Visibility {
		p.Visibility = &vis
	}
	if prot != cur.Protected {
		p.Protected = &prot
	}
	if hidden != cur.Hidden {
		p.Hidden = &hidden
	}
	if minRAM != cur.MinRAMMiB {
		p.MinRAMMiB = &minRAM
	}
	if minDisk != cur.MinDiskGiB {
		p.MinDiskGiB = &minDisk
	}
	for _, t := range tags {
		if !slices.Contains(cur.Tags, t) && !slices.Contains(p.AddTags, t) {
			p.AddTags = append(p.AddTags, t)
		}
	}
	for _, t := range cur.Tags {
		if !slices.Contains(tags, t) {
			p.RemoveTags = append(p.RemoveTags, t)
		}
	}
	for k, v := range props {
		if old, ok := cur.Properties[k]; !ok || old != v {
			if p.SetProperties == nil {
				p.SetProperties = map[string]string{}
			}
			p.SetProperties[k] = v
		}
	}
	for k := range cur.Properties {
		if _, ok := props[k]; !ok {
			p.RemoveProperties = append(p.RemoveProperties, k)
		}
	}
	slices.Sort(p.RemoveProperties)
	return p, nil
}

func hasKey(m map[string]string, k string) bool { _, ok := m[k]; return ok }

// isNull reports a JSON null, which encoding/json reads into a bool or an
// int as "no change" without an error; Glance's schema refuses it there.
func isNull(raw json.RawMessage) bool { return strings.TrimSpace(string(raw)) == "null" }

func decodeBool(raw json.RawMessage, dst *bool) error {
	if isNull(raw) || json.Unmarshal(raw, dst) != nil {
		return fmt.Errorf("want true or false: %w", ErrInvalid)
	}
	return nil
}

func decodeInt(raw json.RawMessage, dst *int) error {
	if isNull(raw) || json.Unmarshal(raw, dst) != nil {
		return fmt.Errorf("want an integer: %w", ErrInvalid)
	}
	if *dst < 0 {
		return fmt.Errorf("may not be negative: %w", ErrInvalid)
	}
	return nil
}
