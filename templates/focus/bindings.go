package focus

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cloudmux/cloudmux/registry"
	"github.com/cloudmux/cloudmux/templates"
)

// BindingSpec is what a user writes: the template version to bind
// ("NAME@VERSION", or "NAME" for the latest when pushed), parameter values
// and placement overrides by resource name.
type BindingSpec struct {
	Template    string                         `json:"template" yaml:"template"`
	Description string                         `json:"description,omitempty" yaml:"description,omitempty"`
	Parameters  map[string]any                 `json:"parameters,omitempty" yaml:"parameters,omitempty"`
	Placement   map[string]templates.Placement `json:"placement,omitempty" yaml:"placement,omitempty"`
}

// Binding is one immutable binding version.
type Binding struct {
	BindingSpec
	Name            string    `json:"name"`
	Version         int       `json:"version"`
	Hash            string    `json:"hash"`
	TemplateName    string    `json:"template_name"`
	TemplateVersion int       `json:"template_version"`
	CreatedAt       time.Time `json:"created_at"`
	CreatedBy       string    `json:"created_by,omitempty"`
}

// Ref is "NAME@VERSION".
func (b Binding) Ref() string { return fmt.Sprintf("%s@%d", b.Name, b.Version) }

// ParseBindingSpec reads a binding document (YAML or JSON).
func ParseBindingSpec(src []byte) (BindingSpec, error) {
	var s BindingSpec
	if err := yaml.Unmarshal(src, &s); err != nil {
		return s, fmt.Errorf("%w: binding document: %v", ErrInvalid, err)
	}
	if m, ok := templates.NormalizeValue(s.Parameters).(map[string]any); ok {
		s.Parameters = m
	}
	return s, nil
}

// PushBinding stores spec as the next version of binding name, or returns
// the version that already holds the same content. The template version
// must exist, the parameters must satisfy it and the placement overrides
// must name its resources.
func (c *Catalog) PushBinding(ctx context.Context, name string, spec BindingSpec, by string) (Binding, bool, error) {
	if err := ValidName(name); err != nil {
		return Binding{}, false, err
	}
	tn, tv, _ := strings.Cut(spec.Template, "@")
	v, err := c.Get(ctx, tn, tv)
	if err != nil {
		return Binding{}, false, fmt.Errorf("template %q: %w", spec.Template, err)
	}
	spec.Template = v.Ref()
	t, err := v.Template()
	if err != nil {
		return Binding{}, false, err
	}
	flat, err := templates.Flatten(ctx, t, c)
	if err != nil {
		return Binding{}, false, err
	}
	var errs []error
	if _, err := flat.ResolveParameters(spec.Parameters); err != nil {
		errs = append(errs, err)
	}
	for rn := range spec.Placement {
		if flat.Resources[rn] == nil {
			errs = append(errs, &templates.Problem{Path: "placement." + rn, Reason: "no such resource in " + v.Ref()})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Binding{}, false, err
	}
	canon, err := json.Marshal(spec)
	if err != nil {
		return Binding{}, false, err
	}
	sum := sha256.Sum256(canon)
	hash := hex.EncodeToString(sum[:])
	if existing, err := c.byHash(ctx, "bindings", name, hash); err == nil {
		b, err := c.GetBinding(ctx, name, existing)
		return b, false, err
	} else if !errors.Is(err, ErrNotFound) {
		return Binding{}, false, err
	}
	b := Binding{BindingSpec: spec, Name: name, Hash: hash, TemplateName: v.Name, TemplateVersion: v.Version,
		CreatedAt: c.now(), CreatedBy: by}
	n, err := c.create(ctx, "bindings", name, hash, func(n int) any { b.Version = n; return b })
	if err != nil {
		var taken errHashTaken
		if errors.As(err, &taken) {
			b, err := c.GetBinding(ctx, name, strconv.Itoa(int(taken)))
			return b, false, err
		}
		return Binding{}, false, err
	}
	b.Version = n
	return b, true, c.RecordUse(ctx, v.Ref(), "binding:"+b.Ref())
}

// GetBinding returns version ("3", "latest" or "") of binding name.
func (c *Catalog) GetBinding(ctx context.Context, name, version string) (Binding, error) {
	var b Binding
	err := c.get(ctx, "bindings", name, version, &b)
	return b, err
}

// BindingVersions lists every version of binding name, oldest first.
func (c *Catalog) BindingVersions(ctx context.Context, name string) ([]Binding, error) {
	kvs, _, err := c.Store.List(ctx, fmt.Sprintf("%sbindings/%s/versions/", prefix, name))
	if err != nil {
		return nil, err
	}
	out := make([]Binding, 0, len(kvs))
	for _, kv := range kvs {
		var b Binding
		if err := json.Unmarshal(kv.Value, &b); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// Bindings lists the latest version of every binding, by name.
func (c *Catalog) Bindings(ctx context.Context) ([]Binding, error) {
	kvs, _, err := c.Store.List(ctx, prefix+"bindings/")
	if err != nil {
		return nil, err
	}
	var out []Binding
	for _, kv := range kvs {
		if !strings.Contains(kv.Key, "/versions/") {
			continue
		}
		var b Binding
		if err := json.Unmarshal(kv.Value, &b); err != nil {
			return nil, err
		}
		if n := len(out); n > 0 && out[n-1].Name == b.Name {
			out[n-1] = b
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

func isConflict(err error) bool { return errors.Is(err, registry.ErrConflict) }
