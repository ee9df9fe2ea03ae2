package templates

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Change is one difference between two template versions.
type Change struct {
	// Section is "parameters", "resources", "outputs" or "conditions".
	Section string `json:"section"`
	Name    string `json:"name"`
	// Op is "added", "removed" or "changed".
	Op string `json:"op"`
	// Fields lists what changed inside a changed entry ("type",
	// "properties.flavor", "count", "placement", "default"...).
	Fields []string `json:"fields,omitempty"`
}

func (c Change) String() string {
	s := fmt.Sprintf("%s %s.%s", c.Op, c.Section, c.Name)
	if len(c.Fields) > 0 {
		s += fmt.Sprintf(" %v", c.Fields)
	}
	return s
}

// Diff lists what changed from a to b, entry by entry, in a stable order.
func Diff(a, b *Template) []Change {
	var out []Change
	out = append(out, diffSection("parameters", paramFields(a.Parameters), paramFields(b.Parameters))...)
	out = append(out, diffSection("conditions", exprFields(a.Conditions), exprFields(b.Conditions))...)
	out = append(out, diffSection("resources", resourceFields(a.Resources), resourceFields(b.Resources))...)
	out = append(out, diffSection("outputs", outputFields(a.Outputs), outputFields(b.Outputs))...)
	return out
}

// fields flattens an entry into comparable named parts.
type fields map[string]string

func diffSection(section string, a, b map[string]fields) []Change {
	var out []Change
	names := sortedKeys(a)
	for _, n := range sortedKeys(b) {
		if _, ok := a[n]; !ok {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		fa, inA := a[n]
		fb, inB := b[n]
		switch {
		case !inA:
			out = append(out, Change{Section: section, Name: n, Op: "added"})
		case !inB:
			out = append(out, Change{Section: section, Name: n, Op: "removed"})
		default:
			var changed []string
			keys := sortedKeys(fa)
			for _, k := range sortedKeys(fb) {
				if _, ok := fa[k]; !ok {
					keys = append(keys, k)
				}
			}
			slices.Sort(keys)
			keys = slices.Compact(keys)
			for _, k := range keys {
				if fa[k] != fb[k] {
					changed = append(changed, k)
				}
			}
			if len(changed) > 0 {
				out = append(out, Change{Section: section, Name: n, Op: "changed", Fields: changed})
			}
		}
	}
	return out
}

// Canonical renders a value as canonical JSON (sorted keys): equal values,
// equal text. Used to hash and compare property trees.
func Canonical(v any) string {
	b, err := json.Marshal(v) // encoding/json sorts map keys
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}

func paramFields(ps map[string]*Parameter) map[string]fields {
	out := map[string]fields{}
	for n, p := range ps {
		out[n] = fields{"type": string(p.Type), "default": Canonical(p.Default) + fmt.Sprint(p.HasDefault),
			"constraints": Canonical(p.Constraints), "hidden": fmt.Sprint(p.Hidden)}
	}
	return out
}

func exprFields(cs map[string]any) map[string]fields {
	out := map[string]fields{}
	for n, c := range cs {
		out[n] = fields{"expression": Canonical(c)}
	}
	return out
}

func resourceFields(rs map[string]*Resource) map[string]fields {
	out := map[string]fields{}
	for n, r := range rs {
		f := fields{"type": r.Type, "depends_on": Canonical(r.DependsOn), "count": Canonical(r.Count),
			"condition": Canonical(r.Condition), "placement": Canonical(r.Placement)}
		for k, v := range r.Properties {
			f["properties."+k] = Canonical(v)
		}
		out[n] = f
	}
	return out
}

func outputFields(os map[string]*Output) map[string]fields {
	out := map[string]fields{}
	for n, o := range os {
		out[n] = fields{"value": Canonical(o.Value), "condition": Canonical(o.Condition), "description": o.Description}
	}
	return out
}
