package templates

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Resolver finds a template version by name and version ("3", or
// "latest"), for extends and nested templates. The Focus catalog is one.
type Resolver interface {
	Resolve(ctx context.Context, name, version string) (*Template, error)
}

// maxComposeDepth bounds extends and nesting chains.
const maxComposeDepth = 8

// Uses lists the template versions t refers to, "NAME@VERSION": what it
// extends and what its resources nest, sorted.
func (t *Template) Uses() []string {
	set := map[string]bool{}
	if t.Extends != "" {
		set[t.Extends] = true
	}
	for _, r := range t.Resources {
		if n, v, ok := r.Nested(); ok {
			set[n+"@"+v] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// Flatten resolves extends and nested templates into one template of
// concrete resources. A resource "db" of type template:pg@2 becomes the
// resources "db.server", "db.volume"..., whose get_param read db's
// properties (or the nested defaults), whose conditions and depends_on
// include db's, and get_attr [db, OUTPUT] reads the nested output.
func Flatten(ctx context.Context, t *Template, r Resolver) (*Template, error) {
	return flatten(ctx, t, r, nil)
}

func flatten(ctx context.Context, t *Template, r Resolver, chain []string) (*Template, error) {
	if len(chain) > maxComposeDepth {
		return nil, fmt.Errorf("%w: templates nest deeper than %d: %s", ErrInvalid, maxComposeDepth, strings.Join(chain, " -> "))
	}
	out := t.clone()
	if t.Extends != "" {
		if slices.Contains(chain, t.Extends) {
			return nil, fmt.Errorf("%w: extends: cycle %s -> %s", ErrInvalid, strings.Join(chain, " -> "), t.Extends)
		}
		name, version, _ := strings.Cut(t.Extends, "@")
		parent, err := r.Resolve(ctx, name, version)
		if err != nil {
			return nil, fmt.Errorf("extends %s: %w", t.Extends, err)
		}
		parent, err = flatten(ctx, parent, r, append(chain, t.Extends))
		if err != nil {
			return nil, err
		}
		out = inherit(parent, out)
	}
	for _, name := range sortedKeys(out.Resources) {
		res := out.Resources[name]
		nn, nv, ok := res.Nested()
		if !ok {
			continue
		}
		ref := nn + "@" + nv
		if slices.Contains(chain, ref) {
			return nil, fmt.Errorf("%w: resources.%s: nesting cycle %s -> %s", ErrInvalid, name, strings.Join(chain, " -> "), ref)
		}
		nested, err := r.Resolve(ctx, nn, nv)
		if err != nil {
			return nil, fmt.Errorf("resources.%s: %w", name, err)
		}
		nested, err = flatten(ctx, nested, r, append(chain, ref))
		if err != nil {
			return nil, err
		}
		if err := expand(out, name, res, nested); err != nil {
			return nil, err
		}
	}
	out.Extends = ""
	if err := out.Validate(); err != nil {
		return nil, err
	}
	return out, nil
}

// inherit lays child over parent: entries of the same name are replaced.
func inherit(parent, child *Template) *Template {
	out := parent.clone()
	out.Format, out.Version, out.Description = child.Format, child.Version, child.Description
	maps.Copy(out.Parameters, child.Parameters)
	maps.Copy(out.Conditions, child.Conditions)
	maps.Copy(out.Resources, child.Resources)
	maps.Copy(out.Outputs, child.Outputs)
	return out
}

func (t *Template) clone() *Template {
	c := *t
	c.Parameters = maps.Clone(t.Parameters)
	c.Conditions = maps.Clone(t.Conditions)
	c.Resources = maps.Clone(t.Resources)
	c.Outputs = maps.Clone(t.Outputs)
	c.decodeProblems = nil
	return &c
}

// expand replaces the nested resource name in t by nested's resources.
func expand(t *Template, name string, res *Resource, nested *Template) error {
	if res.Count != nil {
		return fmt.Errorf("%w: resources.%s.count: a nested template cannot be counted", ErrInvalid, name)
	}
	for p := range res.Properties {
		if nested.Parameters[p] == nil {
			return fmt.Errorf("%w: resources.%s.properties.%s: not a parameter of %s", ErrInvalid, name, p, res.Type)
		}
	}
	rw := &rewriter{prefix: name + ".", args: res.Properties, params: nested.Parameters}
	for cn, c := range nested.Conditions {
		t.Conditions[rw.prefix+cn] = rw.expr(c)
	}
	delete(t.Resources, name)
	for cn, child := range nested.Resources {
		nc := *child
		nc.Name = rw.prefix + cn
		nc.Properties, _ = rw.expr(child.Properties).(map[string]any)
		nc.Count = rw.expr(child.Count)
		nc.DependsOn = nil
		for _, d := range child.DependsOn {
			nc.DependsOn = append(nc.DependsOn, rw.prefix+d)
		}
		nc.DependsOn = append(nc.DependsOn, res.DependsOn...)
		nc.Condition = rw.condition(child.Condition)
		if res.Condition != nil {
			if nc.Condition == nil {
				nc.Condition = res.Condition
			} else {
				nc.Condition = map[string]any{"and": []any{res.Condition, nc.Condition}}
			}
		}
		if nc.Placement == nil {
			nc.Placement = res.Placement
		}
		t.Resources[nc.Name] = &nc
	}
	// The parent's references to the nested resource read its outputs.
	outputs := map[string]any{}
	for on, o := range nested.Outputs {
		outputs[on] = rw.expr(o.Value)
	}
	var err error
	sub := func(v any) any {
		r, e := substituteOutputs(v, name, outputs)
		if e != nil && err == nil {
			err = e
		}
		return r
	}
	for _, r := range t.Resources {
		r.Properties, _ = sub(r.Properties).(map[string]any)
	}
	for on, o := range t.Outputs {
		no := *o
		no.Value = sub(o.Value)
		t.Outputs[on] = &no
	}
	return err
}

// rewriter moves a nested template's expressions into the parent's scope.
type rewriter struct {
	prefix string
	args   map[string]any
	params map[string]*Parameter
}

func (rw *rewriter) condition(c any) any {
	if s, ok := c.(string); ok {
		return rw.prefix + s
	}
	return rw.expr(c)
}

func (rw *rewriter) expr(v any) any {
	switch x := v.(type) {
	case map[string]any:
		name, args, ok := call(x)
		if !ok {
			out := make(map[string]any, len(x))
			for k, e := range x {
				out[k] = rw.expr(e)
			}
			return out
		}
		switch name {
		case "get_param":
			pn, path := args, []any(nil)
			if l, ok := args.([]any); ok && len(l) > 0 {
				pn, path = l[0], l[1:]
			}
			s, _ := pn.(string)
			val, given := rw.args[s]
			if !given {
				if p := rw.params[s]; p != nil && p.HasDefault {
					val = p.Default
				}
			}
			if len(path) == 0 {
				return val
			}
			if d, err := Dig(val, path); err == nil {
				return d
			}
			return val
		case "get_resource":
			if s, ok := args.(string); ok {
				return map[string]any{name: rw.prefix + s}
			}
		case "get_attr":
			if l, ok := args.([]any); ok && len(l) > 0 {
				if s, ok := l[0].(string); ok {
					nl := append([]any{rw.prefix + s}, rw.expr(l[1:]).([]any)...)
					return map[string]any{name: nl}
				}
			}
		case "if":
			if l, ok := args.([]any); ok && len(l) == 3 {
				return map[string]any{name: []any{rw.condition(l[0]), rw.expr(l[1]), rw.expr(l[2])}}
			}
		case "not", "and", "or":
			if name == "not" {
				return map[string]any{name: rw.condition(args)}
			}
			if l, ok := args.([]any); ok {
				nl := make([]any, len(l))
				for i, e := range l {
					nl[i] = rw.condition(e)
				}
				return map[string]any{name: nl}
			}
		}
		return map[string]any{name: rw.expr(args)}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = rw.expr(e)
		}
		return out
	}
	return v
}

// substituteOutputs replaces get_attr [name, OUTPUT] by the nested
// output's expression; get_resource name has no meaning any more.
func substituteOutputs(v any, name string, outputs map[string]any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		fn, args, ok := call(x)
		if ok && fn == "get_resource" && args == name {
			return nil, fmt.Errorf("%w: get_resource %s: a nested template has no ID; read one of its outputs with get_attr", ErrInvalid, name)
		}
		if ok && fn == "get_attr" {
			if l, isList := args.([]any); isList && len(l) >= 2 && l[0] == name {
				on, _ := l[1].(string)
				val, found := outputs[on]
				if !found {
					return nil, fmt.Errorf("%w: get_attr %s.%s: the nested template has no output %q", ErrInvalid, name, on, on)
				}
				if len(l) > 2 {
					return nil, fmt.Errorf("%w: get_attr %s.%s: a path into a nested output is not supported", ErrInvalid, name, on)
				}
				return val, nil
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := substituteOutputs(e, name, outputs)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := substituteOutputs(e, name, outputs)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}
