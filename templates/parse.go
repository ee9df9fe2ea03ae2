package templates

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Parse decodes a template and validates it: the template, or every
// problem found (errors.Is(err, ErrInvalid)), or a syntax error.
func Parse(src []byte) (*Template, error) {
	t, err := Decode(src)
	if err != nil {
		return nil, err
	}
	if err := t.Validate(); err != nil {
		return nil, err
	}
	return t, nil
}

// Decode reads a template without judging its meaning: a syntax error
// (not YAML, not a mapping, neither dialect's version key) fails, while
// misplaced or mistyped fields are kept for Validate to report.
func Decode(src []byte) (*Template, error) {
	v, err := decodeYAML(src)
	if err != nil {
		return nil, err
	}
	top, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: the document is not a mapping", ErrSyntax)
	}
	t := &Template{Parameters: map[string]*Parameter{}, Conditions: map[string]any{},
		Resources: map[string]*Resource{}, Outputs: map[string]*Output{}}
	ps := &t.decodeProblems
	_, eve := top["eve_template_version"]
	_, hot := top["heat_template_version"]
	switch {
	case eve && hot:
		return nil, fmt.Errorf("%w: both eve_template_version and heat_template_version", ErrSyntax)
	case eve:
		t.Format, t.Version = FormatEve, versionString(top["eve_template_version"])
	case hot:
		t.Format, t.Version = FormatHOT, versionString(top["heat_template_version"])
	default:
		return nil, fmt.Errorf("%w: no eve_template_version (or heat_template_version) key", ErrSyntax)
	}
	for _, k := range sortedKeys(top) {
		val := top[k]
		switch k {
		case "eve_template_version", "heat_template_version":
		case "description":
			t.Description = stringOr(ps, k, val)
		case "extends":
			if t.Format != FormatEve {
				ps.add(k, "extends is an Eve key, not HOT")
			}
			t.Extends = stringOr(ps, k, val)
		case "parameter_groups":
			if t.Format != FormatHOT {
				ps.add(k, "unknown section")
			} // HOT's presentation hints; nothing to deploy.
		case "parameters":
			for name, pv := range mapOr(ps, k, val) {
				t.Parameters[name] = decodeParameter(ps, join(k, name), pv, t.Format)
			}
		case "conditions":
			maps := mapOr(ps, k, val)
			for name, cv := range maps {
				t.Conditions[name] = cv
			}
		case "resources":
			for name, rv := range mapOr(ps, k, val) {
				if r := decodeResource(ps, join(k, name), name, rv, t.Format); r != nil {
					t.Resources[name] = r
				}
			}
		case "outputs":
			for name, ov := range mapOr(ps, k, val) {
				t.Outputs[name] = decodeOutput(ps, join(k, name), ov)
			}
		default:
			ps.add(k, "unknown section")
		}
	}
	return t, nil
}

// versionString renders a version scalar: numbers as written, "1" not "1.0".
func versionString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case int64:
		return fmt.Sprint(x)
	case float64:
		return fmt.Sprint(x)
	}
	return ""
}

