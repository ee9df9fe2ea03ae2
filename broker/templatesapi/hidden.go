package templatesapi

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cloudmux/cloudmux/templates"
	"github.com/cloudmux/cloudmux/templates/deploy"
)

// Mask replaces a hidden parameter's value in every view.
const Mask = "******"

// hiddenParams parses source and flattens it as project sees the catalog;
// ok is false when the template cannot be analysed. nested are the hidden
// values of the templates it extends or nests: their defaults, and the
// values its resources give them, which flattening inlines.
func (a *API) hiddenParams(ctx context.Context, project, source string) (t *templates.Template, nested []any, ok bool) {
	t, err := templates.Parse([]byte(source))
	if err != nil {
		return nil, nil, false
	}
	if len(t.Uses()) == 0 {
		return t, nil, true
	}
	rec := &recordingResolver{r: a.Catalog.For(project), seen: map[string]*templates.Template{}}
	flat, err := templates.Flatten(ctx, t, rec)
	if err != nil {
		return nil, nil, false
	}
	for _, u := range append([]*templates.Template{t}, rec.list...) {
		if u != t {
			for _, p := range u.Parameters {
				if p.Hidden && p.HasDefault {
					nested = append(nested, p.Default)
				}
			}
		}
		for _, res := range u.Resources {
			nn, nv, isNested := res.Nested()
			if !isNested || rec.seen[nn+"@"+nv] == nil {
				continue
			}
			for pn, v := range res.Properties {
				// A literal: an expression's own value is masked where it comes from.
				switch v.(type) {
				case map[string]any, []any:
					continue
				}
				if p := rec.seen[nn+"@"+nv].Parameters[pn]; p != nil && p.Hidden {
					nested = append(nested, v)
				}
			}
		}
	}
	return flat, nested, true
}

// recordingResolver remembers every template a flatten resolved.
type recordingResolver struct {
	r    templates.Resolver
	seen map[string]*templates.Template
	list []*templates.Template
}

func (rr *recordingResolver) Resolve(ctx context.Context, name, version string) (*templates.Template, error) {
	t, err := rr.r.Resolve(ctx, name, version)
	if err == nil {
		rr.seen[name+"@"+version] = t
		rr.list = append(rr.list, t)
	}
	return t, err
}

// masker scrubs hidden parameter values out of what a view shows: the
// parameters by name, and their values wherever they were copied
// (outputs, planned properties, event and error messages).
type masker struct {
	names   map[string]bool
	secrets []string // longest first
	exact   []string // canonical JSON of non-string values
}

// maskerFor knows the hidden values of specs (a deployment's current and
// last applied spec) in project. A template that cannot be analysed
// (gone from the catalog) hides every parameter given.
func (a *API) maskerFor(ctx context.Context, project string, specs ...*deploy.Spec) *masker {
	m := &masker{names: map[string]bool{}}
	for _, s := range specs {
		if s == nil {
			continue
		}
		t, nested, ok := a.hiddenParams(ctx, project, s.Source)
		if !ok {
			for name, v := range s.Parameters {
				m.names[name] = true
				m.add(v)
			}
			continue
		}
		for _, v := range nested {
			m.add(v)
		}
		resolved, _ := t.ResolveParameters(s.Parameters)
		for name, p := range t.Parameters {
			if !p.Hidden {
				continue
			}
			m.names[name] = true
			m.add(resolved[name])
			if v, ok := s.Parameters[name]; ok {
				m.add(v)
			}
		}
	}
	slices.SortFunc(m.secrets, func(a, b string) int { return len(b) - len(a) })
	m.secrets = slices.Compact(m.secrets)
	return m
}

func (m *masker) add(v any) {
	switch x := v.(type) {
	case nil:
	case string:
		if x == "" {
			return
		}
		m.secrets = append(m.secrets, x)
		if b, _ := json.Marshal(x); string(b[1:len(b)-1]) != x {
			m.secrets = append(m.secrets, string(b[1:len(b)-1]))
		}
	default:
		m.exact = append(m.exact, templates.Canonical(templates.NormalizeValue(v)))
		// A list or map is also shown element by element.
		if c, ok := templates.NormalizeValue(v).([]any); ok {
			for _, e := range c {
				m.add(e)
			}
		}
		if c, ok := templates.NormalizeValue(v).(map[string]any); ok {
			for _, e := range c {
				m.add(e)
			}
		}
	}
}

