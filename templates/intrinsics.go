package templates

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// functions are the intrinsic functions a value may call. list_join is
// HOT's name for join.
var functions = map[string]bool{
	"get_param": true, "get_resource": true, "get_attr": true, "join": true, "list_join": true,
	"str_replace": true, "if": true, "equals": true, "not": true, "and": true, "or": true,
}

// isCall reports whether m is a function call: a one-key map naming a
// function.
func isCall(m map[string]any) bool {
	if len(m) != 1 {
		return false
	}
	for k := range m {
		return functions[k]
	}
	return false
}

func call(v any) (fn string, args any, ok bool) {
	m, isMap := v.(map[string]any)
	if !isMap || !isCall(m) {
		return "", nil, false
	}
	for k, a := range m {
		return k, a, true
	}
	return "", nil, false
}

// visit calls fn for every function call in v, outermost first, with the
// path of the call.
func visit(v any, path string, fn func(path, name string, args any)) {
	switch x := v.(type) {
	case map[string]any:
		if name, args, ok := call(x); ok {
			fn(path, name, args)
			visit(args, join(path, name), fn)
			return
		}
		for _, k := range sortedKeys(x) {
			visit(x[k], join(path, k), fn)
		}
	case []any:
		for i, e := range x {
			visit(e, fmt.Sprintf("%s[%d]", path, i), fn)
		}
	}
}

// refs are the names an expression refers to.
type refs struct {
	resources  map[string]bool // get_resource and get_attr targets
	params     map[string]bool
	conditions map[string]bool // if's condition names
}

func collectRefs(v any) refs {
	r := refs{resources: map[string]bool{}, params: map[string]bool{}, conditions: map[string]bool{}}
	visit(v, "", func(_, name string, args any) {
		switch name {
		case "get_resource":
			if s, ok := args.(string); ok {
				r.resources[s] = true
			}
		case "get_attr":
			if l, ok := args.([]any); ok && len(l) > 0 {
				if s, ok := l[0].(string); ok {
					r.resources[s] = true
				}
			}
		case "get_param":
			if s, ok := args.(string); ok {
				r.params[s] = true
			} else if l, ok := args.([]any); ok && len(l) > 0 {
				if s, ok := l[0].(string); ok {
					r.params[s] = true
				}
			}
		case "if":
			if l, ok := args.([]any); ok && len(l) == 3 {
				if s, ok := l[0].(string); ok {
					r.conditions[s] = true
				}
			}
		}
	})
	return r
}

// Symbol stands for a value not known yet (a resource's ID before it
// exists) during planning: it carries the expression, so two plans of the
// same expression compare equal.
type Symbol string

// Scope is what evaluation reads: parameter values, evaluated conditions,
// and resource IDs and attributes.
type Scope struct {
	Params     map[string]any
	Conditions map[string]bool
	// Resource returns the ID (or, for a counted resource, the IDs) of a
	// resource; nil means every reference is a Symbol (planning).
	Resource func(name string) (any, error)
	// Attr returns an attribute of a resource, path applied.
	Attr func(name, attr string, path []any) (any, error)
	// Index replaces "%index%" in strings when >= 0 (a replica's index).
	Index int
}

// Eval resolves every function call in v.
func (s *Scope) Eval(v any) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		if name, args, ok := call(x); ok {
			return s.call(name, args)
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := s.Eval(e)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			r, err := s.Eval(e)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case string:
		if s.Index >= 0 && strings.Contains(x, "%index%") {
			return strings.ReplaceAll(x, "%index%", strconv.Itoa(s.Index)), nil
		}
	}
	return v, nil
}