func decodeParameter(ps *problems, path string, v any, f Format) *Parameter {
	p := &Parameter{}
	m := mapOr(ps, path, v)
	for _, k := range sortedKeys(m) {
		val := m[k]
		switch k {
		case "type":
			s := stringOr(ps, join(path, k), val)
			switch {
			case s == "comma_delimited_list" && f == FormatHOT:
				p.Type = TypeList
			case s == "json" && f == FormatHOT:
				p.Type = TypeMap
			case slices.Contains([]ParamType{TypeString, TypeNumber, TypeBoolean, TypeList, TypeMap}, ParamType(s)) &&
				(f == FormatEve || s == "string" || s == "number" || s == "boolean"):
				p.Type = ParamType(s)
			default:
				ps.add(join(path, k), "unknown type %q", s)
			}
		case "label":
			p.Label = stringOr(ps, join(path, k), val)
		case "description":
			p.Description = stringOr(ps, join(path, k), val)
		case "default":
			p.Default, p.HasDefault = val, true
		case "hidden":
			b, ok := val.(bool)
			if !ok {
				ps.add(join(path, k), "want a boolean")
			}
			p.Hidden = b
		case "immutable", "tags":
			// HOT hints about updates and grouping; nothing to enforce here.
		case "constraints":
			list, ok := val.([]any)
			if !ok {
				ps.add(join(path, k), "want a list of constraints")
				continue
			}
			for i, cv := range list {
				p.Constraints = append(p.Constraints, decodeConstraint(ps, fmt.Sprintf("%s.%s[%d]", path, k, i), cv))
			}
		default:
			ps.add(join(path, k), "unknown parameter attribute")
		}
	}
	if p.Type == "" && m["type"] == nil {
		ps.add(join(path, "type"), "required")
	}
	// HOT passes lists and maps as strings: "a,b" and JSON text.
	if s, ok := p.Default.(string); ok && p.HasDefault {
		switch p.Type {
		case TypeList:
			p.Default = splitList(s)
		case TypeMap:
			var mv map[string]any
			if err := json.Unmarshal([]byte(s), &mv); err == nil {
				p.Default = mv
			}
		}
	}
	return p
}

func splitList(s string) []any {
	if strings.TrimSpace(s) == "" {
		return []any{}
	}
	var out []any
	for part := range strings.SplitSeq(s, ",") {
		out = append(out, strings.TrimSpace(part))
	}
	return out
}

func decodeConstraint(ps *problems, path string, v any) Constraint {
	var c Constraint
	m := mapOr(ps, path, v)
	kinds := 0
	for _, k := range sortedKeys(m) {
		val := m[k]
		switch k {
		case "description":
			c.Description = stringOr(ps, join(path, k), val)
		case "allowed_values":
			kinds++
			list, ok := val.([]any)
			if !ok || len(list) == 0 {
				ps.add(join(path, k), "want a non-empty list")
			}
			c.AllowedValues = list
		case "range", "length":
			kinds++
			b := decodeBounds(ps, join(path, k), val)
			if k == "range" {
				c.Range = b
			} else {
				c.Length = b
			}
		case "pattern", "allowed_pattern":
			kinds++
			c.Pattern = stringOr(ps, join(path, k), val)
			if c.Pattern == "" {
				ps.add(join(path, k), "empty pattern")
			}
		case "custom_constraint":
			kinds++
			c.Custom = stringOr(ps, join(path, k), val)
		default:
			ps.add(join(path, k), "unknown constraint")
		}
	}
	if kinds != 1 {
		ps.add(path, "want exactly one of allowed_values, range, length, pattern, custom_constraint")
	}
	return c
}

func decodeBounds(ps *problems, path string, v any) *Bounds {
	b := &Bounds{}
	m := mapOr(ps, path, v)
	for _, k := range sortedKeys(m) {
		f, ok := number(m[k])
		if !ok {
			ps.add(join(path, k), "want a number")
			continue
		}
		switch k {
		case "min":
			b.Min = &f
		case "max":
			b.Max = &f
		default:
			ps.add(join(path, k), "want min or max")
		}
	}
	if b.Min == nil && b.Max == nil {
		ps.add(path, "want min, max or both")
	}
	if b.Min != nil && b.Max != nil && *b.Min > *b.Max {
		ps.add(path, "min %v is above max %v", *b.Min, *b.Max)
	}
	return b
}