// str replaces every hidden value inside s.
func (m *masker) str(s string) string {
	for _, sec := range m.secrets {
		s = strings.ReplaceAll(s, sec, Mask)
	}
	return s
}

// value returns v with hidden values masked, deeply; v is not changed.
func (m *masker) value(v any) any {
	if v != nil && len(m.exact) > 0 && slices.Contains(m.exact, templates.Canonical(v)) {
		return Mask
	}
	switch x := v.(type) {
	case string:
		return m.str(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = m.value(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = m.value(e)
		}
		return out
	}
	return v
}

// params shows given parameters with the hidden ones masked.
func (m *masker) params(given map[string]any) map[string]any {
	out := maps.Clone(given)
	for name := range out {
		if m.names[name] {
			out[name] = Mask
		}
	}
	return out
}

func (m *masker) plan(p *deploy.Plan) *deploy.Plan {
	if p == nil {
		return nil
	}
	out := &deploy.Plan{Steps: make([]deploy.Step, len(p.Steps))}
	for i, s := range p.Steps {
		s.Props = m.str(s.Props)
		s.Reasons = slices.Clone(s.Reasons)
		for j := range s.Reasons {
			s.Reasons[j] = m.str(s.Reasons[j])
		}
		out.Steps[i] = s
	}
	return out
}

func (m *masker) events(evs []deploy.Event) []deploy.Event {
	out := make([]deploy.Event, len(evs))
	for i, ev := range evs {
		ev.Message = m.str(ev.Message)
		out[i] = ev
	}
	return out
}

// maskSource replaces the defaults of hidden parameters in a template's
// source, and the values a resource gives a nested template's hidden
// parameters, with Mask. A source with nothing hidden is returned as is;
// one that cannot be analysed is withheld.
func (a *API) maskSource(ctx context.Context, project, source string) string {
	t, err := templates.Decode([]byte(source))
	if err != nil {
		return ""
	}
	hidden := map[string]bool{}
	for name, p := range t.Parameters {
		if p.Hidden && p.HasDefault {
			hidden[name] = true
		}
	}
	nestedHidden := map[string]map[string]bool{} // resource -> hidden parameters it sets
	for rn, res := range t.Resources {
		nn, nv, ok := res.Nested()
		if !ok {
			continue
		}
		nested, err := a.Catalog.For(project).Resolve(ctx, nn, nv)
		if err == nil {
			nested, err = templates.Flatten(ctx, nested, a.Catalog.For(project))
		}
		if err != nil {
			return ""
		}
		for pn, p := range nested.Parameters {
			if _, set := res.Properties[pn]; set && p.Hidden {
				if nestedHidden[rn] == nil {
					nestedHidden[rn] = map[string]bool{}
				}
				nestedHidden[rn][pn] = true
			}
		}
	}
	if len(hidden) == 0 && len(nestedHidden) == 0 {
		return source
	}
	var doc yaml.Node
	if yaml.Unmarshal([]byte(source), &doc) != nil || len(doc.Content) == 0 {
		return ""
	}
	root := doc.Content[0]
	for name := range hidden {
		maskEntry(lookupNode(lookupNode(root, "parameters"), name), "default")
	}
	for rn, ps := range nestedHidden {
		props := lookupNode(lookupNode(lookupNode(root, "resources"), rn), "properties")
		for pn := range ps {
			maskEntry(props, pn)
		}
	}
	var out strings.Builder
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if enc.Encode(&doc) != nil || enc.Close() != nil {
		return ""
	}
	return out.String()
}

// lookupNode returns the value of key in mapping node n, or nil.
func lookupNode(n *yaml.Node, key string) *yaml.Node {
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// maskEntry replaces the value of key in mapping node n by Mask.
func maskEntry(n *yaml.Node, key string) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			n.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: Mask}
		}
	}
}
