package policy

import (
	"fmt"
	"slices"

	"github.com/cloudmux/cloudmux/registry"
)

// Healthy reports whether a peer in status s may take new resources: up,
// or degraded (slow but answering). Down and maintenance peers may not.
func Healthy(s registry.Status) bool {
	return s == registry.StatusUp || s == registry.StatusDegraded
}

// gate denies every peer that is not Healthy, whatever the policy said:
// peer health is enforced in Go, like quotas, so a policy an admin
// replaces may be stricter but can never place on a down or drained peer.
// The rejected peer keeps the policy's reasons, after the gate's own, and
// allowed peers stay first in the policy's order.
func gate(d Decision) Decision {
	changed := false
	for i, v := range d.Verdicts {
		if Healthy(v.Peer.Status) {
			continue
		}
		why := fmt.Sprintf("status is %s", v.Peer.Status)
		if !slices.Contains(v.Reasons, why) {
			v.Reasons = append([]string{why}, v.Reasons...)
		}
		if v.Allowed {
			v.Allowed, v.Score, changed = false, 0, true
		}
		d.Verdicts[i] = v
	}
	if changed {
		slices.SortStableFunc(d.Verdicts, func(a, b Verdict) int {
			switch {
			case a.Allowed && !b.Allowed:
				return -1
			case b.Allowed && !a.Allowed:
				return 1
			}
			return 0
		})
	}
	return d
}