func (s *Scope) call(name string, args any) (any, error) {
	switch name {
	case "get_param":
		return s.getParam(args)
	case "get_resource":
		rn, ok := args.(string)
		if !ok {
			return nil, fmt.Errorf("get_resource: want a resource name")
		}
		if s.Resource == nil {
			return Symbol("get_resource:" + rn), nil
		}
		return s.Resource(rn)
	case "get_attr":
		l, ok := args.([]any)
		if !ok || len(l) < 2 {
			return nil, fmt.Errorf("get_attr: want [resource, attribute, path...]")
		}
		ev, err := s.Eval(l)
		if err != nil {
			return nil, err
		}
		l = ev.([]any)
		rn, ok1 := l[0].(string)
		an, ok2 := l[1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("get_attr: resource and attribute must be names")
		}
		if s.Attr == nil {
			return Symbol(fmt.Sprintf("get_attr:%s.%s%v", rn, an, l[2:])), nil
		}
		return s.Attr(rn, an, l[2:])
	case "join", "list_join":
		return s.join(name, args)
	case "str_replace":
		return s.strReplace(args)
	case "if":
		l, ok := args.([]any)
		if !ok || len(l) != 3 {
			return nil, fmt.Errorf("if: want [condition, value if true, value if false]")
		}
		c, err := s.Condition(l[0])
		if err != nil {
			return nil, err
		}
		if c {
			return s.Eval(l[1])
		}
		return s.Eval(l[2])
	case "equals", "not", "and", "or":
		return s.Condition(map[string]any{name: args})
	}
	return nil, fmt.Errorf("unknown function %s", name)
}

func (s *Scope) getParam(args any) (any, error) {
	var path []any
	switch a := args.(type) {
	case string:
		path = []any{a}
	case []any:
		ev, err := s.Eval(a)
		if err != nil {
			return nil, err
		}
		path = ev.([]any)
	}
	if len(path) == 0 {
		return nil, fmt.Errorf("get_param: want a parameter name")
	}
	name, ok := path[0].(string)
	if !ok {
		return nil, fmt.Errorf("get_param: want a parameter name")
	}
	v, ok := s.Params[name]
	if !ok {
		return nil, fmt.Errorf("get_param: no parameter %q", name)
	}
	return Dig(v, path[1:])
}

// Dig follows keys and indexes into a value.
func Dig(v any, path []any) (any, error) {
	for _, p := range path {
		switch x := v.(type) {
		case map[string]any:
			k, _ := scalarString(p)
			e, ok := x[k]
			if !ok {
				return nil, fmt.Errorf("no key %q", k)
			}
			v = e
		case []any:
			i, ok := index(p)
			if !ok || i < 0 || i >= len(x) {
				return nil, fmt.Errorf("no index %v in a list of %d", p, len(x))
			}
			v = x[i]
		case Symbol:
			return Symbol(fmt.Sprintf("%s%v", x, path)), nil
		default:
			return nil, fmt.Errorf("cannot index %T with %v", v, p)
		}
	}
	return v, nil
}

func index(p any) (int, bool) {
	switch x := p.(type) {
	case int64:
		return int(x), true
	case float64:
		return int(x), x == float64(int(x))
	case string:
		i, err := strconv.Atoi(x)
		return i, err == nil
	}
	return 0, false
}

// join takes [sep, list...]: Eve's join with one list, HOT's list_join
// with several.
func (s *Scope) join(name string, args any) (any, error) {
	ev, err := s.Eval(args)
	if err != nil {
		return nil, err
	}
	l, ok := ev.([]any)
	if !ok || len(l) < 2 {
		return nil, fmt.Errorf("%s: want [separator, list...]", name)
	}
	sep, ok := l[0].(string)
	if !ok {
		return nil, fmt.Errorf("%s: the separator must be a string", name)
	}
	var parts []string
	symbolic := false
	for _, e := range l[1:] {
		items, ok := e.([]any)
		if !ok {
			if sym, isSym := e.(Symbol); isSym {
				parts, symbolic = append(parts, string(sym)), true
				continue
			}
			return nil, fmt.Errorf("%s: want lists to join", name)
		}
		for _, it := range items {
			switch x := it.(type) {
			case Symbol:
				parts, symbolic = append(parts, "${"+string(x)+"}"), true
			case map[string]any, []any:
				b, _ := json.Marshal(x)
				parts = append(parts, string(b))
			case nil:
				parts = append(parts, "")
			default:
				parts = append(parts, fmt.Sprint(x))
			}
		}
	}
	out := strings.Join(parts, sep)
	if symbolic {
		return Symbol("join:" + out), nil
	}
	return out, nil
}

