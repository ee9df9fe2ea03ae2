package focus

import (
	"context"
	"fmt"
	"strings"
)

// Use is one user of a version: a template version that extends or nests
// it, a binding bound to it, or a deployment made from it.
type Use struct {
	// Kind is "template", "binding" or "deployment".
	Kind string `json:"kind"`
	// Ref is the user: "NAME@VERSION" or a deployment ID.
	Ref string `json:"ref"`
	// Project owns the user (shown to cloud admins, who see every
	// project's uses).
	Project string `json:"project,omitempty"`
}

// Uses are kept with the used version, under the user's project:
// focus/projects/OWNER/uses/NAME@V/USER_PROJECT/KIND:REF.
func usesPrefix(owner, ref string) string { return projectPrefix(owner) + "uses/" + ref + "/" }

func useKey(owner, ref, project, user string) string {
	return usesPrefix(owner, ref) + project + "/" + user
}

// RecordUse notes that user ("template:NAME@V", "binding:NAME@V",
// "deployment:ID") of project uses the template version ref ("NAME@V"),
// as project resolves it (its own, or public).
func (c *Catalog) RecordUse(ctx context.Context, project, ref, user string) error {
	owner, exact, err := c.useTarget(ctx, project, ref, user)
	if err != nil {
		return err
	}
	_, err = c.Store.CAS(ctx, useKey(owner, exact, project, user), []byte(user), 0)
	if err != nil && !isConflict(err) {
		return err
	}
	return nil
}

// ReleaseUse forgets a use (a deployment deleted or moved to another
// version). A version that no longer resolves has nothing to release.
func (c *Catalog) ReleaseUse(ctx context.Context, project, ref, user string) error {
	owner, exact, err := c.useTarget(ctx, project, ref, user)
	if err != nil {
		return nil
	}
	return c.Store.Delete(ctx, useKey(owner, exact, project, user))
}

func (c *Catalog) useTarget(ctx context.Context, project, ref, user string) (owner, exact string, err error) {
	if _, _, ok := strings.Cut(user, ":"); !ok || strings.Contains(user, "/") {
		return "", "", fmt.Errorf("%w: user %q: want KIND:REF", ErrInvalid, user)
	}
	name, version, _ := strings.Cut(ref, "@")
	v, err := c.Get(ctx, project, name, version)
	if err != nil {
		return "", "", err
	}
	return v.Project, v.Ref(), nil
}

// UsedBy lists what uses template name at version, as project sees it:
// templates extending or nesting it, bindings bound to it, deployments
// made from it. Only project's own users are listed unless all (a cloud
// admin asking).
func (c *Catalog) UsedBy(ctx context.Context, project, name, version string, all bool) ([]Use, error) {
	v, err := c.Get(ctx, project, name, version)
	if err != nil {
		return nil, err
	}
	p := usesPrefix(v.Project, v.Ref())
	if !all {
		p += project + "/"
	}
	kvs, _, err := c.Store.List(ctx, p)
	if err != nil {
		return nil, err
	}
	out := make([]Use, 0, len(kvs))
	for _, kv := range kvs {
		userProject, _, _ := strings.Cut(strings.TrimPrefix(kv.Key, usesPrefix(v.Project, v.Ref())), "/")
		kind, ref, _ := strings.Cut(string(kv.Value), ":")
		u := Use{Kind: kind, Ref: ref}
		if all {
			u.Project = userProject
		}
		out = append(out, u)
	}
	return out, nil
}
