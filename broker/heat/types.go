package heat

import (
	"net/http"
	"regexp"
	"sort"

	"github.com/go-chi/chi/v5"

	"github.com/cloudmux/cloudmux/broker/osapi"
	"github.com/cloudmux/cloudmux/templates"
)

// listResourceTypes lists the HOT types the engine deploys (name
// filters as a regular expression, as Heat's).
func (a *API) listResourceTypes(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var re *regexp.Regexp
	if n := q.Get("name"); n != "" {
		var err error
		if re, err = regexp.Compile(n); err != nil {
			a.fail(w, r, badRequest("name: %v", err))
			return
		}
	}
	if s := q.Get("support_status"); s != "" && s != "SUPPORTED" {
		osapi.WriteJSON(w, http.StatusOK, map[string]any{"resource_types": []any{}})
		return
	}
	detail := q.Get("with_description") == "true" || q.Get("with_description") == "True"
	out := []any{}
	for _, name := range templates.HOTTypeNames() {
		if re != nil && !re.MatchString(name) {
			continue
		}
		if detail {
			out = append(out, map[string]any{"resource_type": name, "description": describe(name)})
		} else {
			out = append(out, name)
		}
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"resource_types": out})
}

func describe(name string) string {
	t, _ := templates.HOTTypeOf(name)
	if t.Group {
		return "A group of identical resources (count replicas of resource_def), placed by the broker's policy."
	}
	return "A " + string(t.Kind) + " made through the broker's service on the peer its placement policy picks."
}

func (a *API) hotType(w http.ResponseWriter, r *http.Request) (templates.HOTType, bool) {
	name := chi.URLParam(r, "type")
	t, ok := templates.HOTTypeOf(name)
	if !ok {
		a.fail(w, r, &heatError{code: 404, typ: "EntityNotFound", msg: "The Resource Type (" + name + ") could not be found."})
	}
	return t, ok
}

func (a *API) showResourceType(w http.ResponseWriter, r *http.Request) {
	t, ok := a.hotType(w, r)
	if !ok {
		return
	}
	props := map[string]any{}
	for name, p := range t.Properties {
		props[name] = map[string]any{"type": p.Type, "required": p.Required, "update_allowed": false, "immutable": false, "description": ""}
	}
	attrs := map[string]any{}
	for _, name := range t.Attributes {
		attrs[name] = map[string]any{"description": ""}
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{
		"resource_type": t.Name, "description": describe(t.Name), "properties": props, "attributes": attrs,
		"support_status": map[string]any{"status": "SUPPORTED", "version": nil, "message": nil, "previous_status": nil},
	})
}

// resourceTypeTemplate generates a HOT template using the type: a
// parameter per property, an output per attribute.
func (a *API) resourceTypeTemplate(w http.ResponseWriter, r *http.Request) {
	t, ok := a.hotType(w, r)
	if !ok {
		return
	}
	if tt := r.URL.Query().Get("template_type"); tt != "" && tt != "hot" {
		a.fail(w, r, badRequest("template_type: only hot is served"))
		return
	}
	paramTypes := map[string]string{"string": "string", "integer": "number", "boolean": "boolean", "list": "comma_delimited_list", "map": "json", "any": "json"}
	params, props := map[string]any{}, map[string]any{}
	names := make([]string, 0, len(t.Properties))
	for name := range t.Properties {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		p := t.Properties[name]
		params[name] = map[string]any{"type": paramTypes[p.Type], "description": ""}
		props[name] = map[string]any{"get_param": name}
	}
	outputs := map[string]any{}
	for _, attr := range t.Attributes {
		outputs[attr] = map[string]any{"description": attr + " attribute", "value": map[string]any{"get_attr": []any{t.Name, attr}}}
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{
		"heat_template_version": "2016-10-14", "description": "Initial template of " + t.Name,
		"parameters": params, "resources": map[string]any{t.Name: map[string]any{"type": t.Name, "properties": props}},
		"outputs": outputs,
	})
}

// validateTypes are Heat's names of parameter types in a validation.
var validateTypes = map[templates.ParamType]string{templates.TypeString: "String", templates.TypeNumber: "Number",
	templates.TypeList: "CommaDelimitedList", templates.TypeMap: "Json", templates.TypeBoolean: "Boolean"}

// validate checks a template (and its environment's parameters) as the
// engine will read it, answering its description and parameters.
func (a *API) validate(w http.ResponseWriter, r *http.Request) {
	var q stackRequest
	if err := decodeBody(r, &q); err != nil {
		a.fail(w, r, err)
		return
	}
	if err := q.refuseUnserved(); err != nil {
		a.fail(w, r, err)
		return
	}
	src, given, err := q.source()
	if err == nil && !given {
		err = badRequest("a template is required")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tpl, err := templates.Parse([]byte(src))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if _, err := q.parameters(tpl, nil); err != nil {
		a.fail(w, r, err)
		return
	}
	params := map[string]any{}
	for name, p := range tpl.Parameters {
		v := map[string]any{"Type": validateTypes[p.Type], "Description": p.Description, "Label": name, "NoEcho": "false"}
		if p.Label != "" {
			v["Label"] = p.Label
		}
		if p.Hidden {
			v["NoEcho"] = "true"
		}
		if p.HasDefault {
			v["Default"] = p.Default
			if p.Hidden {
				v["Default"] = "******"
			}
		}
		for _, c := range p.Constraints {
			switch {
			case c.AllowedValues != nil:
				v["AllowedValues"] = c.AllowedValues
			case c.Range != nil:
				setBounds(v, c.Range, "MinValue", "MaxValue")
			case c.Length != nil:
				setBounds(v, c.Length, "MinLength", "MaxLength")
			case c.Pattern != "":
				v["AllowedPattern"] = c.Pattern
			case c.Custom != "":
				v["CustomConstraint"] = c.Custom
			}
			if c.Description != "" {
				v["ConstraintDescription"] = c.Description
			}
		}
		params[name] = v
	}
	osapi.WriteJSON(w, http.StatusOK, map[string]any{"Description": tpl.Description, "Parameters": params})
}

func setBounds(v map[string]any, b *templates.Bounds, lo, hi string) {
	if b.Min != nil {
		v[lo] = *b.Min
	}
	if b.Max != nil {
		v[hi] = *b.Max
	}
}
