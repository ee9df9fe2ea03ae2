package quota

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cloudmux/cloudmux/registry"
)

// Unset forgets the named limits of project, which follow the defaults
// again, and returns its whole quota; the other limits keep what an admin
// set. Each API resets only its own: Cinder's DELETE os-quota-sets must
// not reset the project's Nova or Neutron quotas.
func (l *Limits) Unset(ctx context.Context, project string, dims ...Resource) (Amounts, error) {
	key, err := limitsKey(project)
	if err != nil {
		return nil, err
	}
	for {
		set, index, err := l.read(ctx, key)
		if err != nil {
			return nil, err
		}
		n := len(set)
		for _, d := range dims {
			delete(set, d)
		}
		if index == 0 || n == len(set) {
			return l.Get(ctx, project) // nothing of these was set
		}
		// Written, even when empty, never deleted: a compare-and-swap
		// keeps another admin's concurrent Set.
		b, err := json.Marshal(set)
		if err == nil {
			_, err = l.Store.CAS(ctx, key, b, index)
		}
		if errors.Is(err, registry.ErrConflict) && ctx.Err() == nil {
			continue // another admin wrote first: unset over theirs
		}
		if err != nil {
			return nil, fmt.Errorf("writing %s: %w", key, err)
		}
		return l.Get(ctx, project)
	}
}

// ParseLimit reads a limit as the OpenStack quota APIs take it: a JSON
// integer, or a string holding one (Nova and Cinder accept both). Range
// checks are Amounts.Validate's.
func ParseLimit(v json.RawMessage) (int, bool) {
	var s string
	if json.Unmarshal(v, &s) != nil {
		s = string(v)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < math.MinInt32 || n > math.MaxInt32 {
		return 0, false
	}
	return int(n), true
}
