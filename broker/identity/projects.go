package identity

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// Projects nest as Keystone's: a project's parent is another project of
// the same domain (none: the domain itself is its parent), at most
// MaxProjectDepth deep; a parent with children is not deleted. Tags are
// Keystone's: at most MaxProjectTags, each 1-255 characters without '/'
// or ','.

const (
	// MaxProjectDepth is Keystone's default max_project_tree_depth.
	MaxProjectDepth = 5
	// MaxProjectTags is Keystone's limit on a project's tags.
	MaxProjectTags = 80
)

// validTags checks a project's tags.
func validTags(field string, tags []string) error {
	if len(tags) > MaxProjectTags {
		return &registry.FieldError{Field: field, Reason: fmt.Sprintf("a project holds at most %d tags", MaxProjectTags)}
	}
	for i, t := range tags {
		if t == "" || len(t) > 255 || strings.ContainsAny(t, "/,") || strings.ContainsFunc(t, func(r rune) bool { return r < 0x20 }) {
			return &registry.FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: "a tag is 1-255 characters without '/', ',' or control characters"}
		}
		if slices.Contains(tags[:i], t) {
			return &registry.FieldError{Field: fmt.Sprintf("%s[%d]", field, i), Reason: fmt.Sprintf("tag %q is given twice", t)}
		}
	}
	return nil
}

// checkParent validates a new project's parent and takes its domain when
// the project names none.
func (d *Directory) checkParent(ctx context.Context, p *Project) error {
	if p.ParentID == "" || p.ParentID == p.DomainID {
		p.ParentID = "" // a top-level project: Keystone names the domain as its parent
		return nil
	}
	parent, err := d.GetProject(ctx, p.ParentID)
	if errors.Is(err, ErrNotFound) {
		return &registry.FieldError{Field: "project.parent_id", Reason: fmt.Sprintf("no project %q", p.ParentID)}
	}
	if err != nil {
		return err
	}
	if p.DomainID == "" {
		p.DomainID = parent.DomainID
	}
	if parent.DomainID != p.DomainID {
		return &registry.FieldError{Field: "project.parent_id", Reason: "the parent project is in another domain"}
	}
	if p.Enabled && !parent.Enabled { // Keystone's 403
		return errForbiddenf("cannot create an enabled project under disabled project %s", parent.Name)
	}
	parents, err := d.Parents(ctx, parent)
	if err != nil {
		return err
	}
	if len(parents)+2 > MaxProjectDepth {
		return &registry.FieldError{Field: "project.parent_id", Reason: fmt.Sprintf("projects nest at most %d deep", MaxProjectDepth)}
	}
	return nil
}

// Parents returns a project's ancestors, nearest first.
func (d *Directory) Parents(ctx context.Context, p Project) ([]Project, error) {
	var out []Project
	for p.ParentID != "" && len(out) <= MaxProjectDepth {
		parent, err := d.GetProject(ctx, p.ParentID)
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		out = append(out, parent)
		p = parent
	}
	return out, nil
}

// Children returns a project's direct children (from the cached
// projects: a hierarchy is an admin's read).
func (d *Directory) Children(ctx context.Context, id string) ([]Project, error) {
	all, err := d.ListProjects(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(p Project) bool { return p.ParentID != id }), nil
}

// Subtree returns a project's descendants, breadth first.
func (d *Directory) Subtree(ctx context.Context, id string) ([]Project, error) {
	all, err := d.ListProjects(ctx)
	if err != nil {
		return nil, err
	}
	byParent := map[string][]Project{}
	for _, p := range all {
		if p.ParentID != "" {
			byParent[p.ParentID] = append(byParent[p.ParentID], p)
		}
	}
	var out []Project
	queue := []string{id}
	for len(queue) > 0 && len(out) <= len(all) {
		kids := byParent[queue[0]]
		queue = queue[1:]
		sort.Slice(kids, func(i, j int) bool { return kids[i].Name < kids[j].Name })
		for _, k := range kids {
			out = append(out, k)
			queue = append(queue, k.ID)
		}
	}
	return out, nil
}

// ProjectTagFilter is Keystone's tag filters of a project listing: all
// of Tags, any of TagsAny, not all of NotTags, none of NotTagsAny.
type ProjectTagFilter struct {
	Tags, TagsAny, NotTags, NotTagsAny []string
}

// Match reports whether a project's tags pass the filter.
func (f ProjectTagFilter) Match(tags []string) bool {
	has := func(t string) bool { return slices.Contains(tags, t) }
	all := func(ts []string) bool {
		for _, t := range ts {
			if !has(t) {
				return false
			}
		}
		return true
	}
	anyOf := func(ts []string) bool { return slices.ContainsFunc(ts, has) }
	return (len(f.Tags) == 0 || all(f.Tags)) && (len(f.TagsAny) == 0 || anyOf(f.TagsAny)) &&
		(len(f.NotTags) == 0 || !all(f.NotTags)) && (len(f.NotTagsAny) == 0 || !anyOf(f.NotTagsAny))
}
