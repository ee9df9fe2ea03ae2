package focus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// MigrationReport says what MigrateLegacy did.
type MigrationReport struct {
	// Moved counts records now owned by the project.
	Moved int
	// Kept counts legacy records left in place because the project
	// already holds a different record at the same key (a version pushed
	// before the migration ran); they are reported, never overwritten.
	Kept int
}

// MigrateLegacy moves the records of the catalog's first layout, which
// had no projects (focus/templates/, focus/bindings/, focus/uses/), into
// owner's name space: they become that project's (the cloud admins'
// project), private until an admin publishes them, rather than visible to
// everyone. Copies are create-only and the legacy key is removed once its
// copy exists, so brokers running it at once, or a crash halfway, are
// harmless.
func (c *Catalog) MigrateLegacy(ctx context.Context, owner string) (MigrationReport, error) {
	var rep MigrationReport
	if err := validProject(owner); err != nil {
		return rep, err
	}
	for _, kind := range []string{"templates", "bindings", "uses"} {
		old := prefix + kind + "/"
		kvs, _, err := c.Store.List(ctx, old)
		if err != nil {
			return rep, err
		}
		for _, kv := range kvs {
			rest := strings.TrimPrefix(kv.Key, old)
			key, value := projectPrefix(owner)+kind+"/"+rest, kv.Value
			switch {
			case kind == "uses":
				ref, user, ok := strings.Cut(rest, "/")
				if !ok {
					continue
				}
				key = useKey(owner, ref, owner, user)
			case strings.Contains(rest, "/versions/"):
				var rec map[string]any
				if err := json.Unmarshal(kv.Value, &rec); err != nil {
					return rep, err
				}
				rec["project"] = owner
				if value, err = json.Marshal(rec); err != nil {
					return rep, err
				}
			}
			moved, err := c.copyOnce(ctx, key, value)
			if err != nil {
				return rep, err
			}
			if !moved {
				rep.Kept++
				continue
			}
			if err := c.Store.Delete(ctx, kv.Key); err != nil {
				return rep, err
			}
			rep.Moved++
		}
	}
	return rep, nil
}

// copyOnce writes value at key unless the key exists; it reports whether
// key now holds value.
func (c *Catalog) copyOnce(ctx context.Context, key string, value []byte) (bool, error) {
	_, err := c.Store.CAS(ctx, key, value, 0)
	if err == nil {
		return true, nil
	}
	if !errors.Is(err, registry.ErrConflict) {
		return false, err
	}
	cur, err := c.Store.Get(ctx, key)
	if err != nil {
		return false, err
	}
	return bytes.Equal(cur.Value, value), nil
}
