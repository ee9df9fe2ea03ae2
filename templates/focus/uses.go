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
}

func useKey(ref, user string) string { return prefix + "uses/" + ref + "/" + user }

// RecordUse notes that user ("template:NAME@V", "binding:NAME@V",
// "deployment:ID") uses the template version ref ("NAME@V").
func (c *Catalog) RecordUse(ctx context.Context, ref, user string) error {
	if _, _, ok := strings.Cut(user, ":"); !ok {
		return fmt.Errorf("%w: user %q: want KIND:REF", ErrInvalid, user)
	}
	_, err := c.Store.CAS(ctx, useKey(ref, user), []byte(user), 0)
	if err != nil && !isConflict(err) {
		return err
	}
	return nil
}

// ReleaseUse forgets a use (a deployment deleted or moved to another version).
func (c *Catalog) ReleaseUse(ctx context.Context, ref, user string) error {
	return c.Store.Delete(ctx, useKey(ref, user))
}

// UsedBy lists what uses template name at version: templates extending or
// nesting it, bindings bound to it, deployments made from it.
func (c *Catalog) UsedBy(ctx context.Context, name, version string) ([]Use, error) {
	v, err := c.Get(ctx, name, version)
	if err != nil {
		return nil, err
	}
	kvs, _, err := c.Store.List(ctx, prefix+"uses/"+v.Ref()+"/")
	if err != nil {
		return nil, err
	}
	out := make([]Use, 0, len(kvs))
	for _, kv := range kvs {
		kind, ref, _ := strings.Cut(string(kv.Value), ":")
		out = append(out, Use{Kind: kind, Ref: ref})
	}
	return out, nil
}
