package templates

import (
	"fmt"
	"slices"
	"strings"
)

// MaxCount bounds a resource's replicas.
const MaxCount = 500

// Validate reports every problem of the template at once, each at its
// path: structure found while decoding, unknown or missing properties,
// literal values of the wrong type, functions naming parameters,
// resources, attributes or conditions that do not exist, bad parameter
// defaults, and dependency cycles (named). Problems that need a peer
// (an unknown flavor) are the plan's to report.
func (t *Template) Validate() error {
	ps := append(problems(nil), t.decodeProblems...)
	switch t.Format {
	case FormatEve:
		if !slices.Contains(EveVersions, t.Version) {
			ps.add("eve_template_version", "unsupported version %q (supported: %s)", t.Version, strings.Join(EveVersions, ", "))
		}
	case FormatHOT:
		if !slices.Contains(HOTVersions, t.Version) {
			ps.add("heat_template_version", "unsupported version %q", t.Version)
		}
	}
	if t.Extends != "" {
		if n, v, ok := strings.Cut(t.Extends, "@"); !ok || n == "" || v == "" {
			ps.add("extends", "want NAME@VERSION")
		}
	}
	for _, name := range sortedKeys(t.Parameters) {
		t.validateParameter(&ps, join("parameters", name), t.Parameters[name])
	}
	for _, name := range sortedKeys(t.Conditions) {
		t.validateCondition(&ps, join("conditions", name), t.Conditions[name])
	}
	if len(t.Resources) == 0 && t.Extends == "" {
		ps.add("resources", "at least one resource is required")
	}
	for _, name := range sortedKeys(t.Resources) {
		t.validateResource(&ps, join("resources", name), t.Resources[name])
	}
	t.validatePorts(&ps)
	for _, name := range sortedKeys(t.Outputs) {
		o := t.Outputs[name]
		t.validateExpr(&ps, join("outputs", name, "value"), o.Value, "")
		if o.Condition != nil {
			t.validateCondition(&ps, join("outputs", name, "condition"), o.Condition)
		}
	}
	for _, c := range cycles(t.Dependencies()) {
		ps.add(join("resources", c[0]), "dependency cycle: %s", strings.Join(c, " -> "))
	}
	return ps.err()
}

func (t *Template) validateParameter(ps *problems, path string, p *Parameter) {
	for i, c := range p.Constraints {
		if c.Pattern != "" {
			if _, err := compilePattern(c.Pattern); err != nil {
				ps.add(fmt.Sprintf("%s.constraints[%d]", path, i), "pattern does not compile: %v", err)
			}
		}
	}
	if !p.HasDefault || p.Type == "" {
		return
	}
	v, err := coerce(p.Type, p.Default)
	if err != nil {
		ps.add(join(path, "default"), "%v", err)
		return
	}
	for _, c := range p.Constraints {
		if c.Pattern != "" {
			if _, err := compilePattern(c.Pattern); err != nil {
				continue // reported above
			}
		}
		if reason := c.check(v); reason != "" {
			ps.add(join(path, "default"), "%s", reason)
		}
	}
}

func (t *Template) validateCondition(ps *problems, path string, v any) {
	switch x := v.(type) {
	case bool:
		return
	case string:
		if _, ok := t.Conditions[x]; !ok {
			ps.add(path, "no condition %q", x)
		}
		return
	}
	name, args, ok := call(v)
	if !ok {
		ps.add(path, "want a condition name, a boolean, or equals/not/and/or/get_param")
		return
	}
	p := join(path, name)
	switch name {
	case "equals":
		l, ok := args.([]any)
		if !ok || len(l) != 2 {
			ps.add(p, "want [a, b]")
			return
		}
		for i, e := range l {
			ep := fmt.Sprintf("%s[%d]", p, i)
			t.validateExpr(ps, ep, e, "")
			if len(collectRefs(e).resources) > 0 {
				ps.add(ep, "conditions are decided before resources exist; refer to parameters only")
			}
		}
	case "not":
		t.validateCondition(ps, p, args)
	case "and", "or":
		l, ok := args.([]any)
		if !ok || len(l) < 2 {
			ps.add(p, "want a list of at least two conditions")
			return
		}
		for i, e := range l {
			t.validateCondition(ps, fmt.Sprintf("%s[%d]", p, i), e)
		}
	case "get_param":
		t.validateExpr(ps, path, v, "")
	default:
		ps.add(p, "%s is not a condition function", name)
	}
}

