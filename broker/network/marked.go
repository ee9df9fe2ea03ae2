package network

import (
	"context"
	"fmt"
)

// Marked returns the broker IDs of project's networks, subnets or ports
// (kind) carrying every mark (the creates' Marks), on every connected
// peer. One a create left on its peer without indexing it (its broker
// died in between) is deleted, not returned; see index.Index.Marked.
func (s *Service) Marked(ctx context.Context, project, kind string, marks map[string]string) ([]string, error) {
	if kind != KindNetwork && kind != KindSubnet && kind != KindPort {
		return nil, fmt.Errorf("marked: unknown kind %q: %w", kind, ErrInvalid)
	}
	if len(marks) == 0 {
		return nil, fmt.Errorf("marked %ss: no marks given: %w", kind, ErrInvalid)
	}
	return s.Index.Marked(ctx, s.connected(), s.BrokerID, kind, project, marks, s.timeout())
}
