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
	// Project owns the binding; its template is the project's own or public.
	Project         string    `json:"project"`
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

// PushBinding stores spec as the next version of the project's binding
// name, or returns the version that already holds the same content. The
// template version must be the project's own or public, the parameters
// must satisfy it and the placement overrides must name its resources.
func (c *Catalog) PushBinding(ctx context.Context, project, name string, spec BindingSpec, by string) (Binding, bool, error) {
	if err := validProject(project); err != nil {
		return Binding{}, false, err
	}
	if err := ValidName(name); err != nil {
		return Binding{}, false, err
	}
	tn, tv, _ := strings.Cut(spec.Template, "@")
	v, err := c.Get(ctx, project, tn, tv)
	if err != nil {
		return Binding{}, false, fmt.Errorf("template %q: %w", spec.Template, err)
	}
	spec.Template = v.Ref()
	t, err := v.Template()
	if err != nil {
		return Binding{}, false, err
	}
	flat, err := templates.Flatten(ctx, t, c.For(project))
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
	if existing, err := c.byHash(ctx, project, "bindings", name, hash); err == nil {
		b, err := c.GetBinding(ctx, project, name, existing)
		return b, false, err
	} else if !errors.Is(err, ErrNotFound) {
		return Binding{}, false, err
	}
	b := Binding{BindingSpec: spec, Project: project, Name: name, Hash: hash, TemplateName: v.Name, TemplateVersion: v.Version,
		CreatedAt: c.now(), CreatedBy: by}
	n, err := c.create(ctx, project, "bindings", name, hash, func(n int) any { b.Version = n; return b })
	if err != nil {
		var taken errHashTaken
		if errors.As(err, &taken) {
			b, err := c.GetBinding(ctx, project, name, strconv.Itoa(int(taken)))
			return b, false, err
		}
		return Binding{}, false, err
	}
	b.Version = n
	return b, true, c.RecordUse(ctx, project, v.Ref(), "binding:"+b.Ref())
}

// GetBinding returns version ("3", "latest" or "") of the project's
// binding name; another project's is not found.
func (c *Catalog) GetBinding(ctx context.Context, project, name, version string) (Binding, error) {
	var b Binding
	if err := validProject(project); err != nil {
		return b, err
	}
	if ValidName(name) != nil {
		return b, fmt.Errorf("%w: binding %q", ErrNotFound, name)
	}
	err := c.get(ctx, project, "bindings", name, version, &b)
	b.Project = project
	return b, err
}

// BindingVersions lists every version of the project's binding name,
// oldest first.
func (c *Catalog) BindingVersions(ctx context.Context, project, name string) ([]Binding, error) {
	if err := validProject(project); err != nil {
		return nil, err
	}
	if ValidName(name) != nil {
		return nil, nil
	}
	kvs, _, err := c.Store.List(ctx, versionsPrefix(project, "bindings", name))
	if err != nil {
		return nil, err
	}
	out := make([]Binding, 0, len(kvs))
	for _, kv := range kvs {
		var b Binding
		if err := json.Unmarshal(kv.Value, &b); err != nil {
			return nil, err
		}
		b.Project = project
		out = append(out, b)
	}
	return out, nil
}

// Bindings lists the latest version of each of the project's bindings, by
// name.
func (c *Catalog) Bindings(ctx context.Context, project string) ([]Binding, error) {
	if err := validProject(project); err != nil {
		return nil, err
	}
	if c.Memory.loaded() {
		var out []Binding
		for _, s := range c.Memory.latestIn(projectPrefix(project) + "bindings/") {
			b := *s.Binding
			b.Project = project
			out = append(out, b)
		}
		return out, nil
	}
	kvs, _, err := c.Store.List(ctx, projectPrefix(project)+"bindings/")
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
		b.Project = project
		if n := len(out); n > 0 && out[n-1].Name == b.Name {
			out[n-1] = b
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

func isConflict(err error) bool { return errors.Is(err, registry.ErrConflict) }