func (t *Template) validateResource(ps *problems, path string, r *Resource) {
	for i, d := range r.DependsOn {
		dp := fmt.Sprintf("%s.depends_on[%d]", path, i)
		switch {
		case d == r.Name:
			ps.add(dp, "a resource cannot depend on itself")
		case t.Resources[d] == nil:
			ps.add(dp, "no resource %q", d)
		}
	}
	if r.Condition != nil {
		t.validateCondition(ps, join(path, "condition"), r.Condition)
	}
	if r.Count != nil {
		t.validateCount(ps, join(path, "count"), r.Count)
	}
	if r.Placement != nil && r.Placement.Spread && r.Count == nil {
		ps.add(join(path, "placement", "spread"), "spread applies to counted resources")
	}
	for _, k := range sortedKeys(r.Properties) {
		t.validateExpr(ps, join(path, "properties", k), r.Properties[k], r.Name)
	}
	schema, ok := kindSchemas[r.Kind]
	if !ok {
		return // unknown kind reported by Decode; nested templates are checked against the catalog
	}
	for _, k := range sortedKeys(r.Properties) {
		spec, known := schema.props[k]
		if !known {
			ps.add(join(path, "properties", k), "unknown property of a %s", r.Kind)
			continue
		}
		checkLiteral(ps, join(path, "properties", k), spec.typ, r.Properties[k])
	}
	for _, k := range sortedKeys(schema.props) {
		if _, set := r.Properties[k]; schema.props[k].required && !set {
			ps.add(join(path, "properties", k), "required for a %s", r.Kind)
		}
	}
	switch r.Kind {
	case KindServer:
		_, img := r.Properties["image"]
		_, vol := r.Properties["boot_volume"]
		if img == vol {
			ps.add(join(path, "properties", "image"), "give exactly one of image and boot_volume")
		}
		if nets, ok := r.Properties["networks"].([]any); ok {
			for i, n := range nets {
				np := fmt.Sprintf("%s.properties.networks[%d]", path, i)
				m, ok := n.(map[string]any)
				if !ok || isCall(m) {
					continue
				}
				_, hasNet := m["network"]
				_, hasPort := m["port"]
				if hasNet == hasPort {
					ps.add(np, "give exactly one of network and port")
				}
				for k := range m {
					if !slices.Contains([]string{"network", "port", "fixed_ip", "subnet"}, k) {
						ps.add(join(np, k), "unknown key (want network, port, fixed_ip or subnet)")
					}
				}
			}
		}
	case KindVolume:
		if _, ok := r.Properties["size"]; !ok {
			if _, img := r.Properties["image"]; !img {
				ps.add(join(path, "properties", "size"), "required for a Volume without an image")
			}
		}
		if n, ok := number(r.Properties["size"]); ok && n < 1 {
			ps.add(join(path, "properties", "size"), "want at least 1 GiB")
		}
	}
}

// validatePorts refuses a port two servers would plug in: a port is one NIC.
func (t *Template) validatePorts(ps *problems) {
	users := map[string][]string{}
	for _, name := range sortedKeys(t.Resources) {
		r := t.Resources[name]
		if r.Kind != KindServer {
			continue
		}
		nets, _ := r.Properties["networks"].([]any)
		for _, n := range nets {
			if m, ok := n.(map[string]any); ok {
				if fn, args, ok := call(m["port"]); ok && fn == "get_resource" {
					if s, ok := args.(string); ok {
						users[s] = append(users[s], name)
					}
				}
			}
		}
	}
	for _, port := range sortedKeys(users) {
		p := t.Resources[port]
		if u := users[port]; len(u) > 1 || (p != nil && p.Count != nil) || (len(u) == 1 && t.Resources[u[0]].Count != nil) {
			ps.add(join("resources", port), "a port plugs into one server; used by %s (a counted server needs its own counted port)", strings.Join(u, ", "))
		}
	}
}

func (t *Template) validateCount(ps *problems, path string, v any) {
	if n, ok := number(v); ok {
		if n < 0 || n > MaxCount || n != float64(int(n)) {
			ps.add(path, "want a whole number from 0 to %d", MaxCount)
		}
		return
	}
	fn, args, ok := call(v)
	if !ok || fn != "get_param" {
		ps.add(path, "want a number or {get_param: NAME}")
		return
	}
	name, _ := args.(string)
	if p := t.Parameters[name]; p == nil {
		ps.add(path, "no parameter %q", name)
	} else if p.Type != TypeNumber {
		ps.add(path, "parameter %q is a %s, not a number", name, p.Type)
	}
}

