package focus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/cloudmux/cloudmux/registry"
)

// A published version is readable by every project. The public name
// space is one: a name belongs to the first project that publishes a
// version under it, and only that project publishes more of it.
//
//	focus/public/templates/NAME/owner            the owning project
//	focus/public/templates/NAME/versions/%08d    a Publication

// Publication records that a version was made public.
type Publication struct {
	Project     string    `json:"project"`
	Name        string    `json:"name"`
	Version     int       `json:"version"`
	PublishedAt time.Time `json:"published_at"`
	PublishedBy string    `json:"published_by,omitempty"`
}

func publicPrefix(name string) string { return prefix + "public/templates/" + name + "/" }

func publicVersionKey(name string, v int) string {
	return versionIn(publicPrefix(name)+"versions/", v)
}

// Publish makes version of the project's own template name public:
// readable, deployable and nestable by every project, writable by none
// but the owner (who may only add versions). The caller checks that a
// cloud admin asks. What the version extends or nests must be public
// already, so it resolves the same for everyone. Publishing twice is a
// no-op.
func (c *Catalog) Publish(ctx context.Context, project, name, version, by string) (Version, error) {
	if err := validProject(project); err != nil {
		return Version{}, err
	}
	if ValidName(name) != nil {
		return Version{}, fmt.Errorf("%w: template %q", ErrNotFound, name)
	}
	v, err := c.own(ctx, project, name, version)
	if err != nil {
		return Version{}, err
	}
	for _, u := range v.Uses {
		un, uv, _ := strings.Cut(u, "@")
		used, err := c.Get(ctx, project, un, uv)
		if err != nil {
			return Version{}, fmt.Errorf("uses %s: %w", u, err)
		}
		if !used.Public {
			return Version{}, fmt.Errorf("%w: %s uses %s, which is not public: publish it first", ErrInvalid, v.Ref(), u)
		}
	}
	if _, err := c.Store.CAS(ctx, publicPrefix(name)+"owner", []byte(project), 0); errors.Is(err, registry.ErrConflict) {
		owner, err := c.publicOwner(ctx, name)
		if err != nil {
			return Version{}, err
		}
		if owner != project {
			return Version{}, fmt.Errorf("%w: the public name %q belongs to another project", ErrInUse, name)
		}
	} else if err != nil {
		return Version{}, err
	}
	p := Publication{Project: project, Name: name, Version: v.Version, PublishedAt: c.now(), PublishedBy: by}
	b, err := json.Marshal(p)
	if err != nil {
		return Version{}, err
	}
	if idx, err := c.Store.CAS(ctx, publicVersionKey(name, v.Version), b, 0); err == nil {
		c.Memory.wrote(publicVersionKey(name, v.Version), b, idx)
	} else if !isConflict(err) {
		return Version{}, err
	}
	v.Public = true
	return v, nil
}

func (c *Catalog) publicOwner(ctx context.Context, name string) (string, error) {
	kv, err := c.Store.Get(ctx, publicPrefix(name)+"owner")
	if errors.Is(err, registry.ErrNotFound) {
		return "", fmt.Errorf("%w: template %q", ErrNotFound, name)
	}
	if err != nil {
		return "", err
	}
	return string(kv.Value), nil
}

// public reads a published version ("3", "latest" or "").
func (c *Catalog) public(ctx context.Context, name, version string) (Version, error) {
	n, err := c.versionNumber(ctx, publicPrefix(name)+"versions/", fmt.Sprintf("template %q", name), version)
	if err != nil {
		return Version{}, err
	}
	kv, err := c.Store.Get(ctx, publicVersionKey(name, n))
	if errors.Is(err, registry.ErrNotFound) {
		return Version{}, fmt.Errorf("%w: template %s@%d", ErrNotFound, name, n)
	}
	if err != nil {
		return Version{}, err
	}
	var p Publication
	if err := json.Unmarshal(kv.Value, &p); err != nil {
		return Version{}, err
	}
	v, err := c.own(ctx, p.Project, p.Name, strconv.Itoa(p.Version))
	v.Public = err == nil
	return v, err
}

