package quota

import (
	"context"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// LeftoverPrefixes hold the ledger's records: limits per project and
// usage per project or user.
var LeftoverPrefixes = []string{"quotas/", "quota-usage/"}

// Owners reports the projects and users that exist (the identity
// directory's).
type Owners func(ctx context.Context) (projects, users map[string]bool, err error)

// Leftovers returns the judge of a gc.Orphans over the records under
// LeftoverPrefixes: the limits and usage of a project, and the usage of a
// user, that no longer exists. Deleting a project or user leaves them
// (nothing can be created in a deleted project, and IDs are never reused,
// so they would only accumulate).
func Leftovers(owners Owners) func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
	return func(ctx context.Context, kvs []registry.KV) ([]registry.KV, error) {
		if len(kvs) == 0 {
			return nil, nil
		}
		projects, users, err := owners(ctx)
		if err != nil {
			return nil, err
		}
		var out []registry.KV
		for _, kv := range kvs {
			var owned bool
			switch rest := strings.TrimPrefix(kv.Key, "quota-usage/"); {
			case strings.HasPrefix(kv.Key, "quotas/"):
				owned = projects[strings.TrimPrefix(kv.Key, "quotas/")]
			case strings.HasPrefix(rest, "user:"):
				owned = users[strings.TrimPrefix(rest, "user:")]
			case rest != kv.Key:
				owned = projects[rest]
			default:
				owned = true
			}
			if !owned {
				out = append(out, kv)
			}
		}
		return out, nil
	}
}
