package templates

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel errors. Every validation problem wraps ErrInvalid so a caller
// can map the whole joined list to one 400 with errors.Is.
var (
	// ErrInvalid: the template (or the parameters given to it) is wrong;
	// the joined Problems say where and why.
	ErrInvalid = errors.New("templates: invalid template")
	// ErrSyntax: the document is not YAML, or not a mapping at the top.
	ErrSyntax = errors.New("templates: not a template document")
	// ErrUnresolved: an intrinsic function refers to something not known
	// yet (a resource not created, an attribute not reported).
	ErrUnresolved = errors.New("templates: reference not resolved yet")
)

// Problem is one thing wrong with a template, at a dotted path such as
// "resources.web.properties.flavor".
type Problem struct {
	Path   string `json:"path"`
	Reason string `json:"reason"`
}

func (p *Problem) Error() string {
	if p.Path == "" {
		return p.Reason
	}
	return p.Path + ": " + p.Reason
}

// Is makes errors.Is(p, ErrInvalid) true.
func (p *Problem) Is(target error) bool { return target == ErrInvalid }

// problems collects Problems while a pass walks a template.
type problems []*Problem

func (ps *problems) add(path, format string, args ...any) {
	*ps = append(*ps, &Problem{Path: path, Reason: fmt.Sprintf(format, args...)})
}

// err joins the problems, sorted by path so reports are stable, or nil.
func (ps problems) err() error {
	if len(ps) == 0 {
		return nil
	}
	sorted := append(problems(nil), ps...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	errs := make([]error, len(sorted))
	for i, p := range sorted {
		errs[i] = p
	}
	return errors.Join(errs...)
}

// Problems extracts the Problems of an error returned by Parse, Validate
// or ResolveParameters, for an API that reports them field by field.
func Problems(err error) []*Problem {
	var out []*Problem
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		if p, ok := e.(*Problem); ok {
			out = append(out, p)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
			return
		}
		if u := errors.Unwrap(e); u != nil {
			walk(u)
		}
	}
	walk(err)
	return out
}

func join(path string, elems ...string) string {
	parts := make([]string, 0, len(elems)+1)
	if path != "" {
		parts = append(parts, path)
	}
	parts = append(parts, elems...)
	return strings.Join(parts, ".")
}