// unsupportedFunctions are Heat's other intrinsic functions: a template
// using one is refused rather than deployed with the call left as data.
var unsupportedFunctions = map[string]bool{
	"get_file": true, "repeat": true, "digest": true, "str_split": true, "map_merge": true, "map_replace": true,
	"yaql": true, "filter": true, "make_url": true, "list_concat": true, "list_concat_unique": true, "contains": true,
	"resolve": true, "Ref": true, "Fn::GetAtt": true, "Fn::Join": true, "Fn::Select": true, "Fn::Base64": true,
	"Fn::GetAZs": true, "Fn::Replace": true, "Fn::Split": true, "Fn::MemberListToMap": true, "Fn::ResourceFacade": true,
}

// reportUnsupported flags one-key maps naming a function cloudmux lacks.
func reportUnsupported(ps *problems, path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 1 {
			for k := range x {
				if unsupportedFunctions[k] {
					ps.add(join(path, k), "the %s function is not supported", k)
					return
				}
			}
		}
		for _, k := range sortedKeys(x) {
			reportUnsupported(ps, join(path, k), x[k])
		}
	case []any:
		for i, e := range x {
			reportUnsupported(ps, fmt.Sprintf("%s[%d]", path, i), e)
		}
	}
}

// validateExpr checks every function call in v. self is the resource the
// value belongs to ("" for outputs and conditions).
func (t *Template) validateExpr(ps *problems, path string, v any, self string) {
	reportUnsupported(ps, path, v)
	visit(v, path, func(p, name string, args any) {
		p = join(p, name)
		switch name {
		case "get_param":
			var pn any = args
			if l, ok := args.([]any); ok && len(l) > 0 {
				pn = l[0]
			}
			s, ok := pn.(string)
			if !ok {
				ps.add(p, "want a parameter name")
			} else if t.Parameters[s] == nil {
				ps.add(p, "no parameter %q", s)
			}
		case "get_resource":
			s, ok := args.(string)
			switch {
			case !ok:
				ps.add(p, "want a resource name")
			case s == self:
				ps.add(p, "a resource cannot refer to itself")
			case t.Resources[s] == nil:
				ps.add(p, "no resource %q", s)
			}
		case "get_attr":
			l, ok := args.([]any)
			if !ok || len(l) < 2 {
				ps.add(p, "want [resource, attribute, path...]")
				return
			}
			s, ok := l[0].(string)
			switch {
			case !ok:
				ps.add(p, "the resource must be a name")
			case s == self:
				ps.add(p, "a resource cannot refer to itself")
			case t.Resources[s] == nil:
				ps.add(p, "no resource %q", s)
			default:
				attr, lit := l[1].(string)
				if r := t.Resources[s]; lit && r.Kind != KindTemplate && kindSchemas[r.Kind].attrs != nil &&
					!slices.Contains(kindSchemas[r.Kind].attrs, attr) {
					ps.add(p, "a %s has no attribute %q (it has %s)", r.Kind, attr, strings.Join(kindSchemas[r.Kind].attrs, ", "))
				}
			}
		case "join", "list_join":
			l, ok := args.([]any)
			if !ok || len(l) < 2 {
				ps.add(p, "want [separator, list...]")
			} else if _, _, isCall := call(l[0]); !isCall {
				if _, ok := l[0].(string); !ok {
					ps.add(p, "the separator must be a string")
				}
			}
		case "str_replace":
			m, ok := args.(map[string]any)
			if !ok || m["template"] == nil || len(m) != 2 || m["params"] == nil {
				ps.add(p, "want {template: ..., params: {...}}")
			}
		case "if":
			l, ok := args.([]any)
			if !ok || len(l) != 3 {
				ps.add(p, "want [condition, value if true, value if false]")
				return
			}
			t.validateCondition(ps, p+"[0]", l[0])
		case "equals", "not", "and", "or":
			ps.add(p, "%s belongs in a condition", name)
		}
	})
}

// checkLiteral checks a value that is not a function call against a
// property's type.
func checkLiteral(ps *problems, path, typ string, v any) {
	if _, _, ok := call(v); ok || v == nil {
		return
	}
	ok := true
	switch typ {
	case "string":
		_, ok = scalarString(v)
	case "int":
		n, isNum := number(v)
		ok = isNum && n == float64(int64(n))
	case "bool":
		_, ok = v.(bool)
		if s, isStr := v.(string); isStr {
			ls := strings.ToLower(s)
			ok = ls == "true" || ls == "false"
		}
	case "list":
		_, ok = v.([]any)
	case "map":
		_, ok = v.(map[string]any)
	}
	if !ok {
		article := "a"
		if typ == "int" {
			typ, article = "integer", "an"
		}
		ps.add(path, "want %s %s, got %s", article, typ, typeName(v))
	}
}