func decodeResource(ps *problems, path, name string, v any, f Format) *Resource {
	r := &Resource{Name: name, Properties: map[string]any{}}
	m := mapOr(ps, path, v)
	if m == nil {
		return nil
	}
	for _, k := range sortedKeys(m) {
		val := m[k]
		switch k {
		case "type":
			r.Type = stringOr(ps, join(path, k), val)
		case "properties":
			if val != nil {
				r.Properties = mapOr(ps, join(path, k), val)
			}
		case "depends_on":
			switch d := val.(type) {
			case string:
				r.DependsOn = []string{d}
			case []any:
				for i, e := range d {
					s, ok := e.(string)
					if !ok {
						ps.add(fmt.Sprintf("%s.%s[%d]", path, k, i), "want a resource name")
						continue
					}
					r.DependsOn = append(r.DependsOn, s)
				}
			default:
				ps.add(join(path, k), "want a resource name or a list of them")
			}
		case "condition":
			r.Condition = val
		case "count":
			if f != FormatEve {
				ps.add(join(path, k), "count is an Eve key; HOT uses OS::Heat::ResourceGroup")
			}
			r.Count = val
		case "placement":
			if f != FormatEve {
				ps.add(join(path, k), "placement is an Eve key")
			}
			r.Placement = decodePlacement(ps, join(path, k), val)
		case "description":
			_ = stringOr(ps, join(path, k), val)
		case "metadata", "deletion_policy", "update_policy":
			if f != FormatHOT {
				ps.add(join(path, k), "unknown resource attribute")
			}
			if k == "metadata" && val != nil {
				r.Metadata = mapOr(ps, join(path, k), val)
			}
		default:
			ps.add(join(path, k), "unknown resource attribute")
		}
	}
	switch {
	case r.Type == "":
		ps.add(join(path, "type"), "required")
	case f == FormatHOT && r.Type == hotResourceGroup:
		decodeResourceGroup(ps, path, r)
	case f == FormatHOT:
		kind, ok := hotKinds[r.Type]
		if !ok {
			ps.add(join(path, "type"), "unsupported HOT resource type %q (supported: %s)", r.Type, strings.Join(sortedKeys(hotKinds), ", "))
		}
		r.Kind = kind
		r.Properties = mapHOTProperties(ps, join(path, "properties"), kind, r.Properties)
	case strings.HasPrefix(r.Type, NestedPrefix):
		r.Kind = KindTemplate
		if _, _, ok := r.Nested(); !ok {
			ps.add(join(path, "type"), "want template:NAME@VERSION")
		}
	default:
		if _, ok := kindSchemas[Kind(r.Type)]; !ok {
			ps.add(join(path, "type"), "unknown resource type %q", r.Type)
		}
		r.Kind = Kind(r.Type)
	}
	return r
}

func decodePlacement(ps *problems, path string, v any) *Placement {
	p := &Placement{}
	m := mapOr(ps, path, v)
	for _, k := range sortedKeys(m) {
		val := m[k]
		switch k {
		case "required_labels", "preferred_labels":
			labels := map[string]string{}
			for lk, lv := range mapOr(ps, join(path, k), val) {
				s, ok := scalarString(lv)
				if !ok {
					ps.add(join(path, k, lk), "want a string")
				}
				labels[lk] = s
			}
			if k == "required_labels" {
				p.RequiredLabels = labels
			} else {
				p.PreferredLabels = labels
			}
		case "peer":
			p.Peer = stringOr(ps, join(path, k), val)
		case "spread":
			b, ok := val.(bool)
			if !ok {
				ps.add(join(path, k), "want a boolean")
			}
			p.Spread = b
		default:
			ps.add(join(path, k), "unknown placement attribute (want required_labels, preferred_labels, peer, spread)")
		}
	}
	return p
}

func decodeOutput(ps *problems, path string, v any) *Output {
	o := &Output{}
	m := mapOr(ps, path, v)
	for _, k := range sortedKeys(m) {
		switch k {
		case "description":
			o.Description = stringOr(ps, join(path, k), m[k])
		case "value":
			o.Value = m[k]
		case "condition":
			o.Condition = m[k]
		default:
			ps.add(join(path, k), "unknown output attribute")
		}
	}
	if _, ok := m["value"]; !ok && m != nil {
		ps.add(join(path, "value"), "required")
	}
	return o
}

// mapOr returns v as a mapping or records a problem and returns nil.
func mapOr(ps *problems, path string, v any) map[string]any {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		ps.add(path, "want a mapping")
	}
	return m
}

func stringOr(ps *problems, path string, v any) string {
	s, ok := scalarString(v)
	if !ok {
		ps.add(path, "want a string")
	}
	return s
}

// scalarString renders a scalar as text (YAML reads "8080" as a number
// where a string is meant).
func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int64, float64, bool:
		return fmt.Sprint(x), true
	}
	return "", false
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case int:
		return float64(x), true
	}
	return 0, false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
