package quota

import (
	"context"
	"encoding/json"
	"math"
	"strconv"
	"strings"
)

// Unset forgets the named limits of project, which follow the defaults
// again, and returns its whole quota; the other limits keep what an admin
// set. Each API resets only its own: Cinder's DELETE os-quota-sets must
// not reset the project's Nova or Neutron quotas.
func (l *Limits) Unset(ctx context.Context, project string, dims ...Resource) (Amounts, error) {
	err := l.change(ctx, project, func(rec *projectLimits) error {
		n := len(rec.Limits)
		for _, d := range dims {
			delete(rec.Limits, d)
			delete(rec.Descriptions, d)
		}
		if n == len(rec.Limits) {
			return errSkip // nothing of these was set
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return l.Get(ctx, project)
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
