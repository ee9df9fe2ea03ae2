package templates

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// ResolveParameters merges given values over the defaults, converts them
// to each parameter's type (HOT passes "a,b" for lists and JSON text for
// maps, and a CLI passes everything as text) and checks the constraints.
// Every problem is reported, at "parameters.NAME".
func (t *Template) ResolveParameters(given map[string]any) (map[string]any, error) {
	var ps problems
	out := make(map[string]any, len(t.Parameters))
	for _, name := range sortedKeys(given) {
		if _, ok := t.Parameters[name]; !ok {
			ps.add(join("parameters", name), "not a parameter of this template")
		}
	}
	for _, name := range sortedKeys(t.Parameters) {
		p := t.Parameters[name]
		path := join("parameters", name)
		v, ok := given[name]
		if !ok {
			if !p.HasDefault {
				ps.add(path, "required: the template gives no default")
				continue
			}
			v = p.Default
		}
		cv, err := coerce(p.Type, v)
		if err != nil {
			ps.add(path, "%v", err)
			continue
		}
		for _, c := range p.Constraints {
			if reason := c.check(cv); reason != "" {
				ps.add(path, "%s", reason)
			}
		}
		out[name] = cv
	}
	return out, ps.err()
}

// coerce converts v to typ.
func coerce(typ ParamType, v any) (any, error) {
	switch typ {
	case TypeString:
		if s, ok := scalarString(v); ok {
			return s, nil
		}
		if v == nil {
			return "", nil
		}
		return nil, fmt.Errorf("want a string, got %s", typeName(v))
	case TypeNumber:
		if _, ok := number(v); ok {
			if i, isInt := v.(int); isInt {
				return int64(i), nil
			}
			return v, nil
		}
		if s, ok := v.(string); ok {
			if i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
				return i, nil
			}
			if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
				return f, nil
			}
		}
		return nil, fmt.Errorf("want a number, got %s", typeName(v))
	case TypeBoolean:
		switch x := v.(type) {
		case bool:
			return x, nil
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "true", "yes", "on", "1", "t", "y":
				return true, nil
			case "false", "no", "off", "0", "f", "n":
				return false, nil
			}
		case int64:
			if x == 0 || x == 1 {
				return x == 1, nil
			}
		}
		return nil, fmt.Errorf("want a boolean, got %s", typeName(v))
	case TypeList:
		switch x := v.(type) {
		case []any:
			return x, nil
		case []string:
			out := make([]any, len(x))
			for i, s := range x {
				out[i] = s
			}
			return out, nil
		case string:
			return splitList(x), nil
		}
		return nil, fmt.Errorf("want a list, got %s", typeName(v))
	case TypeMap:
		switch x := v.(type) {
		case map[string]any:
			return x, nil
		case string:
			var m map[string]any
			if err := json.Unmarshal([]byte(x), &m); err != nil {
				return nil, fmt.Errorf("want a mapping (or JSON text of one): %v", err)
			}
			return normalizeJSON(m), nil
		}
		return nil, fmt.Errorf("want a mapping, got %s", typeName(v))
	}
	return nil, fmt.Errorf("the parameter has no valid type")
}

// normalizeJSON turns encoding/json's numbers into the int64/float64 the
// YAML decoder produces, so values compare the same either way.
func normalizeJSON(v any) map[string]any {
	n, _ := NormalizeValue(v).(map[string]any)
	return n
}

// NormalizeValue converts a value decoded from JSON (float64 numbers,
// json.Number) to the template's value shapes: integral numbers become
// int64. Templates' values are compared and hashed in this shape.
func NormalizeValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = NormalizeValue(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = NormalizeValue(e)
		}
		return out
	case float64:
		if x == float64(int64(x)) && x < 1<<53 && x > -(1<<53) {
			return int64(x)
		}
		return x
	case int:
		return int64(x)
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "nothing"
	case string:
		return "a string"
	case int64, float64, int:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	return fmt.Sprintf("%T", v)
}

// check returns why v breaks the constraint, or "".
func (c Constraint) check(v any) string {
	why := func(format string, args ...any) string {
		if c.Description != "" {
			return c.Description
		}
		return fmt.Sprintf(format, args...)
	}
	switch {
	case c.AllowedValues != nil:
		for _, a := range c.AllowedValues {
			if equalValues(a, v) {
				return ""
			}
		}
		return why("%v is not one of %v", v, c.AllowedValues)
	case c.Range != nil:
		f, ok := number(v)
		if !ok {
			return why("range applies to numbers")
		}
		if !c.Range.contains(f) {
			return why("%v is outside %s", v, c.Range)
		}
	case c.Length != nil:
		var n int
		switch x := v.(type) {
		case string:
			n = utf8.RuneCountInString(x)
		case []any:
			n = len(x)
		case map[string]any:
			n = len(x)
		default:
			return why("length applies to strings, lists and mappings")
		}
		if !c.Length.contains(float64(n)) {
			return why("length %d is outside %s", n, c.Length)
		}
	case c.Pattern != "":
		s, ok := v.(string)
		if !ok {
			return why("pattern applies to strings")
		}
		re, err := compilePattern(c.Pattern)
		if err != nil {
			return why("pattern %q does not compile: %v", c.Pattern, err)
		}
		if !re.MatchString(s) {
			return why("%q does not match %q", s, c.Pattern)
		}
	}
	return ""
}

// compilePattern anchors the pattern: the whole value must match, as in Heat.
func compilePattern(p string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + p + `)$`)
}

func (b *Bounds) contains(f float64) bool {
	return (b.Min == nil || f >= *b.Min) && (b.Max == nil || f <= *b.Max)
}

func (b *Bounds) String() string {
	lo, hi := "-inf", "+inf"
	if b.Min != nil {
		lo = strconv.FormatFloat(*b.Min, 'g', -1, 64)
	}
	if b.Max != nil {
		hi = strconv.FormatFloat(*b.Max, 'g', -1, 64)
	}
	return "[" + lo + ", " + hi + "]"
}
