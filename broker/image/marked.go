package image

import (
	"context"
	"fmt"
)

// Marked returns the broker IDs of the caller's images carrying every
// mark (CreateSpec.Marks), on every connected peer; see
// index.Index.Marked.
func (s *Service) Marked(ctx context.Context, c Caller, marks map[string]string) ([]string, error) {
	if len(marks) == 0 {
		return nil, fmt.Errorf("marked images: no marks given: %w", ErrInvalid)
	}
	members, _ := s.connected()
	return s.Index.Marked(ctx, members, s.BrokerID, Kind, c.Project, marks, s.timeout())
}