// isPublic reports whether the project's own version v is published.
func (c *Catalog) isPublic(ctx context.Context, v Version) bool {
	kv, err := c.Store.Get(ctx, publicVersionKey(v.Name, v.Version))
	if err != nil {
		return false
	}
	var p Publication
	return json.Unmarshal(kv.Value, &p) == nil && p.Project == v.Project
}

// publishedNumbers are the published version numbers of the project's
// template name.
func (c *Catalog) publishedNumbers(ctx context.Context, project, name string) (map[int]bool, error) {
	pubs, err := c.publications(ctx, publicPrefix(name)+"versions/")
	if err != nil {
		return nil, err
	}
	out := map[int]bool{}
	for _, p := range pubs {
		if p.Project == project {
			out[p.Version] = true
		}
	}
	return out, nil
}

// publications returns the Publications under prefix (one template's
// versions, or every public template's), by name then version: from
// memory when it runs.
func (c *Catalog) publications(ctx context.Context, under string) ([]Publication, error) {
	var out []Publication
	if c.Memory.loaded() {
		ss := c.Memory.versions(under)
		if under == prefix+"public/templates/" {
			ss = c.Memory.all(under)
		}
		for _, s := range ss {
			out = append(out, *s.Publication)
		}
		return out, nil
	}
	kvs, _, err := c.Store.List(ctx, under)
	if err != nil {
		return nil, err
	}
	for _, kv := range kvs {
		if !strings.Contains(kv.Key, "/versions/") {
			continue
		}
		var p Publication
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// publicVersions lists the published versions of name, oldest first.
func (c *Catalog) publicVersions(ctx context.Context, name string) ([]Version, error) {
	kvs, _, err := c.Store.List(ctx, publicPrefix(name)+"versions/")
	if err != nil {
		return nil, err
	}
	out := make([]Version, 0, len(kvs))
	for _, kv := range kvs {
		var p Publication
		if err := json.Unmarshal(kv.Value, &p); err != nil {
			return nil, err
		}
		v, err := c.own(ctx, p.Project, p.Name, strconv.Itoa(p.Version))
		if err != nil {
			return nil, err
		}
		v.Public = true
		out = append(out, v)
	}
	return out, nil
}

// addPublic marks the project's own summaries whose latest version is
// published and appends the public templates whose names are not in own.
func (c *Catalog) addPublic(ctx context.Context, project string, own []Summary) ([]Summary, error) {
	pubs, err := c.publications(ctx, prefix+"public/templates/")
	if err != nil {
		return nil, err
	}
	taken := map[string]bool{}
	for _, s := range own {
		taken[s.Name] = true
	}
	latest := map[string]Publication{}
	for _, p := range pubs {
		if !taken[p.Name] && p.Version > latest[p.Name].Version {
			latest[p.Name] = p
		}
		if p.Project == project {
			for i := range own {
				if own[i].Name == p.Name && own[i].Latest == p.Version {
					own[i].Public = true
				}
			}
		}
	}
	out := own
	for _, p := range latest {
		v, err := c.summary(ctx, p.Project, p.Name, p.Version)
		if err != nil {
			return nil, err
		}
		out = append(out, Summary{Name: v.Name, Latest: v.Version, Description: v.Description, UpdatedAt: v.CreatedAt, Public: true})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// summary returns a template version for a list: from memory when it
// runs (without its source), else from the Store.
func (c *Catalog) summary(ctx context.Context, project, name string, version int) (Version, error) {
	if c.Memory.loaded() {
		if s, ok := c.Memory.get(versionKey(project, "templates", name, version)); ok && s.Version != nil {
			v := *s.Version
			if v.Project == "" {
				v.Project = project
			}
			return v, nil
		}
	}
	return c.own(ctx, project, name, strconv.Itoa(version))
}
