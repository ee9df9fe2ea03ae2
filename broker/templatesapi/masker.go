package templatesapi

import (
	"context"

	"github.com/cloudmux/cloudmux/templates/deploy"
)

// Masker hides a deployment's hidden parameter values, for the other
// front ends over the engine (Heat's API) to show what this API shows.
type Masker struct{ m *masker }

// MaskerFor knows the hidden values of specs (a deployment's current and
// last applied spec) as project sees the catalog.
func (a *API) MaskerFor(ctx context.Context, project string, specs ...*deploy.Spec) Masker {
	return Masker{a.maskerFor(ctx, project, specs...)}
}

// String replaces every hidden value inside s.
func (m Masker) String(s string) string { return m.m.str(s) }

// Value returns v with hidden values masked, deeply.
func (m Masker) Value(v any) any { return m.m.value(v) }

// Params shows given parameters with the hidden ones masked.
func (m Masker) Params(given map[string]any) map[string]any { return m.m.params(given) }

// Hidden reports whether the parameter name is hidden.
func (m Masker) Hidden(name string) bool { return m.m.names[name] }

// Source masks the hidden defaults in a template's source (one that
// cannot be analysed is withheld: "").
func (a *API) Source(ctx context.Context, project, source string) string {
	return a.maskSource(ctx, project, source)
}
