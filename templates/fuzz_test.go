package templates

import "testing"

// FuzzParse holds the parser to never panicking, whatever the bytes, and
// to returning either a template or an error. Templates it accepts must
// also survive the passes a deployment runs on them.
func FuzzParse(f *testing.F) {
	// Small seeds only: with the multi-kilobyte testdata files as seeds the
	// fuzzing engine spent its first minute mutating them before its first
	// new input (Go 1.26), which made a short CI run useless. The testdata
	// files are parsed by the unit tests.
	for _, s := range []string{
		"eve_template_version: 1\nresources: {a: {type: Network}}\n",
		"heat_template_version: 2013-05-23\nresources: {s: {type: OS::Nova::Server, properties: {flavor: x, image: y}}}\n",
		"eve_template_version: 1\nresources: {a: {type: Network, depends_on: a}}\n",
		"eve_template_version: 1\nconditions: {c: {not: c}}\nresources: {a: {type: Network, condition: c}}\n",
		"eve_template_version: 1\nresources: {a: {type: Server, count: -1, properties: {name: {join: [1, 2]}}}}\n",
		"a: &a [*a]\n",
		"heat_template_version: 2016-10-14\nresources: {g: {type: OS::Heat::ResourceGroup, properties: {count: 2, resource_def: {type: OS::Neutron::Net}}}}\n",
		"eve_template_version: 1\nresources: {a: {type: 'template:x@1'}}\noutputs: {o: {value: {get_attr: [a, b, {get_param: p}]}}}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		tpl, err := Parse(src)
		if (tpl == nil) == (err == nil) {
			t.Fatalf("template %v and error %v", tpl, err)
		}
		if err != nil {
			_ = Problems(err)
			return
		}
		_ = tpl.Dependencies()
		if _, err := tpl.Order(); err != nil {
			t.Fatalf("a valid template has no order: %v", err)
		}
		params, err := tpl.ResolveParameters(nil)
		if err != nil {
			return
		}
		conds, err := EvalConditions(tpl.Conditions, params)
		if err != nil {
			return
		}
		s := &Scope{Params: params, Conditions: conds, Index: 0}
		for _, r := range tpl.Resources {
			_, _ = s.Eval(r.Properties)
			_, _ = s.Eval(r.Count)
		}
		for _, o := range tpl.Outputs {
			_, _ = s.Eval(o.Value)
		}
	})
}
