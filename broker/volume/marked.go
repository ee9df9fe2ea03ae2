package volume

import (
	"context"
	"fmt"

	"github.com/cloudmux/cloudmux/peers"
)

// Marked returns the broker IDs of the caller's volumes carrying every
// mark (CreateSpec.Marks), on every connected peer. A volume a create
// left on its peer without indexing it (its broker died in between) is
// deleted, not returned; see index.Index.Marked.
func (s *Service) Marked(ctx context.Context, c Caller, marks map[string]string) ([]string, error) {
	if len(marks) == 0 {
		return nil, fmt.Errorf("marked volumes: no marks given: %w", ErrInvalid)
	}
	var members []*peers.Member
	for _, m := range s.Pool.Members() {
		if m.Cloud != nil {
			members = append(members, m)
		}
	}
	return s.Index.Marked(ctx, members, s.BrokerID, Kind, c.Project, marks, s.timeout())
}