func (s *Scope) strReplace(args any) (any, error) {
	m, ok := args.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("str_replace: want {template, params}")
	}
	tv, err := s.Eval(m["template"])
	if err != nil {
		return nil, err
	}
	pv, err := s.Eval(m["params"])
	if err != nil {
		return nil, err
	}
	tmpl, ok := tv.(string)
	params, ok2 := pv.(map[string]any)
	if !ok || !ok2 {
		if sym, isSym := tv.(Symbol); isSym {
			return Symbol("str_replace:" + string(sym)), nil
		}
		return nil, fmt.Errorf("str_replace: template must be a string and params a mapping")
	}
	// Longest keys first, as Heat does, so "$var1" is not eaten by "$var".
	keys := sortedKeys(params)
	sort.SliceStable(keys, func(i, j int) bool { return len(keys[i]) > len(keys[j]) })
	symbolic := false
	for _, k := range keys {
		var with string
		switch x := params[k].(type) {
		case Symbol:
			with, symbolic = "${"+string(x)+"}", true
		case string:
			with = x
		case nil:
			with = ""
		case map[string]any, []any:
			b, _ := json.Marshal(x)
			with = string(b)
		default:
			with = fmt.Sprint(x)
		}
		tmpl = strings.ReplaceAll(tmpl, k, with)
	}
	if symbolic {
		return Symbol("str_replace:" + tmpl), nil
	}
	return tmpl, nil
}

// Condition evaluates a condition: a boolean, a condition's name, or an
// expression of equals, not, and, or and get_param.
func (s *Scope) Condition(v any) (bool, error) {
	switch x := v.(type) {
	case nil:
		return true, nil
	case bool:
		return x, nil
	case string:
		c, ok := s.Conditions[x]
		if !ok {
			return false, fmt.Errorf("no condition %q", x)
		}
		return c, nil
	}
	name, args, ok := call(v)
	if !ok {
		return false, fmt.Errorf("want a condition name, a boolean or equals/not/and/or")
	}
	switch name {
	case "equals":
		l, ok := args.([]any)
		if !ok || len(l) != 2 {
			return false, fmt.Errorf("equals: want [a, b]")
		}
		a, err := s.Eval(l[0])
		if err != nil {
			return false, err
		}
		b, err := s.Eval(l[1])
		if err != nil {
			return false, err
		}
		return equalValues(a, b), nil
	case "not":
		c, err := s.Condition(args)
		return !c, err
	case "and", "or":
		l, ok := args.([]any)
		if !ok || len(l) < 2 {
			return false, fmt.Errorf("%s: want a list of at least two conditions", name)
		}
		for _, e := range l {
			c, err := s.Condition(e)
			if err != nil {
				return false, err
			}
			if c == (name == "or") {
				return c, nil
			}
		}
		return name == "and", nil
	case "get_param":
		p, err := s.getParam(args)
		if err != nil {
			return false, err
		}
		b, ok := p.(bool)
		if !ok {
			return false, fmt.Errorf("get_param in a condition: want a boolean parameter")
		}
		return b, nil
	}
	return false, fmt.Errorf("%s is not a condition function", name)
}

func equalValues(a, b any) bool {
	if fa, ok := number(a); ok {
		if fb, ok := number(b); ok {
			return fa == fb
		}
	}
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

// EvalConditions evaluates every named condition with params, in any
// order (a condition may name another); a cycle is an error.
func EvalConditions(conds map[string]any, params map[string]any) (map[string]bool, error) {
	out := map[string]bool{}
	state := map[string]int{} // 1 evaluating, 2 done
	var eval func(name string) (bool, error)
	s := &Scope{Params: params, Index: -1}
	s.Conditions = out
	eval = func(name string) (bool, error) {
		switch state[name] {
		case 2:
			return out[name], nil
		case 1:
			return false, fmt.Errorf("conditions.%s: refers to itself", name)
		}
		expr, ok := conds[name]
		if !ok {
			return false, fmt.Errorf("no condition %q", name)
		}
		state[name] = 1
		for _, dep := range conditionNames(expr) {
			if _, err := eval(dep); err != nil {
				return false, err
			}
		}
		c, err := s.Condition(expr)
		if err != nil {
			return false, fmt.Errorf("conditions.%s: %w", name, err)
		}
		out[name], state[name] = c, 2
		return c, nil
	}
	for _, name := range sortedKeys(conds) {
		if _, err := eval(name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// conditionNames lists the condition names an expression refers to: bare
// strings where a condition is expected.
func conditionNames(v any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case string:
			out = append(out, x)
		case map[string]any:
			name, args, ok := call(x)
			if !ok {
				return
			}
			switch name {
			case "not":
				walk(args)
			case "and", "or":
				if l, ok := args.([]any); ok {
					for _, e := range l {
						walk(e)
					}
				}
			}
		}
	}
	walk(v)
	return out
}
